"""A Dagster instance for bulk runs (``stat-pipeline compute``, the benchmark).

Dagster books every asset and hour of a range run: one "planned" event when the run is
created and one materialization when the step ends. On the default SQLite instance each
costs about 17 ms (a new SQLite connection and a compiled INSERT per event), so a 30-day
backfill (727 hours x 5 assets) spent 110 s on bookkeeping around 13 s of SQL.

This instance keeps its storage in PostgreSQL (a ``dagster`` database next to the
warehouse) and turns on two switches Dagster reads from the environment:

- ``DAGSTER_EVENT_BATCH_SIZE``: a step's materializations (one per hour) are written as
  multi-row INSERTs of 1,000, which the PostgreSQL event log supports and SQLite does not
  (batches, not all at once: the events of a batch wait in memory until it is written);
- ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS``: one planned event per asset naming
  the whole hour range, instead of one per hour. Its cost: when such a run FAILS, the UI
  does not mark its hours as failed (they keep their last materialization, or stay
  "missing"); the run itself shows as failed. The live instance uses it too (``LIVE_SWITCHES``):
  PostgreSQL writes per-hour planned events one at a time, and a 30-day backfill launched
  through the daemon spent 271 s writing its 3,635 of them (docs/performance.md).

Connections are pooled (``optimize_for_webserver``): Dagster otherwise opens one per event.
The URL reaches the instance through an environment variable, not the file, like any
database secret.

``run_job`` runs a job in this process like ``execute_in_process`` but without keeping its
events: ``execute_in_process`` returns every event of the run, and a year of hours is 44,000
materializations held in memory. The events are in the instance all the same. (With both,
a one-year backfill peaks at ~280 MB of RSS.)
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import dagster as dg
from dagster_postgres.utils import pg_url_from_config
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.execution.api import create_execution_plan, execute_run_iterator

URL_VARIABLE = "STAT_BULK_INSTANCE_URL"
BULK_SWITCHES = {
    "DAGSTER_EVENT_BATCH_SIZE": "1000",
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1",
}
# The live instance (dagster.yaml, ``stat-pipeline serve``): PostgreSQL from this variable,
# and these switches in the environment of EVERY process that writes events: the webserver
# and the daemon (they create runs: planned events) and the run workers (materializations).
INSTANCE_URL_VARIABLE = "STAT_DAGSTER_PG_URL"
LIVE_SWITCHES = {
    "DAGSTER_EVENT_BATCH_SIZE": "1000",
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1",
}
_STORAGE = """\
  module: {module}
  class: {cls}
  config:
    postgres_url:
      env: {variable}
    should_autocreate_tables: {autocreate}
"""


def _config(autocreate: bool) -> str:
    """The instance's dagster.yaml: Dagster's PostgreSQL storages (``storage: postgres``
    spelt out per storage), the run and event log ones our subclasses below."""
    storages = {"run_storage": ("stat_pipeline.instance", "BulkRunStorage"),
                "event_log_storage": ("stat_pipeline.instance", "BulkEventLogStorage"),
                "schedule_storage": ("dagster_postgres.schedule_storage",
                                     "PostgresScheduleStorage")}
    return "telemetry:\n  enabled: false\n" + "".join(
        f"{key}:\n" + _STORAGE.format(module=module, cls=cls, variable=URL_VARIABLE,
                                      autocreate=str(autocreate).lower())
        for key, (module, cls) in storages.items())


class _SchemaAnswers:
    """Dagster's PostgreSQL storages ask the database, before many of their writes and
    reads, whether a table or column exists (for instances not yet migrated to its
    version): a catalog query, often on a second pooled connection opened for it (the
    first one is in the middle of the write), or a full column reflection by SQLAlchemy.
    A two-call ``compute`` made 20 such table and 31 column look-ups, ~0.3 s of its wall.
    A bulk instance's schema is made by this Dagster version when the database is created
    (or copied from the template made so: compute_server.py) and is not migrated while the
    instance lives, so each answer is asked once and kept for the instance's life."""

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        # the storages' own from_config_value name their class, not ``cls``
        return cls(inst_data=inst_data, postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True))

    def _schema_answer(self, key: tuple, ask: Callable[[], bool]) -> bool:
        answers = self.__dict__.setdefault("_stat_schema_answers", {})
        if key not in answers:
            answers[key] = ask()
        return answers[key]


class BulkEventLogStorage(_SchemaAnswers, PostgresEventLogStorage):
    """Dagster's PostgreSQL event log, its schema look-ups asked once (_SchemaAnswers)."""

    def has_table(self, table_name: str) -> bool:
        return self._schema_answer(("table", table_name),
                                   lambda: super(BulkEventLogStorage, self).has_table(table_name))

    def _has_asset_key_col_on_connection(self, conn, column_name: str) -> bool:
        return self._schema_answer(
            ("asset_keys", column_name),
            lambda: super(BulkEventLogStorage, self)._has_asset_key_col_on_connection(
                conn, column_name))


class BulkRunStorage(_SchemaAnswers, PostgresRunStorage):
    """Dagster's PostgreSQL run storage, its schema look-ups asked once (_SchemaAnswers)."""

    def has_run_stats_index_cols(self) -> bool:
        return self._schema_answer(
            ("runs", "run_stats"),
            lambda: super(BulkRunStorage, self).has_run_stats_index_cols())

    def has_backfill_id_column(self) -> bool:
        return self._schema_answer(
            ("runs", "backfill_id"), lambda: super(BulkRunStorage, self).has_backfill_id_column())


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
def bulk_instance(postgres_url: str, home: Path,
                  schema_made: bool = False) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance stored in the (empty or Dagster-owned) database at
    ``postgres_url``, with its ``dagster.yaml`` in ``home``; the switches above hold
    while the context is open. ``schema_made``: the database holds this Dagster version's
    storage tables already (a copy of compute's template): the storages do not look for
    them (three catalog reflections)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(_config(autocreate=not schema_made))
    with _environment({URL_VARIABLE: postgres_url, **BULK_SWITCHES}):
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600,
                                            max_overflow=4)
            yield instance
        finally:
            instance.dispose()


def run_job(job: dg.JobDefinition, instance: dg.DagsterInstance, run_config: dict,
            tags: dict[str, str]) -> dg.DagsterRun:
    """Execute ``job`` in this process, streaming its events to ``instance`` only (the same
    calls ``execute_in_process`` makes, minus the list of events). Returns the finished
    run; its status says whether it succeeded."""
    # as execute_in_process does: the same job on the in-process executor
    job = job.as_ephemeral_job(resource_defs={}, input_values={})
    plan = create_execution_plan(job, run_config=run_config, instance_ref=(
        instance.get_ref() if instance.is_persistent else None))
    run = instance.create_run_for_job(job_def=job, execution_plan=plan, run_config=run_config,
                                      tags={**job.run_tags, **tags})
    for _ in execute_run_iterator(InMemoryJob(job), run, instance):
        pass
    return instance.get_run_by_id(run.run_id)


class RunFailed(RuntimeError):
    """A run that did not succeed, with the first step failure's message."""


def raise_for_failure(run: dg.DagsterRun, instance: dg.DagsterInstance) -> None:
    if run.is_success:
        return
    failures = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    first = failures[0].dagster_event if failures else None
    error = first.step_failure_data.error if first else None
    while error is not None and error.cause is not None:  # Dagster wraps the user's error
        error = error.cause
    reason = f"step {first.step_key}: {error.message.strip()}" if error else run.status.value
    raise RunFailed(f"run {run.run_id} of {run.job_name} failed: {reason}")
