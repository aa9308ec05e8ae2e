"""SQL lives in .sql files next to the asset that owns it.

A file holds one statement, or several introduced by ``-- name: <name>`` lines.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
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


def analyze(conn, table: str, coarse: bool = False, columns: Sequence[str] = ()) -> None:
    """Refresh the planner's statistics of ``table``. ``coarse``: statistics target 10, i.e.
    3,000 sampled rows instead of 30,000 (queue_log of 30 days: 25 ms instead of 250-320
    ms), for the tables whose readers only need row counts and time ranges (queue_log and
    its staging table). classified_calls keeps the full sample: stat_call_on_queue's plan
    was ~15% slower on coarse statistics. ``columns``: only those columns' statistics (the
    row count is refreshed all the same)."""
    target = f"{table} ({', '.join(columns)})" if columns else table
    if coarse:
        conn.exec_driver_sql(f"SET LOCAL default_statistics_target = 10; ANALYZE {target}; "
                             "RESET default_statistics_target")
    else:
        conn.exec_driver_sql(f"ANALYZE {target}")


def analyze_after_bulk(conn, table: str, rows: int, coarse: bool = False,
                       columns: Sequence[str] = ()) -> None:
    """``analyze`` when ``rows`` rows just arrived in ``table``."""
    if rows >= BULK_ROWS:
        analyze(conn, table, coarse, columns)
