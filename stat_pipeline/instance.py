"""A Dagster instance for bulk runs (``stat-pipeline compute``, the benchmark).

Dagster books every asset and hour of a range run: one "planned" event when the run is
created and one materialization when the step ends. On the default SQLite instance each
costs about 17 ms (a new SQLite connection and a compiled INSERT per event), so a 30-day
backfill (727 hours x 5 assets) spent 110 s on bookkeeping around 13 s of SQL.

This instance keeps its storage in PostgreSQL (a ``dagster`` database next to the
warehouse) and turns on two switches Dagster reads from the environment:

- ``DAGSTER_EVENT_BATCH_SIZE``: a step's materializations (one per hour) are written as one
  multi-row INSERT, which the PostgreSQL event log supports and SQLite does not;
- ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS``: one planned event per asset naming
  the whole hour range, instead of one per hour. Its cost, and why the live instance
  (``dagster.yaml``) keeps the default: when such a run FAILS, the UI does not mark its
  hours as failed (they stay "missing"). For a one-shot command that reports its own failure
  that loses nothing.

Connections are pooled (``optimize_for_webserver``): Dagster otherwise opens one per event.
The URL reaches the instance through an environment variable, not the file, like any
database secret.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import dagster as dg

URL_VARIABLE = "STAT_BULK_INSTANCE_URL"
BULK_SWITCHES = {
    "DAGSTER_EVENT_BATCH_SIZE": "100000",
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1",
}
_CONFIG = f"""\
telemetry:
  enabled: false
storage:
  postgres:
    postgres_url:
      env: {URL_VARIABLE}
"""


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def bulk_instance(postgres_url: str, home: Path) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance stored in the (empty or Dagster-owned) database at
    ``postgres_url``, with its ``dagster.yaml`` in ``home``; the switches above hold
    while the context is open."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(_CONFIG)
    with _environment({URL_VARIABLE: postgres_url, **BULK_SWITCHES}):
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600,
                                            max_overflow=4)
            yield instance
        finally:
            instance.dispose()
