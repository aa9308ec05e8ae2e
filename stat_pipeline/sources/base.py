"""What every queue_log source shares: the staging table ``incoming_queue_log`` they all fill,
the ``QueueLogSource`` resource they derive from, raw COPY, and the byte cleaning of files."""
from __future__ import annotations

import codecs
import datetime as dt
import gzip
import io
import os
import threading
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Callable, Optional, Union

import dagster as dg
from pydantic import Field
from sqlalchemy import Connection

from stat_pipeline.sql import queries
from stat_pipeline.time_window import time_window_from_env

if TYPE_CHECKING:
    from stat_pipeline.resources import Warehouse
    from stat_pipeline.sources.tailing import _Tail

_COLUMNS = ("callid", "queuename", "agent", "event", "data1", "data2", "data3", "data4", "data5")
_LINES = queries(Path(__file__).with_name("lines.sql"))

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
        cursor.copy_expert(sql, stream, size=_CHUNK)
    finally:
        cursor.close()


_CHUNK = 1 << 20  # bytes per read: large enough that per-chunk work costs nothing


def piped_copy(produce: Callable[[IO[bytes]], None], consume: Callable[[IO[bytes]], None]) -> None:
    """``consume(stream)`` reads, as it comes, what ``produce(sink)`` writes in a thread:
    one COPY ... TO STDOUT on a source feeding one COPY ... FROM STDIN of the warehouse, the
    two servers at work at once (both cores) and nothing spooled (a year of rows is
    gigabytes). Written to a file first, then read back, the two COPYs took turns.

    The producer's error is raised once the consumer has taken what came before it: the
    caller's warehouse transaction then rolls back, so a half-read source never lands. A
    consumer that fails closes the pipe, which stops the producer (a broken pipe)."""
    read_fd, write_fd = os.pipe()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with open(write_fd, "wb", buffering=_CHUNK) as sink:
                produce(sink)
        except BaseException as exc:  # noqa: B036 - handed to the caller's thread
            failures.append(exc)

    producer = threading.Thread(target=run, name="piped-copy", daemon=True)
    producer.start()
    try:
        with open(read_fd, "rb", buffering=_CHUNK) as stream:
            consume(stream)
    finally:
        producer.join()
    if failures:
        raise failures[0]
_EVER = (dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(9999, 1, 1, tzinfo=dt.timezone.utc))


def copy_lines(conn: Connection, files: list[Union[str, IO[bytes]]], first_line: int = 1) -> None:
    """Create ``raw_lines``: one row per physical line of ``files`` (numbered from
    ``first_line``, across the files), whatever bytes they hold."""
    conn.execute(_LINES["create_raw"])
    if first_line != 1:
        conn.execute(_LINES["first_id"], {"first": first_line})
    _raw_copy(conn, str(_LINES["copy_raw"]), _CleanLines(files))


def window_params(until: Optional[str]) -> dict:
    """The plausible-time window as read now (or at ``until``, the moment a source set to
    ``until`` pretends to be read), for the parse queries and ``set_aside_implausible``."""
    window = time_window_from_env()
    now = None
    if until:
        now = dt.datetime.fromisoformat(until)
        now = now if now.tzinfo else now.replace(tzinfo=dt.timezone.utc)
    earliest, latest = window.bounds(now)
    return {"earliest": earliest, "latest": latest, "earliest_text": earliest.isoformat(),
            "max_future_text": str(window.max_future)}


def set_aside_implausible(conn: Connection, window: dict) -> None:
    """Rows of ``incoming_queue_log`` dated outside the window: ``time`` NULL with the
    window's reason, so that the queue_log asset keeps them in queue_log_rejects (hour
    NULL) instead of putting them in an hour (or, before 1970 and from 9999 on, losing them)."""
    conn.execute(_LINES["set_aside_implausible"], window)


def read_conservation(conn: Connection, source_name: str) -> tuple[int, dict[str, int]]:
    """(rows copied, rows kept aside at ingestion by kind of reason) of a source, from the
    warehouse: with the rows read, the conservation law ``read = copied + kept aside``."""
    counts = dict(conn.execute(_LINES["conservation"], {"source": source_name}).all())
    return counts.pop("copied", 0), counts


def _touched(dbapi_conn, table: str, after_id: int, limit: int, lookahead_hours: int
             ) -> list[tuple[int, Optional[dt.datetime], bool]]:
    """touched_hours.sql on ``table`` (stat_pipeline/touched_hours.py: unreadable and
    implausible times touch no hour)."""
    from stat_pipeline.touched_hours import touched

    return touched(dbapi_conn, table, after_id, limit, lookahead_hours)


class QueueLogSource(dg.ConfigurableResource):
    """Base of the pluggable sources (see module doc)."""

    until: Optional[str] = Field(
        default=None,
        description="ISO instant: behave as if the source held only rows with time <= until "
                    "(statistics as computed at that instant)")

    name: Optional[str] = Field(
        default=None,
        description="The source's name in the warehouse (queue_log.source, the scope of its "
                    "queues, agents and calls); set by a sources file (sources/config.py). "
                    "Unset: derived from the kind and the table or file name")

    def source_name(self) -> str:
        return self.name or self.default_name()

    def default_name(self) -> str:
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
    """The lines of several (possibly gzip'ed) files, one after the other, as the data of
    ``COPY raw_lines (line) FROM STDIN`` in text format: one column per line, so that no
    byte can be special. Backslashes and tabs are escaped (the only bytes that format reads
    inside a line: NULL markers and escapes start with a backslash), so a quote, 0x01-0x03,
    ``\\.`` or a field of any length stays in its own line and changes nothing else. Each
    line is cleaned on the way: invalid UTF-8 becomes U+FFFD, NUL bytes (Asterisk leaves
    them after a crash; PostgreSQL text cannot hold them) and carriage returns (Windows line
    ends; never data in queue_log) are dropped. Streamed chunk by chunk with C-speed
    bytes.replace: nothing is held in memory but one chunk."""

    def __init__(self, paths: list[Union[str, IO[bytes]]]) -> None:
        self._paths = list(paths)  # file names, or streams already positioned
        self._current: Optional[IO[bytes]] = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = memoryview(b"")
        self._last = b"\n"

    def readable(self) -> bool:
        return True

    @staticmethod
    def _escaped(data: bytes) -> bytes:
        return data.replace(b"\\", b"\\\\").replace(b"\t", b"\\t")

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
            chunk = self._current.read(_CHUNK)
            if chunk:
                chunk = chunk.replace(b"\x00", b"").replace(b"\r", b"")
                try:  # the common case: valid UTF-8 needs no decoding round trip
                    if self._decoder.getstate()[0]:
                        raise UnicodeDecodeError("utf-8", b"", 0, 1, "pending bytes")
                    chunk.decode("utf-8")
                    out = chunk
                except UnicodeDecodeError:
                    out = self._decoder.decode(chunk).encode("utf-8")
                if out:
                    self._last = out[-1:]
                    return self._escaped(out)
                continue
            self._current.close()
            self._current = None
            tail = self._decoder.decode(b"", final=True).encode("utf-8")
            self._decoder.reset()
            if tail:
                self._last = tail[-1:]
                return self._escaped(tail)

    def readinto(self, buffer) -> int:
        if not self._pending:
            self._pending = memoryview(self._next_chunk())
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]  # a view: no copy of the rest of the chunk
        return n


def _open_any(path: str) -> IO[bytes]:
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")
