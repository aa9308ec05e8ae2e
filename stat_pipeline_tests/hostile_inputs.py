"""Hostile queue_log inputs for the fuzz and fault suite (test_fuzz.py) and bench/hostile.py.

A golden day's rows are rendered in each input format we read, then damaged with a seeded
random generator. The damage is recorded so that a test knows, from what it generated and
not from what the pipeline says, how many rows the input holds, which of them are intact
and which calls a damaged row may have touched.

Formats (``FORMATS``):
  csv     the golden layout ``time,callid,queuename,agent,event,data1..data5``; row id =
          data line number (the header is line 0)
  export  a realtime-table CSV export with an ``id`` column (ids from ``FIRST_ID`` on, far
          from any line number); row id = the ``id``
  flat    Asterisk's flat file ``epoch|callid|queue|agent|event|data1..data5``; row id =
          line number
  mysql   a MySQL dump, phpMyAdmin-style: one INSERT with a column list, one tuple per
          line (the only layout in which a damaged tuple can be told from its neighbours;
          mysqldump's one-line extended INSERT has no such boundary); row id = the ``id``

Damage (``KINDS``):
  bytes    random single-byte replacements, insertions and deletions (any byte 0x00-0xff)
  quotes   stray ``"`` (and ``'`` where it is not a CSV quote), at a field start or inside
  control  control bytes 0x00-0x1f and 0x7f (0x00-0x03 always: NUL and our COPY
           delimiter/quote/NULL markers), invalid UTF-8, and whole lines of control bytes
  huge     fields over 128 KiB (plain, and full of separators and quotes), and a line cut short
  times    absurd times: epoch 86400, year 2200, year 9999, before 1970, '' and garbage

What a row is. A line ends at LF (``\\n``); CR is a byte of the line (CRLF ends are
cleaned by the readers, a stray CR is damage, not a line end). Every non-blank line of the
data part is one row read: ``rows read`` is the number of such lines. The generator never
makes a blank line (blank = nothing but NUL, whitespace or CR once NUL bytes are removed;
readers skip blank lines), so "rows read" has one meaning whatever a reader does with them.
A dump's rows are its tuple lines: edits there never add or remove a line break (a newline
inside a MySQL string is legal, and would make the count depend on the reading), never
touch the ``id`` (the row's identity) and never add whole lines (a line that is not a tuple
ends the INSERT statement in MySQL too). In the export the ``id`` is never edited either.

Touched calls. A line of the damaged file is *intact* if it is byte for byte one original
line; every other line is *damaged*. A damaged line's *origins* are the original rows whose
bytes (or line end) it holds: an edit that removes a line end merges two rows, an inserted
LF splits one. A call (callid) is *touched* if one of its rows is an origin of a damaged
line, or if its callid occurs in a damaged line's text (an edited callid may have become
another real callid; backslashes removed, since a dump's ``\\5`` reads as ``5``; also
matched on letters, digits and ``._/@-`` only, since a reader may clean a damaged byte). Every
other call must keep exactly its clean statistics: no byte, quote, field length or time in
one row may change how other rows are read.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

UTC = dt.timezone.utc
FORMATS = ("csv", "export", "flat", "mysql")
KINDS = ("bytes", "quotes", "control", "huge", "times")
FIRST_ID = 100001
DATA_COLUMNS = ("callid", "queuename", "agent", "event", "data1", "data2", "data3", "data4",
                "data5")
HUGE = 128 * 1024  # the field size limit that made whole files fail (issue 12, item 4)

# The absurd times of issue 12 item 3; a time is a datetime, or text written as it is.
ABSURD_TIMES: dict[str, Union[dt.datetime, str]] = {
    "epoch 86400": dt.datetime(1970, 1, 2, tzinfo=UTC),
    "year 2200": dt.datetime(2200, 1, 1, 12, tzinfo=UTC),
    "year 9999": dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
    "before 1970": dt.datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC),
    "empty": "",
}
GARBAGE_TIMES = ("yesterday", "now", "0x1F", "1e9", "2024-02-30 25:61:00", "NULL", "--", "12")
INVALID_UTF8 = (b"\xff", b"\xfe", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\x80",
                b"\xf8\x88\x80\x80\x80")
CONTROL = tuple(bytes([b]) for b in [*range(0x20), 0x7f])


@dataclass(frozen=True)
class Row:
    time: dt.datetime
    fields: tuple[str, ...]  # callid, queuename, agent, event, data1..data5

    @property
    def callid(self) -> str:
        return self.fields[0]


def golden_rows(path: Path, hours: Optional[set[int]] = None) -> list[Row]:
    """The rows of a golden queue_log.csv (optionally only those of some UTC hours)."""
    rows = []
    with open(path, newline="") as fh:
        for rec in csv.DictReader(fh):
            t = dt.datetime.fromisoformat(rec["time"]).astimezone(UTC)
            if hours is None or t.hour in hours:
                rows.append(Row(t, tuple(rec[c] for c in DATA_COLUMNS)))
    return rows


def _epoch(t: dt.datetime) -> str:
    # exact: integer seconds and microseconds, no float rounding
    delta = t - dt.datetime(1970, 1, 1, tzinfo=UTC)
    seconds = delta.days * 86400 + delta.seconds
    return f"{seconds}.{delta.microseconds:06d}" if delta.microseconds else str(seconds)


def _time_text(fmt: str, t: Union[dt.datetime, str]) -> str:
    if isinstance(t, str):
        return t
    if fmt == "csv":
        return t.isoformat()
    if fmt == "flat":
        return _epoch(t)
    return t.strftime("%Y-%m-%d %H:%M:%S.%f" if t.microsecond else "%Y-%m-%d %H:%M:%S")


def _csv_line(values: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue().encode("utf-8", "surrogateescape")


def _mysql_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


MYSQL_HEADER = ("-- MySQL dump of queue_log, phpMyAdmin layout (one tuple per line)\n"
                "SET NAMES utf8mb4;\n\n"
                "INSERT INTO `queue_log` (`id`, `time`, `callid`, `queuename`, `agent`, `event`, "
                "`data1`, `data2`, `data3`, `data4`, `data5`) VALUES\n")
MYSQL_FOOTER = "UNLOCK TABLES;\n"


@dataclass
class Line:
    """One row rendered: ``body`` without its line end, ``lo`` the first byte edits may touch
    (after the id), ``tail`` what ends the line (LF, or a dump's ``),\\n`` / ``);\\n``)."""
    body: bytes
    lo: int
    tail: bytes


def render_row(fmt: str, row: Row, row_id: int, last: bool = False,
               time: Union[dt.datetime, str, None] = None,
               fields: Optional[tuple[str, ...]] = None) -> Line:
    when = _time_text(fmt, row.time if time is None else time)
    values = list(fields or row.fields)
    if fmt == "csv":
        return Line(_csv_line([when, *values])[:-1], 0, b"\n")
    if fmt == "export":
        head = f"{row_id},".encode()
        return Line(head + _csv_line([when, *values])[:-1], len(head), b"\n")
    if fmt == "flat":
        return Line("|".join([when, *values]).encode("utf-8", "surrogateescape"), 0, b"\n")
    if fmt == "mysql":
        head = f"({row_id},".encode()
        body = head + ",".join(_mysql_quote(v) for v in [when, *values]).encode(
            "utf-8", "surrogateescape")
        return Line(body, len(head), b");\n" if last else b"),\n")
    raise ValueError(fmt)


def header(fmt: str) -> bytes:
    if fmt == "csv":
        return b"time,callid,queuename,agent,event,data1,data2,data3,data4,data5\n"
    if fmt == "export":
        return b"id,time,callid,queuename,agent,event,data1,data2,data3,data4,data5\n"
    if fmt == "mysql":
        return MYSQL_HEADER.encode()
    return b""


def footer(fmt: str) -> bytes:
    return MYSQL_FOOTER.encode() if fmt == "mysql" else b""


@dataclass
class FinalLine:
    text: bytes
    origins: frozenset[int]  # indexes of the original rows whose bytes it holds (-1: added)
    intact: bool
    number: int              # 1-based, in the data part


@dataclass
class HostileFile:
    fmt: str
    rows: list[Row]
    ids: list[int]
    chunks: list[bytearray]          # one per row (line + its end), then edited
    chunk_rows: list[int]            # original row index of each chunk (-1: an added line)
    edited: set[int] = field(default_factory=set)   # chunk indexes
    notes: list[str] = field(default_factory=list)

    # -- what the test needs to know -------------------------------------------------------
    def data(self) -> bytes:
        return header(self.fmt) + b"".join(self.chunks) + footer(self.fmt)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.data())
        return path

    def lines(self) -> list[FinalLine]:
        out: list[FinalLine] = []
        cur, origins, edited = bytearray(), set(), False
        for i, chunk in enumerate(self.chunks):
            parts = bytes(chunk).split(b"\n")
            for j, part in enumerate(parts):
                if j > 0:
                    out.append(self._final(cur, origins, edited, len(out) + 1))
                    cur, origins, edited = bytearray(), set(), False
                if part or j < len(parts) - 1:
                    cur += part
                    origins.add(i)
                    edited = edited or i in self.edited or self.chunk_rows[i] < 0
        if cur:
            out.append(self._final(cur, origins, edited, len(out) + 1))
        return out

    def _final(self, text: bytearray, origins: set[int], edited: bool, number: int) -> FinalLine:
        rows = frozenset(self.chunk_rows[i] for i in origins)
        intact = not edited and len(origins) == 1
        return FinalLine(bytes(text), rows, intact, number)

    def line_id(self, line: FinalLine) -> int:
        """The id an intact line must be copied under."""
        (row,) = line.origins
        return self.ids[row] if self.fmt in ("export", "mysql") else line.number

    def touched_callids(self, known_callids: set[str]) -> set[str]:
        touched = set()
        for line in self.lines():
            if line.intact:
                continue
            touched |= {self.rows[r].callid for r in line.origins if r >= 0}
            text = line.text.decode("latin-1")
            plain = text.replace("\\", "")
            bare = _skeleton(text)
            touched |= {c for c in known_callids
                        if c in text or c in plain or (_skeleton(c) and _skeleton(c) in bare)}
        return touched

    # -- damage ----------------------------------------------------------------------------
    def _line(self, i: int) -> Line:
        r = self.chunk_rows[i]
        return render_row(self.fmt, self.rows[r], self.ids[r], last=i == len(self.chunks) - 1)

    def _span(self, i: int) -> tuple[int, int]:
        """Where edits of chunk i may go: after the id; in a dump, before the tuple's end."""
        line = self._line(i)
        end = len(self.chunks[i]) - (len(line.tail) if self.fmt == "mysql" else 0)
        return line.lo, end

    def insert(self, i: int, pos: int, data: bytes) -> None:
        self.chunks[i][pos:pos] = data
        self.edited.add(i)

    def replace_row(self, i: int, **override) -> None:
        line = render_row(self.fmt, self.rows[self.chunk_rows[i]], self.ids[self.chunk_rows[i]],
                          last=i == len(self.chunks) - 1, **override)
        self.chunks[i] = bytearray(line.body + line.tail)
        self.edited.add(i)

    def add_line(self, at: int, text: bytes) -> None:
        self.chunks.insert(at, bytearray(text + b"\n"))
        self.chunk_rows.insert(at, -1)
        self.edited = {i + 1 if i >= at else i for i in self.edited}

    def blank_lines(self) -> bool:
        return any(not line.text.replace(b"\x00", b"").strip(b" \t\r\x0b\x0c\x1c\x1d\x1e\x1f")
                   for line in self.lines())


def _skeleton(value: str) -> str:
    """Only the ASCII letters, digits and ``.-_/@`` of a text: a reader that cleans a damaged
    field (drops a NUL, replaces invalid UTF-8 by U+FFFD) keeps these in order, so a callid
    made from a damaged line is found in the line's skeleton."""
    return re.sub(r"[^A-Za-z0-9._/@-]", "", value)


def render(fmt: str, rows: list[Row]) -> HostileFile:
    ids = [FIRST_ID + i for i in range(len(rows))]
    chunks = []
    for i, row in enumerate(rows):
        line = render_row(fmt, row, ids[i], last=i == len(rows) - 1)
        chunks.append(bytearray(line.body + line.tail))
    return HostileFile(fmt, rows, ids, chunks, list(range(len(rows))))


def _field_starts(f: HostileFile, i: int) -> list[int]:
    lo, hi = f._span(i)
    sep = b"|" if f.fmt == "flat" else b","
    chunk = bytes(f.chunks[i])
    return [lo] + [p + 1 for p in range(lo, hi) if chunk[p:p + 1] == sep]


def _pick(rng: random.Random, f: HostileFile, n: int) -> list[int]:
    candidates = [i for i in range(len(f.chunks)) if f.chunk_rows[i] >= 0 and i not in f.edited]
    return rng.sample(candidates, min(n, len(candidates)))


def _random_bytes(rng: random.Random, f: HostileFile) -> None:
    for i in _pick(rng, f, 6):
        for _ in range(rng.randint(1, 3)):
            lo, hi = f._span(i)
            hi = min(hi, len(f.chunks[i]))
            pos = rng.randrange(lo, hi)
            byte = rng.randrange(256)
            while f.fmt == "mysql" and byte == 0x0A:   # no line break in a dump (module doc)
                byte = rng.randrange(256)
            op = rng.choice(("replace", "insert", "delete"))
            if op == "insert":
                f.chunks[i][pos:pos] = bytes([byte])
            elif op == "replace":
                f.chunks[i][pos] = byte
            else:
                byte = f.chunks[i].pop(pos)
            f.edited.add(i)
            f.notes.append(f"row {f.chunk_rows[i]}: {op} {byte:#04x} at {pos}")


def _stray_quotes(rng: random.Random, f: HostileFile) -> None:
    quotes = [b'"'] if f.fmt in ("csv", "export") else [b'"', b"'"]
    for n, i in enumerate(_pick(rng, f, 4)):
        starts = _field_starts(f, i)
        lo, hi = f._span(i)
        # half of them open a field (a CSV reader then reads a quoted field to the next
        # quote, lines later), the others sit inside one
        pos = rng.choice(starts[1:] or starts) if n % 2 == 0 else rng.randrange(lo + 1, hi)
        q = rng.choice(quotes)
        f.insert(i, pos, q)
        f.notes.append(f"row {f.chunk_rows[i]}: {q!r} at {pos}")


def _control_bytes(rng: random.Random, f: HostileFile) -> None:
    forced = [b"\x00", b"\x01", b"\x02", b"\x03"]
    for i in _pick(rng, f, 6):
        for _ in range(rng.randint(1, 2)):
            lo, hi = f._span(i)
            pos = rng.randrange(lo, hi)
            if forced:
                data = forced.pop(0)
            else:
                data = rng.choice(INVALID_UTF8 if rng.random() < 0.4 else CONTROL)
                while f.fmt == "mysql" and data == b"\n":
                    data = rng.choice(CONTROL)
            f.insert(i, pos, data)
            f.notes.append(f"row {f.chunk_rows[i]}: {data!r} at {pos}")
    if f.fmt != "mysql":  # whole lines of control bytes (not in a dump: see module doc)
        for text in (b"\x03", bytes(rng.choice(CONTROL[1:9])) + b"\x02\x1b[0m\x7f" + b"\xff"):
            f.add_line(rng.randrange(len(f.chunks) + 1), text)
            f.notes.append(f"added line {text!r}")


def _huge_fields(rng: random.Random, f: HostileFile) -> None:
    plain, noisy, cut = _pick(rng, f, 3)
    for i, filler in ((plain, "H"), (noisy, "x,|\"'\\;")):
        row = f.rows[f.chunk_rows[i]]
        size = HUGE + rng.randrange(1, 64 * 1024)
        value = (filler * (size // len(filler) + 1))[:size]
        column = rng.choice((5, 8))  # data2 or data5 (data5 keeps a flat line's remainder)
        fields = row.fields[:column] + (value,) + row.fields[column + 1:]
        f.replace_row(i, fields=fields)
        f.notes.append(f"row {f.chunk_rows[i]}: {len(value)}-byte field {DATA_COLUMNS[column]}")
    body_end = len(f.chunks[cut]) - len(f._line(cut).tail)
    f.chunks[cut] = f.chunks[cut][:rng.randrange(f._span(cut)[0] + 1, body_end // 2)] + (
        b"\n" if f.fmt != "mysql" else b"),\n")
    f.edited.add(cut)
    f.notes.append(f"row {f.chunk_rows[cut]}: cut short")


def _absurd_times(rng: random.Random, f: HostileFile) -> None:
    kinds = [*ABSURD_TIMES.items(), ("garbage", rng.choice(GARBAGE_TIMES))]
    for i, (name, value) in zip(_pick(rng, f, len(kinds)), kinds):
        text = value if isinstance(value, str) else _time_text(f.fmt, value)
        f.replace_row(i, time=text)
        f.notes.append(f"row {f.chunk_rows[i]}: time {name} {text!r}")


DAMAGE = {"bytes": _random_bytes, "quotes": _stray_quotes, "control": _control_bytes,
          "huge": _huge_fields, "times": _absurd_times}


def hostile(fmt: str, kind: str, seed: int, rows: list[Row]) -> HostileFile:
    """``rows`` rendered in ``fmt`` and damaged by ``kind``, reproducibly from ``seed``. A
    draw that would leave a blank line is drawn again (module doc: rows read)."""
    rng = random.Random(f"{fmt}/{kind}/{seed}")
    while True:
        f = render(fmt, rows)
        DAMAGE[kind](rng, f)
        if not f.blank_lines():
            return f
