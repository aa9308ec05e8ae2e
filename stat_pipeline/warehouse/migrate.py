"""Idempotent schema migrations for the warehouse.

Each file in ``migrations/`` is applied once, in name order, inside one transaction that
holds an advisory lock, so concurrent processes (webserver, daemon, run workers) starting
on an empty warehouse do not race each other.
"""
from __future__ import annotations

from importlib import resources

from sqlalchemy import Engine, text

_LOCK_KEY = "stat_pipeline.migrations"


def migration_files() -> list[tuple[str, str]]:
    folder = resources.files("stat_pipeline.warehouse") / "migrations"
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(p.name.removesuffix(".sql"), p.read_text()) for p in files]


def migrate(engine: Engine) -> list[str]:
    """Apply the migrations that are missing; return the versions applied now."""
    applied_now: list[str] = []
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": _LOCK_KEY})
        conn.execute(text(
            "CREATE TABLE IF NOT EXISTS stat_pipeline_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"))
        done = set(conn.execute(text("SELECT version FROM stat_pipeline_migrations")).scalars())
        for version, sql in migration_files():
            if version in done:
                continue
            conn.exec_driver_sql(sql)
            conn.execute(text("INSERT INTO stat_pipeline_migrations (version) VALUES (:v)"),
                         {"v": version})
            applied_now.append(version)
    return applied_now
