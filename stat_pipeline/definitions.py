"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here
(built by ``stat_pipeline.pipeline.build_definitions``, which the names below re-export).

Configuration comes from the environment (never from files in the repo):
  STAT_SOURCES_FILE      several PBXs, one warehouse: a YAML list of sources (README "Several
                         PBXs, one warehouse", examples/sources.yml; sources/config.py). The
                         STAT_SOURCE_* / STAT_CONFD_* variables below are then unused: they
                         are the one-source shorthand
  STAT_WAREHOUSE_URL     our PostgreSQL (SQLAlchemy URL) — the demo command sets it
  STAT_SOURCE_URL        Wazo's asterisk database, read-only account (a secret: EnvVar)
  STAT_SOURCE_FILE       or a queue_log file instead of a database: Asterisk's flat file (a
                         glob follows rotations), a CSV export or a MySQL dump
  STAT_SOURCE_FORMAT     its format if not recognised from its first lines: asterisk|csv|mysql
  STAT_SOURCE_CSV        (older name) a queue_log CSV file
  STAT_SOURCE_TIMEZONE   IANA zone of a naive/text time column at the source (default UTC)
  STAT_CONFD_JSON        optional confd.json (queues, agents, contexts); wins over the next two
  STAT_CONFD_URL         or wazo-confd's base URL (https://wazo/api/confd), with
  STAT_CONFD_TOKEN       a wazo-auth token (a secret: EnvVar); STAT_CONFD_VERIFY_CERTIFICATE
                         true|false|CA bundle
                         else Wazo's tables (queuefeatures, agentfeatures, context, tenant) in
                         the STAT_SOURCE_URL database when it has them (STAT_WAZO_TABLES
                         auto|require|off)
  STAT_MASTER_TENANT     master tenant uuid when confd / the database cannot tell it
  STAT_DIMENSIONS_CRON   when the schedule re-reads the config (default every 15 minutes)
  STAT_KEEP_UNKNOWN_AGENTS  "1": keep statistics of agents unknown to the config
  STAT_PARTITIONS_START  first hourly partition; unset: the day of the source's earliest
                         plausible row (else the warehouse's earliest hour, else 2024-01-01)
"""
from __future__ import annotations

from stat_pipeline.pipeline import (  # noqa: F401 - the names our commands and tests import
    DIMENSION_ASSETS, DIMENSIONS_JOB, HOURLY_ASSETS, HOURLY_JOB, QUIET, build_definitions,
    source_from_env, wazo_config_from_env)

defs = build_definitions()
