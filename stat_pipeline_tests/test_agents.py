"""Agent statistics (stat_agent_periodic, stat_agent_pause_reason) through the real job and a
PostgreSQL source: the agent cases of reference_test_cases.md (A4 logins, A5 per-queue
membership and pauses, A6 wrap-up splitting, A9 hd wrap-up quirk) moved to 2024-03-01, and
what we do differently from wazo-stat (docs/differences-from-wazo.md, "Agents")."""
from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from stat_pipeline_tests.harness import DAY, CallCentre, at

UTC = dt.timezone.utc
T1 = "11111111-1111-4111-8111-111111111111"
T2 = "22222222-2222-4222-8222-222222222222"
MASTER = "00000000-0000-4000-8000-000000000000"
PREV = DAY - dt.timedelta(days=1)
END_OF_DAY = at("23:59:59")
AGENT_ASSETS = ["stat_agent_periodic"]


def _config(tmp_path, **extra) -> str:
    doc = {"master_tenant": MASTER,
           "queues": [{"id": i, "name": n, "tenant_uuid": T1}
                      for i, n in ((1, "queue1"), (2, "queue2"), (3, "queue_a"), (4, "queue_b"))],
           "agents": [{"id": n, "number": str(n), "tenant_uuid": T1}
                      for n in (1, 2, 3, 4, 1001, 1002)],
           **extra}
    path = tmp_path / "confd.json"
    path.write_text(json.dumps(doc))
    return str(path)


@pytest.fixture
def centre(warehouse_url, tmp_path):
    c = CallCentre(warehouse_url, _config(tmp_path), until=END_OF_DAY)
    yield c
    c.close()


def rows(centre: CallCentre, table: str = "stat_agent_periodic") -> list[tuple]:
    """(HH:MM or 'prev HH:MM', agent, queue or '', login s, pause s, wrapup s)"""
    return [(_hour(r[0]), *r[1:3], *(round(float(v), 6) for v in r[3:]))
            for r in centre.query(
                "SELECT p.\"time\", a.name, coalesce(q.name, ''), "
                "extract(epoch FROM p.login_time), extract(epoch FROM p.pause_time), "
                "extract(epoch FROM p.wrapup_time) FROM stat_agent_periodic p "
                "JOIN stat_agent a ON a.id = p.stat_agent_id "
                "LEFT JOIN stat_queue q ON q.id = p.stat_queue_id ORDER BY 1, 2, 3")]


def reasons(centre: CallCentre) -> list[tuple]:
    return [(_hour(r[0]), r[1], r[2], r[3], round(float(r[4]), 6)) for r in centre.query(
        "SELECT r.\"time\", a.name, coalesce(q.name, ''), r.reason, "
        "extract(epoch FROM r.pause_time) FROM stat_agent_pause_reason r "
        "JOIN stat_agent a ON a.id = r.stat_agent_id "
        "LEFT JOIN stat_queue q ON q.id = r.stat_queue_id ORDER BY 1, 2, 3, 4")]


def _hour(t: dt.datetime) -> str:
    t = t.astimezone(UTC)
    return t.strftime("%H:%M") if t.date() == DAY.date() else t.strftime("%m-%d %H:%M")


def copy_rows(centre: CallCentre, first: str = "2024-02-29-00:00",
              last: str = "2024-03-01-23:00") -> None:
    centre.run(first, last, assets=["queue_log"])


def login(agent, t, ctx="default"):
    return (t, "NONE", "NONE", agent, "AGENTCALLBACKLOGIN", f"{agent[6:]}@{ctx}")


def logoff(agent, t, seconds, ctx="default"):
    return (t, "NONE", "NONE", agent, "AGENTCALLBACKLOGOFF", f"{agent[6:]}@{ctx}", str(seconds),
            "CommandLogoff")


def event(t, agent, name, queue="NONE", *data):
    return (t, "NONE", queue, agent, name, *data)


# -- A5: per-queue membership (by name and by interface), PAUSE and PAUSEALL, wrap-up -----

A5_ROWS = [
    login("Agent/1", at("07:00:00"), "default"),
    event(at("08:00:00"), "Agent/1", "ADDMEMBER", "queue_a"),
    event(at("08:00:00"), "Local/id-1@agentcallback", "ADDMEMBER", "queue_b"),
    event(at("09:00:00"), "Agent/1", "PAUSE", "queue_a"),
    event(at("09:15:00"), "Agent/1", "PAUSEALL"),
    event(at("09:45:00"), "Agent/1", "UNPAUSEALL"),
    event(at("09:59:09.999999"), "Agent/2", "PAUSEALL"),
    event(at("10:00:00"), "Agent/1", "UNPAUSE", "queue_a"),
    ("2024-03-01 10:10:00+00", "w1", "queue_a", "Agent/1", "WRAPUPSTART", "30"),
    ("2024-03-01 10:20:00+00", "c1", "queue_a", "NONE", "ENTERQUEUE", "", "0600", "1"),
    ("2024-03-01 10:20:05+00", "c1", "queue_a", "Agent/1", "CONNECT", "5", "c1.1", "2"),
    ("2024-03-01 10:25:05+00", "c1", "queue_a", "Agent/1", "COMPLETEAGENT", "5", "300", "1"),
    event(at("10:54:09.999999"), "Agent/2", "UNPAUSEALL"),
    event(at("12:00:00"), "Local/id-1@agentcallback", "REMOVEMEMBER", "queue_b"),
    logoff("Agent/1", at("12:30:00"), 19800),
]

A5_EXPECTED = [
    ("07:00", "Agent/1", "", 3600, 0, 0),
    ("08:00", "Agent/1", "", 3600, 0, 0),
    ("08:00", "Agent/1", "queue_a", 3600, 0, 0),
    ("08:00", "Agent/1", "queue_b", 3600, 0, 0),
    ("09:00", "Agent/1", "", 3600, 1800, 0),
    ("09:00", "Agent/1", "queue_a", 3600, 3600, 0),
    ("09:00", "Agent/1", "queue_b", 3600, 1800, 0),
    ("09:00", "Agent/2", "", 0, 50.000001, 0),
    ("10:00", "Agent/1", "", 3600, 0, 30),
    ("10:00", "Agent/1", "queue_a", 3600, 0, 30),
    ("10:00", "Agent/1", "queue_b", 3600, 0, 0),
    ("10:00", "Agent/2", "", 0, 3249.999999, 0),
    ("11:00", "Agent/1", "", 3600, 0, 0),
    ("11:00", "Agent/1", "queue_a", 3600, 0, 0),
    ("11:00", "Agent/1", "queue_b", 3600, 0, 0),
    ("12:00", "Agent/1", "", 1800, 0, 0),
    ("12:00", "Agent/1", "queue_a", 1800, 0, 0),
]


def test_a5_per_queue_rows_like_the_reference(centre):
    centre.log(*A5_ROWS)
    centre.run("07:00", "12:00")
    assert rows(centre) == A5_EXPECTED
    # the answered call keeps its agent (stat_call_on_queue.stat_agent_id)
    assert [c[:4] for c in centre.calls()] == [("c1", "queue_a", "Agent/1", "answered")]


def test_hour_by_hour_in_any_order_equals_one_range_run(centre):
    centre.log(*A5_ROWS)
    centre.run("07:00", "12:00")
    one_run = rows(centre), reasons(centre)
    hours = [f"{h:02d}:00" for h in range(6, 14)]
    rng = random.Random(5)
    for hour in rng.sample(hours, len(hours)) + rng.sample(hours, 3):
        centre.run(hour, assets=AGENT_ASSETS)
    assert (rows(centre), reasons(centre)) == one_run


# -- A4: login sessions ---------------------------------------------------------------------

def test_a4_logins_completed_ongoing_and_days_old(centre):
    centre.log(
        login("Agent/3", at("01:00:00", PREV)),              # never logs off
        logoff("Agent/1", at("22:00:00", PREV), 25200),
        login("Agent/1", at("23:00:00", PREV)),
        login("Agent/2", at("00:00:00")),
        logoff("Agent/1", at("06:00:00"), 25200),
        login("Agent/1", at("06:05:00")),
        logoff("Agent/1", at("06:30:00"), 1500),
        logoff("Agent/2", at("06:30:00.000001"), 23400),
        login("Agent/1", at("06:40:00")),
        logoff("Agent/1", at("06:45:00"), 300),
        login("Agent/2", at("09:00:00")),                   # until the horizon
        logoff("Agent/4", at("10:00:00"), 300),             # a logoff without login counts
    )
    copy_rows(centre)
    # only the day's hours: the previous day's rows are state, found by the lookup
    centre.run("00:00", "23:00", assets=AGENT_ASSETS)
    got = {(r[0], r[1]): r[3] for r in rows(centre)}
    assert got[("00:00", "Agent/1")] == 3600
    assert got[("00:00", "Agent/2")] == 3599.999999
    assert got[("00:00", "Agent/3")] == 3600
    assert got[("06:00", "Agent/1")] == 1800
    assert got[("06:00", "Agent/2")] == 1800.000001
    assert ("07:00", "Agent/1") not in got and ("07:00", "Agent/2") not in got
    assert got[("09:00", "Agent/4")] == 300
    assert got[("09:00", "Agent/2")] == 3600
    assert got[("23:00", "Agent/2")] == 3599          # horizon 23:59:59, like the reference
    assert got[("23:00", "Agent/3")] == 3599
    assert sum(1 for k in got if k[1] == "Agent/3") == 24
    assert all(r[4] == r[5] == 0 and r[2] == "" for r in rows(centre))


def test_login_days_before_counts_hours_later(warehouse_url, tmp_path):
    centre = CallCentre(warehouse_url, _config(tmp_path), until=END_OF_DAY)
    centre.log(login("Agent/1001", at("03:17:00", PREV)),
               event(at("03:17:01", PREV), "Local/id-1001@agentcallback", "ADDMEMBER", "queue1"))
    copy_rows(centre)
    centre.run("15:00", assets=AGENT_ASSETS)
    assert rows(centre) == [("15:00", "Agent/1001", "", 3600, 0, 0),
                            ("15:00", "Agent/1001", "queue1", 3600, 0, 0)]
    centre.close()


def test_overlapping_sessions_are_merged(centre):
    # a lost logoff: two logins, then one logoff whose seconds reach back over both
    centre.log(login("Agent/1001", at("08:00:00")), login("Agent/1001", at("08:30:00")),
               logoff("Agent/1001", at("09:30:00"), 5400))
    centre.run("08:00", "09:00")
    assert rows(centre) == [("08:00", "Agent/1001", "", 3600, 0, 0),
                            ("09:00", "Agent/1001", "", 1800, 0, 0)]


def test_login_without_logoff_ends_at_the_next_login(centre):
    # wazo-stat would only keep the session from the last login (08:00-09:30 lost)
    centre.log(login("Agent/1001", at("08:00:00")), login("Agent/1001", at("09:30:00")),
               logoff("Agent/1001", at("10:00:00"), 1800))
    centre.run("08:00", "10:00")
    assert rows(centre) == [("08:00", "Agent/1001", "", 3600, 0, 0),
                            ("09:00", "Agent/1001", "", 3600, 0, 0)]


# -- pauses ---------------------------------------------------------------------------------

def test_pause_before_the_hour_reasons_and_pause_without_unpause(centre):
    centre.log(
        login("Agent/1001", at("08:00:00")),
        event(at("09:50:00"), "Agent/1001", "PAUSEALL", "NONE", "lunch"),
        event(at("10:20:00"), "Agent/1001", "UNPAUSEALL"),
        event(at("10:40:00"), "Agent/1001", "PAUSEALL", "NONE", "coffee"),
        event(at("10:45:00"), "Agent/1001", "PAUSEALL", "NONE", "meeting"),  # reason changes
        event(at("10:50:00"), "Agent/1001", "UNPAUSEALL"),
        event(at("11:30:00"), "Agent/1001", "PAUSEALL", "NONE", ""),        # never unpaused
        logoff("Agent/1001", at("11:45:00"), 13500),
    )
    copy_rows(centre)
    # hour 10:00 alone: the pause begun at 09:50 counts from 10:00 (wazo-stat: Q4, dropped)
    centre.run("10:00", assets=AGENT_ASSETS)
    assert rows(centre) == [("10:00", "Agent/1001", "", 3600, 1800, 0)]
    centre.run("08:00", "13:00", assets=AGENT_ASSETS)
    assert rows(centre) == [
        ("08:00", "Agent/1001", "", 3600, 0, 0),
        ("09:00", "Agent/1001", "", 3600, 600, 0),
        ("10:00", "Agent/1001", "", 3600, 1800, 0),
        # the pause never unpaused ends with the logoff (wazo-stat: until the run's end)
        ("11:00", "Agent/1001", "", 2700, 900, 0),
    ]
    assert reasons(centre) == [
        ("09:00", "Agent/1001", "", "lunch", 600),
        ("10:00", "Agent/1001", "", "coffee", 300),
        ("10:00", "Agent/1001", "", "lunch", 1200),
        ("10:00", "Agent/1001", "", "meeting", 300),
        ("11:00", "Agent/1001", "", "", 900),
    ]


def test_membership_and_queue_pause_carried_from_the_day_before(centre):
    centre.log(
        login("Agent/1001", at("20:00:00", PREV)),
        event(at("20:00:01", PREV), "Agent/1001", "ADDMEMBER", "queue_a"),
        event(at("23:50:00", PREV), "Agent/1001", "PAUSE", "queue_a", "training"),
        event(at("09:10:00"), "Agent/1001", "UNPAUSE", "queue_a"),
        event(at("09:15:00"), "Agent/1001", "PAUSE", "queue_a", "admin"),
        event(at("09:20:00"), "Agent/1001", "REMOVEMEMBER", "queue_a"),   # ends the pause
        event(at("09:40:00"), "Agent/1001", "ADDMEMBER", "queue_a", "PAUSED"),
        event(at("09:50:00"), "Agent/1001", "UNPAUSE", "queue_a"),
    )
    copy_rows(centre)
    centre.run("09:00", assets=AGENT_ASSETS)
    assert rows(centre) == [("09:00", "Agent/1001", "", 3600, 0, 0),
                            ("09:00", "Agent/1001", "queue_a", 2400, 1500, 0)]
    assert reasons(centre) == [("09:00", "Agent/1001", "queue_a", "PAUSED", 600),
                               ("09:00", "Agent/1001", "queue_a", "admin", 300),
                               ("09:00", "Agent/1001", "queue_a", "training", 600)]


# -- wrap-up --------------------------------------------------------------------------------

def test_a6_wrapup_split_over_hours(warehouse_url, tmp_path):
    centre = CallCentre(warehouse_url, _config(tmp_path), until=at("07:59:59"))
    centre.log(*[(at(t), "NONE", "NONE", a, "WRAPUPSTART", s) for t, a, s in (
        ("05:59:50", "Agent/1", "30"), ("06:00:10", "Agent/1", "15"), ("06:00:15", "Agent/2", "30"),
        ("06:59:50", "Agent/1", "15"), ("07:00:10", "Agent/1", "30"), ("07:59:40", "Agent/2", "30"))])
    centre.run("05:00", "07:00")
    assert rows(centre) == [("05:00", "Agent/1", "", 0, 0, 10),
                            ("06:00", "Agent/1", "", 0, 0, 45),
                            ("06:00", "Agent/2", "", 0, 0, 30),
                            ("07:00", "Agent/1", "", 0, 0, 35),
                            ("07:00", "Agent/2", "", 0, 0, 20)]
    centre.close()


def test_wrapup_on_the_hour_and_longer_than_two_hours(centre):
    # reference case A9 hd: wazo-stat writes a zero row at 09:00 and nothing at 11:00 (Q10)
    centre.log(login("Agent/1001", at("08:00:00")),
               ("2024-03-01 10:00:00+00", "c1", "queue1", "Agent/1001", "WRAPUPSTART", "30"),
               ("2024-03-01 11:00:00+00", "c1", "queue1", "Agent/1001", "WRAPUPSTART", "7200"))
    centre.run("08:00", "13:00")
    assert [r for r in rows(centre) if r[5] or r[2]] == [
        ("10:00", "Agent/1001", "", 3600, 0, 30),
        ("10:00", "Agent/1001", "queue1", 0, 0, 30),
        ("11:00", "Agent/1001", "", 3600, 0, 3600),
        ("11:00", "Agent/1001", "queue1", 0, 0, 3600),
        ("12:00", "Agent/1001", "", 3600, 0, 3600),
        ("12:00", "Agent/1001", "queue1", 0, 0, 3600),
    ]


# -- tenants and unknown agents ---------------------------------------------------------------

def test_same_number_in_two_tenants_is_not_shared(warehouse_url, tmp_path):
    doc = {"master_tenant": MASTER,
           "queues": [{"id": 1, "name": "q1", "tenant_uuid": T1},
                      {"id": 2, "name": "q2", "tenant_uuid": T2}],
           "agents": [{"id": 10, "number": "1001", "tenant_uuid": T1},
                      {"id": 20, "number": "1001", "tenant_uuid": T2}],
           "contexts": [{"name": "ctx1", "tenant_uuid": T1}, {"name": "ctx2", "tenant_uuid": T2}]}
    path = tmp_path / "mt.json"
    path.write_text(json.dumps(doc))
    centre = CallCentre(warehouse_url, str(path), until=END_OF_DAY)
    centre.log(login("Agent/1001", at("08:00:00"), "ctx1"),
               event(at("09:00:00"), "Agent/1001", "PAUSEALL"),
               event(at("09:30:00"), "Agent/1001", "UNPAUSEALL"),
               ("2024-03-01 09:40:00+00", "c1", "q2", "Agent/1001", "WRAPUPSTART", "20"),
               logoff("Agent/1001", at("10:00:00"), 7200, "ctx1"))
    centre.run("08:00", "09:00")
    got = centre.query(
        "SELECT to_char(p.\"time\" AT TIME ZONE 'UTC', 'HH24:MI'), a.tenant_uuid, "
        "coalesce(q.name, ''), extract(epoch FROM p.login_time)::int, "
        "extract(epoch FROM p.pause_time)::int, extract(epoch FROM p.wrapup_time)::int "
        "FROM stat_agent_periodic p JOIN stat_agent a ON a.id = p.stat_agent_id "
        "LEFT JOIN stat_queue q ON q.id = p.stat_queue_id ORDER BY 1, 2, 3")
    assert [tuple(r) for r in got] == [
        ("08:00", T1, "", 3600, 0, 0),
        ("09:00", T1, "", 3600, 1800, 0),   # the pause is the logged-in agent's (T1)
        ("09:00", T2, "", 0, 0, 20),        # the wrap-up is in q2, a T2 queue
        ("09:00", T2, "q2", 0, 0, 20),
    ]
    centre.close()


UNKNOWN_AGENT_ROWS = [
    login("Agent/9999", at("08:00:00")),
    ("2024-03-01 08:10:00+00", "c1", "queue1", "NONE", "ENTERQUEUE", "", "06", "1"),
    ("2024-03-01 08:10:05+00", "c1", "queue1", "Agent/9999", "CONNECT", "5", "c1.1", "1"),
    ("2024-03-01 08:11:05+00", "c1", "queue1", "Agent/9999", "COMPLETEAGENT", "5", "60", "1"),
    ("2024-03-01 08:11:05+00", "c1", "queue1", "Agent/9999", "WRAPUPSTART", "15"),
    logoff("Agent/9999", at("08:30:00"), 1800),
]


def test_unknown_agent_dropped_by_default(centre):
    centre.log(*UNKNOWN_AGENT_ROWS)
    centre.run("08:00")
    assert rows(centre) == []
    assert centre.query("SELECT count(*) FROM stat_agent WHERE name = 'Agent/9999'")[0][0] == 0
    assert [c[:4] for c in centre.calls()] == [("c1", "queue1", None, "answered")]


def test_unknown_agent_kept_on_request(warehouse_url, tmp_path):
    centre = CallCentre(warehouse_url, _config(tmp_path), until=END_OF_DAY,
                        keep_unknown_agents=True)
    centre.log(*UNKNOWN_AGENT_ROWS)
    centre.run("08:00")
    assert rows(centre) == [("08:00", "Agent/9999", "", 1800, 0, 15),
                            ("08:00", "Agent/9999", "queue1", 0, 0, 15)]
    assert [tuple(r) for r in centre.query(
        "SELECT name, tenant_uuid, agent_id, deleted FROM stat_agent WHERE name = 'Agent/9999'")] \
        == [("Agent/9999", MASTER, None, True)]
    assert [c[:4] for c in centre.calls()] == [("c1", "queue1", "Agent/9999", "answered")]
    # a later dimension sync (config re-read) keeps the row and its history
    centre.sync_dimensions()
    assert rows(centre)[0][1] == "Agent/9999"
    centre.close()


def test_agent_hour_is_one_transaction(centre, monkeypatch):
    centre.log(*A5_ROWS)
    centre.run("07:00", "12:00")
    before = rows(centre)
    from stat_pipeline.assets import agents

    def fail(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(agents, "_figures", fail)
    with pytest.raises(Exception):
        centre.run("09:00", assets=AGENT_ASSETS)
    assert rows(centre) == before


def test_sample_day_hour_order_does_not_matter(warehouse_url):
    """The bundled sample day: once the rows are copied, agent hours computed one by one in
    any order (some twice) give the same tables as one run over the day."""
    from stat_pipeline_tests.test_order import _load_sample

    day = dt.datetime(2024, 3, 4, tzinfo=UTC)
    centre = CallCentre(warehouse_url, until=dt.datetime(2024, 3, 5, 1, tzinfo=UTC), day=day,
                        keep_unknown_agents=True)   # no config: every agent is from the log
    hours = _load_sample(centre)
    centre.run(hours[0], hours[-1])
    one_run = _agent_tables(centre)
    assert len(one_run[0]) > 100 and len(one_run[1]) > 10
    rng = random.Random(7)
    for hour in rng.sample(hours, len(hours)) + rng.sample(hours, 4):
        centre.run(hour, assets=AGENT_ASSETS)
    assert _agent_tables(centre) == one_run
    centre.close()


def _agent_tables(centre: CallCentre):
    periodic = centre.query(
        "SELECT p.\"time\", a.name, q.name, p.login_time, p.pause_time, p.wrapup_time "
        "FROM stat_agent_periodic p JOIN stat_agent a ON a.id = p.stat_agent_id "
        "LEFT JOIN stat_queue q ON q.id = p.stat_queue_id ORDER BY 1, 2, 3")
    by_reason = centre.query(
        "SELECT r.\"time\", a.name, q.name, r.reason, r.pause_time "
        "FROM stat_agent_pause_reason r JOIN stat_agent a ON a.id = r.stat_agent_id "
        "LEFT JOIN stat_queue q ON q.id = r.stat_queue_id ORDER BY 1, 2, 3, 4")
    return [tuple(r) for r in periodic], [tuple(r) for r in by_reason]


def test_logoff_without_seconds_uses_the_login_row(centre):
    # wazo-stat needs data2 > 0 and drops the session; the rows say 08:00 -> 09:30
    centre.log(login("Agent/1001", at("08:00:00")),
               (at("09:30:00"), "NONE", "NONE", "Agent/1001", "AGENTCALLBACKLOGOFF",
                "1001@default", "", "Chanunavail"))
    centre.run("08:00", "10:00")
    assert rows(centre) == [("08:00", "Agent/1001", "", 3600, 0, 0),
                            ("09:00", "Agent/1001", "", 1800, 0, 0)]


def test_bad_agent_rows_never_stop_the_run(centre):
    centre.log(
        login("Agent/1001", at("08:00:00")),
        (at("08:10:00"), "NONE", None, "Agent/1001", "WRAPUPSTART", "20"),     # NULL queue
        (at("08:11:00"), "c1", "queue1", "Agent/1001", "WRAPUPSTART", ""),     # no seconds
        (at("08:12:00"), "c2", "queue1", "Agent/1001", "WRAPUPSTART", "x"),
        (at("08:13:00"), "NONE", None, "Agent/1001", "ADDMEMBER"),              # NULL queue
        (at("08:14:00"), "NONE", "NONE", None, "PAUSEALL"),                     # NULL agent
        (at("08:15:00"), "NONE", "NONE", "Agent/1001", "AGENTCALLBACKLOGOFF",
         "1001@nowhere", "99999999999999"),                                      # not an int
        (at("08:20:00"), "NONE", "NONE", "Agent/1002", "AGENTCALLBACKLOGOFF",
         "1002@default", "-5"),
        ("2024-03-01 08:30:00+00", "c3", "queue1", "Agent/1002", "WRAPUPSTART", "2000000000"),
    )
    centre.run("08:00", "09:00")
    got = rows(centre)
    assert ("08:00", "Agent/1001", "", 900, 0, 20) in got       # login 08:00 -> logoff 08:15
    assert ("09:00", "Agent/1002", "queue1", 0, 0, 3600) in got
