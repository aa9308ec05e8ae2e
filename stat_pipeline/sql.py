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
