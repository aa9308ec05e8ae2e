"""The set-based by-interval reports (migration 0015: stat_queue_kpi_by_interval,
stat_agent_kpi_by_interval, stat_queue_qos_by_interval, one pass over the tables) give
exactly what calling the per-period functions of 0013 (stat_queue_kpi, stat_agent_kpi,
stat_queue_qos) once per interval gives — the definition they replace.

The interval lists of the reference are computed here in Python with zoneinfo, the way
wazo-call-logd's services.py steps (hour = one real hour, day and month = wall-clock steps,
the last one cut at until; call-logd's rules for dropping hours outside working hours and
days outside the week days), so neither the windows nor the sums of the reference go through
0015's code. Over the golden set week_s1's tables in America/New_York, whose spring-forward
(2024-03-10) falls inside that week, with a deleted queue row sharing a confd id, a queue of
another tenant and pause reasons added, for hour, day and month grains, with and without
working hours / week days / tenants. Values are compared with their SQL types and text
(a Decimal 8.0 is not 8.00), rows in order.
"""
from __future__ import annotations

import calendar
import uuid
from datetime import datetime, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from stat_pipeline.warehouse.migrate import migrate
from stat_pipeline_tests.golden import GOLDEN
from stat_pipeline_tests.warehouse_tables import load_tables

GOLDEN_SET = GOLDEN / "week_s1"
ZONE_NAME = "America/New_York"
ZONE = ZoneInfo(ZONE_NAME)
TENANT = "11111111-1111-4111-8111-111111111111"  # week_s1's queues and agents
OTHER_TENANT = "6e0c3ff5-6a17-4d4a-9c7a-a1b3b6b4e3a9"
UTC = dt_timezone.utc

pytestmark = pytest.mark.skipif(not GOLDEN_SET.is_dir(), reason="golden sets not beside the project")


# --- call-logd's intervals, independently --------------------------------------------------

def _wall_clock(moment: datetime, days: int = 0, months: int = 0) -> datetime:
    """moment + days/months of the zone's wall clock; a wall-clock time is an instant the
    way Python's zoneinfo reads it (fold=0), as call-logd's datetimes do."""
    local = moment.astimezone(ZONE).replace(tzinfo=None) + timedelta(days=days)
    if months:
        month0 = local.month - 1 + months
        year, month = local.year + month0 // 12, month0 % 12 + 1
        local = local.replace(year=year, month=month, day=min(local.day, calendar.monthrange(year, month)[1]))
    return local.replace(tzinfo=ZONE).astimezone(UTC)


def call_logd_windows(start, end, interval, start_hour=None, end_hour=None, week_days=None):
    """[(from, until, is_period)]: the kept intervals, then the period."""
    windows = []
    step = {"hour": lambda m: m + timedelta(hours=1), "day": lambda m: _wall_clock(m, days=1),
            "month": lambda m: _wall_clock(m, months=1)}.get(interval)
    moment = start
    while step and start is not None and moment < end:
        following = min(step(moment), end)
        first, last = moment.astimezone(ZONE), following.astimezone(ZONE)
        out_of_hours = (interval == "hour" and start_hour is not None and end_hour is not None
                        and not (start_hour <= first.hour <= end_hour and start_hour <= last.hour <= end_hour))
        out_of_days = interval in ("hour", "day") and week_days and first.isoweekday() not in week_days
        if not (out_of_hours or out_of_days):
            windows.append((moment, following, False))
        moment = following
    return windows + [(start, end, True)]


# --- the warehouse ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def engine(pg_server):
    """One warehouse for the module (loading it is the slow part); the tests only read."""
    name = f"kpi_set_based_{uuid.uuid4().hex[:12]}"
    pg_server.create_database(name)
    engine = sa.create_engine(pg_server.url(name))
    migrate(engine)
    with engine.begin() as conn:
        _load(conn)
    yield engine
    engine.dispose()
    pg_server.drop_database(name)


def _load(conn: sa.Connection) -> None:
    expected = GOLDEN_SET / "expected"
    folder = expected / "single" if (expected / "single").is_dir() else sorted(expected.iterdir())[-1]
    tables = load_tables(conn, folder, GOLDEN_SET / "confd.json")
    # a deleted row of the queue 'support' (same confd id) holding a third of its calls:
    # call-logd counts the calls of every row with that id, the hour rows of the live one
    support = tables.stat_queue["support"]
    old_support = conn.execute(sa.text(
        "INSERT INTO stat_queue (name, tenant_uuid, queue_id, deleted)"
        " SELECT name, tenant_uuid, queue_id, true FROM stat_queue WHERE id = :q RETURNING id"),
        {"q": support}).scalar_one()
    conn.execute(sa.text("UPDATE stat_call_on_queue SET stat_queue_id = :old WHERE stat_queue_id = :q AND id % 3 = 0"),
                 {"old": old_support, "q": support})
    # another tenant's queue and agent, left out by a tenant filter
    conn.execute(sa.text("UPDATE stat_queue SET tenant_uuid = :t WHERE id = :q"),
                 {"t": OTHER_TENANT, "q": tables.stat_queue["returns"]})
    conn.execute(sa.text("UPDATE stat_agent SET tenant_uuid = :t WHERE id = :a"),
                 {"t": OTHER_TENANT, "a": min(tables.stat_agent.values())})
    # pause reasons (the golden set has none): each global hour row's pause under one reason
    conn.execute(sa.text(
        "INSERT INTO stat_agent_pause_reason (time, stat_agent_id, stat_queue_id, reason, pause_time)"
        " SELECT time, stat_agent_id, NULL, (ARRAY['', 'lunch', 'break'])[1 + id % 3], pause_time"
        " FROM stat_agent_periodic WHERE stat_queue_id IS NULL AND pause_time > interval '0'"))


def _week(conn):
    """Local midnight after the first hour row, a week on: crosses 2024-03-10's spring-forward."""
    first = conn.execute(sa.text("SELECT min(time) FROM stat_queue_periodic")).scalar_one()
    day = (first + timedelta(days=1)).astimezone(ZONE).date()
    start = datetime(day.year, day.month, day.day, tzinfo=ZONE).astimezone(UTC)
    return start, _wall_clock(start, days=7)


def _typed(rows):
    """Rows as (type, text) of every value: equal values of other types or scales differ."""
    return [tuple((type(v).__name__, str(v)) for v in row) for row in rows]


# --- the reports ---------------------------------------------------------------------------

WINDOW_ARGS = "CAST(:from AS timestamptz), CAST(:until AS timestamptz), CAST(:interval AS text)"
FILTER_ARGS = ("CAST(:tz AS text), CAST(:sh AS int), CAST(:eh AS int), CAST(:wd AS int[]),"
               " CAST(:tenants AS text[])")
FILTERS = {"start_hour": 9, "end_hour": 17, "week_days": (1, 2, 3, 4, 6)}


def _period(conn, interval):
    """The week; for months, two wall-clock months around it, the second one cut."""
    start, end = _week(conn)
    if interval == "month":
        return _wall_clock(start, days=-20), _wall_clock(start, days=30)
    return start, end


def _both(conn, report, per_period, order, *, start, end, interval, filtered=False, tenants=None, **extra):
    """(rows of the set-based `report`, rows of `per_period` called once per window of
    call_logd_windows, in `order`); the SQL texts use WINDOW_ARGS / FILTER_ARGS and the
    reference's window bounds w.s, w.e, w.p."""
    filters = FILTERS if filtered else {}
    week_days = filters.get("week_days", (1, 2, 3, 4, 5, 6, 7))
    params = {"tz": ZONE_NAME, "sh": filters.get("start_hour"), "eh": filters.get("end_hour"),
              "wd": list(week_days), "tenants": tenants, "from": start, "until": end, "interval": interval,
              **extra}
    windows = call_logd_windows(start, end, interval, filters.get("start_hour"), filters.get("end_hour"), week_days)
    set_based = conn.execute(sa.text(f"SELECT * FROM {report}"), params).all()
    reference = conn.execute(sa.text(
        "SELECT w.s, w.e, w.p, k.*"
        " FROM unnest(CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]), CAST(:periods AS bool[]))"
        f"      AS w(s, e, p) CROSS JOIN LATERAL {per_period} k ORDER BY {order}"),
        {**params, "starts": [w[0] for w in windows], "ends": [w[1] for w in windows],
         "periods": [w[2] for w in windows]}).all()
    return set_based, reference


def _queue_both(conn, **kwargs):
    kwargs = {"qid": None, "qos": None, "short": None, **kwargs}
    extras = "CAST(:qid AS int), CAST(:qos AS int), CAST(:short AS int)"
    return _both(conn, f"stat_queue_kpi_by_interval({WINDOW_ARGS}, {FILTER_ARGS}, {extras})",
                 f"stat_queue_kpi(w.s, w.e, {FILTER_ARGS}, {extras})", "k.stat_queue_id, w.p, w.s", **kwargs)


@pytest.mark.parametrize("interval, filtered", [
    ("hour", False), ("hour", True), ("day", False), ("day", True), ("month", True), (None, True)])
def test_queue_report_equals_one_call_per_interval(engine, interval, filtered):
    with engine.connect() as conn:
        start, end = _period(conn, interval)
        set_based, reference = _queue_both(conn, start=start, end=end, interval=interval, filtered=filtered,
                                           tenants=[TENANT] if filtered else None, qos=20, short=5)
    assert _typed(set_based) == _typed(reference)
    intervals = [r for r in set_based if not r.is_period]
    assert sum(r.answered for r in intervals) > 50 or interval is None  # real traffic compared
    assert sum(r.offered for r in intervals) > 0 or interval is None
    if interval == "hour" and filtered:  # steps were dropped, their rows still in the period
        assert len({r.interval_start for r in intervals}) < (end - start) / timedelta(hours=1) * 0.6


def test_queue_report_of_one_queue_and_without_from(engine):
    """The API's by-id form (p_queue_id), and from NULL (a queue without statistics: the
    period alone, unbounded below)."""
    with engine.connect() as conn:
        start, end = _week(conn)
        set_based, reference = _queue_both(conn, start=start, end=end, interval="hour", qid=1, qos=10)
        assert _typed(set_based) == _typed(reference) and len(set_based) > 100
        set_based, reference = _queue_both(conn, start=None, end=end, interval="hour", qid=1, qos=10)
    assert _typed(set_based) == _typed(reference) and len(set_based) == 1 and set_based[0].received > 0


@pytest.mark.parametrize("interval, filtered", [("hour", False), ("hour", True), ("day", True), ("month", False)])
def test_agent_report_equals_one_call_per_interval(engine, interval, filtered):
    with engine.connect() as conn:
        start, end = _period(conn, interval)
        set_based, reference = _both(
            conn, f"stat_agent_kpi_by_interval({WINDOW_ARGS}, {FILTER_ARGS}, NULL)",
            f"stat_agent_kpi(w.s, w.e, {FILTER_ARGS}, NULL)", "k.stat_agent_id, w.p, w.s",
            start=start, end=end, interval=interval, filtered=filtered, tenants=[TENANT] if filtered else None)
    assert _typed(set_based) == _typed(reference)
    intervals = [r for r in set_based if not r.is_period]
    assert sum(r.answered for r in intervals) > 50 and sum(r.login_time for r in intervals) > 0
    assert any(r.pause_by_reason for r in intervals) and any(len(r.queues) > 1 for r in intervals)
    # some agent has a window without any global hour row (zeros there, calls not counted)
    assert any(r.queues == [] and r.login_time == 0 for r in intervals)


@pytest.mark.parametrize("interval, filtered", [("hour", True), ("day", False), ("month", True), (None, False)])
def test_qos_report_equals_one_call_per_interval(engine, interval, filtered):
    with engine.connect() as conn:
        start, end = _period(conn, interval)
        set_based, reference = _both(
            conn, f"stat_queue_qos_by_interval(1, {WINDOW_ARGS}, {FILTER_ARGS}, CAST(:thresholds AS int[]))",
            f"stat_queue_qos(1, w.s, w.e, {FILTER_ARGS}, CAST(:thresholds AS int[]))",
            "w.p, w.s, k.min, k.max NULLS LAST",
            start=start, end=end, interval=interval, filtered=filtered, thresholds=[60, 10, 20, 10])
    assert _typed(set_based) == _typed(reference)
    assert {(r.min, r.max) for r in set_based} == {(0, 10), (10, 20), (20, 60), (60, None)}
    assert sum(r.answered for r in set_based if r.is_period) > 20
