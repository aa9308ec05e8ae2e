"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here.

Configuration comes from the environment (never from files in the repo):
  STAT_WAREHOUSE_URL     our PostgreSQL (SQLAlchemy URL) — the demo command sets it
  STAT_SOURCE_URL        Wazo's asterisk database, read-only account (a secret: EnvVar)
  STAT_SOURCE_FILE       or a queue_log file instead of a database: Asterisk's flat file (a
                         glob follows rotations), a CSV export or a MySQL dump
  STAT_SOURCE_FORMAT     its format if not recognised from its first lines: asterisk|csv|mysql
  STAT_SOURCE_CSV        (older name) a queue_log CSV file
  STAT_SOURCE_TIMEZONE   IANA zone of a naive/text time column at the source (default UTC)
  STAT_CONFD_JSON        optional confd.json (queues, agents, contexts)
  STAT_KEEP_UNKNOWN_AGENTS  "1": keep statistics of agents unknown to the config
  STAT_PARTITIONS_START  first hourly partition; unset: the day of the source's earliest
                         plausible row (else the warehouse's earliest hour, else 2024-01-01)
"""
from __future__ import annotations

import os
import warnings
from typing import Optional

import dagster as dg

from stat_pipeline.assets.agents import agent_assets
from stat_pipeline.assets.calls import call_assets
from stat_pipeline.automation import automation
from stat_pipeline.assets.dimensions import dimension_assets
from stat_pipeline.assets.queue_log import queue_log_assets
from stat_pipeline.assets.queue_stats import queue_stats_assets
from stat_pipeline.partitions import hourly_partitions, partitions_start_from_env
from stat_pipeline.resources import Warehouse, WazoConfig
from stat_pipeline.sources import (CsvQueueLogSource, PostgresQueueLogSource, QueueLogSource,
                                   file_source)

# BackfillPolicy.single_run() is "beta" in 1.13; it is what makes a range one run, and we
# pin Dagster, so the warning would only repeat itself in every run's log.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

HOURLY_ASSETS = ["queue_log", "classified_calls", "stat_call_on_queue", "stat_queue_periodic",
                 "stat_agent_periodic"]
HOURLY_JOB = "hourly_queue_stats"
DIMENSIONS_JOB = "sync_dimensions"


def source_from_env() -> QueueLogSource:
    timezone = os.environ.get("STAT_SOURCE_TIMEZONE", "UTC")
    if not os.environ.get("STAT_SOURCE_URL") and os.environ.get("STAT_SOURCE_FILE"):
        return file_source(os.environ["STAT_SOURCE_FILE"],
                           os.environ.get("STAT_SOURCE_FORMAT", "auto"), timezone=timezone)
    if not os.environ.get("STAT_SOURCE_URL") and os.environ.get("STAT_SOURCE_CSV"):
        return CsvQueueLogSource(path=os.environ["STAT_SOURCE_CSV"], timezone=timezone)
    table = os.environ.get("STAT_SOURCE_TABLE", "queue_log")
    return PostgresQueueLogSource(url=dg.EnvVar("STAT_SOURCE_URL"), table=table,
                                  timezone=timezone)


def build_definitions(*, partitions: Optional[dg.PartitionsDefinition] = None,
                      source: Optional[QueueLogSource] = None,
                      warehouse: Optional[Warehouse] = None,
                      wazo_config: Optional[WazoConfig] = None) -> dg.Definitions:
    partitions = partitions or hourly_partitions(
        start=partitions_start_from_env() if source is None else None)
    assets = [*queue_log_assets(partitions), *call_assets(partitions),
              *queue_stats_assets(partitions), *agent_assets(partitions), *dimension_assets()]
    # The checks are left out of the job's selection, not out of its runs: they are still
    # evaluated and recorded (run_metadata.check_outcomes), but not planned, so a range run
    # leaves no never-resolved per-hour PLANNED check rows behind.
    hourly_job = dg.define_asset_job(
        HOURLY_JOB, selection=dg.AssetSelection.assets(*HOURLY_ASSETS).without_checks(),
        description="Copy, classify and aggregate the selected hours (a range is one run).")
    dimensions_job = dg.define_asset_job(
        DIMENSIONS_JOB, selection=dg.AssetSelection.assets("stat_queue", "stat_agent"),
        description="Re-read the confd config into stat_queue / stat_agent.")
    sensors, schedules = automation(HOURLY_JOB, partitions)
    return dg.Definitions(
        assets=assets,
        jobs=[hourly_job, dimensions_job],
        sensors=sensors,
        schedules=schedules,
        resources={
            "warehouse": warehouse or Warehouse(url=dg.EnvVar("STAT_WAREHOUSE_URL")),
            "source": source or source_from_env(),
            "wazo_config": wazo_config or WazoConfig(
                confd_json=os.environ.get("STAT_CONFD_JSON") or None,
                keep_unknown_agents=os.environ.get("STAT_KEEP_UNKNOWN_AGENTS") == "1"),
        },
        # Steps are SQL statements: a subprocess per step would cost more than the work.
        executor=dg.in_process_executor,
    )


defs = build_definitions()

# Run config for in-process runs started by our commands: warnings and errors only.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
