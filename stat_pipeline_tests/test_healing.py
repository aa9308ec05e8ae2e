"""Self-healing (issue 12 #2): the stale_hours sensor re-requests the hours whose run failed
(a source outage longer than the step retries) or that the warehouse shows half-written (a
killed worker), waits while the source is down without spending attempts, gives up after a
bounded number of attempts with a warning naming the hours, and leaves the hours of a run in
progress alone. Real PostgreSQL, real Dagster runs and sensor evaluations."""
from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from stat_pipeline.definitions import HOURLY_JOB, QUIET, build_definitions
from stat_pipeline.healing import ATTEMPT_TAG, RunInfo, find_stale
from stat_pipeline.partitions import hourly_partitions
from stat_pipeline.resources import Warehouse
from stat_pipeline.sources import PostgresQueueLogSource
from stat_pipeline_tests.harness import DAY, CallCentre, at
from stat_pipeline_tests.test_automation import execute

H = dt.timedelta(hours=1)
RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
DOWN = "postgresql+psycopg2://nobody@127.0.0.1:1/none"   # nothing listens on port 1


@pytest.fixture
def centre(warehouse_url):
    c = CallCentre(warehouse_url)
    yield c
    c.close()


def heal_tick(centre: CallCentre, source=None):
    sensor = centre.defs.resolve_sensor_def("stale_hours")
    with dg.build_sensor_context(instance=centre.instance, resources={
            "source": source or centre.source, "warehouse": Warehouse(url=centre.url)}) as ctx:
        return sensor(ctx)


def tags(first: str, last: str, **more) -> dict:
    return {RANGE[0]: f"2024-03-01-{first}", RANGE[1]: f"2024-03-01-{last}", **more}


def run_with_source_down(centre: CallCentre, first: str, last: str) -> dg.ExecuteInProcessResult:
    """The sensor's run of these hours while the source is unreachable: it fails."""
    down = build_definitions(
        partitions=hourly_partitions(start=DAY - dt.timedelta(days=1), end=DAY + dt.timedelta(days=2)),
        source=PostgresQueueLogSource(url=DOWN, table="asterisk.queue_log"),
        warehouse=Warehouse(url=centre.url), wazo_config=centre.config)
    result = down.resolve_job_def(HOURLY_JOB).execute_in_process(
        instance=centre.instance, run_config=QUIET, tags=tags(first, last), raise_on_error=False)
    assert not result.success
    return result


def requested(result) -> list[tuple[str, str]]:
    return [(r.tags[RANGE[0]], r.tags[RANGE[1]]) for r in result.run_requests]


def test_a_failed_run_is_healed_by_the_next_tick_once_the_source_is_back(centre):
    centre.log((at("10:55:00"), "c1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("11:02:00"), "c1", "q1", "Agent/1", "CONNECT", "420", "c1.1", "1"),
               (at("11:09:00"), "c1", "q1", "Agent/1", "COMPLETEAGENT", "420", "420", "1"),
               (at("12:00:00"), "a1", "q1", "NONE", "FULL"))
    centre.run("10:00", "12:00")                   # the tables of one correct run
    good = (centre.calls(), centre.periodic())
    assert len(good[0]) == 2
    with centre.engine.begin() as conn:           # a later outage hits the same hours' rerun
        conn.exec_driver_sql("TRUNCATE queue_log, classified_calls, stat_call_on_queue, "
                             "stat_queue_periodic, stat_agent_periodic")
    run_with_source_down(centre, "10:00", "12:00")
    assert heal_tick(centre, PostgresQueueLogSource(url=DOWN, table="asterisk.queue_log")
                     ).skip_message.startswith("3 hour(s) out of date: 2024-03-01-10:00..2024-03-01-12:00; waiting for the source")
    back = heal_tick(centre)                       # the source is back
    assert not isinstance(back, dg.SkipReason), back.skip_message
    assert requested(back) == [("2024-03-01-10:00", "2024-03-01-12:00")]
    assert back.run_requests[0].tags[ATTEMPT_TAG] == "1"
    execute(centre, back)
    assert (centre.calls(), centre.periodic()) == good
    done = heal_tick(centre)
    assert isinstance(done, dg.SkipReason) and "every hour is up to date" in done.skip_message


def test_a_heal_that_keeps_failing_is_retried_a_bounded_number_of_times(centre, monkeypatch):
    from stat_pipeline import healing

    monkeypatch.setattr(healing, "MAX_ATTEMPTS", 2)
    centre.log((at("10:10:00"), "a1", "q1", "NONE", "FULL"))
    run_with_source_down(centre, "10:00", "10:00")
    first = heal_tick(centre)
    assert requested(first) == [("2024-03-01-10:00",) * 2]
    for attempt in ("1", "2"):                     # the heal runs fail too (a broken hour)
        down = build_definitions(
            partitions=hourly_partitions(start=DAY - dt.timedelta(days=1), end=DAY + dt.timedelta(days=2)),
            source=PostgresQueueLogSource(url=DOWN, table="asterisk.queue_log"),
            warehouse=Warehouse(url=centre.url), wazo_config=centre.config)
        assert not down.resolve_job_def(HOURLY_JOB).execute_in_process(
            instance=centre.instance, run_config=QUIET, raise_on_error=False,
            tags=tags("10:00", "10:00", **{ATTEMPT_TAG: attempt})).success
        result = heal_tick(centre)
        if attempt == "1":
            assert result.run_requests[0].tags[ATTEMPT_TAG] == "2"
    assert isinstance(result, dg.SkipReason)
    assert "1 hour(s) failed 2 heal attempts" in result.skip_message
    assert "2024-03-01-10:00" in result.skip_message


def test_hours_copied_but_not_classified_are_healed(centre):
    """A worker killed between the copy and the classification: the ledger shows queue_log
    written after (here: without) classified_calls."""
    centre.log((at("14:05:00"), "c1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("14:06:00"), "c1", "q1", "NONE", "ABANDON", "1", "1", "60"))
    centre.run("14:00", assets=["queue_log"])
    result = heal_tick(centre)
    assert requested(result) == [("2024-03-01-14:00",) * 2]
    assert result.run_requests[0].tags["stat_pipeline/heals"] == "ledger"
    execute(centre, result)
    assert [c[3] for c in centre.calls()] == ["abandoned"]
    assert isinstance(heal_tick(centre), dg.SkipReason)


def test_hours_of_a_run_in_progress_are_left_alone():
    runs = [RunInfo("f", dg.DagsterRunStatus.FAILURE, 1.0, tags("10:00", "13:00")),
            RunInfo("a", dg.DagsterRunStatus.STARTED, 2.0, tags("12:00", "14:00")),
            RunInfo("s", dg.DagsterRunStatus.SUCCESS, 3.0, tags("10:00", "10:00")),
            RunInfo("old", dg.DagsterRunStatus.SUCCESS, 0.5, tags("11:00", "11:00"))]
    stale = find_stale(runs, [DAY + 13 * H, DAY + 20 * H])
    # 10:00 succeeded later; 12..14 are being written; 11:00's success was before the failure
    assert stale.hours == {DAY + 11 * H: ("f", 1), DAY + 20 * H: ("ledger", 1)}
    assert stale.in_progress == {DAY + 12 * H, DAY + 13 * H, DAY + 14 * H}


def test_an_agent_only_success_does_not_hide_a_failed_full_run():
    """The catch-up runs stat_agent_periodic alone over hours only an open login touches;
    such a run succeeding later over an hour whose full run failed proves nothing about the
    hour's calls: the hour stays out of date."""
    runs = [RunInfo("f", dg.DagsterRunStatus.FAILURE, 1.0, tags("10:00", "11:00")),
            RunInfo("agent", dg.DagsterRunStatus.SUCCESS, 2.0, tags("10:00", "12:00"),
                    full_chain=False),
            RunInfo("full", dg.DagsterRunStatus.SUCCESS, 3.0, tags("11:00", "11:00"))]
    assert find_stale(runs, []).hours == {DAY + 10 * H: ("f", 1)}
