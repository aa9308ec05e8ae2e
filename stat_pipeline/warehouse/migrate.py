"""Idempotent schema migrations for the warehouse.

Each file in ``migrations/`` is applied once, in name order, inside one transaction that
holds an advisory lock, so concurrent processes (webserver, daemon, run workers) starting
on an empty warehouse do not race each other.

The warehouse runs on PostgreSQL 13 or newer (13 to 18 are tested): nothing in our SQL is
newer than 13 except where a migration picks a faster exact form on newer servers. An older
server is refused before anything is created, in one line that names the minimum.
"""
from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

# migration_files() is read by compute's first step, before SQLAlchemy is needed
# (compute_server.py): SQLAlchemy is imported where used
if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

_LOCK_KEY = "stat_pipeline.migrations"
MINIMUM_MAJOR_VERSION = 13


class UnsupportedServer(RuntimeError):
    """The warehouse's PostgreSQL is older than we support; the message is one line."""


def check_server_version(conn: Connection, minimum_major: int = MINIMUM_MAJOR_VERSION) -> None:
    """Refuse a server older than PostgreSQL ``minimum_major`` with a one-line error."""
    from sqlalchemy import text

    # server_version_num is 130023 for 13.23 (90624 for 9.6.24: below any major >= 10)
    number = int(conn.execute(text("SELECT current_setting('server_version_num')")).scalar_one())
    if number < minimum_major * 10000:
        shown = conn.execute(text("SELECT current_setting('server_version')")).scalar_one()
        raise UnsupportedServer(f"the warehouse's PostgreSQL is {shown}; stat_pipeline needs "
                                f"PostgreSQL {minimum_major} or newer")


def migration_files() -> list[tuple[str, str]]:
    folder = resources.files("stat_pipeline.warehouse") / "migrations"
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(p.name.removesuffix(".sql"), p.read_text()) for p in files]


def migrate(engine: Engine) -> list[str]:
    """Apply the migrations that are missing; return the versions applied now."""
    from sqlalchemy import text

    applied_now: list[str] = []
    with engine.begin() as conn:
        check_server_version(conn)
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
