"""What every queue_log source shares: the staging table ``incoming_queue_log`` they all fill,
the ``QueueLogSource`` resource they derive from, raw COPY, and the byte cleaning of files."""
from __future__ import annotations

import codecs
import datetime as dt
import gzip
import io
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Optional, Union

import dagster as dg
from pydantic import Field
from sqlalchemy import Connection

if TYPE_CHECKING:
    from stat_pipeline.resources import Warehouse
    from stat_pipeline.sources.tailing import _Tail

_COLUMNS = ("callid", "queuename", "agent", "event", "data1", "data2", "data3", "data4", "data5")
_COPY_COLUMNS = "time_text, " + ", ".join(_COLUMNS)
_TOUCHED_HOURS = (Path(__file__).parent.parent / "touched_hours.sql").read_text()

_CREATE_INCOMING = f"""
CREATE TEMP TABLE incoming_queue_log (
    source_id bigint, time_text text, "time" timestamptz, reject_reason text,
    {", ".join(c + " text" for c in _COLUMNS)}
) ON COMMIT DROP
"""


def _known_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (an IANA name like Europe/Paris)") from None
    return value


class SourceUnavailable(dg.Failure):
    """The source database cannot be reached: one clear line; Dagster retries the step."""

    def __init__(self, name: str, exc: Exception) -> None:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        super().__init__(description=f"queue_log source {name} unreachable: {reason}")


def _raw_copy(conn: Connection, sql: str, stream: IO[bytes]) -> None:
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.copy_expert(sql, stream)
    finally:
        cursor.close()


_EVER = (dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(9999, 1, 1, tzinfo=dt.timezone.utc))


def _touched(dbapi_conn, table: str, after_id: int, limit: int, lookahead_hours: int
             ) -> list[tuple[int, Optional[dt.datetime], bool]]:
    """touched_hours.sql on ``table`` (psycopg2 placeholders: run on the driver's cursor)."""
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(_TOUCHED_HOURS.replace("{table}", table),
                       {"cursor": after_id, "limit": limit, "lookahead": f"{lookahead_hours} hours"})
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return [(row_id, hour.replace(tzinfo=dt.timezone.utc) if hour else None, own)
            for row_id, hour, own in rows]


class QueueLogSource(dg.ConfigurableResource):
    """Base of the pluggable sources (see module doc)."""

    until: Optional[str] = Field(
        default=None,
        description="ISO instant: behave as if the source held only rows with time <= until "
                    "(statistics as computed at that instant)")

    def source_name(self) -> str:
        raise NotImplementedError

    def stage(self, conn: Connection, start: dt.datetime, end: dt.datetime) -> None:
        """Create ``incoming_queue_log`` with the rows of [start, end) and rows without a
        usable time (their ``time`` is NULL)."""
        raise NotImplementedError

    def touched_hours(self, after_id: int, limit: int, lookahead_hours: int
                      ) -> list[tuple[int, Optional[dt.datetime], bool]]:
        """For the rows after ``after_id`` (at most ``limit``), (row id, UTC hour, own) for
        every hour the row touches: its own (own=True), the start hour of the call it
        decides, the hours an agent state it sets lasts. A row without a usable time gives
        (id, None, True). Used by the new-rows sensor."""
        raise NotImplementedError(f"{type(self).__name__} cannot be watched for new rows")

    def new_rows(self, after_id: int, position: Optional[str], limit: int, lookahead_hours: int,
                 warehouse: "Warehouse") -> "NewRows":
        """What the new-rows sensor reads: ``touched_hours`` of the rows after ``after_id``.
        A file source resumes at ``position`` instead (opaque, from ``NewRows.resume_at``)
        and uses ``warehouse`` as its scratch database."""
        return NewRows(self.touched_hours(after_id, limit, lookahead_hours))



@dataclass
class NewRows:
    """Rows read by the sensor: (row id, UTC hour, own) as ``touched_hours`` gives them, and,
    for a file, where reading resumes (``resume_at``)."""

    touched: list[tuple[int, Optional[dt.datetime], bool]]
    tail: Optional["_Tail"] = None

    def resume_at(self, row_id: int) -> Optional[str]:
        """The position from which the next read sees the rows after ``row_id`` (None: the
        source has no positions, its row ids are enough)."""
        return self.tail.resume_at(row_id) if self.tail else None

    @property
    def note(self) -> Optional[str]:
        """Something the sensor should warn about (a file lost between two reads)."""
        return self.tail.note if self.tail else None



class _CleanLines(io.RawIOBase):
    """The bytes of several (possibly gzip'ed) files, one after the other, as valid UTF-8
    without NUL bytes or carriage returns (Asterisk leaves NULs in the file after a crash; PostgreSQL refuses
    them). Streamed: nothing is held in memory but one chunk."""

    def __init__(self, paths: list[Union[str, IO[bytes]]]) -> None:
        self._paths = list(paths)  # file names, or streams already positioned
        self._current: Optional[IO[bytes]] = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = b""
        self._last = b"\n"

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> bytes:
        while True:
            if self._current is None:
                if not self._paths:
                    return b""
                item = self._paths.pop(0)
                self._current = _open_any(item) if isinstance(item, str) else item
                if self._last != b"\n":  # a file cut mid-line must not glue onto the next
                    self._last = b"\n"
                    return b"\n"
            chunk = self._current.read(1 << 20)
            if chunk:
                # CR: Windows line ends, which COPY would refuse; never data in queue_log
                text_chunk = self._decoder.decode(chunk.replace(b"\x00", b"")).replace("\r", "")
                out = text_chunk.encode("utf-8")
                if out:
                    self._last = out[-1:]
                    return out
                continue
            self._current.close()
            self._current = None
            tail = self._decoder.decode(b"", final=True).encode("utf-8")
            self._decoder.reset()
            if tail:
                self._last = tail[-1:]
                return tail

    def readinto(self, buffer) -> int:
        if not self._pending:
            self._pending = self._next_chunk()
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _open_any(path: str) -> IO[bytes]:
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")
