"""``stat-pipeline compute``: statistics of one queue_log file, through the same Dagster
definitions as the live pipeline, in a fresh embedded warehouse."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import dagster as dg

from stat_pipeline.commands.processes import owned_tempdir
from stat_pipeline.definitions import DIMENSIONS_JOB, HOURLY_JOB, QUIET, build_definitions
from stat_pipeline.export import export_tables
from stat_pipeline.instance import bulk_instance, raise_for_failure, run_job
from stat_pipeline.partitions import KEY_FORMAT, hour_floor, hourly_partitions
from stat_pipeline.resources import Warehouse, WazoConfig, dispose_engines, warehouse_engine
from stat_pipeline.sources import QueueLogSource, file_source
from stat_pipeline.sql import query
from stat_pipeline.warehouse.embedded import EmbeddedPostgres

HOUR = dt.timedelta(hours=1)
ALL_TIME = (dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc),
            dt.datetime(9999, 1, 1, tzinfo=dt.timezone.utc))


def _q(name: str):
    return query(__file__, "compute.sql", name)


class StagedRows(QueueLogSource):
    """A file source's rows as compute parsed them once (compute.sql ``keep_staged``), under
    the file's own source name: the run's queue_log asset reads them back by hour range."""

    name: str

    def source_name(self) -> str:
        return self.name

    def stage(self, conn, start: dt.datetime, end: dt.datetime) -> None:
        conn.execute(_q("stage_range"), {"start": start, "end": end})


@dataclass
class ComputeResult:
    hours: int = 0
    first_hour: Optional[dt.datetime] = None
    files: dict[str, int] = field(default_factory=dict)
    rejects: dict[str, int] = field(default_factory=dict)


def parse_instant(value: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(value)
    if t.tzinfo is None:
        raise ValueError(f"--until {value!r} needs an explicit UTC offset, e.g. +00:00")
    return t


def compute_into(warehouse_url: str, queue_log: Path, out_dir: Path,
                 config: Optional[Path] = None, until: Optional[dt.datetime] = None,
                 instance: Optional[dg.DagsterInstance] = None,
                 keep_unknown_agents: bool = False, fmt: str = "auto",
                 timezone: str = "UTC") -> ComputeResult:
    """Materialize every hour of ``queue_log`` that starts before ``until`` (default: after
    the last row) into the warehouse at ``warehouse_url``, then export the tables."""
    source = file_source(str(queue_log), fmt, until.isoformat() if until else None, timezone)
    warehouse = Warehouse(url=warehouse_url)
    wazo_config = WazoConfig(confd_json=str(config) if config else None,
                             keep_unknown_agents=keep_unknown_agents)
    wazo_config.document()  # a bad config fails here, in one line, before any work
    engine = warehouse_engine(warehouse_url)
    with engine.begin() as conn:
        source.stage(conn, *ALL_TIME)
        conn.execute(_q("keep_staged"))
        bounds = conn.execute(_q("bounds")).one()
    staged = StagedRows(name=source.source_name(), until=source.until)
    result = ComputeResult()
    instance = instance or dg.DagsterInstance.ephemeral()
    if bounds.first is not None:
        first = hour_floor(bounds.first)
        # hours that start before --until; without it, up to the hour of the last row
        end = hour_floor(until - dt.timedelta(microseconds=1)) + HOUR if until \
            else hour_floor(bounds.last) + HOUR
        if end > first:
            defs = build_definitions(
                partitions=hourly_partitions(start=first.replace(hour=0), end=end),
                source=staged, warehouse=warehouse, wazo_config=wazo_config)
            dims = defs.resolve_job_def(DIMENSIONS_JOB).execute_in_process(instance=instance, run_config=QUIET)
            assert dims.success
            run = run_job(defs.resolve_job_def(HOURLY_JOB), instance, QUIET, {
                "dagster/asset_partition_range_start": first.strftime(KEY_FORMAT),
                "dagster/asset_partition_range_end": (end - HOUR).strftime(KEY_FORMAT)})
            raise_for_failure(run, instance)
            result.first_hour = first
            result.hours = int((end - first) / HOUR)
    with engine.begin() as conn:
        conn.execute(_q("drop_staged"))
    result.files = export_tables(engine, out_dir)
    with engine.connect() as conn:
        result.rejects = {row.disposition: row.n for row in conn.exec_driver_sql(
            "SELECT disposition, count(*) AS n FROM queue_log_rejects GROUP BY 1")}
    return result


def compute(queue_log: Path, out_dir: Path, config: Optional[Path] = None,
            until: Optional[dt.datetime] = None, keep_unknown_agents: bool = False,
            fmt: str = "auto", timezone: str = "UTC") -> ComputeResult:
    """The one-shot command: its own embedded PostgreSQL, started and stopped here, holding
    the warehouse and the Dagster instance of the run (instance.py: bulk bookkeeping)."""
    # removed on exit, SIGTERM included; left by a SIGKILL, it is removed by the next start
    with owned_tempdir("stat-compute-") as tmp:
        with EmbeddedPostgres(tmp / "pg", fast=True) as pg:
            pg.create_database("stat")
            pg.create_database("dagster")
            try:
                with bulk_instance(pg.url("dagster"), tmp / "dagster_home") as instance:
                    return compute_into(pg.url("stat"), queue_log, out_dir, config, until,
                                        instance=instance,
                                        keep_unknown_agents=keep_unknown_agents, fmt=fmt,
                                        timezone=timezone)
            finally:
                dispose_engines()
