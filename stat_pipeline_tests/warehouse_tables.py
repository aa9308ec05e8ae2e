"""Loads a golden-layout output folder (calls.csv, queue_periodic.csv, agent_periodic.csv, as
in ../shared/golden/*/expected/* or `stat-pipeline compute --out`) and its confd.json into the
warehouse's stat_* tables, the way Wazo's tables hold them: one stat_queue / stat_agent row per
name, with confd's id and tenant where confd knows the name (the master tenant otherwise).

Used by the KPI tests and by bench/kpi_intervals.py. Each table is one INSERT of column
arrays (unnest), so a 30-day set (93,000 calls) loads in about a second.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

QUEUE_COUNTERS = ("answered", "abandoned", "total", "full", "closed", "joinempty", "leaveempty",
                  "divert_ca_ratio", "divert_waittime", "timeout")


@dataclass(frozen=True)
class LoadedTables:
    stat_queue: dict[str, int]      # queue name -> stat_queue.id
    stat_agent: dict[str, int]      # "Agent/NNNN" -> stat_agent.id
    calls: list[dict[str, str]]
    queue_periodic: list[dict[str, str]]
    agent_periodic: list[dict[str, str]]


def read_rows(folder: Path, name: str) -> list[dict[str, str]]:
    with open(folder / name, newline="") as f:
        return list(csv.DictReader(f))


def load_tables(conn: sa.Connection, folder: Path, confd_path: Path) -> LoadedTables:
    confd = json.loads(confd_path.read_text())
    calls, periodic, agent_rows = (read_rows(folder, n) for n in
                                   ("calls.csv", "queue_periodic.csv", "agent_periodic.csv"))
    queues = {q["name"]: (q["id"], q["tenant_uuid"]) for q in confd["queues"]}
    agents = {"Agent/" + a["number"]: (a["id"], a["tenant_uuid"]) for a in confd["agents"]}
    master = confd["master_tenant"]

    queue_names = sorted({r["queue"] for r in calls + periodic} | {r["queue"] for r in agent_rows if r["queue"]})
    stat_queue = {n: conn.execute(sa.text(
        "INSERT INTO stat_queue (name, tenant_uuid, queue_id) VALUES (:n, :t, :q) RETURNING id"),
        {"n": n, "t": queues.get(n, (None, master))[1], "q": queues.get(n, (None,))[0]}).scalar_one()
        for n in queue_names}
    agent_names = sorted({r["agent"] for r in agent_rows} | {r["agent"] for r in calls if r["agent"]})
    stat_agent = {n: conn.execute(sa.text(
        "INSERT INTO stat_agent (name, tenant_uuid, agent_id) VALUES (:n, :t, :a) RETURNING id"),
        {"n": n, "t": agents.get(n, (None, master))[1], "a": agents.get(n, (None,))[0]}).scalar_one()
        for n in agent_names}

    def column(rows, key, convert=lambda v: v):
        return [convert(r[key]) for r in rows]

    conn.execute(sa.text(
        "INSERT INTO stat_call_on_queue (callid, time, status, waittime, talktime, ringtime, stat_queue_id, stat_agent_id)"
        " SELECT c, t, CAST(s AS call_exit_type), w, tt, rt, q, a"
        " FROM unnest(CAST(:c AS text[]), CAST(:t AS timestamptz[]), CAST(:s AS text[]), CAST(:w AS int[]),"
        "             CAST(:tt AS int[]), CAST(:rt AS int[]), CAST(:q AS int[]), CAST(:a AS int[]))"
        "      AS u(c, t, s, w, tt, rt, q, a)"),
        {"c": column(calls, "callid"), "t": column(calls, "time"), "s": column(calls, "status"),
         "w": column(calls, "waittime", int), "tt": column(calls, "talktime", int),
         "rt": column(calls, "ringtime", lambda v: int(v or 0)),
         "q": [stat_queue[r["queue"]] for r in calls], "a": [stat_agent.get(r["agent"]) for r in calls]})
    conn.execute(sa.text(
        "INSERT INTO stat_queue_periodic (time, stat_queue_id, " + ", ".join(f'"{c}"' for c in QUEUE_COUNTERS) + ")"
        " SELECT * FROM unnest(CAST(:time AS timestamptz[]), CAST(:q AS int[]), "
        + ", ".join(f"CAST(:{c} AS int[])" for c in QUEUE_COUNTERS) + ")"),
        {"time": column(periodic, "time"), "q": [stat_queue[r["queue"]] for r in periodic],
         **{c: column(periodic, c, int) for c in QUEUE_COUNTERS}})
    conn.execute(sa.text(
        "INSERT INTO stat_agent_periodic (time, stat_agent_id, stat_queue_id, login_time, pause_time, wrapup_time)"
        " SELECT t, a, q, make_interval(secs => l), make_interval(secs => p), make_interval(secs => w)"
        " FROM unnest(CAST(:t AS timestamptz[]), CAST(:a AS int[]), CAST(:q AS int[]), CAST(:l AS float8[]),"
        "             CAST(:p AS float8[]), CAST(:w AS float8[])) AS u(t, a, q, l, p, w)"),
        {"t": column(agent_rows, "time"), "a": [stat_agent[r["agent"]] for r in agent_rows],
         "q": [stat_queue[r["queue"]] if r["queue"] else None for r in agent_rows],
         "l": column(agent_rows, "login_time", float), "p": column(agent_rows, "pause_time", float),
         "w": column(agent_rows, "wrapup_time", float)})
    return LoadedTables(stat_queue, stat_agent, calls, periodic, agent_rows)
