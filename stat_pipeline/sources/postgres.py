"""Wazo's queue_log table, read through a read-only session."""
from __future__ import annotations

import datetime as dt
from typing import Optional

import psycopg2
from pydantic import Field, field_validator
from sqlalchemy import Connection, NullPool, create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from stat_pipeline.sources.base import (_CHUNK, _COLUMNS, _CREATE_INCOMING, QueueLogSource,
                                        SourceUnavailable, _known_zone, _raw_copy, _touched,
                                        piped_copy, set_aside_implausible, window_params)


def read_only_engine(url_text: str, timezone: str = "UTC"):
    """An engine on a PBX database whose sessions cannot write, whatever the account may do:
    we never write to the PBX. Our settings are added after the user's own ``options=``
    (kept, never dropped): the last -c of a name wins, so read-only and the time zone
    cannot be undone."""
    url = make_url(url_text)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg2")
    user_options = url.query.get("options", "")
    if isinstance(user_options, tuple):
        user_options = " ".join(user_options)
    ours = f"-c default_transaction_read_only=on -c timezone={timezone}"
    return create_engine(url.difference_update_query(["options"]), poolclass=NullPool,
                         connect_args={"options": f"{user_options} {ours}".strip()})


class PostgresQueueLogSource(QueueLogSource):
    """Wazo's ``queue_log`` table (database ``asterisk``), read through a read-only session."""

    url: str = Field(description="SQLAlchemy URL of the source database (STAT_SOURCE_URL)")
    table: str = Field(default="queue_log", description="Table name, optionally schema-qualified")
    timezone: str = Field(
        default="UTC", description="IANA zone of a naive or text time column (Asterisk "
                                   "realtime without queue_log_realtime_use_gmt, Wazo <= 20.13); "
                                   "a timestamptz column (Wazo >= 20.14) is not affected")

    _check_zone = field_validator("timezone")(classmethod(lambda cls, v: _known_zone(v)))

    def default_name(self) -> str:
        return "pg:" + self.table

    def _engine(self):
        return read_only_engine(self.url, self.timezone)

    def touched_hours(self, after_id: int, limit: int, lookahead_hours: int
                      ) -> list[tuple[int, Optional[dt.datetime], bool]]:
        engine = self._engine()
        try:
            with engine.connect() as src:
                return _touched(src.connection.dbapi_connection, self.table, after_id, limit,
                                lookahead_hours)
        except OperationalError as exc:
            raise SourceUnavailable(self.source_name(), exc) from exc
        finally:
            engine.dispose()

    def _time_of(self, cursor) -> str:
        """The event time as timestamptz. A timestamp(tz) column is cast (an index on it stays
        usable). A text column (Wazo <= 20.13: varchar, default '') is cast only where it
        reads as a date and time, checked by a regular expression and the month's length:
        one '' or other junk must become a row without usable time, never an error that
        stops every run. Plain SQL, no helper function: the source may be an old
        PostgreSQL, and it is read-only to us."""
        cursor.execute("SELECT t.typcategory FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
                       "WHERE a.attrelid = CAST(%(table)s AS regclass) AND a.attname = 'time' "
                       "AND NOT a.attisdropped", {"table": self.table})
        found = cursor.fetchone()
        if not found or found[0] != "S":
            return 'CAST("time" AS timestamptz)'
        return ("""CASE WHEN NOT ("time" ~ '^\\s*[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"""
                """([ T]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]+)?)?)?"""
                """\\s*(Z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?\\s*$') THEN NULL """
                """WHEN substr(ltrim("time"), 1, 4) = '0000' THEN NULL """
                """WHEN CAST(substr(ltrim("time"), 9, 2) AS integer) > CAST(extract(day FROM """
                """CAST(substr(ltrim("time"), 1, 7) || '-01' AS date) + interval '1 month' """
                """- interval '1 day') AS integer) THEN NULL """
                """ELSE CAST("time" AS timestamptz) END""")

    def stage(self, conn: Connection, start: dt.datetime, end: dt.datetime) -> None:
        source = self._engine()
        window = window_params(self.until)
        conn.execute(text(_CREATE_INCOMING))
        try:
            with source.connect() as src:
                cursor = src.connection.dbapi_connection.cursor()
                # the rows of the hours, rows without a usable time, and rows outside the
                # plausible window (kept aside below, never lost); the instant with its
                # offset (COPY parses it), and the source's own text when it is no time
                select = cursor.mogrify(
                    f'SELECT id, parsed_time, coalesce(CAST(parsed_time AS text), CAST("time" AS text)), '
                    f'{", ".join(_COLUMNS)} '
                    f'FROM (SELECT q.*, {self._time_of(cursor)} AS parsed_time FROM {self.table} q) s '
                    f'WHERE parsed_time IS NULL OR parsed_time < %(earliest)s OR parsed_time >= %(latest)s '
                    f'OR (parsed_time >= %(start)s AND parsed_time < %(end)s'
                    + ("" if not self.until else ' AND parsed_time <= %(until)s') + ')',
                    {"start": start, "end": end, "until": self.until, **window}).decode()
                piped_copy(
                    lambda sink: cursor.copy_expert(
                        f"COPY ({select}) TO STDOUT WITH (FORMAT csv)", sink, size=_CHUNK),
                    lambda stream: _raw_copy(
                        conn, "COPY incoming_queue_log (source_id, \"time\", time_text, "
                              f"{', '.join(_COLUMNS)}) FROM STDIN WITH (FORMAT csv)", stream))
                cursor.close()
        except (OperationalError, psycopg2.OperationalError) as exc:
            # the source unreachable, or gone while it was read (the warehouse's own
            # errors are SQLAlchemy's DBAPIError, raised as they are)
            raise SourceUnavailable(self.source_name(), exc) from exc
        finally:
            source.dispose()
        set_aside_implausible(conn, window)
