"""The sensor's question to the source: which hours do the rows after a cursor touch?
(touched_hours.sql). Kept apart from the sources because every watched source asks it: a
database table directly, a tailed flat file on its parsed lines in the warehouse.

The source may be an old PostgreSQL to which we may not add functions, with Wazo <= 20.13's
text ``time`` column holding '' (its default) or anything else. ``SAFE_TIME(x)`` is therefore
spelled out inline: a shape test (a regular expression with the ranges of each field) and a
calendar test (day 31 of a 30-day month) guard the CAST inside a CASE, whose branches
PostgreSQL evaluates in order; any other text reads as no time (NULL), which touches no hour.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Optional

import psycopg2.errors

from stat_pipeline.time_window import TimeWindow, time_window_from_env

_SQL = Path(__file__).with_name("touched_hours.sql").read_text()

# ISO date, optional time (seconds and fractions optional), optional UTC offset: what a
# PostgreSQL timestamp(tz) prints and what Asterisk's realtime drivers write.
_SHAPE = (r"^\s*[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
          r"([ T]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?)?"
          r"\s*([+-](0[0-9]|1[0-5])(:?[0-5][0-9])?|Z|UTC)?\s*$")


def safe_time(column: str) -> str:
    """SQL: ``column`` (timestamptz, timestamp or text) as timestamptz, NULL if unreadable."""
    t = f"btrim(CAST({column} AS text))"
    year, month, day = (f"CAST(substr({t}, {a}, {n}) AS integer)"
                        for a, n in ((1, 4), (6, 2), (9, 2)))
    return (f"(CASE WHEN CAST({column} AS text) IS NULL OR CAST({column} AS text) !~ '{_SHAPE}' "
            f"THEN NULL "
            # make_date(y, m, 1) cannot fail once the shape holds; + (day - 1) rolls a day 31
            # of a 30-day month into the next month, which the month comparison catches
            f"WHEN extract(month FROM make_date({year}, {month}, 1) + ({day} - 1)) <> {month} "
            f"THEN NULL ELSE CAST({column} AS timestamptz) END)")


_SAFE_TIME = re.compile(r"SAFE_TIME\(([^()]*)\)")


def render(table: str, time_is_text: bool = True) -> str:
    """The query on ``table``. Where its ``time`` column is a timestamp (Wazo >= 20.14),
    it is read as it is: the guarded text cast cost 4 of the 6 s a 50,000-row batch took
    (30-day set), for values that cannot be malformed."""
    def read_time(column: str) -> str:
        return safe_time(column) if time_is_text else f"CAST({column} AS timestamptz)"

    return _SAFE_TIME.sub(lambda m: read_time(m.group(1)), _SQL).replace("{table}", table)


def time_column_is_text(cursor, table: str) -> bool:
    """Whether ``table``'s ``time`` column holds text (old Wazo, Asterisk realtime), from
    the catalog. In doubt (no such column seen), text: the guarded reading is always safe."""
    cursor.execute("SELECT t.typcategory FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
                   "WHERE a.attrelid = to_regclass(%(table)s) AND a.attname = 'time' "
                   "AND NOT a.attisdropped", {"table": table})
    found = cursor.fetchone()
    return found is None or found[0] not in ("D",)  # D: date/time types


class TouchedHoursTimeout(RuntimeError):
    """The source did not answer within STAT_SENSOR_QUERY_TIMEOUT_SECONDS."""


def touched(dbapi_conn, table: str, after_id: int, limit: int, lookahead_hours: int,
            window: Optional[TimeWindow] = None, now: Optional[dt.datetime] = None
            ) -> list[tuple[int, Optional[dt.datetime], bool]]:
    """touched_hours.sql on ``table`` (psycopg2 placeholders: run on the driver's cursor):
    (row id, UTC hour or None, own) rows; a row without a plausible time gives (id, None, True).
    Each row has one own tuple; each derived hour (own False: a call's start, an agent state's
    or a wrap-up's span) comes once, with the first row id that touches it."""
    earliest, latest = (window or time_window_from_env()).bounds(now)
    cursor = dbapi_conn.cursor()
    try:
        # Dagster gives up on a sensor tick after 60 s but does not cancel its query, which
        # would then pile up on the PBX's database tick after tick: stop it ourselves first,
        # early enough for a second try on a smaller batch within the same tick (automation).
        timeout_s = float(os.environ.get("STAT_SENSOR_QUERY_TIMEOUT_SECONDS", "25"))
        cursor.execute("SET LOCAL statement_timeout = %(ms)s", {"ms": int(timeout_s * 1000)})
        try:
            cursor.execute(render(table, time_column_is_text(cursor, table)), {
                "cursor": after_id, "limit": limit, "lookahead": f"{lookahead_hours} hours",
                "earliest": earliest, "latest": latest})
        except psycopg2.errors.QueryCanceled as exc:
            raise TouchedHoursTimeout(
                f"the source's hours of {limit} rows after id {after_id} took longer than "
                f"{timeout_s:g} s (STAT_SENSOR_QUERY_TIMEOUT_SECONDS)") from exc
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return [(row_id, hour.replace(tzinfo=dt.timezone.utc) if hour else None, own)
            for row_id, hour, own in rows]
