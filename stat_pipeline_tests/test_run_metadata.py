"""What the UI shows after a range run: every hour its own figures, the range's totals on the
run, and no check rows left PLANNED (run_metadata.py). Read back from the Dagster instance,
compared with the warehouse tables."""
from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from stat_pipeline_tests.harness import DAY, CallCentre, at, hour_key

HOURS = ["09:00", "10:00", "11:00", "12:00", "13:00"]  # 09:00 and 11:00 stay empty


@pytest.fixture
def centre(warehouse_url):
    c = CallCentre(warehouse_url, until=DAY + dt.timedelta(hours=23, minutes=59))
    c.log(
        # 10:00: q1 two answered (waits 10 and 20), one abandoned; q2 one timeout
        (at("10:00:00"), "a1", "q1", "NONE", "ENTERQUEUE", "", "0601", "1"),
        (at("10:00:10"), "a1", "q1", "Agent/1", "CONNECT", "10", "a1.1", "3"),
        (at("10:05:10"), "a1", "q1", "Agent/1", "COMPLETEAGENT", "10", "300", "1"),
        (at("10:01:00"), "a2", "q1", "NONE", "ENTERQUEUE", "", "0602", "1"),
        (at("10:03:00"), "a2", "q1", "Agent/2", "COMPLETECALLER", "20", "100", "1"),
        (at("10:10:00"), "b1", "q1", "NONE", "ENTERQUEUE", "", "0611", "1"),
        (at("10:10:30"), "b1", "q1", "NONE", "ABANDON", "1", "1", "30"),
        (at("10:11:00"), "b2", "q2", "NONE", "ENTERQUEUE", "", "0612", "1"),
        (at("10:12:00"), "b2", "q2", "NONE", "EXITWITHTIMEOUT", "1", "1", "60"),
        # 12:00: q1 one full; q2 one answered (wait 40), its outcome in the next hour
        (at("12:20:00"), "s1", "q1", "NONE", "FULL"),
        (at("12:50:00"), "c1", "q2", "NONE", "ENTERQUEUE", "", "0621", "1"),
        (at("12:50:40"), "c1", "q2", "Agent/1", "CONNECT", "40", "c1.1", "2"),
        (at("13:10:40"), "c1", "q2", "Agent/1", "COMPLETECALLER", "40", "1200", "1"),
        # 13:00: q1 one abandoned
        (at("13:30:00"), "d1", "q1", "NONE", "ENTERQUEUE", "", "0631", "1"),
        (at("13:30:05"), "d1", "q1", "NONE", "ABANDON", "1", "1", "5"),
    )
    yield c
    c.close()


def _latest(instance: dg.DagsterInstance, asset: str, key: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), limit=1).records
    assert len(records) == 1, (asset, key)
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def _count(centre, sql: str, hour: dt.datetime) -> int:
    return centre.query(sql, start=hour, end=hour + dt.timedelta(hours=1))[0][0]


def test_each_hour_of_a_range_run_carries_its_own_figures(centre):
    result = centre.run(HOURS[0], HOURS[-1])
    instance = centre.instance
    for hhmm in HOURS:
        key, hour = hour_key(hhmm), at(hhmm + ":00")
        periodic = centre.query(
            'SELECT q.name, p.total, p.answered, p.abandoned, p.timeout, p."full", '
            "p.leaveempty, p.joinempty "
            "FROM stat_queue_periodic p JOIN stat_queue q ON q.id = p.stat_queue_id "
            'WHERE p."time" = :hour ORDER BY q.name', hour=hour)
        meta = _latest(instance, "stat_queue_periodic", key)
        assert meta["dagster/row_count"] == len(periodic)
        assert meta["calls_total"] == sum(r.total for r in periodic)
        assert meta["calls_answered"] == sum(r.answered for r in periodic)
        assert meta["calls_abandoned"] == sum(r.abandoned for r in periodic)
        # wazo-call-logd's answered_rate (wazo_call_logd_stats.md 4.2): percent of the calls
        # that could be answered, closed and divert_* left out; null without any
        answerable = sum(r.answered + r.abandoned + r.full + r.leaveempty + r.joinempty + r.timeout
                         for r in periodic)
        assert meta["answered_rate"] == (round(100 * sum(r.answered for r in periodic)
                                               / answerable, 2) if answerable else None)
        waits = centre.query(
            "SELECT avg(waittime) FROM stat_call_on_queue WHERE \"time\" >= :s AND \"time\" < :e "
            "AND status = 'answered'", s=hour, e=hour + dt.timedelta(hours=1))[0][0]
        assert meta["avg_wait_answered_s"] == round(float(waits or 0), 1)
        for r in periodic:  # the per-queue table has this hour's row of every queue
            assert f"| {r.name} | {r.total} | {r.answered} | {r.abandoned} | {r.timeout} |" \
                in meta["per_queue"]
        assert not any(k.startswith("run_") for k in meta)

        statuses = dict(centre.query(
            "SELECT status, count(*) FROM classified_calls WHERE call_time >= :s "
            "AND call_time < :e GROUP BY status", s=hour, e=hour + dt.timedelta(hours=1)))
        calls = _latest(instance, "classified_calls", key)
        assert calls["dagster/row_count"] == sum(statuses.values())
        assert calls["calls_by_status"] == statuses
        for status in ("answered", "abandoned", "timeout", "full"):
            assert calls[f"calls_{status}"] == statuses.get(status, 0)

        for asset, table, column in [("queue_log", "queue_log", '"time"'),
                                     ("stat_call_on_queue", "stat_call_on_queue", '"time"'),
                                     ("stat_agent_periodic", "stat_agent_periodic", '"time"')]:
            rows = _count(centre, f"SELECT count(*) FROM {table} WHERE {column} >= :start "
                                  f"AND {column} < :end", hour)
            assert _latest(instance, asset, key)["dagster/row_count"] == rows, (asset, key)

    # the figures differ hour by hour: what the partition plots draw
    totals = [_latest(instance, "stat_queue_periodic", hour_key(h))["calls_total"] for h in HOURS]
    assert totals == [0, 4, 0, 2, 1]

    # the range's totals: once per asset, on no hour
    ranges = {e.asset_key.to_user_string(): e.event_specific_data.asset_observation
              for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"}
    assert set(ranges) == {"queue_log", "classified_calls", "stat_call_on_queue",
                           "stat_queue_periodic", "stat_agent_periodic"}
    summary = ranges["stat_queue_periodic"]
    assert summary.partition is None
    assert summary.metadata["run_calls_total"].value == 7
    assert summary.metadata["run_hours"].value == len(HOURS)
    assert summary.metadata["run_partition_range"].value == f"{hour_key(HOURS[0])} … {hour_key(HOURS[-1])}"
    assert ranges["classified_calls"].metadata["run_calls_abandoned"].value == 2


def test_one_hour_run_keeps_the_run_facts_on_its_hour(centre):
    result = centre.run("10:00")
    meta = _latest(centre.instance, "queue_log", hour_key("10:00"))
    assert meta["rows_without_time"] == 0 and meta["duplicate_rows_removed"] == 0
    assert meta["dagster/row_count"] == 9
    # no range, no range summary
    assert not [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]


def _check_rows(instance: dg.DagsterInstance) -> list:
    with instance.event_log_storage.index_connection() as conn:
        return conn.exec_driver_sql(
            "SELECT check_name, partition, execution_status, run_id FROM asset_check_executions"
        ).all()


@pytest.mark.parametrize("hours", [HOURS, ["10:00"]])
def test_runs_leave_no_planned_check_rows(centre, hours):
    result = centre.run(hours[0], hours[-1])
    rows = _check_rows(centre.instance)
    # before: one PLANNED row per hour and check that never resolved (30 for 5 hours)
    assert [r for r in rows if r.execution_status == "PLANNED"] == []
    # every check still evaluated and recorded once, for the run
    names = {"one_call_per_enterqueue", "plausible_durations", "no_stale_pending_calls",
             "clock_skew", "rejected_rows", "unused_outcome_rows", "totals_consistent"}
    assert sorted(r.check_name for r in rows) == sorted(names)
    assert {r.run_id for r in rows} == {result.run_id}
    assert {r.partition for r in rows} == {None}
    assert {r.execution_status for r in rows} <= {"SUCCEEDED", "FAILED"}
    assert {c.check_name for c in result.get_asset_check_evaluations()} == names
    # recorded without "not selected ... letting it through" (or slow-path) warnings
    logs = centre.instance.all_logs(result.run_id)
    assert not [r.user_message for r in logs if r.level >= 30 and (
        "Letting it through" in r.user_message or "slow path" in r.user_message)]


def test_checks_of_a_ui_selection_still_run(centre):
    """A run that selects the checks (the asset page's Materialize) plans and resolves them."""
    centre.run("10:00", assets=["queue_log", "classified_calls"])
    rows = _check_rows(centre.instance)
    assert {r.check_name for r in rows if r.execution_status in ("SUCCEEDED", "FAILED")} == {
        "one_call_per_enterqueue", "plausible_durations", "no_stale_pending_calls",
        "clock_skew", "rejected_rows", "unused_outcome_rows"}
