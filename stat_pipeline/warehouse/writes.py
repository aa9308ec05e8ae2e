"""Every partition write goes through ``partition_write``: one warehouse transaction that
first takes the warehouse's write lock, so overlapping runs from anywhere (the daemon's runs,
a CLI backfill, ``compute``, a second deployment on the same warehouse) serialize in
PostgreSQL itself, and that records which run wrote which hours (``partition_writes``).

The lock is one transaction-level advisory lock for the whole warehouse, not one per hour:
an hour's classification reads the queue_log rows of the 24 hours around it, so writes to
different hours are not independent, and a year of hours would need 8,760 locks (more than
PostgreSQL's shared lock table holds by default). Steps are short SQL transactions that
already use both cores: serializing them costs nothing measurable, and since every step
replaces its hours from what the warehouse holds when it gets the lock, any interleaving of
two runs' steps ends in the tables of one run. It is the warehouse's only lock (the dimension
sync takes it too, ``lock_warehouse``): two locks taken in two orders could deadlock.

What a writer must do for that to hold:

* call ``partition_write`` before it reads or deletes anything of the warehouse that it will
  replace or derive from. Work on its own temporary tables may come first (queue_log stages
  the source's rows, which can take seconds, before it takes the lock), so that the lock is
  held for warehouse work only;
* run at READ COMMITTED, PostgreSQL's default: each statement after the lock then sees what
  the previous holder committed. Under REPEATABLE READ the transaction's snapshot would be
  the one of its first statement, taken before the lock was granted, and a write would
  replace rows it cannot see: ``lock_warehouse`` refuses to run there.

The lock only serializes; that a replay can never multiply rows is the copy's own property
(queue_log.sql: previous copies matched by content) and PostgreSQL's (the unique index of
migration 0009).
"""
from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

from sqlalchemy import Connection, text

# pg_advisory_xact_lock(bigint): a fixed key of our own (hashtext of the name, computed once
# so that every process agrees without a query).
WRITE_LOCK_KEY = 0x57A7_0001


class WriteLockError(RuntimeError):
    """A write transaction that the lock cannot protect (see the module doc)."""


def lock_warehouse(conn: Connection) -> None:
    """Wait for, then hold until commit or rollback, the warehouse's write lock."""
    isolation = conn.execute(text(
        "SELECT current_setting('transaction_isolation') FROM pg_advisory_xact_lock(:key)"),
        {"key": WRITE_LOCK_KEY}).scalar()
    if isolation != "read committed":
        raise WriteLockError(
            f"warehouse writes need READ COMMITTED transactions, not {isolation.upper()} "
            "(set default_transaction_isolation back to 'read committed' for the warehouse)")


def record_write(conn: Connection, asset: str, start: dt.datetime, end: dt.datetime,
                 run_id: Optional[str], sources: Sequence[str] = ("",)) -> None:
    """Note that ``run_id`` wrote the hours [start, end) of ``asset`` for each of
    ``sources`` (inside its transaction). The ledger is per source (migration 0017): a run
    of one PBX writes that PBX's hours, and healing.py compares a source's assets only."""
    conn.execute(text("""
        INSERT INTO partition_writes (asset, source, hour, written_at, run_id)
        SELECT :asset, s, h, clock_timestamp(), :run_id
        FROM generate_series(CAST(:start AS timestamptz),
                             CAST(:end AS timestamptz) - interval '1 hour', interval '1 hour') h
        CROSS JOIN unnest(CAST(:sources AS text[])) s
        ON CONFLICT (asset, source, hour) DO UPDATE
            SET written_at = excluded.written_at, run_id = excluded.run_id"""),
        {"asset": asset, "start": start, "end": end, "run_id": run_id,
         "sources": list(sources)})


def prepare_hours(conn: Connection, start: dt.datetime, end: dt.datetime) -> None:
    """The monthly partitions of [start, end) exist (migration 0018), and none of its months
    had its raw rows dropped by retention (then this raises, in one line: re-materializing
    would rebuild kept statistics from nothing). Under the write lock: partitions are
    created by one writer at a time."""
    conn.execute(text("SELECT stat_prepare_hours(:start, :end)"), {"start": start, "end": end})


def partition_write(conn: Connection, asset: str, start: dt.datetime, end: dt.datetime,
                    run_id: Optional[str], sources: Sequence[str] = ("",)) -> None:
    """Call first thing inside the transaction that replaces [start, end) of ``asset``
    (for ``sources``: the run's sources, by name)."""
    lock_warehouse(conn)
    prepare_hours(conn, start, end)
    record_write(conn, asset, start, end, run_id, sources)


@contextmanager
def row_triggers_off(conn: Connection) -> Iterator[bool]:
    """Inside, the transaction's statements skip the tables' per-row triggers (the
    foreign-key checks), when the role may (a superuser: the embedded warehouse of
    ``compute`` and ``serve``); yields whether they are off. For one bulk insert whose
    statement checks its keys set-based itself (agents.sql ``insert_hours``); anyone else
    keeps PostgreSQL's own checks."""
    off = conn.execute(text("SELECT current_setting('is_superuser') = 'on'")).scalar()
    if off:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    yield off
    # not in a finally: after an error the transaction (or savepoint) is rolled back, which
    # undoes the SET LOCAL, and a statement sent to the aborted transaction would hide it
    if off:
        conn.exec_driver_sql("SET LOCAL session_replication_role = origin")
