"""The pipeline's Dagster definitions, built by ``build_definitions``: the code location
(``definitions.py``, which builds them from the environment as described there) and our
commands that build their own (``compute``) import this module. It builds nothing when
imported: ``compute`` would otherwise build the deployment's definitions for nothing
(~15-40 ms, and the environment's source looked at)."""
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
from stat_pipeline.retention import raw_retention_job, retention_schedule
from stat_pipeline.sources import (CsvQueueLogSource, PostgresQueueLogSource, QueueLogSource,
                                   file_source)
from stat_pipeline.sources.config import SourceSet, read_sources_file
from stat_pipeline.sources.wazo_config import schema_of

# BackfillPolicy.single_run() is "beta" in 1.13; it is what makes a range one run, and we
# pin Dagster, so the warning would only repeat itself in every run's log.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

HOURLY_ASSETS = ["queue_log", "classified_calls", "stat_call_on_queue", "stat_queue_periodic",
                 "stat_agent_periodic"]
DIMENSION_ASSETS = ["stat_queue", "stat_agent"]
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


def wazo_config_from_env(source: QueueLogSource) -> WazoConfig:
    """The configuration's origins from the environment (precedence in WazoConfig.origin)."""
    env = os.environ
    database = isinstance(source, PostgresQueueLogSource) and bool(env.get("STAT_SOURCE_URL"))
    return WazoConfig(
        confd_json=env.get("STAT_CONFD_JSON") or None,
        confd_url=env.get("STAT_CONFD_URL") or None,
        confd_token=dg.EnvVar("STAT_CONFD_TOKEN") if env.get("STAT_CONFD_TOKEN") else None,
        confd_verify_certificate=env.get("STAT_CONFD_VERIFY_CERTIFICATE", "true"),
        database_url=dg.EnvVar("STAT_SOURCE_URL") if database else None,
        database_schema=schema_of(source.table) if database else None,
        wazo_tables=env.get("STAT_WAZO_TABLES", "auto"),
        master_tenant=env.get("STAT_MASTER_TENANT") or None,
        keep_unknown_agents=env.get("STAT_KEEP_UNKNOWN_AGENTS") == "1")


def build_definitions(*, partitions: Optional[dg.PartitionsDefinition] = None,
                      source: Optional[QueueLogSource] = None,
                      warehouse: Optional[Warehouse] = None,
                      wazo_config: Optional[WazoConfig] = None,
                      sources_file: Optional[str] = None) -> dg.Definitions:
    """``sources_file`` (else STAT_SOURCES_FILE when no ``source`` is given): several PBXs;
    it is validated now (a bad file fails the code location's load in one line) and re-read
    by every run and tick. Its sources' names are fixed at load: adding a PBX is an edit of
    the file and a reload of the code location (its new sensors appear)."""
    if isinstance(source, SourceSet):
        sources_file = source.sources_file
    # the deployment's own configuration (not a test's or a command's source)
    from_environment = source is None
    if sources_file is None and source is None:
        sources_file = os.environ.get("STAT_SOURCES_FILE") or None
    source_names = None
    if sources_file:
        source_names = [spec.name for spec in read_sources_file(sources_file)]
        source = SourceSet(sources_file=sources_file,
                           until=source.until if source is not None else None)
        wazo_config = wazo_config or WazoConfig()  # unused: each source has its own
    # (with a sources file: the earliest day of its Wazo sources, partitions.py)
    partitions = partitions or hourly_partitions(
        start=partitions_start_from_env() if from_environment else None)
    assets = [*queue_log_assets(partitions), *call_assets(partitions),
              *queue_stats_assets(partitions), *agent_assets(partitions), *dimension_assets()]
    # The checks are left out of the job's selection, not out of its runs: they are still
    # evaluated and recorded (run_metadata.check_outcomes), but not planned, so a range run
    # leaves no never-resolved per-hour PLANNED check rows behind.
    hourly_job = dg.define_asset_job(
        HOURLY_JOB, selection=dg.AssetSelection.assets(*HOURLY_ASSETS).without_checks(),
        description="Copy, classify and aggregate the selected hours (a range is one run).")
    dimensions_job = dg.define_asset_job(
        DIMENSIONS_JOB, selection=dg.AssetSelection.assets(*DIMENSION_ASSETS),
        description="Re-read the Wazo config (confd.json, wazo-confd or Wazo's tables) into "
                    "stat_queue / stat_agent.")
    sensors, schedules = automation(HOURLY_JOB, partitions, source_names)
    # Deleted queues and agents, tenant moves: nothing in queue_log says so, the schedule
    # does. (New names are caught at once: an hourly run re-reads a live config first.)
    schedules = [*schedules, dg.ScheduleDefinition(
        name="dimensions_refresh", job=dimensions_job,
        cron_schedule=os.environ.get("STAT_DIMENSIONS_CRON", "*/15 * * * *"),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Re-read the Wazo config into stat_queue / stat_agent; their "
                    "materializations show what changed (new, renamed, deleted, moved).")]
    # Raw-row retention and next month's partitions (retention.py, issue 17).
    schedules = [*schedules, retention_schedule()]
    source = source or source_from_env()
    return dg.Definitions(
        assets=assets,
        jobs=[hourly_job, dimensions_job, raw_retention_job],
        sensors=sensors,
        schedules=schedules,
        resources={
            "warehouse": warehouse or Warehouse(url=dg.EnvVar("STAT_WAREHOUSE_URL")),
            "source": source,
            "wazo_config": wazo_config or wazo_config_from_env(source),
        },
        # Steps are SQL statements: a subprocess per step would cost more than the work.
        executor=dg.in_process_executor,
    )


# Run config for in-process runs started by our commands: warnings and errors only.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
