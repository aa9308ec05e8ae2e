"""The warehouse KPI functions (migration 0013) and stat_pipeline.serving.kpi, on a real
PostgreSQL, against wazo-call-logd's documented behaviour
(../shared/docs/wazo_call_logd_stats.md: the §4.2 examples, the QoS example, the agent
example, the DST interval cases of §6) and against an independent Python computation of
call-logd's formulas over a golden set's tables.

Expected values are written from the doc (or call-logd's own integration tests that the doc
cites), never copied from our output.
"""
from __future__ import annotations

import csv
import json
import random
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from stat_pipeline.serving import kpi
from stat_pipeline.warehouse.migrate import migrate
from stat_pipeline_tests.golden import GOLDEN

TENANT = "2c34c282-433e-4bb8-8d56-fec14ff7e1e9"
OTHER_TENANT = "6e0c3ff5-6a17-4d4a-9c7a-a1b3b6b4e3a9"
UTC = dt_timezone.utc


def at(text: str) -> datetime:
    """An instant written like call-logd's tests: naive = UTC."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@pytest.fixture
def engine(warehouse_url):
    engine = sa.create_engine(warehouse_url)
    migrate(engine)
    yield engine
    engine.dispose()


class Warehouse:
    """Writes stat_* rows the way call-logd's integration tests do (stat_queue_periodic /
    stat_call_on_queue / stat_agent_periodic decorators)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def queue(self, queue_id, name="queue", tenant=TENANT, deleted=False) -> int:
        return self.conn.execute(sa.text(
            "INSERT INTO stat_queue (name, tenant_uuid, queue_id, deleted)"
            " VALUES (:n, :t, :q, :d) RETURNING id"),
            {"n": name, "t": tenant, "q": queue_id, "d": deleted}).scalar_one()

    def agent(self, agent_id, number="1001", tenant=TENANT, deleted=False) -> int:
        return self.conn.execute(sa.text(
            "INSERT INTO stat_agent (name, tenant_uuid, agent_id, deleted)"
            " VALUES (:n, :t, :a, :d) RETURNING id"),
            {"n": f"Agent/{number}", "t": tenant, "a": agent_id, "d": deleted}).scalar_one()

    def periodic(self, stat_queue_id, time, **counters) -> None:
        columns = ["stat_queue_id", "time", *counters]
        self.conn.execute(sa.text(
            f"INSERT INTO stat_queue_periodic ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in columns)})"
            f" VALUES ({', '.join(':' + c for c in columns)})"),
            {"stat_queue_id": stat_queue_id, "time": at(time), **counters})

    def call(self, stat_queue_id, time, status="answered", waittime=0, talktime=0,
             stat_agent_id=None, callid="c") -> None:
        self.conn.execute(sa.text(
            "INSERT INTO stat_call_on_queue (callid, time, status, waittime, talktime, stat_queue_id, stat_agent_id)"
            " VALUES (:c, :t, CAST(:s AS call_exit_type), :w, :tt, :q, :a)"),
            {"c": callid, "t": at(time), "s": status, "w": waittime, "tt": talktime,
             "q": stat_queue_id, "a": stat_agent_id})

    def agent_periodic(self, stat_agent_id, time, login=0, pause=0, wrapup=0, stat_queue_id=None) -> None:
        self.conn.execute(sa.text(
            "INSERT INTO stat_agent_periodic (time, login_time, pause_time, wrapup_time, stat_agent_id, stat_queue_id)"
            " VALUES (:t, make_interval(secs => :l), make_interval(secs => :p), make_interval(secs => :w), :a, :q)"),
            {"t": at(time), "l": login, "p": pause, "w": wrapup, "a": stat_agent_id, "q": stat_queue_id})


@pytest.fixture
def wh(engine):
    with engine.begin() as conn:
        yield Warehouse(conn)


def by_bounds(items):
    return {(i["from"], i["until"]): i for i in items}


# --- Python-exact rounding --------------------------------------------------------------

def test_rounding_is_pythons_float_round(engine):
    """call-logd rounds Python floats: round(100 * a / d, 2) and round(w / n, 2). Ties in
    decimal (3.125 = 100/32) and doubles just under a tie (9.995) must round like Python."""
    rng = random.Random(14)
    pairs = [(100, 32), (300, 32), (1999, 200), (999, 8), (2675, 1000), (100 * 1, 800), (5, 1000),
             (1, 3), (2, 3), (0, 7), (100, 1), (28, 3), (100 * 2, 3)]
    pairs += [(rng.randrange(0, 10**7), rng.randrange(1, 10**5)) for _ in range(3000)]
    pairs += [(100 * rng.randrange(0, 5000), 8 * rng.randrange(1, 2000)) for _ in range(2000)]
    with engine.connect() as conn:
        got = conn.execute(sa.text(
            "SELECT stat_kpi_py_round2(p, q) FROM unnest(CAST(:p AS bigint[]), CAST(:q AS bigint[])) AS t(p, q)"),
            {"p": [p for p, _ in pairs], "q": [q for _, q in pairs]}).scalars().all()
    mismatches = [(p, q, g, round(p / q, 2)) for (p, q), g in zip(pairs, got)
                  if Decimal(str(round(p / q, 2))) != g]
    assert not mismatches[:10]
    assert got[0] == Decimal("3.12") and got[2] == Decimal("9.99")  # where numeric round() differs


# --- §4.2 examples ----------------------------------------------------------------------

def test_queue_example_hour_intervals_and_answered_rate(wh):
    """§4.2: one hour with total 36 (closed 1, abandoned 3, joinempty 3, leaveempty 4,
    timeout 5, divert_ca_ratio 6, divert_waittime 7, full 8) -> received 36, answered 0,
    not_answered 5, saturated 21, blocked 7, answered_rate 0.0, average_waiting_time 0;
    the day with two more hours answered 1 each -> received 38, answered 2, answered_rate
    = 100 * 2 / 25 = 8.0 (closed and divert_* out of the denominator)."""
    q = wh.queue(1)
    wh.periodic(q, "2020-10-06 04:00", total=1, answered=1)
    wh.periodic(q, "2020-10-06 05:00", total=36, closed=1, abandoned=3, joinempty=3, leaveempty=4,
                timeout=5, divert_ca_ratio=6, divert_waittime=7, full=8)
    wh.periodic(q, "2020-10-06 23:00", total=1, answered=1)
    wh.periodic(q, "2020-10-07 00:00", total=1, answered=1)  # outside [from, until)
    items = kpi.queue_statistics(wh.conn, start=at("2020-10-06 00:00"), end=at("2020-10-07 00:00"),
                                 timezone="UTC", interval="hour", queue_id=1)
    assert len(items) == 25  # 24 hours + the period
    hour = by_bounds(items)[("2020-10-06T05:00:00+00:00", "2020-10-06T06:00:00+00:00")]
    assert {k: hour[k] for k in ("received", "answered", "abandoned", "closed", "not_answered",
                                 "saturated", "blocked", "answered_rate", "average_waiting_time",
                                 "quality_of_service")} == {
        "received": 36, "answered": 0, "abandoned": 3, "closed": 1, "not_answered": 5,
        "saturated": 21, "blocked": 7, "answered_rate": 0.0, "average_waiting_time": 0,
        "quality_of_service": None}
    empty = by_bounds(items)[("2020-10-06T13:00:00+00:00", "2020-10-06T14:00:00+00:00")]
    assert (empty["received"], empty["answered"], empty["average_waiting_time"], empty["answered_rate"]) == (0, 0, None, None)
    period = items[-1]
    assert (period["from"], period["until"]) == ("2020-10-06T00:00:00+00:00", "2020-10-07T00:00:00+00:00")
    assert (period["received"], period["answered"], period["answered_rate"]) == (38, 2, 8.0)
    assert (period["queue_id"], period["queue_name"], period["tenant_uuid"]) == (1, "queue", TENANT)


def test_queue_example_waiting_time_and_qos(wh):
    """§4.2: periodic answered 3 + calls waiting 20, 5, 3 and qos_threshold=10 ->
    average_waiting_time 28/3 = 9.33 -> 9, quality_of_service 2/3 -> 66.67 (inclusive)."""
    q = wh.queue(1)
    wh.periodic(q, "2020-10-06 13:00", total=3, answered=3)
    for time, wait in (("2020-10-06 13:00", 20), ("2020-10-06 13:12", 5), ("2020-10-06 13:18", 10)):
        wh.call(q, time, waittime=wait)
    items = kpi.queue_statistics(wh.conn, start=at("2020-10-06 13:00"), end=at("2020-10-06 14:00"),
                                 interval="hour", qos_threshold=10, queue_id=1)
    assert len(items) == 2
    for item in items:
        assert item["average_waiting_time"] == 11  # 35 / 3 = 11.67 -> 11: truncated, not rounded
        assert item["quality_of_service"] == 66.67  # waits 5 and 10 are <= 10 (inclusive)
        # our extras on the same calls: ASA, service level over offered calls, longest wait
        assert item["average_speed_of_answer"] == 11.67
        assert (item["offered"], item["service_level"], item["longest_waiting_time"]) == (3, 66.67, 20)
    wh.conn.execute(sa.text("UPDATE stat_call_on_queue SET waittime = 3 WHERE waittime = 10"))
    [item] = kpi.queue_statistics(wh.conn, start=at("2020-10-06 13:00"), end=at("2020-10-06 14:00"),
                                  qos_threshold=10, queue_id=1)
    assert (item["average_waiting_time"], item["quality_of_service"]) == (9, 66.67)  # 28/3 = 9.33


def test_queue_list_without_stats(wh):
    """§4.2: no queue -> no item; a queue without statistics still appears, counters 0,
    ratios null, from null (no stats, no from), until tomorrow in the zone."""
    assert kpi.queue_statistics(wh.conn) == []
    wh.queue(1, name="sales")
    deleted = wh.queue(2, name="gone", deleted=True)
    wh.periodic(deleted, "2020-10-06 13:00", total=3, answered=3)
    [item] = kpi.queue_statistics(wh.conn, timezone="America/Montreal")
    assert (item["queue_id"], item["queue_name"], item["from"]) == (1, "sales", None)
    assert item["until"] == kpi.tomorrow(ZoneInfo("America/Montreal")).isoformat()
    assert item["until"].endswith(("T00:00:00-04:00", "T00:00:00-05:00"))
    assert (item["received"], item["answered"], item["answered_rate"], item["average_waiting_time"],
            item["quality_of_service"]) == (0, 0, None, None, None)


def test_queue_list_defaults_from_to_each_queues_oldest_row(wh):
    """§6: per list item, from = the request's from or that queue's oldest hour row, in the zone."""
    q1, q2 = wh.queue(1), wh.queue(2)
    wh.periodic(q1, "2020-10-05 13:00", total=1, answered=1)
    wh.periodic(q2, "2020-10-06 13:00", total=2, answered=2)
    items = {i["queue_id"]: i for i in kpi.queue_statistics(wh.conn, timezone="America/Montreal")}
    assert items[1]["from"] == "2020-10-05T09:00:00-04:00"
    assert items[2]["from"] == "2020-10-06T09:00:00-04:00"
    assert (items[1]["received"], items[2]["received"], items[2]["answered_rate"]) == (1, 2, 100.0)


def test_qos_route_example_and_buckets(wh):
    """§4.3: answered waits 10 and 5, abandoned 15, no threshold -> [{0, null, 2, 1}];
    thresholds give half-open buckets [0,t1) ... [tn, null)."""
    q = wh.queue(1)
    wh.periodic(q, "2020-10-30 11:00", total=1, answered=1)
    wh.call(q, "2020-10-30 11:12", waittime=10)
    wh.call(q, "2020-10-31 09:12", waittime=5)
    wh.call(q, "2020-10-31 16:12", status="abandoned", waittime=15)
    wh.call(q, "2020-10-31 16:20", status="timeout", waittime=40)  # neither answered nor abandoned
    [item] = kpi.queue_qos(wh.conn, queue_id=1)
    assert item["from"] == "2020-10-30T11:00:00+00:00"
    assert item["quality_of_service"] == [{"min": 0, "max": None, "answered": 2, "abandoned": 1}]
    [item] = kpi.queue_qos(wh.conn, queue_id=1, qos_thresholds=(15, 5, 5))
    assert item["quality_of_service"] == [
        {"min": 0, "max": 5, "answered": 0, "abandoned": 0},
        {"min": 5, "max": 15, "answered": 2, "abandoned": 0},   # 5 is in [5, 15), 15 is not
        {"min": 15, "max": None, "answered": 0, "abandoned": 1}]


def test_qos_route_by_hour_with_every_filter(wh):
    """call-logd's test_qos_period_thresholds_by_hour_all_params: Montreal, 10:00-15:00,
    week days 2,3,4,6, thresholds 5,10,15,20,30 over 2020-10-30..31: only 11:00 and 13:00
    of Saturday the 31st count."""
    q = wh.queue(1)
    for time, total, answered, abandoned, calls in (
            ("2020-10-30T11:00-04:00", 1, 1, 0, [("11:12", 10, "answered")]),        # Friday: day 5 excluded
            ("2020-10-31T09:00-04:00", 1, 1, 0, [("09:12", 5, "answered")]),         # before 10:00
            ("2020-10-31T16:00-04:00", 1, 1, 0, [("16:12", 15, "abandoned")]),       # after 15:59
            ("2020-10-31T11:00-04:00", 8, 5, 3, [("11:00", 20, "answered"), ("11:12", 5, "answered"),
                                                 ("11:20", 3, "answered"), ("11:45", 10, "answered"),
                                                 ("11:59", 15, "answered"), ("11:05", 2, "abandoned"),
                                                 ("11:10", 14, "abandoned"), ("11:30", 30, "abandoned")]),
            ("2020-10-31T13:00-04:00", 6, 3, 3, [("13:00", 20, "answered"), ("13:12", 5, "answered"),
                                                 ("13:18", 3, "answered"), ("13:05", 2, "abandoned"),
                                                 ("13:10", 14, "abandoned"), ("13:30", 30, "abandoned")])):
        wh.periodic(q, time, total=total, answered=answered, abandoned=abandoned)
        for clock, wait, status in calls:
            wh.call(q, time[:11] + clock + "-04:00", status=status, waittime=wait)
    items = kpi.queue_qos(wh.conn, queue_id=1, start=at("2020-10-30T00:00-04:00"),
                          end=at("2020-11-01T00:00-04:00"), timezone="America/Montreal",
                          interval="hour", day_start_hour=10, day_end_hour=15, week_days=(2, 3, 4, 6),
                          qos_thresholds=(5, 10, 15, 20, 30))
    # Saturday the 31st, hours 10..14 (an hour is kept when its start and end hours are in
    # 10..15), plus the period item
    assert [i["from"][11:16] for i in items[:-1]] == ["10:00", "11:00", "12:00", "13:00", "14:00"]
    counts = {i["from"]: [(b["answered"], b["abandoned"]) for b in i["quality_of_service"]] for i in items}
    assert counts["2020-10-31T11:00:00-04:00"] == [(1, 1), (1, 0), (1, 1), (1, 0), (1, 0), (0, 1)]
    assert counts["2020-10-31T13:00:00-04:00"] == [(1, 1), (1, 0), (0, 1), (0, 0), (1, 0), (0, 1)]
    assert counts["2020-10-30T00:00:00-04:00"] == [(2, 2), (2, 0), (1, 2), (1, 0), (2, 0), (0, 2)]
    assert items[-1]["until"] == "2020-11-01T00:00:00-04:00"


# --- working hours and week days ----------------------------------------------------------

def test_hour_intervals_inside_working_hours(wh):
    """§6: interval=hour with 08:00-17:00 keeps the hours 08..16 (start and end hour within
    [8, 17]): 9 items + the period; the 07:00 row is outside, 16:00 inside (end hour 17)."""
    q = wh.queue(1)
    for hour in ("07", "13", "16"):
        wh.periodic(q, f"2020-10-06 {hour}:00", total=3, answered=3)
    items = kpi.queue_statistics(wh.conn, start=at("2020-10-06 00:00"), end=at("2020-10-07 00:00"),
                                 interval="hour", day_start_hour=8, day_end_hour=17, queue_id=1)
    assert len(items) == 10
    assert [i["from"][11:13] for i in items[:-1]] == [f"{h:02d}" for h in range(8, 17)]
    assert [i["received"] for i in items[:-1]] == [0, 0, 0, 0, 0, 3, 0, 0, 3]
    assert items[-1]["received"] == 6


def test_day_intervals_and_week_days(wh):
    """call-logd's test_get_queue_when_call_not_in_week_days: day intervals of days 3 and 4
    only (2020-10-07 is a Wednesday), the period sums only those days."""
    q = wh.queue(1)
    for time, total in (("2020-10-06 07:00", 1), ("2020-10-07 13:00", 2), ("2020-10-08 18:00", 3),
                        ("2020-10-09 18:00", 4)):
        wh.periodic(q, time, total=total, answered=total)
    items = kpi.queue_statistics(wh.conn, start=at("2020-10-06 00:00"), end=at("2020-10-10 00:00"),
                                 interval="day", week_days=(3, 4), queue_id=1)
    assert [(i["from"], i["until"], i["received"]) for i in items] == [
        ("2020-10-07T00:00:00+00:00", "2020-10-08T00:00:00+00:00", 2),
        ("2020-10-08T00:00:00+00:00", "2020-10-09T00:00:00+00:00", 3),
        ("2020-10-06T00:00:00+00:00", "2020-10-10T00:00:00+00:00", 5)]


def test_month_intervals_keep_every_month_but_filter_inside(wh):
    """call-logd's test_monthly_interval_multiple_months_with_all_filters_and_timezone."""
    q = wh.queue(1)
    for time, total in (("2020-01-01T07:00-05:00", 1), ("2020-02-12T08:00-05:00", 2),
                        ("2020-03-31T16:00-04:00", 3), ("2020-03-31T18:00-04:00", 4)):
        wh.periodic(q, time, total=total, answered=total)
    items = kpi.queue_statistics(wh.conn, start=at("2020-01-01T00:00-05:00"), end=at("2020-04-01T00:00-04:00"),
                                 timezone="America/Montreal", interval="month", day_start_hour=8,
                                 day_end_hour=17, week_days=(1, 2, 3), queue_id=1)
    assert [(i["from"], i["until"], i["received"]) for i in items] == [
        ("2020-01-01T00:00:00-05:00", "2020-02-01T00:00:00-05:00", 0),
        ("2020-02-01T00:00:00-05:00", "2020-03-01T00:00:00-05:00", 2),
        ("2020-03-01T00:00:00-05:00", "2020-04-01T00:00:00-04:00", 3),
        ("2020-01-01T00:00:00-05:00", "2020-04-01T00:00:00-04:00", 5)]


# --- DST (§6) ------------------------------------------------------------------------------

def intervals(conn, start, end, interval, zone="America/Montreal"):
    tz = ZoneInfo(zone)
    rows = conn.execute(sa.text("SELECT * FROM stat_kpi_intervals(:s, :e, :i, :z)"),
                        {"s": at(start), "e": at(end), "i": interval, "z": zone}).all()
    return [(a.astimezone(tz).isoformat(), b.astimezone(tz).isoformat()) for a, b in rows]


def test_dst_hour_intervals_fall_back(engine):
    """§6: hour intervals across 2020-11-01 in Montreal step in absolute time:
    00:00-04 -> 01:00-04 -> 01:00-05 -> 02:00-05."""
    with engine.connect() as conn:
        assert intervals(conn, "2020-10-31T23:00-04:00", "2020-11-01T02:00-05:00", "hour") == [
            ("2020-10-31T23:00:00-04:00", "2020-11-01T00:00:00-04:00"),
            ("2020-11-01T00:00:00-04:00", "2020-11-01T01:00:00-04:00"),
            ("2020-11-01T01:00:00-04:00", "2020-11-01T01:00:00-05:00"),
            ("2020-11-01T01:00:00-05:00", "2020-11-01T02:00:00-05:00")]


def test_dst_hour_intervals_spring_forward(engine):
    """§6: across 2020-03-08 the interval 01:00-05:00 -> 03:00-04:00 is one real hour."""
    with engine.connect() as conn:
        assert intervals(conn, "2020-03-07T23:00-05:00", "2020-03-08T04:00-04:00", "hour") == [
            ("2020-03-07T23:00:00-05:00", "2020-03-08T00:00:00-05:00"),
            ("2020-03-08T00:00:00-05:00", "2020-03-08T01:00:00-05:00"),
            ("2020-03-08T01:00:00-05:00", "2020-03-08T03:00:00-04:00"),
            ("2020-03-08T03:00:00-04:00", "2020-03-08T04:00:00-04:00")]


def test_dst_day_and_month_intervals_are_wall_clock(engine):
    """§6: day interval 2020-11-01T00:00-04:00 -> 2020-11-02T00:00-05:00 (25 h); months too;
    the last interval is cut at until."""
    with engine.connect() as conn:
        assert intervals(conn, "2020-10-31T00:00-04:00", "2020-11-02T12:00-05:00", "day") == [
            ("2020-10-31T00:00:00-04:00", "2020-11-01T00:00:00-04:00"),
            ("2020-11-01T00:00:00-04:00", "2020-11-02T00:00:00-05:00"),
            ("2020-11-02T00:00:00-05:00", "2020-11-02T12:00:00-05:00")]
        assert intervals(conn, "2020-03-07T00:00-05:00", "2020-03-09T00:00-04:00", "day") == [
            ("2020-03-07T00:00:00-05:00", "2020-03-08T00:00:00-05:00"),
            ("2020-03-08T00:00:00-05:00", "2020-03-09T00:00:00-04:00")]
        assert intervals(conn, "2020-10-26T00:00-04:00", "2020-11-03T00:00-05:00", "week") == [
            ("2020-10-26T00:00:00-04:00", "2020-11-02T00:00:00-05:00"),   # ours: 7 local days
            ("2020-11-02T00:00:00-05:00", "2020-11-03T00:00:00-05:00")]
        with pytest.raises(sa.exc.DBAPIError, match="interval must be"):
            intervals(conn, "2020-10-26T00:00-04:00", "2020-11-03T00:00-05:00", "fortnight")
        conn.rollback()
        assert intervals(conn, "2020-10-01T00:00-04:00", "2020-12-01T00:00-05:00", "month") == [
            ("2020-10-01T00:00:00-04:00", "2020-11-01T00:00:00-04:00"),
            ("2020-11-01T00:00:00-04:00", "2020-12-01T00:00:00-05:00")]


def test_dst_day_interval_sums_its_25_hours(wh):
    """call-logd's test_day_interval_multiple_days_with_all_filters_and_timezone: day items
    of the fall-back day sum the local 08..17 hours; Saturday (6) dropped."""
    q = wh.queue(1)
    for time, total in (("2020-10-31T17:00-04:00", 1), ("2020-10-31T18:00-04:00", 2),
                        ("2020-11-01T08:00-05:00", 3), ("2020-11-01T16:00-05:00", 4),
                        ("2020-11-02T07:00-05:00", 5), ("2020-11-02T08:00-05:00", 6),
                        ("2020-11-02T16:00-05:00", 7), ("2020-11-02T18:00-05:00", 8),
                        ("2020-11-03T16:00-05:00", 9)):
        wh.periodic(q, time, total=total, answered=total)
    items = kpi.queue_statistics(wh.conn, start=at("2020-10-31T00:00-04:00"), end=at("2020-11-03T00:00-05:00"),
                                 timezone="America/Montreal", interval="day", day_start_hour=8,
                                 day_end_hour=17, week_days=(1, 2, 3, 4, 5, 7), queue_id=1)
    assert [(i["from"], i["until"], i["received"]) for i in items] == [
        ("2020-11-01T00:00:00-04:00", "2020-11-02T00:00:00-05:00", 7),
        ("2020-11-02T00:00:00-05:00", "2020-11-03T00:00:00-05:00", 13),
        ("2020-10-31T00:00:00-04:00", "2020-11-03T00:00:00-05:00", 20)]


def test_hour_range_over_a_month_is_refused(wh):
    wh.queue(1)
    zone = ZoneInfo("UTC")
    assert not kpi.hour_range_too_large(at("2020-01-31 00:00"), at("2020-02-29 00:00"), zone)
    assert kpi.hour_range_too_large(at("2020-01-31 00:00"), at("2020-02-29 00:00:01"), zone)
    with pytest.raises(kpi.RangeTooLargeError):
        kpi.queue_statistics(wh.conn, start=at("2020-10-01 00:00"), end=at("2020-11-01 01:00"),
                             interval="hour", queue_id=1)
    assert len(kpi.queue_statistics(wh.conn, start=at("2020-10-01 00:00"), end=at("2020-11-01 00:00"),
                                    interval="hour", queue_id=1)) == 31 * 24 + 1


# --- agents (§5) ---------------------------------------------------------------------------

def test_agent_example(wh):
    """§5.2: agent 42 with calls of talktime 11 and 12 and one periodic row (55 min, 15 min,
    2 min) -> answered 2, conversation_time 23, login 3300, pause 900, wrapup 120. Its
    per-queue rows are not added to the totals (global rows only, §5.1/§7) but make the
    queues list; a queue with only answered calls comes last with zero times."""
    agent = wh.agent(42, number="1042")
    q1, q2 = wh.queue(1, name="q1"), wh.queue(2, name="q2")
    wh.agent_periodic(agent, "2020-10-06 08:00", login=55 * 60, pause=15 * 60, wrapup=120)
    wh.agent_periodic(agent, "2020-10-06 08:00", login=55 * 60, pause=10 * 60, wrapup=120, stat_queue_id=q1)
    wh.call(q1, "2020-10-06 08:10", talktime=11, stat_agent_id=agent)
    wh.call(q2, "2020-10-06 08:20", talktime=12, stat_agent_id=agent)
    wh.call(q2, "2020-10-06 08:30", status="abandoned", waittime=9, stat_agent_id=agent)
    [item] = kpi.agent_statistics(wh.conn)
    assert {k: item[k] for k in ("agent_id", "agent_number", "tenant_uuid", "from", "answered",
                                 "conversation_time", "login_time", "pause_time", "wrapup_time")} == {
        "agent_id": 42, "agent_number": "1042", "tenant_uuid": TENANT, "from": "2020-10-06T08:00:00+00:00",
        "answered": 2, "conversation_time": 23, "login_time": 3300, "pause_time": 900, "wrapup_time": 120}
    assert item["queues"] == [
        {"queue_id": 1, "answered": 1, "conversation_time": 11, "login_time": 3300, "pause_time": 600, "wrapup_time": 120},
        {"queue_id": 2, "answered": 1, "conversation_time": 12, "login_time": 0, "pause_time": 0, "wrapup_time": 0}]
    assert item["average_handling_time"] == (23 + 120) / 2


def test_agent_over_24_hours_and_intervals(wh):
    """§5.2: 25 h -> 90000 s (plain seconds); fractions truncated; by-id route with day
    intervals; an interval without global rows has zeros even with answered calls."""
    agent = wh.agent(7)
    q = wh.queue(1)
    for hour in range(25):
        wh.agent_periodic(agent, (at("2020-10-06 00:00") + timedelta(hours=hour)).isoformat(), login=3600)
    wh.agent_periodic(agent, "2020-10-07 01:00", login=0.75, pause=0.5)
    wh.call(q, "2020-10-08 09:00", talktime=30, stat_agent_id=agent)  # a day with no hour row
    items = kpi.agent_statistics(wh.conn, start=at("2020-10-06 00:00"), end=at("2020-10-09 00:00"),
                                 interval="day", agent_id=7)
    assert [(i["from"][:10], i["login_time"], i["pause_time"], i["answered"]) for i in items] == [
        ("2020-10-06", 86400, 0, 0), ("2020-10-07", 3600, 0, 0), ("2020-10-08", 0, 0, 0),
        ("2020-10-06", 90000, 0, 1)]
    assert items[2]["queues"] == [] and items[-1]["conversation_time"] == 30


def test_agent_pause_by_reason(wh):
    agent = wh.agent(7)
    wh.agent_periodic(agent, "2020-10-06 08:00", login=3600, pause=900)
    for reason, seconds in (("lunch", 600), ("", 300)):
        wh.conn.execute(sa.text(
            "INSERT INTO stat_agent_pause_reason (time, stat_agent_id, reason, pause_time)"
            " VALUES ('2020-10-06 08:00+00', :a, :r, make_interval(secs => :s))"),
            {"a": agent, "r": reason, "s": seconds})
    [item] = kpi.agent_statistics(wh.conn, start=at("2020-10-06 00:00"), end=at("2020-10-07 00:00"))
    assert item["pause_by_reason"] == [{"reason": "lunch", "pause_time": 600}, {"reason": "", "pause_time": 300}]
    assert sum(r["pause_time"] for r in item["pause_by_reason"]) == item["pause_time"]


# --- tenants, 404s, short abandons -------------------------------------------------------

def test_tenants_and_not_found(wh):
    mine, theirs = wh.queue(1, tenant=TENANT), wh.queue(2, tenant=OTHER_TENANT)
    wh.periodic(mine, "2020-10-06 08:00", total=1, answered=1)
    wh.periodic(theirs, "2020-10-06 08:00", total=5, answered=5)
    assert [i["queue_id"] for i in kpi.queue_statistics(wh.conn, tenant_uuids=[TENANT])] == [1]
    assert kpi.queue_statistics(wh.conn, tenant_uuids=[]) == []
    # no week day: call-logd keeps the day intervals but every sum is zero (SQL IN ())
    items = kpi.queue_statistics(wh.conn, start=at("2020-10-06 00:00"), end=at("2020-10-08 00:00"),
                                 interval="day", week_days=(), queue_id=1)
    assert [(i["from"][:10], i["received"], i["answered_rate"]) for i in items] == [
        ("2020-10-06", 0, None), ("2020-10-07", 0, None), ("2020-10-06", 0, None)]
    assert len(kpi.queue_statistics(wh.conn)) == 2
    assert kpi.queue_exists(wh.conn, 2, None) and not kpi.queue_exists(wh.conn, 2, [TENANT])
    with pytest.raises(kpi.QueueNotFoundError):
        kpi.queue_statistics(wh.conn, queue_id=2, tenant_uuids=[TENANT])
    with pytest.raises(kpi.QueueNotFoundError):
        kpi.queue_qos(wh.conn, queue_id=3)
    with pytest.raises(kpi.AgentNotFoundError):
        kpi.agent_statistics(wh.conn, agent_id=1)
    wh.agent(1, tenant=OTHER_TENANT)
    assert kpi.agent_exists(wh.conn, 1, [OTHER_TENANT]) and not kpi.agent_exists(wh.conn, 1, [TENANT])


def test_abandon_rate_with_short_abandons(wh):
    """Peers' abandon rate: abandoned / offered (answered, abandoned, timeout, leaveempty),
    abandons shorter than the threshold left out of both; service level over the same base."""
    q = wh.queue(1)
    wh.periodic(q, "2020-10-06 08:00", total=6, answered=3, abandoned=2, timeout=1)
    for status, wait in (("answered", 5), ("answered", 25), ("answered", 60), ("abandoned", 2),
                         ("abandoned", 40), ("timeout", 90), ("closed", 0)):
        wh.call(q, "2020-10-06 08:10", status=status, waittime=wait)
    [plain] = kpi.queue_statistics(wh.conn, qos_threshold=30)
    assert (plain["offered"], plain["abandon_rate"], plain["service_level"]) == (6, round(100 * 2 / 6, 2), round(100 * 2 / 6, 2))
    [short] = kpi.queue_statistics(wh.conn, qos_threshold=30, short_abandon_threshold=5)
    assert (short["short_abandoned"], short["abandon_rate"], short["service_level"]) == (1, 20.0, 40.0)
    assert short["longest_waiting_time"] == 90 and short["answered_rate"] == 50.0  # call-logd's: 3 / 6


# --- golden set: SQL functions vs an independent Python computation ---------------------

GOLDEN_SET = GOLDEN / "week_s1"


def _golden_rows(name):
    expected = GOLDEN_SET / "expected"
    folder = expected / "single" if (expected / "single").is_dir() else sorted(expected.iterdir())[-1]
    with open(folder / name, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.skipif(not GOLDEN_SET.is_dir(), reason="golden sets not beside the project")
def test_golden_set_kpis_match_an_independent_computation(engine):
    confd = json.loads((GOLDEN_SET / "confd.json").read_text())
    calls, periodic, agent_rows = (_golden_rows(n) for n in ("calls.csv", "queue_periodic.csv", "agent_periodic.csv"))
    queue_ids = {q["name"]: (q["id"], q["tenant_uuid"]) for q in confd["queues"]}
    agent_ids = {"Agent/" + a["number"]: (a["id"], a["tenant_uuid"]) for a in confd["agents"]}
    with engine.begin() as conn:
        wh = Warehouse(conn)
        queue_names = sorted({r["queue"] for r in calls + periodic} | {r["queue"] for r in agent_rows if r["queue"]})
        stat_queue = {n: wh.queue(queue_ids.get(n, (None,))[0], name=n,
                                  tenant=queue_ids.get(n, (None, confd["master_tenant"]))[1]) for n in queue_names}
        agent_names = sorted({r["agent"] for r in agent_rows} | {r["agent"] for r in calls if r["agent"]})
        stat_agent = {n: conn.execute(sa.text(
            "INSERT INTO stat_agent (name, tenant_uuid, agent_id) VALUES (:n, :t, :a) RETURNING id"),
            {"n": n, "t": agent_ids.get(n, (None, confd["master_tenant"]))[1],
             "a": agent_ids.get(n, (None,))[0]}).scalar_one() for n in agent_names}
        conn.execute(sa.text(
            "INSERT INTO stat_call_on_queue (callid, time, status, waittime, talktime, ringtime, stat_queue_id, stat_agent_id)"
            " VALUES (:callid, :time, CAST(:status AS call_exit_type), :waittime, :talktime, 0, :q, :a)"),
            [{**r, "q": stat_queue[r["queue"]], "a": stat_agent.get(r["agent"])} for r in calls])
        counters = ("answered", "abandoned", "total", "full", "closed", "joinempty", "leaveempty",
                    "divert_ca_ratio", "divert_waittime", "timeout")
        conn.execute(sa.text(
            "INSERT INTO stat_queue_periodic (time, stat_queue_id, " + ", ".join(f'"{c}"' for c in counters) + ")"
            " VALUES (:time, :q, " + ", ".join(f":{c}" for c in counters) + ")"),
            [{**r, "q": stat_queue[r["queue"]]} for r in periodic])
        conn.execute(sa.text(
            "INSERT INTO stat_agent_periodic (time, stat_agent_id, stat_queue_id, login_time, pause_time, wrapup_time)"
            " VALUES (:time, :a, :q, make_interval(secs => CAST(:login_time AS float8)),"
            " make_interval(secs => CAST(:pause_time AS float8)), make_interval(secs => CAST(:wrapup_time AS float8)))"),
            [{**r, "a": stat_agent[r["agent"]], "q": stat_queue.get(r["queue"]) if r["queue"] else None}
             for r in agent_rows])

    zone_name = "Europe/Paris"
    zone = ZoneInfo(zone_name)
    times = sorted(datetime.fromisoformat(r["time"]) for r in periodic)
    start = datetime.combine((times[0] + timedelta(days=1)).astimezone(zone).date(), datetime.min.time(), tzinfo=zone)
    end = start + timedelta(days=4)
    start_hour, end_hour, week_days, qos = 9, 17, (1, 2, 3, 4, 6), 20

    def matches(text_time):
        moment = datetime.fromisoformat(text_time)
        local = moment.astimezone(zone)
        return (start <= moment < end and start_hour <= local.hour <= end_hour
                and local.isoweekday() in week_days)

    def expected_queue(name):
        rows = [r for r in periodic if r["queue"] == name and matches(r["time"])]
        s = {c: sum(int(r[c]) for r in rows) for c in counters}
        own = [r for r in calls if r["queue"] == name and matches(r["time"])]
        waited = s["answered"] + s["abandoned"] + s["leaveempty"] + s["timeout"]
        rate_base = s["answered"] + s["abandoned"] + s["full"] + s["leaveempty"] + s["joinempty"] + s["timeout"]
        within = sum(1 for r in own if r["status"] == "answered" and int(r["waittime"]) <= qos)
        answered_calls = [r for r in own if r["status"] == "answered"]
        offered = [r for r in own if r["status"] in ("answered", "abandoned", "timeout", "leaveempty")]
        return {
            "received": s["total"], "answered": s["answered"], "abandoned": s["abandoned"],
            "closed": s["closed"], "not_answered": s["timeout"],
            "saturated": s["full"] + s["divert_waittime"] + s["divert_ca_ratio"],
            "blocked": s["joinempty"] + s["leaveempty"],
            "average_waiting_time": int(round(float(sum(int(r["waittime"]) for r in own)) / waited, 2)) if waited else None,
            "answered_rate": round(100.0 * s["answered"] / rate_base, 2) if rate_base else None,
            "quality_of_service": round(100.0 * within / s["answered"], 2) if s["answered"] else None,
            "offered": len(offered),
            "average_speed_of_answer": (float((Decimal(sum(int(r["waittime"]) for r in answered_calls))
                                               / len(answered_calls)).quantize(Decimal("0.01"), ROUND_HALF_UP))
                                        if answered_calls else None),
            "longest_waiting_time": max((int(r["waittime"]) for r in offered), default=None),
        }

    def expected_agent(name):
        mine = [r for r in agent_rows if r["agent"] == name and not r["queue"] and matches(r["time"])]
        if not mine:
            return {"answered": 0, "conversation_time": 0, "login_time": 0, "pause_time": 0, "wrapup_time": 0}
        answered = [r for r in calls if r["agent"] == name and r["status"] == "answered" and matches(r["time"])]
        seconds = {k: int(sum(Decimal(r[k]) for r in mine)) for k in ("login_time", "pause_time", "wrapup_time")}
        return {"answered": len(answered), "conversation_time": sum(int(r["talktime"]) for r in answered), **seconds}

    day_queue = next(n for n in queue_names if n in queue_ids)
    with engine.connect() as conn:
        queue_items = kpi.queue_statistics(conn, start=start, end=end, timezone=zone_name, qos_threshold=qos,
                                           day_start_hour=start_hour, day_end_hour=end_hour, week_days=week_days)
        agent_items = kpi.agent_statistics(conn, start=start, end=end, timezone=zone_name,
                                           day_start_hour=start_hour, day_end_hour=end_hour, week_days=week_days)
        by_day = kpi.queue_statistics(conn, start=start, end=end, timezone=zone_name, interval="day",
                                      qos_threshold=qos, day_start_hour=start_hour, day_end_hour=end_hour,
                                      week_days=week_days, queue_id=queue_ids[day_queue][0])

    assert len(queue_items) == len(queue_names) and len(agent_items) == len(agent_names)
    checked_answers = 0
    for item in queue_items:
        want = expected_queue(item["queue_name"])
        assert {k: item[k] for k in want} == want, item["queue_name"]
        checked_answers += item["answered"]
    assert checked_answers > 50  # the filters leave real traffic to compare
    for item in agent_items:
        want = expected_agent("Agent/" + item["agent_number"])
        assert {k: item[k] for k in want} == want, item["agent_number"]
    assert sum(i["login_time"] for i in agent_items) > 0
    # day items: the kept days' sums make the period (every filter applies inside each day)
    days, period = by_day[:-1], by_day[-1]
    assert [datetime.fromisoformat(d["from"]).isoweekday() in week_days for d in days] == [True] * len(days)
    assert sum(d["received"] for d in days) == period["received"] == expected_queue(day_queue)["received"]


def test_queue_report_uses_call_logds_answered_rate(wh):
    """stat_queue_report() (migration 0014): answered_rate is call-logd's (closed and
    divert_* out of the base, a percentage), the old answered / total is answered_share."""
    q = wh.queue(1, name="sales")
    wh.periodic(q, "2020-10-06 08:00", total=7, answered=2, abandoned=1, closed=3, full=1)
    wh.periodic(q, "2020-10-06 09:00", total=1, divert_waittime=1)
    for status, wait in (("answered", 10), ("answered", 20), ("abandoned", 7)):
        wh.call(q, "2020-10-06 08:30", status=status, waittime=wait)
    [row] = wh.conn.execute(sa.text("SELECT * FROM stat_queue_report('Europe/Paris', 'day')")).mappings()
    assert (row["queue"], row["total"], row["answered"]) == ("sales", 8, 2)
    assert row["answered_rate"] == Decimal("50.00")          # 2 / (2 + 1 + 1)
    assert row["answered_share"] == Decimal("0.2500")        # 2 / 8, the former answered_rate
    assert row["average_waiting_time"] == 12                 # 37 / 3 = 12.33
    assert row["period_start"] == at("2020-10-06T00:00+02:00")
    [via_api] = kpi.queue_statistics(wh.conn, start=at("2020-10-06T00:00+02:00"), end=at("2020-10-07T00:00+02:00"),
                                     timezone="Europe/Paris")
    assert (via_api["answered_rate"], via_api["average_waiting_time"]) == (50.0, 12)


def test_partial_hour_from_takes_calls_but_not_the_hour_row(wh):
    """§3: with from=10:30 the 10:00 hour row is out but the 10:45 call's wait is in W
    (call-logd does not reconcile the two sources)."""
    q = wh.queue(1)
    wh.periodic(q, "2020-10-06 10:00", total=2, answered=2)
    wh.periodic(q, "2020-10-06 11:00", total=1, answered=1)
    wh.call(q, "2020-10-06 10:15", waittime=100)
    wh.call(q, "2020-10-06 10:45", waittime=30)
    wh.call(q, "2020-10-06 11:05", waittime=6)
    [item] = kpi.queue_statistics(wh.conn, start=at("2020-10-06 10:30"), end=at("2020-10-06 12:00"))
    assert (item["received"], item["answered"], item["average_waiting_time"]) == (1, 1, 36)


ZONES = ("America/Montreal", "Europe/Paris", "America/Santiago", "Australia/Lord_Howe",
         "Pacific/Chatham", "America/Havana", "Asia/Kolkata")


def test_local_times_become_instants_like_zoneinfo(engine):
    """stat_kpi_local_instant = Python's zoneinfo with fold=0 (what call-logd's datetimes
    do): around every offset change of 2020-2023 in zones with midnight changes (Santiago,
    Havana), half-hour DST (Lord Howe), odd offsets (Chatham), or none (Kolkata)."""
    cases = []
    for name in ZONES:
        zone = ZoneInfo(name)
        moment, last = datetime(2020, 1, 1, tzinfo=UTC), None
        while moment < datetime(2024, 1, 1, tzinfo=UTC):
            offset = moment.astimezone(zone).utcoffset()
            if last is not None and offset != last:
                wall = moment.astimezone(zone).replace(tzinfo=None)
                for minutes in range(-150, 151, 15):
                    cases.append((name, wall + timedelta(minutes=minutes)))
            last, moment = offset, moment + timedelta(minutes=30)
        cases.append((name, datetime(2022, 6, 15, 12, 0)))
    with engine.connect() as conn:
        got = conn.execute(sa.text(
            "SELECT stat_kpi_local_instant(l, z) FROM unnest(CAST(:l AS timestamp[]), CAST(:z AS text[])) AS t(l, z)"),
            {"l": [w for _, w in cases], "z": [z for z, _ in cases]}).scalars().all()
    want = [w.replace(tzinfo=ZoneInfo(z)).astimezone(UTC) for z, w in cases]
    assert len(cases) > 300
    assert [(z, w.isoformat(), g, e) for (z, w), g, e in zip(cases, got, want) if g != e][:5] == []
