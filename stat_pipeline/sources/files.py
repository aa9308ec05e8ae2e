"""Which source reads a given log file."""
from __future__ import annotations

import re
from typing import Optional

from stat_pipeline.sources.base import QueueLogSource, _open_any
from stat_pipeline.sources.csv import CsvQueueLogSource
from stat_pipeline.sources.flat_file import FlatFileQueueLogSource
from stat_pipeline.sources.mysql_dump import MysqlDumpQueueLogSource
from stat_pipeline.sources.tailing import rotated_files

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
