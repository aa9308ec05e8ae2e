"""Reading a (rotated) flat file from a position: what the new-rows sensor tails."""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import IO, Iterator, Optional

from stat_pipeline.sources.base import _open_any

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
