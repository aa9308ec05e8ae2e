"""One source's view of the warehouse, for the statements of a run (several PBXs, one warehouse).

Every statement of the assets' .sql files (classification, Wazo's tables, the dimension
rules, agent times) is written for one source: it reads ``queue_log``, ``stat_queue``,
``confd_snapshot``... and replaces rows of its hours. ``source_scope(conn, name)`` makes that
true for the source ``name`` inside the caller's transaction: it creates, for each table that
has a ``source`` column (migration 0017), a temporary view of the same name holding only that
source's rows. A session looks up unqualified names in its temporary schema first
(PostgreSQL's ``pg_temp``, implicitly first in every search_path), so the unchanged
statements read, delete and insert through the views:

* a SELECT sees the source's rows only (the view's WHERE is inlined by the planner: the same
  plan and indexes as on the table, with one more filter);
* a DELETE or UPDATE touches the source's rows only (simple views are auto-updatable);
* an INSERT writes the source's name: each view's ``source`` column defaults to it.

So the set-based statements stay as they are and a run loops over its sources in Python,
running the same statements once per source (README "Several PBXs, one warehouse"); the
queue `sales` of PBX A and of PBX B never meet, nor callids or row ids of two PBXs. Why views
rather than ``AND source = :source`` in ~60 places: one place to get right, SQL that another
change (issue 16's faster classification) edits without merge conflicts, and a statement
that forgets the filter cannot exist.

The views are DDL of the caller's transaction: a rollback removes them; on success they are
dropped before the scope ends, with the temporary tables the statements created (ON COMMIT
DROP tables would otherwise collide with the next source's, in the same transaction).
Statements that must see the real table (ANALYZE) name it with ``table(name)``.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Connection, text

# The tables with a source column, as a run's statements see them.
SCOPED_TABLES = ("queue_log", "queue_log_rejects", "classified_calls", "stat_queue",
                 "stat_agent", "stat_call_on_queue", "stat_queue_periodic",
                 "stat_agent_periodic", "stat_agent_pause_reason", "confd_snapshot",
                 "agent_state_span")

_TEMP_RELATIONS = text(
    "SELECT c.relname, c.relkind FROM pg_class c WHERE c.relnamespace = pg_my_temp_schema() "
    "AND c.relkind IN ('r', 'v', 'p')")


class Scope:
    def __init__(self, schema: str, source: str) -> None:
        self.schema = schema
        self.source = source

    def table(self, name: str) -> str:
        """The real table ``name`` (not this scope's view of it), quoted for SQL."""
        return f'"{self.schema}"."{name}"'


def temp_relations(conn: Connection) -> set[str]:
    """The names of this session's temporary tables and views."""
    return {name for name, _ in conn.execute(_TEMP_RELATIONS)}


def drop_temp_created_since(conn: Connection, before: set[str]) -> None:
    """Drop the temporary tables and views created since ``before`` (temp_relations)."""
    created = sorted((name, kind) for name, kind in conn.execute(_TEMP_RELATIONS)
                     if name not in before)
    if created:
        conn.exec_driver_sql(";\n".join(
            f'DROP {"VIEW" if kind == "v" else "TABLE"} IF EXISTS pg_temp."{name}" CASCADE'
            for name, kind in created))


def _literal(conn: Connection, value: str) -> str:
    return conn.execute(text("SELECT quote_literal(CAST(:v AS text))"), {"v": value}).scalar()


@contextmanager
def source_scope(conn: Connection, source: str) -> Iterator[Scope]:
    """Inside: the unqualified scoped tables are ``source``'s rows (see the module doc)."""
    schema = conn.execute(text("SELECT current_schema()")).scalar()
    before = temp_relations(conn)
    clash = before & set(SCOPED_TABLES)
    if clash:  # a scope not closed (nested, or an exception swallowed inside the transaction)
        raise RuntimeError(f"source scope already open in this transaction ({sorted(clash)})")
    label = _literal(conn, source)
    statements = []
    for table in SCOPED_TABLES:
        statements.append(f'CREATE TEMP VIEW "{table}" AS SELECT * FROM "{schema}"."{table}" '
                          f"WHERE source = {label}")
        statements.append(f'ALTER VIEW pg_temp."{table}" ALTER COLUMN source SET DEFAULT {label}')
    conn.exec_driver_sql(";\n".join(statements))
    yield Scope(schema, source)
    # the statements' temporary tables first (a view of theirs may read a scope view)
    drop_temp_created_since(conn, before | set(SCOPED_TABLES))
    conn.exec_driver_sql(";\n".join(f'DROP VIEW pg_temp."{table}"' for table in SCOPED_TABLES))
