"""The API and the warehouse's KPI SQL functions (what psql, Grafana or Metabase call) agree on
a golden set's tables: the reference's ``day1_s1`` tables are loaded into the warehouse, and
every queue, agent, interval and QoS bucket the API answers (through Wazo's client requests)
is compared with a direct call of the SQL function a BI user would write, named arguments
and all. What could differ: the query's translation (zone, working hours, week days,
thresholds, tenants), the intervals' bounds, the JSON types and roundings."""
from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from stat_pipeline_tests.api_support import (  # noqa: F401 (fixtures)
    api_database, api_port, call_logd, warehouse,
)
from stat_pipeline_tests.golden import GOLDEN

GOLDEN_SET = GOLDEN / "day1_s1"
TABLES = GOLDEN_SET / "expected" / "run1"
ZONE = "Europe/Paris"
FILTERS = dict(from_="2024-03-04T00:00:00", until="2024-03-05T00:00:00", timezone=ZONE,
               day_start_time="08:00", day_end_time="18:00", week_days="1,2,3")
SQL_FILTERS = ("p_from => :start, p_until => :end, p_timezone => :zone, p_day_start_hour => 8, "
               "p_day_end_hour => 18, p_week_days => ARRAY[1,2,3]")
QOS = 20

STAGING = {
    "calls.csv": "callid text, queue text, agent text, status text, time timestamptz, waittime int, "
                 "talktime int, ringtime int",
    "queue_periodic.csv": "time timestamptz, queue text, answered int, abandoned int, total int, full_ int, "
                          "closed int, joinempty int, leaveempty int, divert_ca_ratio int, "
                          "divert_waittime int, timeout int",
    "agent_periodic.csv": "time timestamptz, agent text, queue text, login_time float8, pause_time float8, "
                          "wrapup_time float8",
}

LOAD = """
INSERT INTO stat_queue (name, tenant_uuid, queue_id)
SELECT n.name, coalesce(c.tenant_uuid, :master), c.id
FROM (SELECT queue FROM g_calls UNION SELECT queue FROM g_queue_periodic
      UNION SELECT queue FROM g_agent_periodic WHERE queue <> '') AS n(name)
LEFT JOIN jsonb_to_recordset(CAST(:queues AS jsonb)) AS c(id int, name text, tenant_uuid text) USING (name);

INSERT INTO stat_agent (name, tenant_uuid, agent_id)
SELECT n.name, coalesce(c.tenant_uuid, :master), c.id
FROM (SELECT agent FROM g_agent_periodic UNION SELECT agent FROM g_calls WHERE agent <> '') AS n(name)
LEFT JOIN jsonb_to_recordset(CAST(:agents AS jsonb)) AS c(id int, number text, tenant_uuid text)
       ON n.name = 'Agent/' || c.number;

INSERT INTO stat_call_on_queue (callid, time, status, waittime, talktime, ringtime, stat_queue_id, stat_agent_id)
SELECT g.callid, g.time, CAST(g.status AS call_exit_type), g.waittime, g.talktime, g.ringtime, q.id, a.id
FROM g_calls g JOIN stat_queue q ON q.name = g.queue LEFT JOIN stat_agent a ON a.name = g.agent;

INSERT INTO stat_queue_periodic (time, stat_queue_id, answered, abandoned, total, "full", closed, joinempty,
                                 leaveempty, divert_ca_ratio, divert_waittime, timeout)
SELECT g.time, q.id, answered, abandoned, total, full_, closed, joinempty, leaveempty, divert_ca_ratio,
       divert_waittime, timeout
FROM g_queue_periodic g JOIN stat_queue q ON q.name = g.queue;

INSERT INTO stat_agent_periodic (time, stat_agent_id, stat_queue_id, login_time, pause_time, wrapup_time)
SELECT g.time, a.id, q.id, make_interval(secs => login_time), make_interval(secs => pause_time),
       make_interval(secs => wrapup_time)
FROM g_agent_periodic g JOIN stat_agent a ON a.name = g.agent LEFT JOIN stat_queue q ON q.name = g.queue;
"""


@pytest.fixture
def golden_day(warehouse):
    if not TABLES.is_dir():
        pytest.skip("golden sets not beside the project")
    confd = json.loads((GOLDEN_SET / "confd.json").read_text())
    with warehouse.begin() as conn:
        cursor = conn.connection.cursor()
        for file_name, columns in STAGING.items():
            table = "g_" + file_name.removesuffix(".csv")
            cursor.execute(f"CREATE TEMP TABLE {table} ({columns}) ON COMMIT DROP")
            with open(TABLES / file_name) as data:
                cursor.copy_expert(f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)", data)
        for statement in LOAD.split(";"):
            if statement.strip():
                conn.execute(sa.text(statement), {"master": confd["master_tenant"],
                                                  "queues": json.dumps(confd["queues"]),
                                                  "agents": json.dumps(confd["agents"])})
    return warehouse


def _sql(engine, query, **params):
    zone = ZoneInfo(ZONE)
    params = {"start": datetime(2024, 3, 4, tzinfo=zone), "end": datetime(2024, 3, 5, tzinfo=zone),
              "zone": ZONE, **params}
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(query), params).mappings()]


def _number(value):
    return None if value is None else (value if isinstance(value, int) else float(value))


QUEUE_KPIS = ("received", "answered", "abandoned", "closed", "not_answered", "saturated", "blocked",
              "average_waiting_time", "answered_rate", "quality_of_service", "offered", "abandon_rate",
              "service_level", "average_speed_of_answer", "average_handling_time", "longest_waiting_time")
AGENT_KPIS = ("answered", "conversation_time", "login_time", "pause_time", "wrapup_time")


def test_queue_list_agrees_with_stat_queue_kpi(call_logd, golden_day):
    rows = _sql(golden_day, f"SELECT * FROM stat_queue_kpi({SQL_FILTERS}, p_qos_threshold => {QOS})")
    items = call_logd.queue_statistics.list(qos_threshold=QOS, **FILTERS)["items"]
    assert sorted(i["queue_name"] for i in items) == sorted(r["queue_name"] for r in rows)
    assert sum(r["answered"] for r in rows) > 20  # the filters leave real traffic
    by_name = {r["queue_name"]: r for r in rows}
    for item in items:
        row = by_name[item["queue_name"]]
        assert {k: item[k] for k in QUEUE_KPIS} == {k: _number(row[k]) for k in QUEUE_KPIS}, item["queue_name"]
        assert (item["queue_id"], item["tenant_uuid"]) == (row["queue_id"], row["tenant_uuid"])
        assert (item["from"], item["until"]) == ("2024-03-04T00:00:00+01:00", "2024-03-05T00:00:00+01:00")


def test_hour_items_agree_with_stat_queue_kpi_by_interval(call_logd, golden_day):
    for queue_id in (1, 2):
        rows = _sql(golden_day, "SELECT * FROM stat_queue_kpi_by_interval("
                    f"{SQL_FILTERS}, p_interval => 'hour', p_queue_id => :queue_id, p_qos_threshold => {QOS})",
                    queue_id=queue_id)
        items = call_logd.queue_statistics.get_by_id(queue_id, interval="hour", qos_threshold=QOS, **FILTERS)["items"]
        zone = ZoneInfo(ZONE)
        assert [(i["from"], i["until"]) for i in items[:-1]] == [
            (r["interval_start"].astimezone(zone).isoformat(), r["interval_end"].astimezone(zone).isoformat())
            for r in rows if not r["is_period"]]
        assert len(items) == 10 + 1  # 08..17 (start and end hour within 08-18) + the period
        for item, row in zip(items, rows):
            assert {k: item[k] for k in QUEUE_KPIS} == {k: _number(row[k]) for k in QUEUE_KPIS}, item["from"]


def test_qos_buckets_agree_with_stat_queue_qos(call_logd, golden_day):
    for queue_id in (1, 2):
        rows = _sql(golden_day, f"SELECT * FROM stat_queue_qos(:queue_id, {SQL_FILTERS}, "
                    "p_qos_thresholds => ARRAY[10, 30, 60]) ORDER BY min", queue_id=queue_id)
        [item] = call_logd.queue_statistics.get_qos_by_id(queue_id, qos_thresholds="60,10,30", **FILTERS)["items"]
        assert item["quality_of_service"] == rows
        assert [b["min"] for b in rows] == [0, 10, 30, 60]
    assert sum(b["answered"] + b["abandoned"] for b in item["quality_of_service"]) > 0


def test_agents_agree_with_stat_agent_kpi(call_logd, golden_day):
    rows = _sql(golden_day, f"SELECT * FROM stat_agent_kpi({SQL_FILTERS})")
    items = call_logd.agent_statistics.list(**FILTERS)["items"]
    assert sorted(i["agent_number"] for i in items) == sorted(r["agent_number"] for r in rows)
    by_number = {r["agent_number"]: r for r in rows}
    for item in items:
        row = by_number[item["agent_number"]]
        assert {k: item[k] for k in AGENT_KPIS} == {k: row[k] for k in AGENT_KPIS}, item["agent_number"]
        assert item["queues"] == row["queues"]
    assert sum(i["login_time"] for i in items) > 0 and sum(i["answered"] for i in items) > 0
    # by id, per hour: the hours sum to the period (every filter applies inside each hour);
    # times are truncated to whole seconds item by item, as call-logd dumps them, so the
    # hours' sum may lose less than a second per hour
    agent_id = max(items, key=lambda i: i["answered"])["agent_id"]
    hours = call_logd.agent_statistics.get_by_id(agent_id, interval="hour", **FILTERS)["items"]
    for key in ("answered", "conversation_time"):
        assert sum(h[key] for h in hours[:-1]) == hours[-1][key], key
    for key in ("login_time", "pause_time", "wrapup_time"):
        assert 0 <= hours[-1][key] - sum(h[key] for h in hours[:-1]) < len(hours) - 1, key
