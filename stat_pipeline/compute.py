"""``stat-pipeline compute``: statistics of one queue_log file, through the same Dagster
definitions as the live pipeline, in a fresh embedded warehouse."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import dagster as dg
from sqlalchemy import text

from stat_pipeline.pipeline import (DIMENSION_ASSETS, HOURLY_ASSETS, HOURLY_JOB, QUIET,
                                    build_definitions)
from stat_pipeline.export import export_tables
from stat_pipeline.instance import bulk_instance, raise_for_failure, run_job
from stat_pipeline.automation import LOOKAHEAD_HOURS, chunk_ranges, hour_ranges
from stat_pipeline.partitions import KEY_FORMAT, hourly_partitions
from stat_pipeline.resources import Warehouse, WazoConfig, dispose_engines, warehouse_engine
from stat_pipeline.sources import QueueLogSource, file_source, read_conservation
from stat_pipeline.sql import query
from stat_pipeline.time_window import TimeWindow, time_window_from_env
from stat_pipeline.compute_server import INSTANCE_DB, WAREHOUSE_DB, compute_server
from stat_pipeline.warehouse.embedded import EmbeddedPostgres
from stat_pipeline.warehouse.writes import lock_warehouse

HOUR = dt.timedelta(hours=1)
# compute's first run: the dimensions job's assets and the hourly job's, in one run
COMPUTE_FIRST_JOB = "compute_dimensions_and_hours"
_COMPUTE_JOBS = dg.Definitions(jobs=[dg.define_asset_job(
    COMPUTE_FIRST_JOB,
    selection=dg.AssetSelection.assets(*HOURLY_ASSETS, *DIMENSION_ASSETS).without_checks(),
    description="stat-pipeline compute: the config into stat_queue / stat_agent, then the "
                "selected hours (a range is one run).")])
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
    runs: int = 0
    files: dict[str, int] = field(default_factory=dict)
    rejects: dict[str, int] = field(default_factory=dict)
    # conservation of the file's rows: rows_read = rows_copied + sum(kept_aside.values())
    rows_read: int = 0
    rows_copied: int = 0
    kept_aside: dict[str, int] = field(default_factory=dict)

    def conservation_line(self) -> str:
        kept = sum(self.kept_aside.values())
        by_reason = ", ".join(f"{n} {reason}" for reason, n in self.kept_aside.items())
        return (f"{self.rows_read} rows read = {self.rows_copied} copied + {kept} kept aside"
                + (f" ({by_reason})" if by_reason else "")
                + ("" if self.rows_read == self.rows_copied + kept else " -- DO NOT ADD UP"))


# A cluster longer than this (a login left open for years) is computed in overlapping chunks:
# the 1-year benchmark set (8,767 hours) is one run at ~280 MB; longer spans are split
# instead of growing Dagster's per-run memory.
COMPUTE_CHUNK_HOURS = 9_000


def _nothing_to_compute(queue_log: Path, counts, window: TimeWindow,
                        until: Optional[dt.datetime]) -> str:
    """One line: why a file gives no hour to compute."""
    if counts.n == 0:
        return f"{queue_log}: no queue_log row in the file, nothing to compute"
    parts = [f"{counts.n} row(s) read"]
    if counts.no_time:
        parts.append(f"{counts.no_time} without a usable time"
                     + (f" (e.g. {counts.no_time_reason})" if counts.no_time_reason else ""))
    if counts.implausible:
        parts.append(f"{counts.implausible} outside the plausible window "
                     f"{window.earliest:%Y-%m-%d} .. now + {window.max_future} "
                     "(STAT_EARLIEST_EVENT_TIME, STAT_MAX_FUTURE_HOURS)")
    rest = counts.n - counts.no_time - counts.implausible
    if rest and until:
        parts.append(f"{rest} after --until {until.isoformat()}")
    return f"{queue_log}: no row with a usable time, nothing to compute: " + ", ".join(parts)


def parse_instant(value: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(value)
    if t.tzinfo is None:
        raise ValueError(f"--until {value!r} needs an explicit UTC offset, e.g. +00:00")
    return t


def _months_from(conn, first_hour: dt.datetime) -> list[str]:
    """The month tables of the empty range-partitioned tables (migration 0018) start at
    ``first_hour``'s month. A fresh warehouse has this month's and the next one's, and the
    months are contiguous from ``<table>_before`` to ``<table>_after``: a file of May 2015
    made the first write create every month from then to now (278 tables with their
    indexes, ~2 s, and 140 partitions for every later statement to plan over). A table
    that holds any row is left as it is; so is queue_log_rejects (a DEFAULT partition: its
    months need not be contiguous). Returns the tables re-based."""
    lock_warehouse(conn)
    month = first_hour.astimezone(dt.timezone.utc).replace(day=1, hour=0, minute=0, second=0,
                                                           microsecond=0)
    quote = conn.dialect.identifier_preparer.quote
    rebased = []
    for (table,) in conn.execute(_q("contiguous_tables")).all():
        if conn.execute(_q("month_span"), {"table": table, "month": month}).scalar_one() \
                or conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {quote(table)})")).scalar_one():
            continue
        for (part,) in conn.execute(_q("month_tables"), {"table": table}).all():
            conn.execute(text(f"DROP TABLE {quote(part)}"))  # empty: the table is
        for catch_all, lo, hi in (("_before", None, month), ("_after", month, None)):
            conn.execute(text(f"ALTER TABLE {quote(table)} DETACH PARTITION "
                              f"{quote(table + catch_all)}"))
            conn.execute(text("SELECT stat_attach_catch_all(:t, :c, :lo, :hi)"),
                         {"t": table, "c": table + catch_all, "lo": lo, "hi": hi})
        rebased.append(table)
    if rebased:  # the month itself, so that the tables are tiled as every writer expects
        conn.execute(text("SELECT stat_prepare_hours(:start, :end)"),
                     {"start": month, "end": month + HOUR})
    return rebased


def compute_into(warehouse_url: str, queue_log: Path, out_dir: Path,
                 config: Optional[Path] = None, until: Optional[dt.datetime] = None,
                 instance: Optional[dg.DagsterInstance] = None,
                 keep_unknown_agents: bool = False, fmt: str = "auto",
                 timezone: str = "UTC",
                 wazo_config: Optional[WazoConfig] = None) -> ComputeResult:
    """Materialize every hour of ``queue_log`` that starts before ``until`` (default: after
    the last row) into the warehouse at ``warehouse_url``, then export the tables.
    ``wazo_config`` (another origin of the queues and agents) replaces ``config``."""
    source = file_source(str(queue_log), fmt, until.isoformat() if until else None, timezone)
    warehouse = Warehouse(url=warehouse_url)
    wazo_config = wazo_config or WazoConfig(confd_json=str(config) if config else None,
                                            keep_unknown_agents=keep_unknown_agents)
    wazo_config.document()  # a bad config fails here, in one line, before any work
    engine = warehouse_engine(warehouse_url)
    window = time_window_from_env()
    earliest, latest = window.bounds()
    plan = {"earliest": earliest, "latest": latest, "until": until,
            "lookahead": f"{LOOKAHEAD_HOURS} hours"}
    with engine.begin() as conn:
        source.stage(conn, *ALL_TIME)
        conn.execute(_q("keep_staged"))
        hours = [h.astimezone(dt.timezone.utc) for (h,) in conn.execute(_q("plan_hours"), plan)]
        counts = conn.execute(_q("counts"), plan).one()
    if not hours:
        with engine.begin() as conn:
            conn.execute(_q("drop_staged"))
        raise ValueError(_nothing_to_compute(queue_log, counts, window, until))
    with engine.begin() as conn:
        _months_from(conn, hours[0])
    staged = StagedRows(name=source.source_name(), until=source.until)
    result = ComputeResult()
    instance = instance or dg.DagsterInstance.ephemeral()
    lookahead = dt.timedelta(hours=LOOKAHEAD_HOURS)
    # one run per cluster of hours less than the look-ahead apart (copy before classify
    # holds inside each; clusters further apart do not read each other's rows), a very
    # long cluster in overlapping chunks (automation.chunk_ranges)
    runs = [chunk for first, last in hour_ranges(hours, lookahead)
            for chunk in chunk_ranges(first, last, {}, lookahead, max_hours=COMPUTE_CHUNK_HOURS,
                                      max_rows=1 << 62)]
    defs = dg.Definitions.merge(build_definitions(
        partitions=hourly_partitions(start=runs[0][0].replace(hour=0), end=runs[-1][1] + HOUR),
        source=staged, warehouse=warehouse, wazo_config=wazo_config), _COMPUTE_JOBS)
    done: set[dt.datetime] = set()
    for k, (first, last) in enumerate(runs):
        # the first run syncs the config into stat_queue/stat_agent too (one run less: a
        # run's own cost is ~0.3 s); their assets are upstream of the hourly ones that read
        # them, so the run writes them first
        run = run_job(defs.resolve_job_def(COMPUTE_FIRST_JOB if k == 0 else HOURLY_JOB),
                      instance, QUIET, {
            "dagster/asset_partition_range_start": first.strftime(KEY_FORMAT),
            "dagster/asset_partition_range_end": last.strftime(KEY_FORMAT)})
        raise_for_failure(run, instance)
        done.update(first + k * HOUR for k in range(int((last - first) / HOUR) + 1))
    result.first_hour = runs[0][0]
    result.hours = len(done)
    result.runs = len(runs)
    with engine.begin() as conn:
        result.rows_read = conn.exec_driver_sql("SELECT count(*) FROM compute_staged_rows").scalar()
        conn.execute(_q("drop_staged"))
    result.files = export_tables(engine, out_dir)
    with engine.connect() as conn:
        result.rejects = {row.disposition: row.n for row in conn.exec_driver_sql(
            "SELECT disposition, count(*) AS n FROM queue_log_rejects GROUP BY 1")}
        result.rows_copied, result.kept_aside = read_conservation(conn, source.source_name())
    return result


def compute(queue_log: Path, out_dir: Path, config: Optional[Path] = None,
            until: Optional[dt.datetime] = None, keep_unknown_agents: bool = False,
            fmt: str = "auto", timezone: str = "UTC",
            server: Optional[tuple[Path, EmbeddedPostgres]] = None) -> ComputeResult:
    """The one-shot command: its own embedded PostgreSQL, holding the warehouse and the
    Dagster instance of the run (instance.py: bulk bookkeeping). ``server``: one that
    compute_server() launched already (the command line does, before importing Dagster);
    otherwise one is started and stopped here."""
    if server is None:
        with compute_server() as launched:
            return compute(queue_log, out_dir, config, until, keep_unknown_agents, fmt,
                           timezone, server=launched)
    tmp, pg = server
    pg.wait_ready()
    if pg.template is None:  # both are in the template's copy
        pg.create_database(WAREHOUSE_DB)
        pg.create_database(INSTANCE_DB)
    try:
        # a copy of the template holds Dagster's storage tables already (compute_server.py)
        with bulk_instance(pg.url(INSTANCE_DB), tmp / "dagster_home",
                           schema_made=pg.template is not None) as instance:
            return compute_into(pg.url(WAREHOUSE_DB), queue_log, out_dir, config, until,
                                instance=instance, keep_unknown_agents=keep_unknown_agents,
                                fmt=fmt, timezone=timezone)
    finally:
        dispose_engines()
