"""The set-based reports of migration 0015 (stat_queue_kpi_by_interval,
stat_agent_kpi_by_interval, stat_queue_qos_by_interval, one pass over the tables, and the
per-period stat_queue_kpi, stat_agent_kpi, stat_queue_qos, their period row) give, interval
by interval, what a plain computation gives: the reference here reads the stat tables into
Python and applies wazo-call-logd's filters and formulas to each window on its own
(queue_stat.py / agent_stat.py as ../shared/docs/wazo_call_logd_stats.md describes them,
call-logd's float rounding with Python's own round(), our extra KPIs as 0015's header
defines them).

The interval lists of the reference are computed here in Python with zoneinfo, the way
wazo-call-logd's services.py steps (hour = one real hour, day and month = wall-clock steps,
the last one cut at until; call-logd's rules for dropping hours outside working hours and
days outside the week days), so neither the windows nor the sums of the reference go through
the warehouse's code. Over the golden set week_s1's tables in America/New_York, whose spring-forward
(2024-03-10) falls inside that week, with a deleted queue row sharing a confd id, a queue of
another tenant and pause reasons added, for hour, day and month grains, with and without
working hours / week days / tenants. Values are compared with their SQL types and text
(a Decimal 8.0 is not 8.00), rows in order.
"""
from __future__ import annotations

import calendar
from bisect import bisect_left
import uuid
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
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


# --- call-logd's figures, independently -----------------------------------------------------

class Tables:
    """The stat tables as Python rows (read once per module)."""

    def __init__(self, conn: sa.Connection):
        def rows(sql):
            return conn.execute(sa.text(sql)).all()
        self.queues = rows("SELECT id, name, tenant_uuid, queue_id, deleted FROM stat_queue ORDER BY id")
        self.agents = rows("SELECT id, name, tenant_uuid, agent_id, deleted FROM stat_agent ORDER BY id")
        self.queue_hours = rows('SELECT "time", stat_queue_id, total, answered, abandoned, closed, timeout,'
                                ' "full", joinempty, leaveempty, divert_ca_ratio, divert_waittime'
                                " FROM stat_queue_periodic")
        self.calls = rows('SELECT "time", stat_queue_id, stat_agent_id, status::text AS status, waittime, talktime'
                          " FROM stat_call_on_queue")
        self.agent_hours = rows('SELECT "time", stat_agent_id, stat_queue_id, login_time, pause_time, wrapup_time'
                                " FROM stat_agent_periodic")
        self.pauses = rows('SELECT "time", stat_agent_id, stat_queue_id, reason, pause_time FROM stat_agent_pause_reason')
        self.queue_by_id = {q.id: q for q in self.queues}
        self._times = {}

    def during(self, name: str, start, end):
        """The rows of table `name` with start <= time < end (None = unbounded), by bisection
        of the rows sorted by time once (the reference reads hundreds of windows)."""
        if name not in self._times:
            ordered = sorted(getattr(self, name), key=lambda r: r.time)
            setattr(self, name, ordered)
            self._times[name] = [r.time for r in ordered]
        times, rows = self._times[name], getattr(self, name)
        return rows[0 if start is None else bisect_left(times, start):
                    len(rows) if end is None else bisect_left(times, end)]


def _matches(moment, start, end, start_hour, end_hour, week_days):
    """call-logd's row filter: [start, end), local hour in [start_hour, end_hour] (both
    given), local ISO week day in week_days (None = any)."""
    local = moment.astimezone(ZONE)
    return ((start is None or moment >= start) and (end is None or moment < end)
            and (start_hour is None or end_hour is None or start_hour <= local.hour <= end_hour)
            and (week_days is None or local.isoweekday() in week_days))


def _py_round2(numerator, denominator):
    """call-logd's round(P / Q, 2) on floats (the SQL type: numeric with 2 decimals, 0 as 0)."""
    return Decimal(0) if numerator == 0 else Decimal(repr(round(numerator / denominator, 2))).quantize(Decimal("0.01"))


def _numeric_round2(numerator, denominator):
    """PostgreSQL's round(numeric, 2) of an exact ratio (half away from zero)."""
    return (Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _seconds(duration: timedelta) -> Decimal:
    return Decimal(duration.days * 86400 + duration.seconds) + Decimal(duration.microseconds) / 1_000_000


def _whole_seconds(duration: timedelta) -> int:
    return int(_seconds(duration))  # truncated, like call-logd's Integer of total_seconds()


def _visible(entities, id_field, tenants, wanted_id):
    return [e for e in entities if not e.deleted and (tenants is None or e.tenant_uuid in tenants)
            and (wanted_id is None or getattr(e, id_field) == wanted_id)]


def _same_confd(entity, other, id_field):
    """Rows that count for `entity`: its own and those with its confd id."""
    return other.id == entity.id or (getattr(entity, id_field) is not None
                                     and getattr(other, id_field) == getattr(entity, id_field))


def expected_queue_rows(t: Tables, windows, *, tenants, queue_id, qos, short, hours, week_days):
    rows = []
    for queue in _visible(t.queues, "queue_id", tenants, queue_id):
        first = min((h.time for h in t.queue_hours
                     if not t.queue_by_id[h.stat_queue_id].deleted
                     and _same_confd(queue, t.queue_by_id[h.stat_queue_id], "queue_id")), default=None)
        call_queues = {q.id for q in t.queues if _same_confd(queue, q, "queue_id")
                       and (tenants is None or q.tenant_uuid in tenants)}
        for start, end, is_period in windows:
            def ok(moment):
                return _matches(moment, start, end, *hours, week_days)
            sums = defaultdict(int)
            for h in t.during("queue_hours", start, end):
                if h.stat_queue_id == queue.id and ok(h.time):
                    for field in ("total", "answered", "abandoned", "closed", "timeout", "full", "joinempty",
                                  "leaveempty", "divert_ca_ratio", "divert_waittime"):
                        sums[field] += getattr(h, field)
            calls = [c for c in t.during("calls", start, end) if c.stat_queue_id in call_queues and ok(c.time)]
            offered = [c for c in calls if c.status in ("answered", "abandoned", "timeout", "leaveempty")]
            answered_calls = [c for c in calls if c.status == "answered"]
            within = sum(1 for c in answered_calls if qos is not None and c.waittime <= qos)
            abandoned = sum(1 for c in calls if c.status == "abandoned")
            short_abandoned = sum(1 for c in calls if c.status == "abandoned" and short is not None
                                  and c.waittime < short)
            wrapup = sum((_seconds(a.wrapup_time) for a in t.during("agent_hours", start, end)
                          if a.stat_queue_id in call_queues and ok(a.time)), Decimal(0))
            waited = sums["answered"] + sums["abandoned"] + sums["leaveempty"] + sums["timeout"]
            rate_base = waited + sums["full"] + sums["joinempty"]
            counted = len(offered) - short_abandoned
            rows.append((
                start, end, is_period, queue.id, queue.queue_id, queue.name, queue.tenant_uuid, first,
                sums["total"], sums["answered"], sums["abandoned"], sums["closed"], sums["timeout"],
                sums["full"] + sums["divert_waittime"] + sums["divert_ca_ratio"],
                sums["joinempty"] + sums["leaveempty"],
                int(_py_round2(sum(c.waittime for c in calls), waited)) if waited else None,
                _py_round2(100 * sums["answered"], rate_base) if rate_base else None,
                _py_round2(100 * within, sums["answered"]) if qos is not None and sums["answered"] else None,
                len(offered), short_abandoned,
                _numeric_round2(100 * (abandoned - short_abandoned), counted) if counted > 0 else None,
                _numeric_round2(100 * within, counted) if qos is not None and counted > 0 else None,
                _numeric_round2(sum(c.waittime for c in answered_calls), len(answered_calls))
                if answered_calls else None,
                _numeric_round2(sum(c.talktime for c in answered_calls) + wrapup, len(answered_calls))
                if answered_calls else None,
                max((c.waittime for c in offered), default=None)))
    return rows


def expected_agent_rows(t: Tables, windows, *, tenants, agent_id, hours, week_days):
    rows = []
    agent_by_id = {a.id: a for a in t.agents}
    for agent in _visible(t.agents, "agent_id", tenants, agent_id):
        first = min((h.time for h in t.agent_hours
                     if not agent_by_id[h.stat_agent_id].deleted
                     and _same_confd(agent, agent_by_id[h.stat_agent_id], "agent_id")), default=None)
        call_agents = {a.id for a in t.agents if _same_confd(agent, a, "agent_id")
                       and (tenants is None or a.tenant_uuid in tenants)}
        for start, end, is_period in windows:
            def ok(moment):
                return _matches(moment, start, end, *hours, week_days)
            own_hours = [h for h in t.during("agent_hours", start, end) if h.stat_agent_id == agent.id and ok(h.time)]
            global_hours = [h for h in own_hours if h.stat_queue_id is None]
            if not global_hours:  # like call-logd: no global hour row, nothing counted
                rows.append((start, end, is_period, agent.id, agent.agent_id, agent.name.removeprefix("Agent/"),
                             agent.tenant_uuid, first, 0, 0, 0, 0, 0, [], None, []))
                continue
            times = {f: _whole_seconds(sum((getattr(h, f) for h in global_hours), timedelta()))
                     for f in ("login_time", "pause_time", "wrapup_time")}
            queue_times = defaultdict(lambda: defaultdict(timedelta))
            for h in own_hours:
                if h.stat_queue_id is not None:
                    for f in ("login_time", "pause_time", "wrapup_time"):
                        queue_times[t.queue_by_id[h.stat_queue_id].queue_id][f] += getattr(h, f)
            queue_calls = defaultdict(lambda: [0, 0])
            for c in t.during("calls", start, end):
                if c.stat_agent_id in call_agents and c.status == "answered" and ok(c.time):
                    queue = t.queue_by_id.get(c.stat_queue_id)
                    entry = queue_calls[queue.queue_id if queue else None]
                    entry[0] += 1
                    entry[1] += c.talktime
            queues = []
            for confd_id in set(queue_times) | set(queue_calls):
                answered, talktime = queue_calls.get(confd_id, (0, 0))
                spent = {f: _whole_seconds(queue_times[confd_id][f]) if confd_id in queue_times else 0
                         for f in ("login_time", "pause_time", "wrapup_time")}
                queues.append((confd_id not in queue_times, confd_id is None, confd_id or 0,
                               {"queue_id": confd_id, "answered": answered, "conversation_time": talktime, **spent}))
            answered = sum(n for n, _ in queue_calls.values())
            talktime = sum(s for _, s in queue_calls.values())
            reasons = defaultdict(timedelta)
            for r in t.during("pauses", start, end):
                if r.stat_agent_id == agent.id and r.stat_queue_id is None and ok(r.time):
                    reasons[r.reason] += r.pause_time
            by_reason = sorted(((-_whole_seconds(d), reason) for reason, d in reasons.items()))
            rows.append((
                start, end, is_period, agent.id, agent.agent_id, agent.name.removeprefix("Agent/"),
                agent.tenant_uuid, first, answered, talktime,
                times["login_time"], times["pause_time"], times["wrapup_time"],
                [q[-1] for q in sorted(queues, key=lambda q: q[:3])],
                _numeric_round2(talktime + times["wrapup_time"], answered) if answered else None,
                [{"reason": reason, "pause_time": -seconds} for seconds, reason in by_reason]))
    return rows


def expected_qos_rows(t: Tables, windows, *, queue_id, tenants, thresholds, hours, week_days):
    limits = sorted({x for x in thresholds if x is not None})
    buckets = list(zip([0, *limits], [*limits, None]))
    queues = {q.id for q in t.queues if q.queue_id == queue_id and (tenants is None or q.tenant_uuid in tenants)}
    rows = []
    for start, end, is_period in windows:
        calls = [c for c in t.during("calls", start, end) if c.stat_queue_id in queues and c.status in ("answered", "abandoned")
                 and _matches(c.time, start, end, *hours, week_days)]
        for low, high in buckets:
            inside = [c.status for c in calls if c.waittime >= low and (high is None or c.waittime < high)]
            rows.append((start, end, is_period, low, high, inside.count("answered"), inside.count("abandoned")))
    return rows


def _typed(rows):
    """Rows as (type, text) of every value: equal values of other types or scales differ
    (instants compared in UTC; JSON lists compared as values)."""
    def typed(value):
        if isinstance(value, datetime):
            return "datetime", str(value.astimezone(UTC))
        if isinstance(value, (list, dict)):
            return type(value).__name__, value
        return type(value).__name__, str(value)
    return [tuple(typed(v) for v in row) for row in rows]


# --- the reports ---------------------------------------------------------------------------

WINDOW_ARGS = "CAST(:from AS timestamptz), CAST(:until AS timestamptz), CAST(:interval AS text)"
FILTER_ARGS = ("CAST(:tz AS text), CAST(:sh AS int), CAST(:eh AS int), CAST(:wd AS int[]),"
               " CAST(:tenants AS text[])")
FILTERS = {"start_hour": 9, "end_hour": 17, "week_days": (1, 2, 3, 4, 6)}


@pytest.fixture(scope="module")
def tables(engine):
    with engine.connect() as conn:
        return Tables(conn)


def _period(conn, interval):
    """The week; for months, two wall-clock months around it, the second one cut."""
    start, end = _week(conn)
    if interval == "month":
        return _wall_clock(start, days=-20), _wall_clock(start, days=30)
    return start, end


def _both(conn, report, per_period, expected, *, start, end, interval, filtered=False, tenants=None, **extra):
    """(rows of the by-interval `report`, the rows `expected(windows, hours=, week_days=,
    tenants=)` computes for call_logd_windows); also checks that the per-period function
    `per_period` over [start, end) gives the expected period rows."""
    filters = FILTERS if filtered else {}
    week_days = filters.get("week_days", (1, 2, 3, 4, 5, 6, 7))
    hours = (filters.get("start_hour"), filters.get("end_hour"))
    params = {"tz": ZONE_NAME, "sh": hours[0], "eh": hours[1],
              "wd": list(week_days), "tenants": tenants, "from": start, "until": end, "interval": interval,
              **extra}
    windows = call_logd_windows(start, end, interval, *hours, week_days)
    by_interval = conn.execute(sa.text(f"SELECT * FROM {report}"), params).all()
    reference = expected(windows, hours=hours, week_days=week_days, tenants=tenants)
    period = conn.execute(sa.text(f"SELECT * FROM {per_period}"), params).all()
    assert _typed(period) == _typed([row[3:] for row in reference if row[2]])
    return by_interval, reference


def _queue_both(conn, t, *, qid=None, qos=None, short=None, **kwargs):
    extras = "CAST(:qid AS int), CAST(:qos AS int), CAST(:short AS int)"
    return _both(conn, f"stat_queue_kpi_by_interval({WINDOW_ARGS}, {FILTER_ARGS}, {extras})",
                 f"stat_queue_kpi(CAST(:from AS timestamptz), CAST(:until AS timestamptz), {FILTER_ARGS}, {extras})",
                 lambda windows, **f: expected_queue_rows(t, windows, queue_id=qid, qos=qos, short=short, **f),
                 qid=qid, qos=qos, short=short, **kwargs)


@pytest.mark.parametrize("interval, filtered", [
    ("hour", False), ("hour", True), ("day", False), ("day", True), ("month", True), (None, True)])
def test_queue_report_equals_call_logd_per_interval(engine, tables, interval, filtered):
    with engine.connect() as conn:
        start, end = _period(conn, interval)
        set_based, reference = _queue_both(conn, tables, start=start, end=end, interval=interval, filtered=filtered,
                                           tenants=[TENANT] if filtered else None, qos=20, short=5)
    assert _typed(set_based) == _typed(reference)
    intervals = [r for r in set_based if not r.is_period]
    assert sum(r.answered for r in intervals) > 50 or interval is None  # real traffic compared
    assert sum(r.offered for r in intervals) > 0 or interval is None
    assert any(r.short_abandoned for r in set_based) and any(r.average_handling_time for r in set_based)
    if interval == "hour" and filtered:  # steps were dropped, their rows still in the period
        assert len({r.interval_start for r in intervals}) < (end - start) / timedelta(hours=1) * 0.6


def test_queue_report_of_one_queue_and_without_from(engine, tables):
    """The API's by-id form (p_queue_id), and from NULL (a queue without statistics: the
    period alone, unbounded below)."""
    with engine.connect() as conn:
        start, end = _week(conn)
        set_based, reference = _queue_both(conn, tables, start=start, end=end, interval="hour", qid=1, qos=10)
        assert _typed(set_based) == _typed(reference) and len(set_based) > 100
        set_based, reference = _queue_both(conn, tables, start=None, end=end, interval="hour", qid=1, qos=10)
    assert _typed(set_based) == _typed(reference) and len(set_based) == 1 and set_based[0].received > 0


@pytest.mark.parametrize("interval, filtered", [("hour", False), ("hour", True), ("day", True), ("month", False)])
def test_agent_report_equals_call_logd_per_interval(engine, tables, interval, filtered):
    with engine.connect() as conn:
        start, end = _period(conn, interval)
        set_based, reference = _both(
            conn, f"stat_agent_kpi_by_interval({WINDOW_ARGS}, {FILTER_ARGS}, NULL)",
            f"stat_agent_kpi(CAST(:from AS timestamptz), CAST(:until AS timestamptz), {FILTER_ARGS}, NULL)",
            lambda windows, **f: expected_agent_rows(tables, windows, agent_id=None, **f),
            start=start, end=end, interval=interval, filtered=filtered, tenants=[TENANT] if filtered else None)
    assert _typed(set_based) == _typed(reference)
    intervals = [r for r in set_based if not r.is_period]
    assert sum(r.answered for r in intervals) > 50 and sum(r.login_time for r in intervals) > 0
    assert any(r.pause_by_reason for r in intervals) and any(len(r.queues) > 1 for r in intervals)
    # some agent has a window without any global hour row (zeros there, calls not counted)
    assert any(r.queues == [] and r.login_time == 0 for r in intervals)


@pytest.mark.parametrize("interval, filtered", [("hour", True), ("day", False), ("month", True), (None, False)])
def test_qos_report_equals_call_logd_per_interval(engine, tables, interval, filtered):
    with engine.connect() as conn:
        start, end = _period(conn, interval)
        set_based, reference = _both(
            conn, f"stat_queue_qos_by_interval(1, {WINDOW_ARGS}, {FILTER_ARGS}, CAST(:thresholds AS int[]))",
            f"stat_queue_qos(1, CAST(:from AS timestamptz), CAST(:until AS timestamptz), {FILTER_ARGS},"
            " CAST(:thresholds AS int[]))",
            lambda windows, **f: expected_qos_rows(tables, windows, queue_id=1, thresholds=[60, 10, 20, 10], **f),
            start=start, end=end, interval=interval, filtered=filtered, thresholds=[60, 10, 20, 10])
    assert _typed(set_based) == _typed(reference)
    assert {(r.min, r.max) for r in set_based} == {(0, 10), (10, 20), (20, 60), (60, None)}
    assert sum(r.answered for r in set_based if r.is_period) > 20
