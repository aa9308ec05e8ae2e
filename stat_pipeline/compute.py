"""``stat-pipeline compute``: statistics of one queue_log file, through the same Dagster
definitions as the live pipeline, in a fresh embedded warehouse."""
from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import dagster as dg

from stat_pipeline.definitions import DIMENSIONS_JOB, HOURLY_JOB, QUIET, build_definitions
from stat_pipeline.export import export_tables
from stat_pipeline.instance import bulk_instance
from stat_pipeline.partitions import KEY_FORMAT, hour_floor, hourly_partitions
from stat_pipeline.resources import Warehouse, WazoConfig, dispose_engines, warehouse_engine
from stat_pipeline.sources import file_source
from stat_pipeline.warehouse.embedded import EmbeddedPostgres

HOUR = dt.timedelta(hours=1)


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
        bounds = source.time_bounds(conn)
    result = ComputeResult()
    instance = instance or dg.DagsterInstance.ephemeral()
    if bounds is not None:
        first = hour_floor(bounds[0])
        # hours that start before --until; without it, up to the hour of the last row
        end = hour_floor(until - dt.timedelta(microseconds=1)) + HOUR if until \
            else hour_floor(bounds[1]) + HOUR
        if end > first:
            defs = build_definitions(
                partitions=hourly_partitions(start=first.replace(hour=0), end=end),
                source=source, warehouse=warehouse, wazo_config=wazo_config)
            dims = defs.resolve_job_def(DIMENSIONS_JOB).execute_in_process(instance=instance, run_config=QUIET)
            assert dims.success
            run = defs.resolve_job_def(HOURLY_JOB).execute_in_process(
                instance=instance, run_config=QUIET,
                tags={"dagster/asset_partition_range_start": first.strftime(KEY_FORMAT),
                      "dagster/asset_partition_range_end": (end - HOUR).strftime(KEY_FORMAT)})
            assert run.success
            result.first_hour = first
            result.hours = int((end - first) / HOUR)
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
    with tempfile.TemporaryDirectory(prefix="stat-compute-") as tmp:
        with EmbeddedPostgres(Path(tmp) / "pg", fast=True) as pg:
            pg.create_database("stat")
            pg.create_database("dagster")
            try:
                with bulk_instance(pg.url("dagster"), Path(tmp) / "dagster_home") as instance:
                    return compute_into(pg.url("stat"), queue_log, out_dir, config, until,
                                        instance=instance,
                                        keep_unknown_agents=keep_unknown_agents, fmt=fmt,
                                        timezone=timezone)
            finally:
                dispose_engines()
