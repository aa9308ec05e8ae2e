"""Call classification through the real pipeline: PostgreSQL source table -> Dagster job ->
warehouse tables. Each scenario states the Wazo rule (or our documented fix) it checks."""
from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from stat_pipeline_tests.harness import DAY, CallCentre, at


@pytest.fixture
def centre(warehouse_url):
    c = CallCentre(warehouse_url, until=DAY + dt.timedelta(hours=23, minutes=59))
    yield c
    c.close()


def test_every_status_and_transfer_form(centre):
    centre.log(
        (at("10:00:00"), "a1", "q1", "NONE", "ENTERQUEUE", "", "0601", "1"),
        (at("10:00:10"), "a1", "q1", "Agent/1", "CONNECT", "10", "a1.1", "3"),
        (at("10:05:10"), "a1", "q1", "Agent/1", "COMPLETEAGENT", "10", "300", "1"),
        (at("10:01:00"), "a2", "q1", "NONE", "ENTERQUEUE", "", "0602", "1"),
        (at("10:03:00"), "a2", "q1", "Agent/2", "COMPLETECALLER", "20", "100", "1"),
        (at("10:02:00"), "a3", "q1", "NONE", "ENTERQUEUE", "", "0603", "1"),
        (at("10:04:00"), "a3", "q1", "Agent/1", "BLINDTRANSFER", "2000", "default", "5", "115", "1"),
        (at("10:03:00"), "a4", "q1", "NONE", "ENTERQUEUE", "", "0604", "1"),
        (at("10:05:00"), "a4", "q1", "Agent/2", "ATTENDEDTRANSFER", "BRIDGE", "b-1", "6", "114", "1"),
        (at("10:04:00"), "a5", "q1", "NONE", "ENTERQUEUE", "", "0605", "1"),
        (at("10:06:00"), "a5", "q1", "Agent/2", "ATTENDEDTRANSFER", "APP", "Queue", "7", "113", "1"),
        (at("10:05:00"), "a6", "q1", "NONE", "ENTERQUEUE", "", "0606", "1"),
        (at("10:07:00"), "a6", "q1", "Agent/1", "ATTENDEDTRANSFER", "LINK", "chan1", "chan2", "8", "112|1"),
        (at("10:06:00"), "a7", "q1", "NONE", "ENTERQUEUE", "", "0607", "1"),
        (at("10:08:00"), "a7", "q1", "Agent/1", "TRANSFER", "2000", "default", "9", "111", "1"),
        (at("10:10:00"), "b1", "q1", "NONE", "ENTERQUEUE", "", "0611", "1"),
        (at("10:10:30"), "b1", "q1", "NONE", "ABANDON", "1", "1", "30"),
        (at("10:11:00"), "b2", "q1", "NONE", "ENTERQUEUE", "", "0612", "1"),
        (at("10:12:00"), "b2", "q1", "NONE", "EXITWITHTIMEOUT", "1", "1", "60"),
        (at("10:13:00"), "b3", "q1", "NONE", "ENTERQUEUE", "", "0613", "1"),
        (at("10:13:20"), "b3", "q1", "NONE", "EXITEMPTY", "1", "1", "20"),
        (at("10:13:20.600"), "b3", "q1", "NONE", "LEAVEEMPTY"),
        (at("10:14:00"), "b4", "q1", "NONE", "ENTERQUEUE", "", "0614", "1"),
        (at("10:14:09"), "b4", "q1", "NONE", "EXITWITHKEY", "5", "1", "1", "9"),
        (at("10:20:00"), "s1", "q1", "NONE", "FULL"),
        (at("10:21:00"), "s2", "q1", "NONE", "CLOSED"),
        (at("10:22:00"), "s3", "q1", "NONE", "JOINEMPTY"),
        (at("10:23:00"), "s4", "q1", "NONE", "DIVERT_CA_RATIO"),
        (at("10:24:00"), "s5", "q1", "NONE", "DIVERT_HOLDTIME"),
    )
    result = centre.run("10:00")
    got = {(c[0], c[3], c[5], c[6]) for c in centre.calls()}
    assert got == {
        ("a1", "answered", 10, 300), ("a2", "answered", 20, 100), ("a3", "answered", 5, 115),
        ("a4", "answered", 6, 114), ("a5", "answered", 7, 113), ("a6", "answered", 8, 112),
        ("a7", "answered", 9, 111), ("b1", "abandoned", 30, 0), ("b2", "timeout", 60, 0),
        # LEAVEEMPTY: LEAVEEMPTY time - ENTERQUEUE time, rounded (20.6 s -> 21)
        ("b3", "leaveempty", 21, 0),
        ("s1", "full", 0, 0), ("s2", "closed", 0, 0), ("s3", "joinempty", 0, 0),
        ("s4", "divert_ca_ratio", 0, 0), ("s5", "divert_waittime", 0, 0),
    }
    # EXITWITHKEY is not a Wazo status: in classified_calls only
    statuses = {r.callid: r.status for r in centre.classified()}
    assert statuses["b4"] == "exitwithkey"
    assert {r.callid: r.ringtime for r in centre.classified()}["a1"] == 3
    # metadata: one numeric entry per status, for the UI's plots
    meta = result.asset_materializations_for_node("stat_call_on_queue")[0].metadata
    assert meta["calls_answered"].value == 7 and meta["calls_divert_waittime"].value == 1
    periodic = centre.periodic()
    assert len(periodic) == 1
    (_, queue, answered, abandoned, total, full, closed, joinempty, leaveempty, ca_ratio,
     waittime, timeout) = periodic[0]
    assert (queue, answered, abandoned, full, closed, joinempty, leaveempty, ca_ratio, waittime,
            timeout) == ("q1", 7, 1, 1, 1, 1, 1, 1, 1, 1)
    assert total == 15 == len(centre.calls())


def test_late_outcome_completes_pending_call(centre):
    centre.log((at("10:59:50"), "c1", "q1", "NONE", "ENTERQUEUE", "", "0601", "1"))
    centre.run("10:00")
    assert [(r.callid, r.status) for r in centre.classified()] == [("c1", "pending")]
    assert centre.calls() == []

    # the outcome arrives in the next hour
    centre.log((at("11:00:00"), "c1", "q1", "Agent/1", "CONNECT", "10", "c1.1", "2"),
               (at("11:05:00"), "c1", "q1", "Agent/1", "COMPLETECALLER", "10", "300", "1"))
    centre.run("11:00")
    # hour 11 does not own the call (its ENTERQUEUE is at 10:59:50): nothing counted twice
    assert centre.calls() == []
    centre.run("10:00")  # what the new-rows sensor requests: the hour the call started in
    calls = centre.calls()
    assert [(c[0], c[3], c[4], c[5], c[6]) for c in calls] == [
        ("c1", "answered", at("10:59:50"), 10, 300)]
    assert [(p[0], p[2], p[4]) for p in centre.periodic()] == [(at("10:00:00"), 1, 1)]


def test_range_run_copies_before_classifying(centre):
    centre.log((at("10:59:50"), "c1", "q1", "NONE", "ENTERQUEUE", "", "0601", "1"),
               (at("11:00:20"), "c1", "q1", "NONE", "ABANDON", "1", "1", "30"))
    centre.run("10:00", "11:00")  # one run: queue_log of both hours, then the calls
    assert [(c[0], c[3], c[5]) for c in centre.calls()] == [("c1", "abandoned", 30)]


def test_pending_becomes_no_outcome_after_lookahead(warehouse_url):
    late = CallCentre(warehouse_url, until=DAY + dt.timedelta(days=1, hours=12))
    late.log((at("10:00:00"), "c1", "q1", "NONE", "ENTERQUEUE", "", "0601", "1"))
    late.run("10:00")
    assert [r.status for r in late.classified()] == ["no_outcome"]
    late.close()


def test_enter_and_abandon_at_same_instant(centre):
    # the ABANDON row even comes first in id order (Q6): the call must not be lost
    centre.log((at("10:00:00"), "a1", "q1", "NONE", "ABANDON", "1", "1", "0"),
               (at("10:00:00"), "a1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"))
    centre.run("10:00")
    assert [(c[0], c[3], c[5]) for c in centre.calls()] == [("a1", "abandoned", 0)]


def test_reentry_in_same_queue_is_two_calls(centre):
    centre.log(
        (at("10:00:00"), "c14", "q1", "NONE", "ENTERQUEUE", "", "0614", "1"),
        (at("10:01:00"), "c14", "q1", "Agent/1", "COMPLETEAGENT", "5", "55", "1"),
        (at("10:02:00"), "c14", "q1", "NONE", "ENTERQUEUE", "", "0614", "1"),
        (at("10:03:00"), "c14", "q1", "Agent/2", "COMPLETEAGENT", "10", "50", "1"),
    )
    centre.run("10:00")
    assert [(c[4], c[5], c[6]) for c in centre.calls()] == [
        (at("10:00:00"), 5, 55), (at("10:02:00"), 10, 50)]


def test_outcome_pairs_within_its_queue(centre):
    centre.log(
        # overflow: timeout in q1, then abandoned in q2
        (at("10:00:00"), "o1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
        (at("10:01:00"), "o1", "q1", "NONE", "EXITWITHTIMEOUT", "1", "1", "60"),
        (at("10:01:01"), "o1", "q2", "NONE", "ENTERQUEUE", "", "06", "1"),
        (at("10:01:31"), "o1", "q2", "NONE", "ABANDON", "1", "1", "30"),
        # interleaved (Q15): the ABANDON says q1, the latest ENTERQUEUE is q2's
        (at("10:10:00"), "o2", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
        (at("10:10:30"), "o2", "q2", "NONE", "ENTERQUEUE", "", "06", "1"),
        (at("10:11:00"), "o2", "q1", "NONE", "ABANDON", "1", "1", "60"),
    )
    centre.run("10:00")
    assert {(c[0], c[1], c[3], c[5]) for c in centre.calls()} == {
        ("o1", "q1", "timeout", 60), ("o1", "q2", "abandoned", 30), ("o2", "q1", "abandoned", 60)}
    assert {(r.callid, r.queuename): r.status for r in centre.classified()}[("o2", "q2")] == "pending"


def test_outcomes_without_enterqueue(centre):
    centre.log(
        (at("10:20:00"), "p1", "q1", "Agent/1", "COMPLETECALLER", "15", "100", "1"),
        (at("10:30:00"), "p2", "q1", "NONE", "ABANDON", "1", "1", "45"),
        (at("10:40:20"), "p3", "q1", "NONE", "EXITEMPTY", "1", "1", "20"),
        (at("10:40:20.500"), "p3", "q1", "NONE", "LEAVEEMPTY"),
    )
    centre.run("10:00")
    assert [(c[0], c[3], c[4], c[5], c[6]) for c in centre.calls()] == [
        ("p1", "answered", at("10:18:05"), 15, 100),    # end - talk - wait, as Wazo
        ("p2", "abandoned", at("10:29:15"), 45, 0),     # end - wait
        ("p3", "leaveempty", at("10:40:00.5"), 20, 0),  # LEAVEEMPTY - EXITEMPTY's wait
    ]
    assert all(r.partial and "without ENTERQUEUE" in r.note for r in centre.classified())


def test_duplicate_outcome_counts_once(centre):
    centre.log((at("10:00:00"), "d1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("10:00:30"), "d1", "q1", "NONE", "ABANDON", "1", "1", "30"),
               (at("10:00:30"), "d1", "q1", "NONE", "ABANDON", "1", "1", "30"))
    centre.run("10:00")
    assert [(c[0], c[3]) for c in centre.calls()] == [("d1", "abandoned")]


def test_bad_rows_do_not_stop_the_run(centre):
    long_callid = "sys-very-long-system-name-1709283600.123456"
    centre.log(
        (at("10:00:00"), "e1", None, "NONE", "FULL"),                               # NULL queue
        (at("10:01:00"), long_callid, "q1", "NONE", "FULL"),                        # > 32 chars
        (at("10:02:00"), "e3", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
        (at("10:02:40"), "e3", "q1", "NONE", "ABANDON", "1", "1", ""),              # empty wait
        (at("10:03:00"), "e4", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
        (at("10:03:05"), "e4", "q1", "Agent/1", "CONNECT", "5", "e4.1", "1"),
        (at("10:04:05"), "e4", "q1", "Agent/1", "COMPLETEAGENT", "5", "abc", "1"),  # bad talk
    )
    result = centre.run("10:00")
    assert {(c[0], c[3], c[5], c[6]) for c in centre.calls()} == {
        ("e3", "abandoned", 40, 0), ("e4", "answered", 5, 60)}
    rejects = centre.query("SELECT reason, disposition FROM queue_log_rejects ORDER BY reason")
    dispositions = sorted(r.disposition for r in rejects)
    assert dispositions == ["ignored", "not exported", "repaired", "repaired"], rejects
    assert any(long_callid == r.callid for r in centre.classified())
    meta = result.asset_materializations_for_node("classified_calls")[0].metadata
    assert meta["rejected_rows"].value == 4


def test_rematerializing_gives_the_same_tables(centre):
    centre.log((at("10:00:00"), "a1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("10:00:30"), "a1", "q1", "NONE", "ABANDON", "1", "1", "30"),
               (at("10:30:00"), "s1", "q2", "NONE", "FULL"))
    centre.run("10:00")
    first = (centre.calls(), centre.periodic(), centre.classified())
    centre.run("10:00")
    centre.run("09:00", "11:00")
    assert (centre.calls(), centre.periodic(), centre.classified()) == first
    ingested = centre.query("SELECT source_id, ingested_at FROM queue_log ORDER BY source_id")
    centre.run("10:00")
    # the first ingestion time survives re-materialization (it measures lateness)
    assert centre.query("SELECT source_id, ingested_at FROM queue_log ORDER BY source_id") == ingested


def test_asset_checks(centre):
    centre.log((at("10:00:00"), "a1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("10:00:30"), "a1", "q1", "NONE", "ABANDON", "1", "1", "30"),
               (at("10:05:00"), "a2", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("10:06:00"), "a3", None, "NONE", "FULL"))
    result = centre.run("10:00")
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["one_call_per_enterqueue"].passed
    assert checks["one_call_per_enterqueue"].metadata["enterqueues"].value == 2
    assert checks["plausible_durations"].passed
    assert checks["totals_consistent"].passed
    assert not checks["rejected_rows"].passed                # the NULL-queue FULL row
    assert checks["rejected_rows"].severity == dg.AssetCheckSeverity.WARN
    assert checks["no_stale_pending_calls"].passed           # a2 is pending, not stale yet
    # a tampered table is caught
    with centre.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE stat_queue_periodic SET total = total + 1")
    from stat_pipeline.assets.queue_stats import _q as queue_q
    with centre.engine.connect() as conn:
        bad = conn.execute(queue_q("check_totals"), {"start": at("10:00:00"),
                                                     "end": at("11:00:00")}).one()
    assert bad.bad_sums == 1 and bad.bad_totals == 1


def test_range_run_metadata_is_true_per_hour(centre):
    centre.log((at("10:00:00"), "a1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("10:00:30"), "a1", "q1", "NONE", "ABANDON", "1", "1", "30"),
               (at("11:10:00"), "s1", "q1", "NONE", "FULL"),
               (at("11:20:00"), "s2", "q1", "NONE", "FULL"))
    result = centre.run("10:00", "11:00")
    materialized = result.asset_materializations_for_node("stat_call_on_queue")
    # the run's totals are on every hour, but never under an hour's name
    assert {m.partition for m in materialized} == {"2024-03-01-10:00", "2024-03-01-11:00"}
    assert all("calls_full" not in m.metadata and m.metadata["run_calls_full"].value == 2
               for m in materialized)
    observed = {e.event_specific_data.asset_observation.partition:
                e.event_specific_data.asset_observation.metadata
                for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"
                and e.asset_key.path == ["stat_call_on_queue"]}
    assert observed["2024-03-01-10:00"]["calls_abandoned"].value == 1
    assert observed["2024-03-01-10:00"]["calls_full"].value == 0
    assert observed["2024-03-01-11:00"]["calls_full"].value == 2


def test_lateness_is_measured_on_ingestion(centre):
    # rows of 2024 copied today: more than a year late
    centre.log((at("10:00:00"), "l1", "q1", "NONE", "FULL"))
    result = centre.run("10:00")
    meta = result.asset_materializations_for_node("queue_log")[0].metadata
    assert meta["lateness_max_s"].value > 365 * 86400
    assert meta["lateness_p50_s"].value <= meta["lateness_p99_s"].value <= meta["lateness_max_s"].value
    assert centre.query("SELECT source_time FROM queue_log")[0].source_time.startswith("2024-03-01 10:00:00")


def test_queue_name_longer_than_wazo_column_is_kept_aside(centre):
    # stat_queue.name is varchar(128): such a queue has no stat_queue row, so its calls
    # would reach stat_call_on_queue without a queue. They stay in classified_calls and
    # are kept aside as 'not exported', with the reason, and counted.
    long_queue = "q" * 129
    centre.log((at("10:00:00"), "l1", long_queue, "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("10:00:30"), "l1", long_queue, "NONE", "ABANDON", "1", "1", "30"),
               (at("10:05:00"), "l2", long_queue, "NONE", "FULL"),
               (at("10:06:00"), "l3", "q" * 128, "NONE", "FULL"))
    result = centre.run("10:00")
    assert [(c[0], c[1], c[3]) for c in centre.calls()] == [("l3", "q" * 128, "full")]
    assert {(r.callid, r.status) for r in centre.classified()} == {
        ("l1", "abandoned"), ("l2", "full"), ("l3", "full")}
    rejects = centre.query("SELECT source_id, stage, disposition, reason FROM queue_log_rejects "
                           "ORDER BY source_id")
    assert [(r.source_id, r.stage, r.disposition) for r in rejects] == [
        (1, "classify", "not exported"), (2, "classify", "not exported"),
        (3, "classify", "not exported")]
    assert all("queuename longer than 128 characters" in r.reason for r in rejects)
    meta = result.asset_materializations_for_node("classified_calls")[0].metadata
    assert meta["rejected_rows_by_disposition"].value == {"not exported": 3}
