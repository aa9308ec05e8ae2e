"""Wazo's queue_log table, read through a read-only session."""
from __future__ import annotations

import datetime as dt
import tempfile
from typing import Optional

from pydantic import Field, field_validator
from sqlalchemy import Connection, NullPool, create_engine, text
from sqlalchemy.exc import OperationalError

from stat_pipeline.sources.base import (_COLUMNS, _CREATE_INCOMING, QueueLogSource, SourceUnavailable,
                                        _known_zone, _raw_copy, _touched)

class PostgresQueueLogSource(QueueLogSource):
    """Wazo's ``queue_log`` table (database ``asterisk``), read through a read-only session."""

    url: str = Field(description="SQLAlchemy URL of the source database (STAT_SOURCE_URL)")
    table: str = Field(default="queue_log", description="Table name, optionally schema-qualified")
    timezone: str = Field(
        default="UTC", description="IANA zone of a naive or text time column (Asterisk "
                                   "realtime without queue_log_realtime_use_gmt, Wazo <= 20.13); "
                                   "a timestamptz column (Wazo >= 20.14) is not affected")

    _check_zone = field_validator("timezone")(classmethod(lambda cls, v: _known_zone(v)))

    def source_name(self) -> str:
        return "pg:" + self.table

    def _engine(self):
        url = self.url
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg2://" + url.split("://", 1)[1]
        # The session is read-only whatever the account may do: we never write to the PBX.
        return create_engine(url, poolclass=NullPool, connect_args={
            "options": f"-c default_transaction_read_only=on -c timezone={self.timezone}"})

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

    def stage(self, conn: Connection, start: dt.datetime, end: dt.datetime) -> None:
        spool = tempfile.SpooledTemporaryFile(max_size=64 << 20, mode="w+b")
        source = self._engine()
        try:
            with source.connect() as src:
                select = src.connection.dbapi_connection.cursor().mogrify(
                    # the instant, with its offset, whatever the column's type; twice: the
                    # typed column is parsed by COPY itself, the text is the source time
                    f'SELECT id, CAST("time" AS timestamptz), CAST("time" AS timestamptz), '
                    f'{", ".join(_COLUMNS)} '
                    f'FROM {self.table} '
                    f'WHERE (CAST("time" AS timestamptz) >= %(start)s '
                    f'AND CAST("time" AS timestamptz) < %(end)s'
                    + ("" if not self.until else ' AND CAST("time" AS timestamptz) <= %(until)s')
                    + ') OR "time" IS NULL',
                    {"start": start, "end": end, "until": self.until}).decode()
                cursor = src.connection.dbapi_connection.cursor()
                cursor.copy_expert(f"COPY ({select}) TO STDOUT WITH (FORMAT csv)", spool)
                cursor.close()
        except OperationalError as exc:
            raise SourceUnavailable(self.source_name(), exc) from exc
        finally:
            source.dispose()
        spool.seek(0)
        conn.execute(text(_CREATE_INCOMING))
        _raw_copy(conn, "COPY incoming_queue_log (source_id, \"time\", time_text, "
                        f"{', '.join(_COLUMNS)}) FROM STDIN WITH (FORMAT csv)", spool)
