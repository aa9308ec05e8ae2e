"""Overlapping runs and repeated rows end in the tables of one correct run (issue 12 items 1
and 5): writes serialize on the warehouse's own lock (warehouse/writes.py), the copy cannot
multiply rows, and a row is identified by its content (migration 0009), not its source id."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from stat_pipeline.resources import dispose_engines, warehouse_engine
from stat_pipeline.sources import CsvQueueLogSource
from stat_pipeline.warehouse.migrate import migration_files
from stat_pipeline_tests.golden import GOLDEN
from stat_pipeline_tests.overlap import (differences, first_hour, golden_set, materialize,
                                         materialize_golden, tables)

UTC = dt.timezone.utc
PROJECT = Path(__file__).resolve().parents[1]
DAY = golden_set(GOLDEN / "day1_s1")
needs_golden = pytest.mark.skipif(not DAY.queue_log.exists(), reason="no golden day1_s1")


@pytest.fixture
def other_warehouse(pg_server):
    """A second fresh warehouse database on the same server (a clean run goes there)."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    pg_server.create_database(name)
    yield pg_server.url(name)
    dispose_engines()
    pg_server.drop_database(name)


@pytest.fixture
def clean_run(other_warehouse) -> dict:
    """The tables of one run over the golden day, alone on its warehouse."""
    materialize_golden(other_warehouse, DAY)
    return tables(other_warehouse)


def _count(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


@needs_golden
def test_two_processes_over_the_same_hours_end_in_one_runs_tables(warehouse_url, clean_run,
                                                                   tmp_path):
    """Two real processes (a CLI backfill next to the daemon's run) start the hourly job over
    the same day at the same moment: they serialize on the warehouse's lock and the tables
    are exactly a single run's (before: every row twice, 2,478 queue_log rows instead of
    1,239)."""
    warehouse_engine(warehouse_url)  # migrated once here, not raced by the two
    go = tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(2)]
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    procs = [subprocess.Popen([sys.executable, "-m", "stat_pipeline_tests.overlap", warehouse_url,
                               str(DAY.path), str(r), str(go)], env=env, cwd=PROJECT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for r in ready]
    try:
        deadline = dt.datetime.now() + dt.timedelta(minutes=3)
        while not all(r.exists() for r in ready):
            assert all(p.poll() is None for p in procs), [p.communicate()[0] for p in procs]
            assert dt.datetime.now() < deadline, "the runner processes never got ready"
            threading.Event().wait(0.01)
        go.touch()
        outputs = [p.communicate(timeout=600)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert differences(tables(warehouse_url), clean_run) == {}
    assert sum(clean_run["queue_log"].values()) > 1000
    # both runs wrote every hour, one after the other: the ledger names one of them per hour
    assert _count(warehouse_url, "SELECT count(DISTINCT run_id) FROM partition_writes "
                                 "WHERE asset = 'queue_log'") in (1, 2)


@needs_golden
def test_two_in_process_runs_in_threads_end_in_one_runs_tables(warehouse_url, clean_run):
    warehouse_engine(warehouse_url)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            materialize_golden(warehouse_url, DAY)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert errors == []
    assert differences(tables(warehouse_url), clean_run) == {}


# An export of a realtime table (with its id column) holding rows twice: the same row under
# the same id (overlapping exports), the same row under another id (a dump loaded twice),
# and rows that only look alike (NULL vs '', a field's end moved into the next field, a
# different instant, a different row under an id already used): those are different rows.
HEADER = "id,time,callid,queuename,agent,event,data1,data2,data3,data4,data5"
ROWS = [
    "1,2024-03-01 10:00:01+00,c1,q1,NONE,ENTERQUEUE,,0612,1,,",
    "1,2024-03-01 10:00:01+00,c1,q1,NONE,ENTERQUEUE,,0612,1,,",        # same id, same row
    "2,2024-03-01 10:00:05+00,c1,q1,Agent/1001,CONNECT,4,c1.1,2,,",
    "3,2024-03-01 10:01:05+00,c1,q1,Agent/1001,COMPLETECALLER,4,60,1,,",
    "7,2024-03-01 10:00:05+00,c1,q1,Agent/1001,CONNECT,4,c1.1,2,,",    # other id, same row
    "1,2024-03-01 10:00:01+00,c1,q1,NONE,ENTERQUEUE,,0612,1,,",        # a third copy
    "4,2024-03-01 10:02:00+00,c2,q1,NONE,ENTERQUEUE,,0613,1,,",
    "5,2024-03-01 10:02:00+00,c2,q1,NONE,ENTERQUEUE,,0613,1,,\\N",     # NULL, not ''
    "6,2024-03-01 10:02:00+00,c2,q1,NONE,ENTERQUEUE,,061,31,,",        # '061','31' vs '0613','1'
    "6,2024-03-01 10:02:00.000001+00,c2,q1,NONE,ENTERQUEUE,,0613,1,,",  # 1 us later, id reused
]
DISTINCT_ROWS = 7


def _repeated_ids_csv(tmp_path: Path) -> CsvQueueLogSource:
    path = tmp_path / "export.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n")
    return CsvQueueLogSource(path=str(path), until="2024-03-01T12:00:00+00:00")


def test_repeated_source_ids_are_one_row_and_rematerializing_is_idempotent(warehouse_url,
                                                                           tmp_path):
    """Before: 4 -> 6 -> 10 -> 18 rows, the copy's join on the source id multiplying the
    rows whose id repeats; copies of one row under the same id were not even seen as
    duplicates."""
    source = _repeated_ids_csv(tmp_path)
    hour = dt.datetime(2024, 3, 1, 10, tzinfo=UTC)
    engine = warehouse_engine(warehouse_url)
    seen = []
    for _ in range(3):
        materialize(warehouse_url, source, hour, hour, assets=["queue_log"])
        with engine.connect() as conn:
            seen.append((
                conn.execute(text("SELECT count(*) FROM queue_log")).scalar(),
                conn.execute(text("SELECT source_id, ingested_at FROM queue_log "
                                  "ORDER BY source_id, \"time\", data2, data3, data5")).all(),
                conn.execute(text("SELECT source_id, reason FROM queue_log_rejects "
                                  "ORDER BY source_id, reason")).all()))
    counts = [n for n, _, _ in seen]
    assert counts == [DISTINCT_ROWS] * 3
    assert seen[0][1] == seen[1][1] == seen[2][1]  # same rows, first ingestion times kept
    assert [tuple(r) for r in seen[2][2]] == [
        (1, "exact duplicate of source row 1"), (1, "exact duplicate of source row 1"),
        (7, "exact duplicate of source row 2")]
    # rows read = rows copied + rows kept aside
    assert counts[-1] + len(seen[2][2]) == len(ROWS)


def test_the_warehouse_refuses_a_row_twice(warehouse_url):
    """The unique index on (time, source, content): whatever a writer does, PostgreSQL itself
    keeps one copy of a row; different rows under one source id are both accepted."""
    engine = warehouse_engine(warehouse_url)
    insert = text("INSERT INTO queue_log (source, source_id, \"time\", callid, event, data1) "
                  "VALUES ('csv:x', :id, '2024-03-01 10:00:00+00', 'c1', 'ENTERQUEUE', :d1)")
    with engine.begin() as conn:
        conn.execute(insert, {"id": 1, "d1": ""})
        conn.execute(insert, {"id": 1, "d1": None})  # NULL is not '': another row
    with pytest.raises(Exception, match="queue_log__row"):
        with engine.begin() as conn:
            conn.execute(insert, {"id": 2, "d1": ""})


def _migrate_before_0009(url: str) -> None:
    """A warehouse as the pipeline left it before this change (no unique index yet)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE stat_pipeline_migrations ("
                             " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        for version, sql in migration_files():
            if version < "0009":
                conn.exec_driver_sql(sql)
                conn.execute(text("INSERT INTO stat_pipeline_migrations (version) VALUES (:v)"),
                             {"v": version})
    engine.dispose()


def _double_the_copy(url: str, times: int) -> None:
    """What two overlapping runs left before: every queue_log row of the golden day ``times``
    times, the copies ingested at different moments."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TEMP TABLE golden (time_text text, callid text, queuename text, agent text, "
            "event text, data1 text, data2 text, data3 text, data4 text, data5 text)")
        cursor = conn.connection.dbapi_connection.cursor()
        with open(DAY.queue_log, "rb") as f:
            cursor.copy_expert("COPY golden FROM STDIN WITH (FORMAT csv, HEADER true, NULL '\\N')", f)
        for copy in range(times):
            conn.execute(text(
                "INSERT INTO queue_log (source, source_id, \"time\", callid, queuename, agent, "
                "event, data1, data2, data3, data4, data5, ingested_at, source_time) "
                "SELECT :source, row_number() OVER (), CAST(time_text AS timestamptz), callid, "
                "queuename, agent, event, data1, data2, data3, data4, data5, "
                "'2024-03-06 00:00:00+00'::timestamptz + :copy * interval '1 day', time_text "
                "FROM golden WHERE CAST(time_text AS timestamptz) < :until"),
                {"source": "csv:" + DAY.queue_log.name, "copy": copy, "until": DAY.until})
    engine.dispose()


@needs_golden
def test_a_warehouse_holding_doubled_rows_is_repaired_by_the_next_run(warehouse_url,
                                                                      clean_run):
    """A warehouse that overlapping runs doubled before this change (each row 4 times: two
    re-materializations of a doubled copy): migration 0009 keeps one copy of each row, with
    its first ingestion time, and the next run ends in one run's tables."""
    _migrate_before_0009(warehouse_url)
    _double_the_copy(warehouse_url, 4)
    rows = sum(clean_run["queue_log"].values())
    assert _count(warehouse_url, "SELECT count(*) FROM queue_log") == 4 * rows
    warehouse_engine(warehouse_url)  # applies 0009
    assert _count(warehouse_url, "SELECT count(*) FROM queue_log") == rows
    assert _count(warehouse_url, "SELECT count(*) FROM partition_writes "
                                 "WHERE run_id LIKE 'migration 0009%'") > 0
    materialize_golden(warehouse_url, DAY)
    assert differences(tables(warehouse_url), clean_run) == {}
    assert _count(warehouse_url, "SELECT count(*) FROM queue_log "
                                 "WHERE ingested_at <> '2024-03-06 00:00:00+00'") == 0


@needs_golden
def test_the_copy_never_multiplies_whatever_the_table_holds(warehouse_url, clean_run):
    """Even with the unique index gone (a hand-made restore, a future migration), rows held
    twice are replaced by one copy each: previous copies are reduced to one per content
    before the join that keeps their ingestion time."""
    warehouse_engine(warehouse_url)
    with create_engine(warehouse_url).begin() as conn:
        conn.exec_driver_sql("DROP INDEX queue_log__row")
    _double_the_copy(warehouse_url, 2)
    for _ in range(2):
        materialize_golden(warehouse_url, DAY)
    assert differences(tables(warehouse_url), clean_run) == {}
