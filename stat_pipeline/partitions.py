"""Hourly partitions by event time, UTC."""
from __future__ import annotations

import datetime as dt
import os
from typing import Optional

import dagster as dg

DEFAULT_START = "2024-01-01-00:00"
KEY_FORMAT = "%Y-%m-%d-%H:%M"


def hourly_partitions(start: Optional[dt.datetime] = None,
                      end: Optional[dt.datetime] = None) -> dg.HourlyPartitionsDefinition:
    """Partitions from ``start`` (default STAT_PARTITIONS_START or 2024-01-01) up to the last
    complete hour, or up to ``end`` (exclusive) for a computation over a fixed period."""
    start_key = start.strftime(KEY_FORMAT) if start else os.environ.get(
        "STAT_PARTITIONS_START", DEFAULT_START)
    return dg.HourlyPartitionsDefinition(
        start_date=start_key,
        end_date=end.strftime(KEY_FORMAT) if end else None,
        timezone="UTC",
    )


def hour_floor(t: dt.datetime) -> dt.datetime:
    t = t.astimezone(dt.timezone.utc)
    return t.replace(minute=0, second=0, microsecond=0)


def partition_key(t: dt.datetime) -> str:
    return hour_floor(t).strftime(KEY_FORMAT)
