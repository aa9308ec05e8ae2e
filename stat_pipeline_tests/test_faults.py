"""Faults: a run killed in the middle of a partition write leaves the previous state, the
next run repairs it; a lost source fails the step with one clear line, and it is retried;
a source failing while its rows stream into the warehouse leaves nothing of them."""
import signal
import subprocess
import sys
import textwrap
import time

import datetime as dt

import dagster as dg
import pytest
from sqlalchemy import create_engine, text

from stat_pipeline.definitions import HOURLY_JOB, QUIET, build_definitions
from stat_pipeline.partitions import hourly_partitions
from stat_pipeline.resources import Warehouse
from stat_pipeline.sources import PostgresQueueLogSource
from stat_pipeline.sources.base import piped_copy
from stat_pipeline_tests.harness import DAY, CallCentre, at


def _classified(url):
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT callid, status FROM classified_calls ORDER BY 1")).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def test_killed_mid_write_leaves_the_previous_state(warehouse_url, tmp_path):
    centre = CallCentre(warehouse_url)
    centre.log((at("10:00:00"), "a1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("10:00:30"), "a1", "q1", "NONE", "ABANDON", "1", "1", "30"))
    centre.run("10:00")
    before = _classified(warehouse_url)
    assert before == [("a1", "abandoned")]
    centre.log((at("10:10:00"), "a2", "q1", "NONE", "FULL"))

    # Hold a lock the classification needs after it has deleted and re-inserted the hour's
    # calls (queue_log_rejects comes next in the same transaction); kill the run there.
    blocker = create_engine(warehouse_url).connect()
    blocker.execute(text("BEGIN; LOCK TABLE queue_log_rejects IN ACCESS EXCLUSIVE MODE"))
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        from stat_pipeline_tests.harness import CallCentre
        CallCentre({warehouse_url!r}).run("10:00")
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:   # until the run waits on our lock, inside its classification
            waiting = blocker.execute(text(
                "SELECT count(*) FROM pg_locks WHERE NOT granted "
                "AND relation = 'queue_log_rejects'::regclass")).scalar()
            if waiting:
                break
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        blocker.execute(text("ROLLBACK"))
        blocker.close()
    time.sleep(0.5)  # the server notices the dead client and rolls its transaction back
    assert _classified(warehouse_url) == before  # nothing half-written
    centre.run("10:00")                           # the next run repairs it
    assert _classified(warehouse_url) == [("a1", "abandoned"), ("a2", "full")]
    centre.close()


def test_lost_source_fails_clearly_and_is_retried(warehouse_url, monkeypatch):
    monkeypatch.setenv("STAT_RETRY_DELAY_SECONDS", "0.05")
    centre = CallCentre(warehouse_url)
    gone = PostgresQueueLogSource(url="postgresql+psycopg2://nobody@/nowhere?host=/nonexistent",
                                  table="asterisk.queue_log")
    defs = build_definitions(partitions=hourly_partitions(start=DAY, end=DAY + dt.timedelta(days=1)),
                             source=gone, warehouse=Warehouse(url=warehouse_url),
                             wazo_config=centre.config)
    result = defs.resolve_job_def(HOURLY_JOB).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), run_config=QUIET, partition_key="2024-03-01-10:00",
        raise_on_error=False)
    assert not result.success
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 3
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.user_failure_data.description
    assert message.startswith("queue_log source pg:asterisk.queue_log unreachable:")
    assert "\n" not in message
    centre.close()


def test_piped_copy_raises_the_producers_error_after_what_came():
    taken = []

    def produce(sink):
        sink.write(b"first rows\n")
        raise ConnectionResetError("source gone")

    with pytest.raises(ConnectionResetError, match="source gone"):
        piped_copy(produce, lambda stream: taken.append(stream.read()))
    assert taken == [b"first rows\n"]  # the caller's transaction is what undoes them


def test_piped_copy_stops_the_producer_when_the_consumer_fails():
    written = []

    def produce(sink):  # far more than a pipe holds: it would block forever if not stopped
        for _ in range(10_000):
            sink.write(b"x" * 4096)
            written.append(1)

    def consume(stream):
        stream.read(10)
        raise ValueError("warehouse refused")

    with pytest.raises(ValueError, match="warehouse refused"):
        piped_copy(produce, consume)
    assert len(written) < 10_000


def test_source_failing_while_read_leaves_the_previous_copy(warehouse_url, monkeypatch):
    """The source's rows stream into the warehouse while they are read: an error in the
    middle of the source's COPY leaves the rows already streamed in the staging table, and
    the run's transaction must drop them with everything else."""
    monkeypatch.setenv("STAT_RETRY_DELAY_SECONDS", "0.05")
    centre = CallCentre(warehouse_url)
    centre.log(*[(at(f"10:{m:02d}:00"), f"c{m}", "q1", "NONE", "ENTERQUEUE", "", "06", "1")
                 for m in range(0, 50)])
    centre.run("10:00")
    copied = centre.query("SELECT id, source_id, ingested_at FROM queue_log ORDER BY id")
    assert len(copied) == 50
    centre.log((at("10:55:00"), "boom", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("10:56:00"), "after", "q1", "NONE", "ENTERQUEUE", "", "06", "1"))
    with centre.engine.begin() as conn:  # a source that fails at one row, after the others
        conn.exec_driver_sql(
            "CREATE VIEW asterisk.queue_log_breaks AS SELECT * FROM asterisk.queue_log "
            "WHERE CASE WHEN callid = 'boom' THEN 1 / 0 = 1 ELSE true END")
    breaking = PostgresQueueLogSource(url=warehouse_url, table="asterisk.queue_log_breaks")
    defs = build_definitions(partitions=hourly_partitions(start=DAY, end=DAY + dt.timedelta(days=1)),
                             source=breaking, warehouse=Warehouse(url=warehouse_url),
                             wazo_config=centre.config)
    result = defs.resolve_job_def(HOURLY_JOB).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), run_config=QUIET,
        partition_key="2024-03-01-10:00", raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "division by zero" in str(failure.step_failure_data.error)
    assert centre.query("SELECT id, source_id, ingested_at FROM queue_log ORDER BY id") == copied
    centre.run("10:00")  # the real source again: both new rows arrive
    assert len(centre.query("SELECT id FROM queue_log")) == 52
    centre.close()
