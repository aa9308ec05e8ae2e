"""Hourly partitions by event time, UTC.

The first partition: ``STAT_PARTITIONS_START`` if set; else the day of the source's earliest
plausible row (``first_partition_from_source``, read when the definitions load; with a
sources file, the earliest of its Wazo sources'), so that a
first start neither plans hours years before the data nor misses history before 2024; else,
when the source cannot be read at load (down, a file), the earliest hour the warehouse's
ledger holds, and 2024-01-01 for a new warehouse.
"""
from __future__ import annotations

import datetime as dt
import logging
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


# The earliest row is searched among the first rows by id (ids grow with arrival; the
# primary key index reads them in order): bounded work at every code-location load, on a
# table of any size. A row dated earlier but stored later is reported by the sensor as
# "rows_before_partitions".
FIRST_ROWS_SCANNED = 100_000
_log = logging.getLogger(__name__)


def _read_only_engine(url: str, timezone: str = "UTC"):
    from sqlalchemy import NullPool, create_engine

    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]
    # a few seconds at most: the code location must load even with the source down
    return create_engine(url, poolclass=NullPool, connect_args={
        "connect_timeout": 5,
        "options": f"-c default_transaction_read_only=on -c timezone={timezone} "
                   "-c statement_timeout=20000"})


def first_partition_from_source(url: str, table: str, timezone: str = "UTC",
                                now: Optional[dt.datetime] = None) -> Optional[dt.datetime]:
    """The UTC day of the earliest plausible row (time_window.py) among the first rows of
    the source table; None when there is none or the source cannot be read."""
    from stat_pipeline.time_window import time_window_from_env
    from stat_pipeline.touched_hours import safe_time

    earliest, latest = time_window_from_env().bounds(now)
    time_of = safe_time('s."time"')
    engine = _read_only_engine(url, timezone)
    try:
        with engine.connect() as conn:
            cursor = conn.connection.dbapi_connection.cursor()
            cursor.execute(
                f"SELECT min(t) FROM (SELECT {time_of} AS t FROM {table} s "
                f"ORDER BY id LIMIT {FIRST_ROWS_SCANNED}) x WHERE t >= %(e)s AND t < %(l)s",
                {"e": earliest, "l": latest})
            (first,) = cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure: fall back, in one line
        _log.warning("partitions: source %s not readable at load (%s); falling back", table,
                     str(getattr(exc, "orig", exc)).strip().splitlines()[0])
        return None
    finally:
        engine.dispose()
    if first is None:
        return None
    return hour_floor(first).replace(hour=0)


def first_partition_from_ledger(url: str) -> Optional[dt.datetime]:
    """The earliest hour the warehouse has written (partition_writes), as a fallback."""
    engine = _read_only_engine(url)
    try:
        with engine.connect() as conn:
            first = conn.exec_driver_sql("SELECT min(hour) FROM partition_writes").scalar()
    except Exception:  # noqa: BLE001 - a new or unreachable warehouse: no answer
        return None
    finally:
        engine.dispose()
    return hour_floor(first).replace(hour=0) if first else None


def partitions_start_from_env() -> Optional[dt.datetime]:
    """The first partition when STAT_PARTITIONS_START is unset (None: it is set, or nothing
    is known, and hourly_partitions falls back to its default)."""
    if os.environ.get("STAT_PARTITIONS_START"):
        return None
    starts = [first_partition_from_source(url, table, timezone)
              for url, table, timezone in _source_tables_from_env()]
    start = min((s for s in starts if s is not None), default=None)
    if start is None and os.environ.get("STAT_WAREHOUSE_URL"):
        start = first_partition_from_ledger(os.environ["STAT_WAREHOUSE_URL"])
    return start


def _source_tables_from_env() -> list[tuple[str, str, str]]:
    """(url, table, time zone) of each database source: the sources file's Wazo sources
    whose URL variable is set (the earliest row of all of them starts the partitions: a PBX
    with an older history than the others must not lose its first days), else the one-source
    STAT_SOURCE_URL. A file source is not read at load (the warehouse's ledger answers)."""
    if os.environ.get("STAT_SOURCES_FILE"):
        from stat_pipeline.sources.config import read_sources_file

        databases = [(spec.url if isinstance(spec.url, str) else os.environ.get(spec.url.env),
                      spec.table, spec.timezone)
                     for spec in read_sources_file(os.environ["STAT_SOURCES_FILE"])
                     if spec.kind == "wazo" and spec.url is not None]
        return [database for database in databases if database[0]]
    if os.environ.get("STAT_SOURCE_URL"):
        return [(os.environ["STAT_SOURCE_URL"], os.environ.get("STAT_SOURCE_TABLE", "queue_log"),
                 os.environ.get("STAT_SOURCE_TIMEZONE", "UTC"))]
    return []


def hour_floor(t: dt.datetime) -> dt.datetime:
    t = t.astimezone(dt.timezone.utc)
    return t.replace(minute=0, second=0, microsecond=0)


def partition_key(t: dt.datetime) -> str:
    return hour_floor(t).strftime(KEY_FORMAT)
