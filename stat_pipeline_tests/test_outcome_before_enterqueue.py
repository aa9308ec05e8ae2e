"""Issue 12 item 8: an outcome row timestamped before its ENTERQUEUE (writers whose clocks
disagree, sub-second ties) pairs with it, the call keeps its ENTERQUEUE time, and the
unused_outcome_rows check names any outcome row that no call read."""
from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from stat_pipeline_tests.harness import DAY, CallCentre, at

NEXT_DAY = DAY + dt.timedelta(days=1)
DOWNSTREAM = ["classified_calls", "stat_call_on_queue", "stat_queue_periodic"]


@pytest.fixture
def centre(warehouse_url):
    c = CallCentre(warehouse_url, until=DAY + dt.timedelta(hours=23, minutes=59))
    yield c
    c.close()


def _checks(result):
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def test_outcome_logged_before_its_enterqueue_pairs_with_it(centre):
    centre.log(
        # sub-second: the ABANDON's writer is 0.4 s behind the ENTERQUEUE's
        (at("10:00:00"), "a1", "q1", "NONE", "ABANDON", "1", "1", "0"),
        (at("10:00:00.400"), "a1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
        # CONNECT and COMPLETEAGENT both 2 s before the ENTERQUEUE
        (at("10:10:56"), "a2", "q1", "Agent/1", "CONNECT", "3", "a2.1", "2"),
        (at("10:10:58"), "a2", "q1", "Agent/1", "COMPLETEAGENT", "3", "55", "1"),
        (at("10:11:00"), "a2", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
        # second stay in the same queue: its ABANDON lies after the first stay's outcome
        (at("10:20:00"), "a3", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
        (at("10:20:30"), "a3", "q1", "NONE", "ABANDON", "1", "1", "30"),
        (at("10:30:00"), "a3", "q1", "NONE", "EXITWITHTIMEOUT", "1", "1", "12"),
        (at("10:30:00.250"), "a3", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
        # Asterisk's EXITEMPTY and Wazo's LEAVEEMPTY, both before the ENTERQUEUE
        (at("10:40:00"), "a4", "q1", "NONE", "EXITEMPTY", "1", "1", "7"),
        (at("10:40:00.300"), "a4", "q1", "NONE", "LEAVEEMPTY"),
        (at("10:40:01"), "a4", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
        # the CONNECT only is early, the COMPLETECALLER comes after the ENTERQUEUE
        (at("10:49:59"), "a5", "q1", "Agent/2", "CONNECT", "4", "a5.1", "3"),
        (at("10:50:00"), "a5", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
        (at("10:51:00"), "a5", "q1", "Agent/2", "COMPLETECALLER", "4", "56", "1"),
    )
    result = centre.run("10:00")
    assert [(c[0], c[3], c[4], c[5], c[6]) for c in centre.calls()] == [
        ("a1", "abandoned", at("10:00:00.400"), 0, 0),
        ("a2", "answered", at("10:11:00"), 3, 55),
        ("a3", "abandoned", at("10:20:00"), 30, 0),
        ("a3", "timeout", at("10:30:00.250"), 12, 0),
        ("a4", "leaveempty", at("10:40:01"), 7, 0),     # the EXITEMPTY's wait
        ("a5", "answered", at("10:50:00"), 4, 56),
    ]
    classified = centre.classified()
    assert {r.callid: r.agent for r in classified if r.status == "answered"} == {
        "a2": "Agent/1", "a5": "Agent/2"}
    assert Counter(r.status for r in classified) == Counter(
        {"abandoned": 2, "answered": 2, "timeout": 1, "leaveempty": 1})
    assert not any(r.partial for r in classified)
    # timestamps measure nothing negative; the note says what was paired and by how much
    assert all(r.waittime_by_events >= 0 and r.talktime_by_events >= 0 for r in classified)
    notes = {(r.callid, r.call_time): r.note for r in classified}
    assert notes[("a1", at("10:00:00.400"))] == (
        "ABANDON logged 0.4 s before its ENTERQUEUE (writers' clocks): paired with it")
    assert notes[("a5", at("10:50:00"))].startswith("CONNECT logged 1 s before")
    assert notes[("a3", at("10:20:00"))] is None
    assert {r.ringtime for r in classified if r.callid in ("a2", "a5")} == {2, 3}
    meta = result.asset_materializations_for_node("classified_calls")[0].metadata
    assert meta["calls_paired_before_enterqueue"].value == 5
    checks = _checks(result)
    assert checks["unused_outcome_rows"].passed
    assert checks["unused_outcome_rows"].metadata["unused_outcome_rows"].value == 0
    assert checks["one_call_per_enterqueue"].passed and checks["plausible_durations"].passed


def test_early_outcome_across_the_hour_keeps_the_enterqueue_hour(centre):
    centre.log((at("10:59:59.800"), "b1", "q1", "NONE", "ABANDON", "1", "1", "0"),
               (at("11:00:00.100"), "b1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"))
    centre.run("10:00", "11:00", assets=["queue_log"])
    centre.run("10:00", assets=DOWNSTREAM)
    assert centre.calls() == []          # not a "partial call" of hour 10
    centre.run("11:00", assets=DOWNSTREAM)
    one_by_one = (centre.calls(), centre.periodic(), centre.classified())
    assert [(c[0], c[3], c[4]) for c in one_by_one[0]] == [
        ("b1", "abandoned", at("11:00:00.100"))]
    centre.run("10:00", "11:00")
    assert (centre.calls(), centre.periodic(), centre.classified()) == one_by_one


def test_a_passage_with_its_own_outcome_does_not_take_an_earlier_one(centre):
    centre.log((at("10:00:00"), "d1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("10:00:30"), "d1", "q1", "NONE", "ABANDON", "1", "1", "30"),
               (at("10:00:40"), "d1", "q1", "NONE", "ABANDON", "1", "1", "40"),   # a second one
               (at("10:05:00"), "d1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("10:05:20"), "d1", "q1", "NONE", "EXITWITHTIMEOUT", "1", "1", "20"))
    result = centre.run("10:00")
    assert [(c[3], c[4], c[5]) for c in centre.calls()] == [
        ("abandoned", at("10:00:00"), 30), ("timeout", at("10:05:00"), 20)]
    check = _checks(result)["unused_outcome_rows"]
    assert not check.passed                          # the second ABANDON: read by no call
    assert check.metadata["unused_outcome_rows"].value == 1
    assert check.metadata["unused_by_event"].value == {"ABANDON": 1}
    assert "ABANDON d1/q1 (row 3)" in check.metadata["first_unused"].value


def test_a_row_read_by_a_partial_call_far_from_its_hour_is_not_unused(warehouse_url):
    # Without ENTERQUEUE, a range run's "partial call" gathers its key's rows of the whole
    # range: here a CONNECT two days before the COMPLETEAGENT. Re-computing the CONNECT's
    # hour alone (no call there) must still find that call, although its time is beyond the
    # look-ahead of the hour: the unused_outcome_rows check looks partial calls up by
    # callid, not by time (migration 0022's partial index).
    centre = CallCentre(warehouse_url, until=NEXT_DAY + dt.timedelta(hours=12))
    day_before = DAY - dt.timedelta(days=1)
    centre.log((at("10:00:00", day_before), "p1", "q1", "Agent/1", "CONNECT", "3", "p1.1", "2"),
               (at("10:00:00", NEXT_DAY), "p1", "q1", "Agent/1", "COMPLETEAGENT", "3", "60", "1"))
    first, connect_hour, last = "2024-02-29-00:00", "2024-02-29-10:00", "2024-03-02-11:00"
    centre.run(first, last)
    [call] = centre.classified()
    assert call.partial and call.call_time == at("09:58:57", NEXT_DAY)
    assert call.connect_row_id is not None
    result = centre.run(connect_hour, assets=["classified_calls"])
    check = _checks(result)["unused_outcome_rows"]
    assert check.passed, check.metadata
    assert check.metadata["unused_outcome_rows"].value == 0
    centre.close()


def test_an_outcome_its_own_passage_claims_stays_there(warehouse_url):
    # The 07:10 ENTERQUEUE's hour reads back 2 look-aheads: the 06:40 ABANDON is the
    # outcome of the ENTERQUEUE of the day before (23 h 50 min earlier, within the
    # look-ahead), so it is not the next passage's, whichever hour is computed first.
    centre = CallCentre(warehouse_url, until=NEXT_DAY + dt.timedelta(hours=12))
    centre.log((at("06:50:00"), "e1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("06:40:00", NEXT_DAY), "e1", "q1", "NONE", "ABANDON", "1", "1", "85800"),
               (at("07:10:00", NEXT_DAY), "e1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"))
    day_hour, next_hour = "2024-03-01-06:00", "2024-03-02-07:00"
    centre.run(day_hour, next_hour, assets=["queue_log"])
    centre.run(next_hour, assets=DOWNSTREAM)
    centre.run(day_hour, assets=DOWNSTREAM)
    hour_by_hour = (centre.calls(), centre.classified())
    assert [(c[3], c[4]) for c in hour_by_hour[0]] == [("abandoned", at("06:50:00"))]
    assert [r.status for r in hour_by_hour[1]] == ["abandoned", "pending"]
    centre.run(day_hour, next_hour)
    assert (centre.calls(), centre.classified()) == hour_by_hour
    centre.close()


@pytest.mark.parametrize("first_logged", ["outcome", "enterqueue"])
def test_new_rows_sensor_reopens_both_hours(warehouse_url, first_logged):
    # whichever row the source gets first, the sensor's runs end with one call, in the
    # ENTERQUEUE's hour (not also a "partial call" left in the hour before)
    from stat_pipeline_tests.test_automation import execute, tick

    centre = CallCentre(warehouse_url)
    outcome = (at("10:59:59.800"), "s1", "q1", "NONE", "ABANDON", "1", "1", "0")
    enter = (at("11:00:00.100"), "s1", "q1", "NONE", "ENTERQUEUE", "", "06", "1")
    rows = [outcome, enter] if first_logged == "outcome" else [enter, outcome]
    centre.log(rows[0])
    first = tick(centre, None)
    execute(centre, first)
    centre.log(rows[1])
    second = tick(centre, first.cursor)
    assert ("2024-03-01-10:00", "2024-03-01-11:00") in execute(centre, second)
    assert [(c[0], c[3], c[4]) for c in centre.calls()] == [
        ("s1", "abandoned", at("11:00:00.100"))]
    centre.close()
