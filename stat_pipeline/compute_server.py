"""The PostgreSQL server of ``stat-pipeline compute``, importable without Dagster.

Every ``compute`` needs the same empty warehouse (migrated) and Dagster instance storage. An
initialized cluster holding both is built once per version and kept in the user's cache
folder (``embedded.cached_cluster``); each ``compute`` copies it and starts the server.
The command line starts that server *before* importing Dagster (~0.7 s of imports), so the
server starts on the other core meanwhile (``compute_server``; ``wait_ready`` before use).
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Optional

from stat_pipeline.commands.processes import owned_tempdir
from stat_pipeline.warehouse.embedded import EmbeddedPostgres, cached_cluster
from stat_pipeline.warehouse.migrate import migrate, migration_files

WAREHOUSE_DB = "stat"
INSTANCE_DB = "dagster"


def _prepare_cluster(pg: EmbeddedPostgres) -> None:
    """What every ``compute`` sets up before its first row: the warehouse's schema and the
    Dagster instance's storage tables."""
    import sqlalchemy as sa

    from stat_pipeline.instance import bulk_instance  # Dagster: only when building

    pg.create_database(WAREHOUSE_DB)
    pg.create_database(INSTANCE_DB)
    engine = sa.create_engine(pg.url(WAREHOUSE_DB), poolclass=sa.NullPool)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    with tempfile.TemporaryDirectory(prefix="stat-template-home-") as home:
        with bulk_instance(pg.url(INSTANCE_DB), Path(home)):
            pass  # the storage's tables are created with the instance
    # Every compute copies the cluster file by file (~1,900 files; the creation of each
    # costs the kernel more than its bytes). A copy creates no database: the two template
    # databases (~600 files) are left out of it.
    engine = sa.create_engine(pg.url("postgres"), isolation_level="AUTOCOMMIT",
                              poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            for name in ("template0", "template1"):
                conn.exec_driver_sql(f"ALTER DATABASE {name} IS_TEMPLATE false")
                conn.exec_driver_sql(f"DROP DATABASE {name}")
    finally:
        engine.dispose()


def compute_template() -> Optional[Path]:
    """The cached template cluster, keyed by everything its content depends on: the
    PostgreSQL binaries (cached_cluster), our migrations and Dagster's storage versions."""
    parts = ["compute-v2", version("dagster"), version("dagster-postgres"),
             *(f"{name}\n{sql}" for name, sql in migration_files())]
    return cached_cluster("compute-cluster", parts, _prepare_cluster)


@contextmanager
def compute_server() -> Iterator[tuple[Path, EmbeddedPostgres]]:
    """A temporary folder (removed on exit, SIGTERM included; left by a SIGKILL, removed by
    the next start) and a server on a copy of the template, launched but not waited for:
    call ``wait_ready()`` before connecting. Stopped on exit."""
    with owned_tempdir("stat-compute-") as tmp:
        pg = EmbeddedPostgres(tmp / "pg", fast=True, template=compute_template())
        try:
            pg.start(wait=False)
            yield tmp, pg
        finally:
            pg.stop(discard=True)  # the folder is removed next
