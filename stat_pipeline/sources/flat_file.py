"""Asterisk's queue_log flat file(s), rotated and gzip'ed ones included."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from pydantic import Field
from sqlalchemy import Connection, text

from stat_pipeline.sources.base import (_CREATE_INCOMING, _EVER, NewRows, QueueLogSource, copy_lines,
                                        set_aside_implausible, _touched, window_params)
from stat_pipeline.sources.tailing import _count_lines, _read_tail, rotated_files
from stat_pipeline.sql import queries

if TYPE_CHECKING:
    from stat_pipeline.resources import Warehouse

_FLAT = queries(Path(__file__).with_name("flat_file.sql"))
_TAIL = queries(Path(__file__).with_name("file_tail.sql"))

class FlatFileQueueLogSource(QueueLogSource):
    """Asterisk's queue_log flat file (``epoch|callid|queue|agent|event|data...``).

    ``path`` may be a glob (``/var/log/asterisk/queue_log*``) to read rotated files in order.
    The row id is the line number across the files (deleting the oldest rotation renumbers
    the lines read afterwards; the sensor, which goes by its position, is not affected).
    The new-rows sensor tails it (``new_rows``); give a glob so that it can follow rotations. Lines that cannot be read (too few
    fields, no epoch) go to queue_log_rejects with their line number; empty lines are
    skipped."""

    path: str = Field(description="queue_log file, .gz allowed, or a glob of rotated files")

    def default_name(self) -> str:
        return "file:" + os.path.basename(self.path)

    def new_rows(self, after_id: int, position: Optional[str], limit: int, lookahead_hours: int,
                 warehouse: "Warehouse") -> NewRows:
        """Tails the file: only the complete lines written since ``position`` are read,
        following rotations; their touched hours come from touched_hours.sql run in a scratch
        transaction of the warehouse (rolled back), as for a database source."""
        tail = _read_tail(self.path, json.loads(position) if position else None, after_id, limit)
        if not tail.segments:
            return NewRows([], tail)
        first = tail.segments[0].first_line
        with warehouse.engine().connect() as conn:
            with conn.begin() as scratch:
                copy_lines(conn, [io.BytesIO(seg.data) for seg in tail.segments], first)
                conn.execute(text(_CREATE_INCOMING))
                # every line, after ``until`` too: a row the sensor skipped would be read again
                # on every tick (requesting the hour of a row stage ignores is harmless); a
                # row outside the plausible window has no hour (it never holds a cursor back)
                window = window_params(None)
                conn.execute(_FLAT["parse"], {"start": _EVER[0], "end": _EVER[1], "until": None,
                                              **window})
                set_aside_implausible(conn, window)
                conn.execute(_TAIL["tail_rows"], {"source": self.source_name()})
                rows = _touched(conn.connection.dbapi_connection, "tail_rows", first - 1,
                                sum(_count_lines(seg.data) for seg in tail.segments),
                                lookahead_hours)
                scratch.rollback()
        return NewRows(rows, tail)

    def stage(self, conn: Connection, start: dt.datetime, end: dt.datetime) -> None:
        copy_lines(conn, rotated_files(self.path))
        conn.execute(text(_CREATE_INCOMING))
        window = window_params(self.until)
        conn.execute(_FLAT["parse"], {"start": start, "end": end, "until": self.until, **window})
        set_aside_implausible(conn, window)
        conn.execute(text("DROP TABLE raw_lines"))
