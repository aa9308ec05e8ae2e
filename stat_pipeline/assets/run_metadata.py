"""Materialization metadata that stays true when one run covers many hours.

Dagster attaches a step's metadata to every partition the step materialized. For a one-hour
run the figures are that hour's, under their plain names (what the UI plots per partition).
For a range run (sensor, backfill) they are the run's totals and get a ``run_`` prefix, so
they never pose as one hour's figures; each hour of a range of at most
``MAX_OBSERVED_HOURS`` also gets an observation with its own figures under the plain names,
which the UI's per-partition plots pick up. Larger backfills skip those (one event per hour
per asset would cost more than the SQL).
"""
import datetime as dt
from typing import Callable

import dagster as dg
from sqlalchemy import Connection

from stat_pipeline.assets.policies import WAREHOUSE_POOL  # noqa: F401  (re-exported)
MAX_OBSERVED_HOURS = 48
HOUR = dt.timedelta(hours=1)

Figures = Callable[[Connection, dt.datetime, dt.datetime], dict]


def report(context: dg.AssetExecutionContext, conn: Connection, figures: Figures) -> dict:
    """Metadata for the materialization; per-hour observations for short range runs."""
    start, end = context.partition_time_window
    keys = context.partition_keys
    totals = figures(conn, start, end)
    if len(keys) <= 1:
        return totals
    if len(keys) <= MAX_OBSERVED_HOURS:
        for i, key in enumerate(keys):
            hour = start + i * HOUR
            context.log_event(dg.AssetObservation(
                asset_key=context.asset_key, partition=key, metadata=figures(conn, hour, hour + HOUR)))
    return hour_or_run(context, totals)


def hour_or_run(context: dg.AssetExecutionContext, metadata: dict) -> dict:
    """The figures as they are for a one-hour run, ``run_``-prefixed totals for a range."""
    keys = context.partition_keys
    if len(keys) <= 1:
        return metadata
    out = {("run_rows" if k == "dagster/row_count" else "run_" + k): v for k, v in metadata.items()}
    out["run_hours"] = len(keys)
    out["run_partition_range"] = f"{keys[0]} … {keys[-1]}"
    return out
