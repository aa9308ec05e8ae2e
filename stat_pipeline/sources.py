"""Where queue_log rows come from. Every source fills the same temporary table
``incoming_queue_log`` inside the caller's warehouse transaction; the ``queue_log`` asset
takes it from there, so assets downstream never know which source was used.

* ``PostgresQueueLogSource``: Wazo's ``asterisk.queue_log`` through a read-only account.
* ``FlatFileQueueLogSource``: Asterisk's own ``/var/log/asterisk/queue_log`` file(s)
  (``epoch|callid|queue|agent|event|data...``), rotated and gzip'ed ones included.
* ``CsvQueueLogSource``: a CSV in the golden-set layout
  (``time,callid,queuename,agent,event,data1..data5``, ``\\N`` = NULL), optionally gzip'ed.
* ``MysqlDumpQueueLogSource``: a MySQL dump (INSERT statements) of a realtime queue_log table.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import glob
import gzip
import hashlib
import io
import json
import os
import re
import tempfile
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Iterator, Optional, Union

import dagster as dg
from pydantic import Field, field_validator
from sqlalchemy import Connection, NullPool, create_engine, text
from sqlalchemy.exc import OperationalError

from stat_pipeline.sql import queries

if TYPE_CHECKING:
    from stat_pipeline.resources import Warehouse

_COLUMNS = ("callid", "queuename", "agent", "event", "data1", "data2", "data3", "data4", "data5")
_COPY_COLUMNS = "time_text, " + ", ".join(_COLUMNS)
_FLAT = queries(Path(__file__).with_name("flat_file.sql"))
_CSV = queries(Path(__file__).with_name("csv_file.sql"))
_TAIL = queries(Path(__file__).with_name("file_tail.sql"))
_MYSQL = queries(Path(__file__).with_name("mysql_dump.sql"))

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
    """touched_hours.sql on ``table`` (stat_pipeline/touched_hours.py)."""
    from stat_pipeline.touched_hours import touched

    return touched(dbapi_conn, table, after_id, limit, lookahead_hours)


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


_GOLDEN_HEADER = ["time", *_COLUMNS]
_CREATE_CSV_RAW = f"""
CREATE TEMP TABLE csv_raw (
    source_id bigint GENERATED BY DEFAULT AS IDENTITY, time_text text,
    {", ".join(c + " text" for c in _COLUMNS)}, reject_reason text
) ON COMMIT DROP"""


def _parse_csv_raw(conn: Connection, start: dt.datetime, end: dt.datetime,
                   until: Optional[str], timezone: str) -> None:
    """csv_raw -> incoming_queue_log: times read as instants, or in ``timezone``."""
    conn.execute(text(_CREATE_INCOMING))
    utc = timezone in ("UTC", "Etc/UTC")
    conn.execute(_CSV["parse_utc" if utc else "parse_local"],
                 {"start": start, "end": end, "until": until, "tz": timezone})
    conn.execute(text("DROP TABLE csv_raw"))


class CsvQueueLogSource(QueueLogSource):
    """A queue_log CSV (or tab-separated) file with a header naming its columns.

    The golden layout (``time,callid,queuename,agent,event,data1..data5``) and exports of
    Asterisk/Wazo realtime tables (``id``, ``time``, ..., ``data1..data5`` or a single legacy
    ``data`` holding ``a|b|c``) are read. The row id is the ``id`` column when there is one,
    else the data line number."""

    path: str = Field(description="CSV file, .gz allowed")
    timezone: str = Field(default="UTC", description="IANA zone of times written without an "
                                                    "offset (e.g. Europe/Paris)")

    _check_zone = field_validator("timezone")(classmethod(lambda cls, v: _known_zone(v)))

    def source_name(self) -> str:
        return "csv:" + os.path.basename(self.path)

    def _open(self) -> IO[bytes]:
        return gzip.open(self.path, "rb") if self.path.endswith(".gz") else open(self.path, "rb")

    def _header(self) -> tuple[list[str], str]:
        with self._open() as raw:
            line = raw.readline(65536).decode("utf-8", "replace").lstrip("\ufeff")
        delimiter = "\t" if line.count("\t") > line.count(",") else ","
        names = [n.strip().strip('"').lower() for n in next(csv.reader([line], delimiter=delimiter))]
        if "time" not in names or "event" not in names:
            raise ValueError(f"{self.path}: the header names no 'time' and 'event' columns: "
                             f"{line.strip()[:120]!r}")
        return names, delimiter

    def stage(self, conn: Connection, start: dt.datetime, end: dt.datetime) -> None:
        conn.execute(text(_CREATE_CSV_RAW))
        names, delimiter = self._header()
        if names == _GOLDEN_HEADER and delimiter == ",":
            self._copy(conn, "csv_raw", _COPY_COLUMNS.split(", "), ",")
        else:
            self._copy_mapped(conn, names, delimiter)
        _parse_csv_raw(conn, start, end, self.until, self.timezone)

    def _copy(self, conn: Connection, table: str, columns: list[str], delimiter: str) -> None:
        delimiter_sql = "E'\\t'" if delimiter == "\t" else "','"
        copy_sql = (f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, "
                    f"HEADER true, NULL '\\N', DELIMITER {delimiter_sql})")
        try:
            with conn.begin_nested(), self._open() as stream:
                _raw_copy(conn, copy_sql, stream)
        except Exception:  # noqa: BLE001 - any malformed line: take the careful path below
            self._copy_line_by_line(conn, table, columns, delimiter)

    def _copy_mapped(self, conn: Connection, names: list[str], delimiter: str) -> None:
        """Another column layout: copy it as it is, then map its columns onto ours."""
        raw_columns = [f"c{i}" for i in range(len(names))]
        conn.execute(text(f"CREATE TEMP TABLE csv_any (line bigint GENERATED ALWAYS AS IDENTITY, "
                          f"{', '.join(c + ' text' for c in raw_columns)}, reject_reason text) "
                          "ON COMMIT DROP"))
        self._copy(conn, "csv_any", raw_columns, delimiter)
        col = {name: f"c{i}" for i, name in reversed(list(enumerate(names)))}

        def field(name: str) -> str:
            return col.get(name, "NULL")

        if any(f"data{i}" in col for i in range(1, 6)) or "data" not in col:
            data = [field(f"data{i}") for i in range(1, 6)]
        else:  # one legacy "data" column: "a|b|c", data5 keeps the remainder
            parts = f"string_to_array({col['data']}, '|')"
            data = [f"coalesce(({parts})[{i}], '')" for i in range(1, 5)]
            data.append(f"array_to_string(({parts})[5:], '|')")
        source_id = (f"CASE WHEN {col['id']} ~ '^[0-9]{{1,18}}$' THEN CAST({col['id']} AS bigint) "
                     "ELSE line END" if "id" in col else "line")
        conn.execute(text(f"""
            INSERT INTO csv_raw (source_id, time_text, {", ".join(_COLUMNS)}, reject_reason)
            SELECT {source_id}, {field('time')}, {field('callid')}, {field('queuename')},
                   {field('agent')}, {field('event')}, {", ".join(data)}, reject_reason
            FROM csv_any"""))
        conn.execute(text("DROP TABLE csv_any"))

    def _copy_line_by_line(self, conn: Connection, table: str, columns: list[str],
                           delimiter: str) -> None:
        """Slow path for files PostgreSQL's CSV parser refuses (wrong field count, NUL bytes):
        good lines are copied, each bad line is kept with its reason and line number."""
        width = len(columns)
        with self._open() as raw:
            reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", errors="replace",
                                                 newline=""), delimiter=delimiter)
            next(reader, None)
            good = tempfile.SpooledTemporaryFile(max_size=64 << 20, mode="w+b")
            text_out = io.TextIOWrapper(good, encoding="utf-8", newline="")
            writer = csv.writer(text_out)
            writer.writerow([*columns, "reject_reason"])
            for fields in reader:
                fields = [f.replace("\x00", "") for f in fields]
                reason = None
                if len(fields) != width:
                    reason = (f"malformed line: {len(fields)} fields instead of {width}: "
                              + ",".join(fields)[:500])
                    fields = (fields + [""] * width)[:width]
                writer.writerow(fields + ([reason] if reason else ["\\N"]))
            text_out.flush()
            good.seek(0)
            _raw_copy(conn, f"COPY {table} ({', '.join(columns)}, reject_reason) FROM STDIN "
                            "WITH (FORMAT csv, HEADER true, NULL '\\N')", good)


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


def rotated_files(pattern: str) -> list[str]:
    """The files of a queue_log and its rotations, oldest first: ``queue_log-20241101.gz``,
    ``queue_log-20241102``, ..., then the live ``queue_log``; or numbered rotations
    (``queue_log.2`` before ``queue_log.1``)."""
    paths = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
    if not paths:
        raise FileNotFoundError(f"no file matches {pattern}")

    def age(path: str):
        name = os.path.basename(path).removesuffix(".gz")
        dated = re.search(r"-(\d{8})$", name)
        numbered = re.search(r"\.(\d+)$", name)
        if dated:
            return (0, dated.group(1), 0)
        if numbered:
            return (1, "", -int(numbered.group(1)))
        return (2, "", 0)

    return sorted(paths, key=age)


_HEAD_BYTES = 4096  # a file is recognised by its first bytes, renamed or gzip'ed
_CHUNK = 1 << 20


def _after_lines(data: bytes, n: int) -> int:
    """Offset just after the n-th newline of ``data`` (which holds at least n)."""
    return len(data) - len(data.split(b"\n", n)[-1]) if n else 0


def _count_lines(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _line_chunks(fh: IO[bytes], max_lines: int) -> Iterator[bytes]:
    """The bytes of ``fh`` up to its ``max_lines``-th newline (or its end), chunk by chunk."""
    lines = 0
    while chunk := fh.read(_CHUNK):
        n = chunk.count(b"\n")
        if lines + n >= max_lines:
            yield chunk[:_after_lines(chunk, max_lines - lines)]
            return
        lines += n
        yield chunk


def _read_lines(fh: IO[bytes], max_lines: int, complete: bool) -> bytes:
    """Up to ``max_lines`` lines from ``fh``. The live file's last line without a newline is
    still being written: it waits for the next read. A rotated file is finished: its cut
    last line is a line, as it is for ``stage``."""
    data = b"".join(_line_chunks(fh, max_lines))
    return data if complete else data[:data.rfind(b"\n") + 1]


def _skip_lines(fh: IO[bytes], offset: int, n: int, complete: bool) -> tuple[int, int]:
    """Skip ``n`` lines from ``offset`` (the same lines ``_read_lines`` would read):
    (offset after them, lines skipped)."""
    size = lines = partial = 0
    for chunk in _line_chunks(fh, n):
        size, lines = size + len(chunk), lines + chunk.count(b"\n")
        cut = chunk.rfind(b"\n")
        partial = len(chunk) - cut - 1 if cut >= 0 else partial + len(chunk)
    if partial and complete:
        lines += 1
    elif partial:
        size -= partial
    fh.seek(offset + size)
    return offset + size, lines


@dataclass
class _Segment:
    """Lines read from one file: ``data`` starts at byte ``start`` (of the decompressed
    content for .gz) with the line numbered ``first_line``."""

    path: str
    inode: int
    head: bytes  # the file's first bytes: recognises it once renamed or gzip'ed
    start: int
    first_line: int
    data: bytes

    def position(self, offset: int, line: int) -> dict:
        head = self.head[:min(offset, _HEAD_BYTES)]
        return {"inode": self.inode, "offset": offset, "line": line,
                "head": hashlib.sha1(head).hexdigest(), "head_len": len(head)}


@dataclass
class _Tail:
    """What one read of a (rotated) flat file found after a position."""

    before: Optional[dict]
    segments: list[_Segment] = field(default_factory=list)
    note: Optional[str] = None

    def resume_at(self, row_id: int) -> Optional[str]:
        position = self.before
        for seg in self.segments:
            if row_id < seg.first_line:
                break
            consumed = row_id - seg.first_line + 1
            if consumed < _count_lines(seg.data):
                position = seg.position(seg.start + _after_lines(seg.data, consumed), row_id)
                break
            position = seg.position(seg.start + len(seg.data),
                                    seg.first_line + _count_lines(seg.data) - 1)
        return json.dumps(position) if position else None


def _same_start(path: str, position: dict) -> bool:
    with _open_any(path) as fh:
        head = fh.read(position["head_len"])
    return hashlib.sha1(head).hexdigest() == position["head"]


def _locate(files: list[str], position: dict) -> Optional[int]:
    """Index of the file the position is in: the same inode with the same first bytes and
    at least that long (the live file, or renamed by logrotate); else a file with the same
    first bytes: gzip'ed meanwhile (same content, new inode), or copied before the live file
    was truncated (copytruncate). None if it is gone."""
    def same(i: int, by_inode: bool) -> bool:
        try:  # a file rotated away between the glob and here is simply not it
            st = os.stat(files[i])
            return ((not by_inode or (st.st_ino == position["inode"] and (
                files[i].endswith(".gz") or st.st_size >= position["offset"])))
                and _same_start(files[i], position))
        except OSError:
            return False

    found = [i for i in range(len(files)) if same(i, True)]
    if not found and position["head_len"]:
        found = [i for i in reversed(range(len(files))) if same(i, False)]
    return found[0] if found else None


def _read_tail(pattern: str, position: Optional[dict], after_id: int, limit: int) -> _Tail:
    """Up to ``limit`` complete lines after ``position`` (or, for a cursor without one, after
    line ``after_id`` of the files): the rest of the file the position is in, then the files
    rotated after it, then the live file (the newest of the glob) from its start."""
    tail = _Tail(before=position)
    try:
        files = rotated_files(pattern)
    except FileNotFoundError:
        return tail
    if position is None:
        first, offset, line, skip = 0, 0, 0, after_id
    else:
        found = _locate(files, position)
        if found is None:
            tail.note = (f"the file read up to line {position['line']} is no longer among "
                         f"{pattern}: reading the live file from its start")
        first, offset = (found, position["offset"]) if found is not None else (len(files) - 1, 0)
        line, skip = position["line"], 0
    read = 0
    for i in range(first, len(files)):
        complete = i < len(files) - 1
        with _open_any(files[i]) as fh:
            inode = os.fstat(fh.fileno()).st_ino
            head = fh.read(_HEAD_BYTES)
            fh.seek(offset)
            if skip:
                offset, skipped = _skip_lines(fh, offset, skip, complete)
                skip, line = skip - skipped, line + skipped
            data = b"" if skip else _read_lines(fh, limit - read, complete)
        if data:
            tail.segments.append(_Segment(files[i], inode, head, offset, line + 1, data))
            line, read = line + _count_lines(data), read + _count_lines(data)
        offset = 0
        if read >= limit:
            break
    return tail


class FlatFileQueueLogSource(QueueLogSource):
    """Asterisk's queue_log flat file (``epoch|callid|queue|agent|event|data...``).

    ``path`` may be a glob (``/var/log/asterisk/queue_log*``) to read rotated files in order.
    The row id is the line number across the files (deleting the oldest rotation renumbers
    the lines read afterwards; the sensor, which goes by its position, is not affected).
    The new-rows sensor tails it (``new_rows``); give a glob so that it can follow rotations. Lines that cannot be read (too few
    fields, no epoch) go to queue_log_rejects with their line number; empty lines are
    skipped."""

    path: str = Field(description="queue_log file, .gz allowed, or a glob of rotated files")

    def source_name(self) -> str:
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
                conn.execute(_FLAT["create_raw"])
                conn.execute(_TAIL["first_id"], {"first": first})
                _raw_copy(conn, str(_FLAT["copy_raw"]),
                          _CleanLines([io.BytesIO(seg.data) for seg in tail.segments]))
                conn.execute(text(_CREATE_INCOMING))
                # every line, after ``until`` too: a row the sensor skipped would be read again
                # on every tick (requesting the hour of a row stage ignores is harmless)
                conn.execute(_FLAT["parse"], {"start": _EVER[0], "end": _EVER[1], "until": None})
                conn.execute(_TAIL["tail_rows"], {"source": self.source_name()})
                rows = _touched(conn.connection.dbapi_connection, "tail_rows", first - 1,
                                sum(_count_lines(seg.data) for seg in tail.segments),
                                lookahead_hours)
                scratch.rollback()
        return NewRows(rows, tail)

    def stage(self, conn: Connection, start: dt.datetime, end: dt.datetime) -> None:
        conn.execute(_FLAT["create_raw"])
        _raw_copy(conn, str(_FLAT["copy_raw"]), _CleanLines(rotated_files(self.path)))
        conn.execute(text(_CREATE_INCOMING))
        conn.execute(_FLAT["parse"], {"start": start, "end": end, "until": self.until})
        conn.execute(text("DROP TABLE raw_lines"))


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

    def source_name(self) -> str:
        return "mysql:" + os.path.basename(self.path)

    def stage(self, conn: Connection, start: dt.datetime, end: dt.datetime) -> None:
        conn.execute(text(_CREATE_CSV_RAW))
        conn.execute(_FLAT["create_raw"])
        _raw_copy(conn, str(_FLAT["copy_raw"]), _CleanLines([self.path]))
        conn.execute(_MYSQL["tuples"], {"table": self.table})
        conn.execute(text("DROP TABLE raw_lines"))
        _parse_csv_raw(conn, start, end, self.until, self.timezone)


_MYSQL_LINE = re.compile(r"^(--\s*(MySQL|MariaDB) dump|INSERT\s+(IGNORE\s+)?INTO\s|CREATE\s+TABLE\s|"
                         r"LOCK\s+TABLES\s|DROP\s+TABLE\s|/\*!\d+\s+SET\s)", re.IGNORECASE)


def detect_format(path: str) -> str:
    """'csv' (a header naming time, event...), 'asterisk' (flat file) or 'mysql' (a dump),
    from the first line, or for a dump from its first statements."""
    first = rotated_files(path)[0]
    with _open_any(first) as fh:
        head = [fh.readline(4096).replace(b"\x00", b"").decode("utf-8", "replace").strip()
                for _ in range(40)]
    line = head[0]
    if re.match(r'^\W*(id|time)\W', line) and "event" in line:
        return "csv"
    if re.match(r"^\d+(\.\d+)?\|", line):
        return "asterisk"
    # a dump opens with comments, SET and DROP/CREATE TABLE, or directly with its INSERTs
    if any(_MYSQL_LINE.match(h) for h in head):
        return "mysql"
    raise ValueError(f"{path}: neither a queue_log CSV (header naming time, event...), an "
                     f"Asterisk queue_log (epoch|callid|...) nor a MySQL dump (INSERT INTO...): "
                     f"first line {line[:60]!r}")


def file_source(path: str, fmt: str = "auto", until: Optional[str] = None,
                timezone: str = "UTC") -> QueueLogSource:
    """The source for a log file: ``fmt`` 'csv', 'asterisk', 'mysql' or 'auto' (from its first
    lines); ``timezone`` reads CSV and dump times written without an offset (flat files are
    epochs: UTC)."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "csv":
        return CsvQueueLogSource(path=path, until=until, timezone=timezone)
    if fmt == "asterisk":
        return FlatFileQueueLogSource(path=path, until=until)
    if fmt == "mysql":
        return MysqlDumpQueueLogSource(path=path, until=until, timezone=timezone)
    raise ValueError(f"unknown format {fmt!r}: csv, asterisk, mysql or auto")
