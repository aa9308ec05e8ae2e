"""Retention of the raw rows: months of queue_log, classified_calls and queue_log_rejects older
than ``STAT_RETENTION_RAW_MONTHS`` are dropped, while the statistics (stat_* tables) stay.

The three tables are partitioned by UTC month (migration 0018): a month past the retention is
dropped as whole tables, in one short transaction under the warehouse's write lock, instead of
deleted row by row. ``N`` months keep the current month and the N months before it; unset or
0 keeps every month (the default: nothing is ever dropped unless asked).

What re-materializing a dropped month would do, and why it is refused: its statistics are
computed from its classified calls, which are computed from its queue_log rows; with the rows
gone, a re-run would replace the kept statistics by empty ones (and the source may no longer
hold those rows either). So each dropped month is recorded in ``raw_months_dropped``, and
every hourly write of one of its hours fails first, in one line that says so and how to redo
the month on purpose (stat_prepare_hours in migration 0018, called by writes.partition_write).
The hours keep their last materialization in Dagster and their row in partition_writes, so
the self-healing sensor does not take them for stale.

It runs as the job ``raw_retention`` (schedule ``raw_retention_daily``, on when the variable is
set), which also creates the coming month's partitions ahead of the first write into it.
"""

import datetime as dt
import os
from collections.abc import Mapping
from typing import Optional

import dagster as dg
from sqlalchemy import Connection, text

from stat_pipeline.assets.policies import WAREHOUSE_POOL
from stat_pipeline.resources import Warehouse
from stat_pipeline.warehouse.writes import lock_warehouse

RETENTION_VARIABLE = "STAT_RETENTION_RAW_MONTHS"
RETENTION_JOB = "raw_retention"
# Once a day, at a quiet time; the job is idempotent, so a missed day is caught up the next.
RETENTION_CRON = "30 3 * * *"


class RetentionConfigError(ValueError):
    """A retention setting that cannot be used; the message is one line."""


def retention_months(env: Mapping[str, str] = os.environ) -> Optional[int]:
    """The number of past months to keep, or None to keep every month."""
    raw = (env.get(RETENTION_VARIABLE) or "").strip()
    if raw in ("", "0"):
        return None
    if not raw.isdigit():
        raise RetentionConfigError(f"{RETENTION_VARIABLE} must be a whole number of months "
                                   f"(0 or unset keeps every month), not {raw!r}")
    return int(raw)


def month_start(moment: dt.datetime) -> dt.datetime:
    moment = moment.astimezone(dt.timezone.utc)
    return dt.datetime(moment.year, moment.month, 1, tzinfo=dt.timezone.utc)


def add_months(month: dt.datetime, months: int) -> dt.datetime:
    index = month.year * 12 + month.month - 1 + months
    return month.replace(year=index // 12, month=index % 12 + 1)


def retention_cutoff(months: int, now: dt.datetime) -> dt.datetime:
    """The first instant kept: the start of the UTC month ``months`` months before now's."""
    return add_months(month_start(now), -months)


def monthly_partitions(conn: Connection) -> list[tuple[str, str, dt.date]]:
    """(table, partition, first day of its month) of every monthly partition."""
    rows = conn.execute(text("""
        SELECT p.table_name, c.relname,
               to_date(substring(c.relname FROM '_p([0-9]{4}_[0-9]{2})$'), 'YYYY_MM')
        FROM partitioned_tables p
        JOIN pg_inherits i ON i.inhparent = to_regclass(p.table_name)
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE c.relname ~ '_p[0-9]{4}_[0-9]{2}$'
        ORDER BY 3, 1""")).all()
    return [(table, part, month) for table, part, month in rows]


def drop_raw_months(conn: Connection, months: int, now: dt.datetime) -> list[dt.date]:
    """Drop the raw months before the cutoff (in the caller's transaction); return them."""
    cutoff = retention_cutoff(months, now)
    lock_warehouse(conn)
    quote = conn.dialect.identifier_preparer.quote
    dropped: set[dt.date] = set()
    tables_dropped: set[str] = set()
    for table, part, month in monthly_partitions(conn):
        if month < cutoff.date():
            # a month is recorded as dropped if it held rows or had hours written (the months
            # are contiguous: many are empty tables that nothing ever wrote)
            if conn.execute(text(
                    f"SELECT EXISTS (SELECT 1 FROM {quote(part)}) OR EXISTS ("
                    "SELECT 1 FROM partition_writes WHERE hour >= CAST(:m AS timestamp) "
                    "AT TIME ZONE 'UTC' AND hour < (CAST(:m AS timestamp) + interval '1 month') "
                    "AT TIME ZONE 'UTC')"), {"m": month}).scalar():
                dropped.add(month)
            conn.execute(text(f"DROP TABLE {quote(part)}"))
            tables_dropped.add(table)
    for table, column in conn.execute(text(
            "SELECT table_name, key_column FROM partitioned_tables")).all():
        month_of = f"CAST(date_trunc('month', {quote(column)} AT TIME ZONE 'UTC') AS date)"
        default = conn.execute(text("SELECT to_regclass(:t)"), {"t": table + "_default"}).scalar()
        if default is not None:
            # rows the default partition holds for those months; rejects without an hour (no
            # usable time) are kept: they belong to no month
            dropped.update(conn.execute(text(
                f"DELETE FROM {quote(table + '_default')} WHERE {quote(column)} < :cutoff "
                f"RETURNING {month_of}"), {"cutoff": cutoff}).scalars().all())
        elif table in tables_dropped:
            # <table>_before now covers the dropped months too (the months stay contiguous,
            # from MINVALUE to MAXVALUE); its own rows before the cutoff go with them
            before = quote(table + "_before")
            conn.execute(text(f"ALTER TABLE {quote(table)} DETACH PARTITION {before}"))
            dropped.update(conn.execute(text(
                f"DELETE FROM {before} WHERE {quote(column)} < :cutoff RETURNING {month_of}"),
                {"cutoff": cutoff}).scalars().all())
            conn.execute(text(
                "SELECT stat_attach_catch_all(:t, :c, NULL, "
                "(SELECT first_month FROM stat_month_range(:t)))"),
                {"t": table, "c": table + "_before"})
    for month in sorted(dropped):
        conn.execute(text("""
            INSERT INTO raw_months_dropped (month, retention_months) VALUES (:month, :months)
            ON CONFLICT (month) DO NOTHING"""), {"month": month, "months": months})
    return sorted(dropped)


def create_months_ahead(conn: Connection, now: dt.datetime, ahead: int = 1) -> int:
    """The partitions of this month and the next ``ahead`` ones (under the write lock)."""
    lock_warehouse(conn)
    start = month_start(now)
    return conn.execute(text("SELECT stat_prepare_hours(:start, :end)"),
                        {"start": start, "end": add_months(start, ahead + 1)}).scalar_one()


@dg.op(pool=WAREHOUSE_POOL, description="Drop the raw months past STAT_RETENTION_RAW_MONTHS "
                                        "(statistics stay); create the coming month's tables.")
def drop_expired_raw_months(context: dg.OpExecutionContext, warehouse: Warehouse) -> None:
    months = retention_months()
    now = dt.datetime.now(dt.timezone.utc)
    with warehouse.engine().begin() as conn:
        created = create_months_ahead(conn, now)
    dropped: list[dt.date] = []
    if months is not None:
        with warehouse.engine().begin() as conn:
            dropped = drop_raw_months(conn, months, now)
    context.log.info(
        f"retention: {'every month kept' if months is None else f'{months} months kept'}; "
        f"dropped {', '.join(m.strftime('%Y-%m') for m in dropped) or 'nothing'}; "
        f"{created} partitions created ahead")


@dg.job(name=RETENTION_JOB, description="Raw-row retention and monthly partitions ahead "
                                        "(stat_pipeline/retention.py).")
def raw_retention_job() -> None:
    drop_expired_raw_months()


def retention_schedule(env: Mapping[str, str] = os.environ) -> dg.ScheduleDefinition:
    """Daily; running by default (it creates next month's partitions even with no retention)."""
    retention_months(env)  # a bad setting is one clear line at load time, not a failed run
    return dg.ScheduleDefinition(
        name="raw_retention_daily", job=raw_retention_job, cron_schedule=RETENTION_CRON,
        execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Drop raw months past {RETENTION_VARIABLE} (statistics stay); create "
                    "the coming month's partitions.")
