"""SQL lives in .sql files next to the asset that owns it.

A file holds one statement, or several introduced by ``-- name: <name>`` lines.
"""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from sqlalchemy import TextClause, text

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def queries(path: Path) -> dict[str, TextClause]:
    body = path.read_text()
    parts = _NAME.split(body)
    if len(parts) == 1:
        return {path.stem: text(body)}
    return {name: text(sql) for name, sql in zip(parts[1::2], parts[2::2])}


def query(module_file: str, filename: str, name: str | None = None) -> TextClause:
    found = queries(Path(module_file).with_name(filename))
    return found[name or Path(filename).stem]


# Below this many new rows autovacuum's statistics are good enough; above it (a backfill)
# the planner would plan the next statements on a table it believes nearly empty (it
# chose nested loops over 93,000 calls), and temporary tables are never auto-analyzed.
BULK_ROWS = 20_000


def analyze_after_bulk(conn, table: str, rows: int) -> None:
    """Refresh the planner's statistics of ``table`` when ``rows`` rows just arrived in it
    (ANALYZE samples a fixed number of rows: ~0.1 s whatever the table's size)."""
    if rows >= BULK_ROWS:
        conn.exec_driver_sql(f"ANALYZE {table}")
