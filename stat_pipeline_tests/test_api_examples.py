"""wazo-call-logd's examples end to end: rows in the warehouse, a real server, requests sent
as Wazo's client sends them, and the JSON it gets back checked against the values (and JSON
types) of ``../shared/docs/wazo_call_logd_stats.md`` (§4.2, §4.3, §5.2, §6) and call-logd's
integration tests they come from. Also: the OpenAPI-promised extra KPIs come as extra fields
without changing call-logd's, and both prefixes give the same JSON."""
from __future__ import annotations

import pytest

from stat_pipeline_tests.api_support import (  # noqa: F401 (fixtures)
    TENANT_A, TOKEN, CallLogdClient, CallLogdError, add_agent, add_agent_periodic, add_call, add_queue,
    add_queue_periodic, api_database, api_port, call_logd, warehouse,
)

CALL_LOGD_QUEUE_FIELDS = ("from", "until", "tenant_uuid", "queue_id", "queue_name", "received", "answered",
                          "abandoned", "closed", "not_answered", "saturated", "blocked",
                          "average_waiting_time", "answered_rate", "quality_of_service")
CALL_LOGD_AGENT_FIELDS = ("from", "until", "tenant_uuid", "agent_id", "agent_number", "answered",
                          "conversation_time", "login_time", "pause_time", "wrapup_time", "queues")


def _pick(item, *keys):
    return {k: item[k] for k in keys}


def test_queue_hour_and_day_example(call_logd, warehouse):
    """§4.2 (test_queue_stats.py): the 36-call hour and the day with two answered calls."""
    with warehouse.begin() as conn:
        queue = add_queue(conn, 1, TENANT_A)
        add_queue_periodic(conn, queue, "2020-10-06 04:00+00", total=1, answered=1)
        add_queue_periodic(conn, queue, "2020-10-06 05:00+00", total=36, closed=1, abandoned=3, joinempty=3,
                           leaveempty=4, timeout=5, divert_ca_ratio=6, divert_waittime=7, full=8)
        add_queue_periodic(conn, queue, "2020-10-06 23:00+00", total=1, answered=1)
    answer = call_logd.queue_statistics.get_by_id(1, from_="2020-10-06 00:00:00", until="2020-10-07 00:00:00",
                                                  interval="hour")
    assert answer["total"] == len(answer["items"]) == 24 + 1
    [hour] = [i for i in answer["items"] if i["from"] == "2020-10-06T05:00:00+00:00"]
    assert _pick(hour, *CALL_LOGD_QUEUE_FIELDS) == {
        "from": "2020-10-06T05:00:00+00:00", "until": "2020-10-06T06:00:00+00:00", "tenant_uuid": TENANT_A,
        "queue_id": 1, "queue_name": "queue", "received": 36, "answered": 0, "abandoned": 3, "closed": 1,
        "not_answered": 5, "saturated": 21, "blocked": 7, "average_waiting_time": 0, "answered_rate": 0.0,
        "quality_of_service": None}
    assert isinstance(hour["answered_rate"], float) and isinstance(hour["average_waiting_time"], int)
    period = answer["items"][-1]
    assert (period["from"], period["until"]) == ("2020-10-06T00:00:00+00:00", "2020-10-07T00:00:00+00:00")
    assert (period["received"], period["answered"], period["answered_rate"]) == (38, 2, 8.0)
    assert isinstance(period["answered_rate"], float)


def test_waiting_time_truncated_and_inclusive_qos(call_logd, warehouse):
    """§4.2: answered 3, waits 20, 5, 3, qos_threshold=10 -> average_waiting_time 9 (28/3 =
    9.33, an integer), quality_of_service 66.67; also on the list route."""
    with warehouse.begin() as conn:
        queue = add_queue(conn, 1, TENANT_A)
        add_queue_periodic(conn, queue, "2020-10-06 13:00+00", total=3, answered=3)
        for time_, wait in (("2020-10-06 13:00+00", 20), ("2020-10-06 13:12+00", 5), ("2020-10-06 13:18+00", 3)):
            add_call(conn, queue, time_, "answered", waittime=wait)
    for item in (call_logd.queue_statistics.get_by_id(1, qos_threshold=10)["items"][-1],
                 call_logd.queue_statistics.list(qos_threshold=10)["items"][0]):
        assert item["average_waiting_time"] == 9 and isinstance(item["average_waiting_time"], int)
        assert item["quality_of_service"] == 66.67
        assert item["from"] == "2020-10-06T13:00:00+00:00"  # default from: the oldest hour row
    # inclusive threshold: a wait of exactly the threshold counts
    assert call_logd.queue_statistics.list(qos_threshold=5)["items"][0]["quality_of_service"] == 66.67
    assert call_logd.queue_statistics.list()["items"][0]["quality_of_service"] is None


def test_queue_list_without_statistics(call_logd, warehouse):
    """§4.2: no queue -> {"items": [], "total": 0}; a queue without statistics is listed with
    answered 0 and null ratios; deleted queues are not listed."""
    assert call_logd.queue_statistics.list() == {"items": [], "total": 0}
    assert call_logd.agent_statistics.list() == {"items": [], "total": 0}
    with warehouse.begin() as conn:
        add_queue(conn, 5, TENANT_A, name="quiet")
        add_queue(conn, 6, TENANT_A, name="gone", deleted=True)
    [item] = call_logd.queue_statistics.list(from_="2020-10-01 00:00:00", until="2020-11-01 00:00:00")["items"]
    assert _pick(item, *CALL_LOGD_QUEUE_FIELDS) == {
        "from": "2020-10-01T00:00:00+00:00", "until": "2020-11-01T00:00:00+00:00", "tenant_uuid": TENANT_A,
        "queue_id": 5, "queue_name": "quiet", "received": 0, "answered": 0, "abandoned": 0, "closed": 0,
        "not_answered": 0, "saturated": 0, "blocked": 0, "average_waiting_time": None, "answered_rate": None,
        "quality_of_service": None}


def test_list_items_in_the_requested_zone(call_logd, warehouse):
    """test_list_queue_statistics_when_no_param_except_timezone_with_stats: from is each queue's
    oldest row shown in the zone, until tomorrow 00:00 there."""
    with warehouse.begin() as conn:
        add_queue_periodic(conn, add_queue(conn, 1, TENANT_A), "2020-10-05T13:00:00+00:00", total=1, answered=1)
        add_queue_periodic(conn, add_queue(conn, 2, TENANT_A), "2020-10-06T13:00:00+00:00", total=2, answered=2)
    items = {i["queue_id"]: i for i in call_logd.queue_statistics.list(timezone="America/Montreal")["items"]}
    assert items[1]["from"] == "2020-10-05T09:00:00-04:00" and items[2]["from"] == "2020-10-06T09:00:00-04:00"
    assert items[1]["until"].endswith(("T00:00:00-04:00", "T00:00:00-05:00"))
    assert (items[1]["received"], items[1]["answered_rate"], items[2]["received"]) == (1, 100.0, 2)


def test_qos_route_example(call_logd, warehouse):
    """§4.3 (test_period_thresholds_no_param): answered waits 10 and 5, abandoned 15 ->
    [{min 0, max null, answered 2, abandoned 1}]; with qos_thresholds=15,5,5 the half-open
    buckets [0,5) [5,15) [15,null)."""
    with warehouse.begin() as conn:
        queue = add_queue(conn, 1, TENANT_A)
        add_queue_periodic(conn, queue, "2020-10-30 11:00+00", total=1, answered=1)
        add_call(conn, queue, "2020-10-30 11:12+00", "answered", waittime=10)
        add_call(conn, queue, "2020-10-31 09:12+00", "answered", waittime=5)
        add_call(conn, queue, "2020-10-31 16:12+00", "abandoned", waittime=15)
    answer = call_logd.queue_statistics.get_qos_by_id(1)
    assert answer["total"] == 1
    assert answer["items"][0]["quality_of_service"] == [{"min": 0, "max": None, "answered": 2, "abandoned": 1}]
    assert _pick(answer["items"][0], "from", "tenant_uuid", "queue_id", "queue_name") == {
        "from": "2020-10-30T11:00:00+00:00", "tenant_uuid": TENANT_A, "queue_id": 1, "queue_name": "queue"}
    buckets = call_logd.queue_statistics.get_qos_by_id(1, qos_thresholds="15,5,5")["items"][0]["quality_of_service"]
    assert buckets == [{"min": 0, "max": 5, "answered": 0, "abandoned": 0},
                       {"min": 5, "max": 15, "answered": 2, "abandoned": 0},
                       {"min": 15, "max": None, "answered": 0, "abandoned": 1}]


def test_agent_example(call_logd, warehouse):
    """§5.2 (test_list_agent_statistics_when_no_param_with_stats): talktimes 11 and 12, one
    hour row 55 min / 15 min / 2 min -> answered 2, conversation_time 23, login 3300, pause
    900, wrapup 120; and 25 h of login -> 90000 s (test_get_agent_over_24_hours)."""
    with warehouse.begin() as conn:
        agent = add_agent(conn, 42, TENANT_A, number="1042")
        queue = add_queue(conn, 1, TENANT_A)
        add_agent_periodic(conn, agent, "2020-10-06 08:00+00", login="55 minutes", pause="15 minutes",
                           wrapup="2 minutes")
        add_call(conn, queue, "2020-10-06 08:10+00", "answered", talktime=11, stat_agent_id=agent)
        add_call(conn, queue, "2020-10-06 08:20+00", "answered", talktime=12, stat_agent_id=agent)
    [item] = call_logd.agent_statistics.list()["items"]
    expected = {"from": "2020-10-06T08:00:00+00:00", "tenant_uuid": TENANT_A, "agent_id": 42,
                "agent_number": "1042", "answered": 2, "conversation_time": 23, "login_time": 3300,
                "pause_time": 900, "wrapup_time": 120}
    assert _pick(item, *expected) == expected
    assert [q["queue_id"] for q in item["queues"]] == [1]
    by_id = call_logd.agent_statistics.get_by_id(42, from_="2020-10-06T00:00:00", until="2020-10-07T00:00:00",
                                                 interval="day")
    assert by_id["total"] == 2
    for day in by_id["items"]:
        assert _pick(day, *expected) | {"from": expected["from"]} == expected | {"from": expected["from"]}
    with warehouse.begin() as conn:
        add_agent_periodic(conn, agent, "2020-10-07 08:00+00", login="25 hours")
    item = call_logd.agent_statistics.get_by_id(42, from_="2020-10-07T00:00:00", until="2020-10-08T00:00:00")
    assert item["items"][-1]["login_time"] == 90000


def test_dst_hour_intervals_through_the_api(call_logd, warehouse):
    """§6 (test_services.py, America/Montreal): hour intervals across 2020-11-01 are
    00:00-04 -> 01:00-04, 01:00-04 -> 01:00-05, 01:00-05 -> 02:00-05; across 2020-03-08 the
    interval 01:00-05:00 -> 03:00-04:00 is one real hour; the fall-back day lasts 25 hours."""
    with warehouse.begin() as conn:
        add_queue(conn, 1, TENANT_A)
    zone = "America/Montreal"
    fall = call_logd.queue_statistics.get_by_id(1, from_="2020-11-01T00:00:00", until="2020-11-01T02:00:00",
                                                timezone=zone, interval="hour")["items"]
    assert [(i["from"], i["until"]) for i in fall[:-1]] == [
        ("2020-11-01T00:00:00-04:00", "2020-11-01T01:00:00-04:00"),
        ("2020-11-01T01:00:00-04:00", "2020-11-01T01:00:00-05:00"),
        ("2020-11-01T01:00:00-05:00", "2020-11-01T02:00:00-05:00")]
    spring = call_logd.queue_statistics.get_by_id(1, from_="2020-03-08T01:00:00", until="2020-03-08T04:00:00",
                                                  timezone=zone, interval="hour")["items"]
    assert [(i["from"], i["until"]) for i in spring[:-1]] == [
        ("2020-03-08T01:00:00-05:00", "2020-03-08T03:00:00-04:00"),
        ("2020-03-08T03:00:00-04:00", "2020-03-08T04:00:00-04:00")]
    day = call_logd.queue_statistics.get_by_id(1, from_="2020-11-01T00:00:00", until="2020-11-02T00:00:00",
                                               timezone=zone, interval="day")["items"]
    assert [(i["from"], i["until"]) for i in day] == [
        ("2020-11-01T00:00:00-04:00", "2020-11-02T00:00:00-05:00")] * 2


def test_working_hours_and_week_days_through_the_api(call_logd, warehouse):
    """§6 (test_get_queue_when_call_out_of_time_range): hour intervals with 08:00-17:00 keep
    the hours 08..16: 9 items + the period; with week_days=3,4 over four days, the
    Wednesday and Thursday day items + the period (2020-10-07 is a Wednesday)."""
    with warehouse.begin() as conn:
        queue = add_queue(conn, 1, TENANT_A)
        for hour, total in (("07", 1), ("13", 2), ("16", 3)):
            add_queue_periodic(conn, queue, f"2020-10-07 {hour}:00+00", total=total, answered=total)
    hours = call_logd.queue_statistics.get_by_id(1, from_="2020-10-07T00:00:00", until="2020-10-08T00:00:00",
                                                 interval="hour", day_start_time="08:00", day_end_time="17:00")
    assert hours["total"] == 10
    assert [i["from"][11:13] for i in hours["items"][:-1]] == [f"{h:02d}" for h in range(8, 17)]
    assert hours["items"][-1]["received"] == 2 + 3  # 07:00 outside, 16:00 inside (end hour included)
    days = call_logd.queue_statistics.get_by_id(1, from_="2020-10-06T00:00:00", until="2020-10-10T00:00:00",
                                                interval="day", week_days="3,4")
    assert [i["from"][:10] for i in days["items"]] == ["2020-10-07", "2020-10-08", "2020-10-06"]
    assert [i["received"] for i in days["items"]] == [6, 0, 6]


def test_hour_interval_count_and_limit(call_logd, warehouse):
    """One month of hours is 31 * 24 intervals + the period; one second more is refused."""
    with warehouse.begin() as conn:
        add_queue(conn, 1, TENANT_A)
    answer = call_logd.queue_statistics.get_by_id(1, from_="2020-10-01T00:00:00", until="2020-11-01T00:00:00",
                                                  interval="hour")
    assert answer["total"] == 31 * 24 + 1
    with pytest.raises(CallLogdError) as caught:
        call_logd.queue_statistics.get_by_id(1, from_="2020-10-01T00:00:00", until="2020-11-01T00:00:01",
                                             interval="hour")
    assert (caught.value.status_code, caught.value.error_id) == (400, "date-range-too-large-for-interval")


def test_extra_kpis_are_extra_fields_and_prefixes_agree(api_port, call_logd, warehouse):
    """Our KPIs (peers.md) come next to call-logd's fields, which keep their values; the
    nginx prefix gives the same JSON."""
    with warehouse.begin() as conn:
        queue = add_queue(conn, 1, TENANT_A)
        add_queue_periodic(conn, queue, "2020-10-06 13:00+00", total=4, answered=3, abandoned=1)
        for time_, wait in (("2020-10-06 13:00+00", 20), ("2020-10-06 13:12+00", 5), ("2020-10-06 13:18+00", 3)):
            add_call(conn, queue, time_, "answered", waittime=wait)
        add_call(conn, queue, "2020-10-06 13:30+00", "abandoned", waittime=40)
    params = dict(from_="2020-10-06T00:00:00", until="2020-10-07T00:00:00", qos_threshold=10)
    item = call_logd.queue_statistics.get_by_id(1, **params)["items"][-1]
    assert set(CALL_LOGD_QUEUE_FIELDS) < set(item)
    extras = set(item) - set(CALL_LOGD_QUEUE_FIELDS)
    assert {"average_speed_of_answer", "service_level", "longest_waiting_time"} <= extras
    # call-logd's own: waits of answered and abandoned calls over answered + abandoned
    assert (item["average_waiting_time"], item["answered_rate"], item["quality_of_service"]) == (17, 75.0, 66.67)
    assert item["longest_waiting_time"] == 40
    behind_nginx = CallLogdClient("127.0.0.1", port=api_port, https=False, prefix="/api/call-logd", token=TOKEN)
    assert behind_nginx.queue_statistics.get_by_id(1, **params) == call_logd.queue_statistics.get_by_id(1, **params)
