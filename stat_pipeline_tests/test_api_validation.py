"""Query validation of the statistics API: every value wazo-call-logd's integration tests
(``test_queue_stats.py``, ``test_queue_stats_qos.py``, ``test_agent_stats.py``) expect a 400
for gets a 400 here too, through a real server, sent as Wazo's client sends it; the 400
bodies are Wazo's error JSON with call-logd's ``details``."""
from __future__ import annotations

import pytest

from stat_pipeline_tests.api_support import (  # noqa: F401 (fixtures)
    TENANT_A, CallLogdError, add_agent, add_call, add_queue, add_queue_periodic, api_database, api_port,
    call_logd, warehouse,
)

# call-logd's lists of erroneous parameters, per route (values as its tests give them to
# the client, which lets requests turn them into text)
_DATES = [
    {"from_": "test"}, {"from_": False}, {"from_": 1234}, {"from_": "2020-10-05"},
    {"until": "test"}, {"until": False}, {"until": 1234}, {"until": "2020-10-05"},
]
_TIMES = [
    {field: value} for field in ("day_start_time", "day_end_time")
    for value in ("test", False, 124, 124.5, "2020-10-06 10:00:00", "25:00", "23:60")
]
_LOGIC = [
    {"day_end_time": "22:00", "day_start_time": "23:00"},
    {"from_": "2020-10-10T00:00:00", "until": "2020-10-09T23:59:59"},
    {"from_": "2020-10-10T00:00:00", "until": "2020-10-10T00:00:00+01:00"},
]
_WEEK_DAYS_AND_ZONE = [
    {"week_days": 42}, {"week_days": "6,7,8"}, {"week_days": "test"}, {"week_days": False},
    {"timezone": "invalid"}, {"timezone": 1234},
]
_QOS_THRESHOLD = [
    {"qos_threshold": "test"}, {"qos_threshold": False}, {"qos_threshold": 124.2},
    {"qos_threshold": "2020-10-06 10:00:00"}, {"qos_threshold": -1},
]
_QOS_THRESHOLDS = [
    {"qos_thresholds": v} for v in ("test", False, 124.2, "2020-10-06 10:00:00", -1, "-1", "3,-1")
]
_TOO_LONG = [{"from_": "2020-10-01 00:00:00", "until": "2020-11-01 00:00:01", "interval": "hour"}]
_INTERVAL = [{"interval": "test"}]

LIST_QUEUES = _DATES + _QOS_THRESHOLD + _TIMES + _LOGIC + _WEEK_DAYS_AND_ZONE
QUEUE_BY_ID = _DATES + _QOS_THRESHOLD + _INTERVAL + _TIMES + _LOGIC + _TOO_LONG + _WEEK_DAYS_AND_ZONE
QUEUE_QOS = _DATES + _QOS_THRESHOLDS + _INTERVAL + _TIMES + _LOGIC + _TOO_LONG + _WEEK_DAYS_AND_ZONE
# test_agent_stats.py adds these forms
_AGENT_EXTRA = [{"day_start_time": 1234}, {"day_end_time": 1234},
                {"from_": "2020-10-10T00:00:00+00:00", "until": "2020-10-10T00:00:00+01:00"}]
LIST_AGENTS = _DATES + _TIMES + _LOGIC + _WEEK_DAYS_AND_ZONE + _AGENT_EXTRA
AGENT_BY_ID = (_DATES + _INTERVAL + [{"interval": False}, {"interval": 1234}] + _TIMES + _LOGIC + _TOO_LONG
               + _WEEK_DAYS_AND_ZONE + _AGENT_EXTRA)


@pytest.fixture
def one_queue_one_agent(warehouse):
    with warehouse.begin() as conn:
        queue = add_queue(conn, 1, TENANT_A)
        add_queue_periodic(conn, queue, "2020-10-06 13:00:00+00", answered=1, total=1)
        add_agent(conn, 1, TENANT_A)


def _assert_400s(call, bodies):
    for body in bodies:
        with pytest.raises(CallLogdError) as caught:
            call(**body)
        error = caught.value
        assert error.status_code == 400, body
        expected_id = ("date-range-too-large-for-interval" if body in _TOO_LONG else "invalid-data")
        assert error.error_id == expected_id, body
        assert isinstance(error.timestamp, float)
        if expected_id == "invalid-data":
            assert error.message == "Sent data is invalid"
            # the details name the parameter that was wrong (call-logd's key, "from" not "from_")
            named = {k.removesuffix("_") for k in body}
            assert set(error.details) <= named and error.details, (body, error.details)


def test_list_queues_rejects_what_call_logd_rejects(call_logd, one_queue_one_agent):
    _assert_400s(call_logd.queue_statistics.list, LIST_QUEUES)


def test_queue_by_id_rejects_what_call_logd_rejects(call_logd, one_queue_one_agent):
    _assert_400s(lambda **p: call_logd.queue_statistics.get_by_id(1, **p), QUEUE_BY_ID)


def test_queue_qos_rejects_what_call_logd_rejects(call_logd, one_queue_one_agent):
    _assert_400s(lambda **p: call_logd.queue_statistics.get_qos_by_id(1, **p), QUEUE_QOS)


def test_list_agents_rejects_what_call_logd_rejects(call_logd, one_queue_one_agent):
    _assert_400s(call_logd.agent_statistics.list, LIST_AGENTS)


def test_agent_by_id_rejects_what_call_logd_rejects(call_logd, one_queue_one_agent):
    _assert_400s(lambda **p: call_logd.agent_statistics.get_by_id(1, **p), AGENT_BY_ID)


def _details(call, **params):
    with pytest.raises(CallLogdError) as caught:
        call(**params)
    assert caught.value.status_code == 400
    return caught.value.details


def test_error_details_are_call_logds(call_logd, one_queue_one_agent):
    """xivo.mallow's error dicts: message, constraint_id, constraint; list items by index."""
    by_id = lambda **p: call_logd.queue_statistics.get_by_id(1, **p)  # noqa: E731
    assert _details(by_id, from_="2020-10-05") == {
        "from": [{"message": "Not a valid datetime", "constraint_id": "type", "constraint": "datetime"}]}
    assert _details(by_id, qos_threshold=-1) == {
        "qos_threshold": [{"message": "Must be greater than or equal to 0.", "constraint_id": "range",
                           "constraint": {"min": 0}}]}
    assert _details(by_id, interval="week") == {
        "interval": [{"message": "Must be one of: hour, day, month.", "constraint_id": "enum",
                      "constraint": {"choices": ["hour", "day", "month"]}}]}
    assert _details(by_id, day_start_time="8:00") == {
        "day_start_time": [{"message": "String does not match expected pattern.", "constraint_id": "regex",
                            "constraint": r"^([0,1][0-9]|2[0-3]):[0-5][0-9]$"}]}
    assert _details(by_id, week_days="1,x") == {
        "week_days": {"1": [{"message": "Not a valid integer.", "constraint_id": "type", "constraint": "integer"}]}}
    assert _details(by_id, week_days="0,1") == {
        "week_days": [{"message": "One or more of the choices you made was not in: 1, 2, 3, 4, 5, 6, 7.",
                       "constraint_id": "enum", "constraint": {"choices": [1, 2, 3, 4, 5, 6, 7]}}]}
    assert _details(by_id, week_days="") == {
        "week_days": [{"message": "Not a valid list.", "constraint_id": "type", "constraint": "list"}]}
    assert _details(by_id, day_start_time="10:30", day_end_time="10:30") == {
        "day_start_time": "Field must be lower than day_end_time"}
    assert _details(by_id, from_="2020-10-10T00:00:00", until="2020-10-10T00:00:00+01:00") == {
        "until": "Field must be greater than from"}
    zone = _details(by_id, timezone="Mars/Olympus")["timezone"][0]
    assert zone["constraint_id"] == "enum" and "Europe/Paris" in zone["constraint"]["choices"]
    qos = lambda **p: call_logd.queue_statistics.get_qos_by_id(1, **p)  # noqa: E731
    assert set(_details(qos, qos_thresholds="3,-1,x")["qos_thresholds"]) == {"1", "2"}
    # several wrong fields: all reported at once
    assert set(_details(by_id, from_="x", interval="x", timezone="x")) == {"from", "interval", "timezone"}


def test_accepted_forms(call_logd, one_queue_one_agent):
    """What call-logd accepts is accepted: a space for the T, no seconds, Z or +hhmm offsets,
    minutes in working hours, repeated week days, unknown parameters ignored, and parameters
    a route does not declare (interval on the list route) ignored."""
    by_id = call_logd.queue_statistics.get_by_id
    for params in ({"from_": "2020-10-06 13:00:00"}, {"from_": "2020-10-06T13:00"},
                   {"from_": "2020-10-06T13:00:00Z"}, {"from_": "2020-10-06T13:00:00.5+0200"},
                   {"day_start_time": "08:30", "day_end_time": "08:45"}, {"week_days": "1,1,2"},
                   {"qos_threshold": 0}, {"no_such_parameter": "x"}):
        assert by_id(1, **params)["items"], params
    assert call_logd.queue_statistics.list(interval="not-an-interval")["total"] == 1
    assert call_logd.queue_statistics.get_qos_by_id(1, qos_thresholds="30,10,10")["items"]


def test_hour_interval_limit_is_one_month_in_the_zone(call_logd, one_queue_one_agent):
    """``from + 1 month < until`` is refused; exactly one month is accepted. Without ``from``,
    the queue's oldest statistics (2020-10-06 13:00 UTC) is the start."""
    by_id = call_logd.queue_statistics.get_by_id
    assert by_id(1, from_="2020-10-01T00:00:00", until="2020-11-01T00:00:00", interval="hour")["items"]
    with pytest.raises(CallLogdError) as caught:
        by_id(1, until="2020-11-06T13:00:01", interval="hour")
    assert caught.value.error_id == "date-range-too-large-for-interval"
    assert caught.value.details == "Maximum of 1 month for interval by hour"
    assert by_id(1, until="2020-11-06T13:00:00", interval="hour")["items"]
    # same days, no hour interval: no limit
    assert by_id(1, from_="2020-01-01T00:00:00", until="2020-12-01T00:00:00", interval="day")["items"]


def test_out_of_range_values_are_answers_not_failures(call_logd, one_queue_one_agent, warehouse):
    """Values past what PostgreSQL or Python dates hold: a threshold past the longest
    possible wait counts every answered call; a bucket bound past it is a 400 naming the
    limit; hour intervals at the end of year 9999 are a 400, not a server error."""
    with warehouse.begin() as conn:
        add_call(conn, 1, "2020-10-06 13:10:00+00", "answered", waittime=2**31 - 1)
    [period] = call_logd.queue_statistics.get_by_id(1, qos_threshold=10**11)["items"]
    assert (period["answered"], period["quality_of_service"]) == (1, 100.0)
    [listed] = call_logd.queue_statistics.list(qos_threshold=10**11)["items"]
    assert listed["quality_of_service"] == period["quality_of_service"]
    details = _details(lambda **p: call_logd.queue_statistics.get_qos_by_id(1, **p),
                       qos_thresholds=f"5,{2**31}")
    assert details["qos_thresholds"]["1"][0]["constraint"] == {"min": 0, "max": 2**31 - 1}
    assert call_logd.queue_statistics.get_qos_by_id(1, qos_thresholds=f"5,{2**31 - 1}")["items"]
    assert set(_details(lambda **p: call_logd.queue_statistics.get_by_id(1, **p), from_="9999-12-31T23:00:00",
                        until="9999-12-31T23:59:00", timezone="Pacific/Kiritimati", interval="hour")) == {"from", "until"}
