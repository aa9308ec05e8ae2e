"""Shared fixtures: one PostgreSQL server per session, a fresh database per test.

Set ``TEST_PG_URL`` (SQLAlchemy URL of an existing server's maintenance database, e.g.
``postgresql+psycopg2://postgres@localhost:5432/postgres``) to use that server instead of
starting an embedded one.

The warehouse must also work on the oldest PostgreSQL we support: tests that take
``versioned_warehouse_url`` run once on the session's server (the embedded PostgreSQL 18) and
once on Debian's PostgreSQL 15 (``/usr/lib/postgresql/15/bin``, what Debian 12 and Wazo
servers run; another bin dir with ``STAT_TEST_PG15_BIN``), started the same way in the
session's temp dir; without those binaries the PostgreSQL 15 runs are skipped, saying why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
import sqlalchemy as sa

from stat_pipeline.warehouse.embedded import EmbeddedPostgres, create_database, drop_database

# Steps retry with exponential backoff from 15 s in production; a test whose step fails on
# purpose would wait minutes for nothing.
os.environ.setdefault("STAT_RETRY_DELAY_SECONDS", "0.05")


class PgServer(Protocol):
    def url(self, dbname: str) -> str: ...
    def create_database(self, name: str) -> None: ...
    def drop_database(self, name: str) -> None: ...


class ExternalPostgres:
    def __init__(self, maintenance_url: str) -> None:
        # Bare postgresql:// means psycopg 3 in SQLAlchemy 2.1; we only ship psycopg2.
        self._url = sa.make_url(maintenance_url).set(drivername="postgresql+psycopg2")

    def url(self, dbname: str) -> str:
        return self._url.set(database=dbname).render_as_string(hide_password=False)

    def create_database(self, name: str) -> None:
        create_database(self.url(self._url.database or "postgres"), name)

    def drop_database(self, name: str) -> None:
        drop_database(self.url(self._url.database or "postgres"), name)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    if url := os.environ.get("TEST_PG_URL"):
        yield ExternalPostgres(url)
        return
    with EmbeddedPostgres(tmp_path_factory.mktemp("pg"), fast=True) as pg:
        yield pg


DEBIAN_PG15_BIN = Path(os.environ.get("STAT_TEST_PG15_BIN", "/usr/lib/postgresql/15/bin"))


@pytest.fixture(scope="session")
def debian_pg15_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    """Debian's PostgreSQL 15, initdb'ed and started like the embedded one (as the system
    user ``stat_pipeline_pg`` when we are root), for the session."""
    missing = [name for name in ("initdb", "postgres") if not (DEBIAN_PG15_BIN / name).is_file()]
    if missing:
        pytest.skip(f"Debian's PostgreSQL 15 is not installed: no {DEBIAN_PG15_BIN}/{missing[0]} "
                    "(apt install postgresql-15, or set STAT_TEST_PG15_BIN)")
    with EmbeddedPostgres(tmp_path_factory.mktemp("pg15"), fast=True, bin_dir=DEBIAN_PG15_BIN) as pg:
        yield pg


def _fresh_database(server: PgServer) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    yield server.url(name)
    from stat_pipeline.resources import dispose_engines

    dispose_engines()  # the pipeline caches one engine per URL; close it before the drop
    server.drop_database(name)


@pytest.fixture
def warehouse_url(pg_server: PgServer) -> Iterator[str]:
    yield from _fresh_database(pg_server)


# test id -> the session fixture of that server
VERSIONED_SERVERS = {"pg18": "pg_server", "pg15": "debian_pg15_server"}


@pytest.fixture(params=list(VERSIONED_SERVERS))
def versioned_server(request: pytest.FixtureRequest) -> PgServer:
    """Each supported PostgreSQL we can start here, one test run per server."""
    return request.getfixturevalue(VERSIONED_SERVERS[request.param])


@pytest.fixture
def versioned_warehouse_url(versioned_server: PgServer) -> Iterator[str]:
    """A fresh database on each server of ``versioned_server``."""
    yield from _fresh_database(versioned_server)


@pytest.fixture
def dagster_pg_url(pg_server: PgServer) -> Iterator[str]:
    """A database of its own for a Dagster instance (dagster.yaml reads STAT_DAGSTER_PG_URL)."""
    name = f"dagster_{uuid.uuid4().hex[:12]}"
    pg_server.create_database(name)
    yield pg_server.url(name)
    pg_server.drop_database(name)


def pytest_terminal_summary(terminalreporter) -> None:
    """Per golden set and table: rows expected / matched / missing / extra."""
    from stat_pipeline_tests import test_golden_parity
    from stat_pipeline_tests.artifacts import KEPT

    if KEPT:
        terminalreporter.section("artifacts kept (screenshots)")
        for path in KEPT:
            terminalreporter.write_line(str(path))

    if test_golden_parity.SUMMARY:
        terminalreporter.section("golden sets vs wazo-stat (rows)")
        for line in test_golden_parity.SUMMARY:
            terminalreporter.write_line(line)
