"""A MySQL/MariaDB dump of an Asterisk realtime queue_log table."""
from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

from pydantic import Field, field_validator
from sqlalchemy import Connection, text

from stat_pipeline.sources.base import QueueLogSource, _known_zone, copy_lines
from stat_pipeline.sources.csv import _CREATE_CSV_RAW, _parse_csv_raw
from stat_pipeline.sql import queries

_MYSQL = queries(Path(__file__).with_name("mysql_dump.sql"))

class MysqlDumpQueueLogSource(QueueLogSource):
    """A MySQL/MariaDB dump (mysqldump, phpMyAdmin) of an Asterisk realtime ``queue_log``
    table: its ``INSERT INTO `queue_log` [(columns)] VALUES (...),(...);`` statements, with
    or without a column list, MySQL string escapes, NULLs, the columns ``id, time, callid,
    queuename, agent, event, data1..data5`` or a legacy single ``data`` (split at pipes).
    Parsed in PostgreSQL (mysql_dump.sql), times as for a CSV export (``timezone``). The
    row id is the ``id`` column, else the tuple's rank in the dump. Other statements and
    other tables are ignored; an unreadable tuple is kept aside with where it is."""

    path: str = Field(description="mysqldump output, .gz allowed")
    timezone: str = Field(default="UTC", description="IANA zone of the DATETIME values (a "
                                                    "realtime table without queue_log_realtime_use_gmt)")
    table: str = Field(default="queue_log", description="name of the table in the dump")

    _check_zone = field_validator("timezone")(classmethod(lambda cls, v: _known_zone(v)))

    @field_validator("table")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not re.fullmatch(r"\w+", value):  # it goes into a regular expression
            raise ValueError(f"table {value!r}: letters, digits and _ only")
        return value

    def default_name(self) -> str:
        return "mysql:" + os.path.basename(self.path)

    def stage(self, conn: Connection, start: dt.datetime, end: dt.datetime) -> None:
        conn.execute(text(_CREATE_CSV_RAW))
        copy_lines(conn, [self.path])
        conn.execute(_MYSQL["tuples"], {"table": self.table})
        conn.execute(text("DROP TABLE raw_lines"))
        _parse_csv_raw(conn, start, end, self.until, self.timezone)
