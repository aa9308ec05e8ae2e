"""Agents: queue_log rows -> Wazo's stat_agent_periodic (login, pause and wrap-up time per
hour and agent, globally and per queue) and our stat_agent_pause_reason.

wazo-stat computes these over its run's window (wazo_stat_algorithm.md section 9); we compute
each UTC hour from the warehouse rows. State from before the hour (a login days ago, a pause
or a membership begun earlier) is found by an index probe per agent (agents.sql ``collect``;
only for names with such rows, within their span: agent_state_span, migration 0020),
and an interval still open is counted up to the *horizon*: the source's ``until``, else now.
So an hour's rows depend only on the rows and the horizon, not on the run that computed it.
"""

import datetime as dt

import dagster as dg
from pydantic import Field

from stat_pipeline.assets.dimensions import (DimensionSync, master_tenant, report_config_changes,
                                             sync_dimensions)
from stat_pipeline.assets.calls import MissingStatKey
from stat_pipeline.assets.policies import hourly
from stat_pipeline.assets.run_metadata import by_hour, report
from stat_pipeline.resources import Warehouse, WazoConfig
from stat_pipeline.sources import QueueLogSource
from stat_pipeline.sources.config import run_members
from stat_pipeline.sql import query
from stat_pipeline.warehouse.scope import source_scope
from stat_pipeline.warehouse.writes import partition_write, row_triggers_off


def _q(name: str):
    return query(__file__, "agents.sql", name)


class AgentStatsConfig(dg.Config):
    wrapup_lookback_hours: int = Field(
        default=24, ge=1,
        description="How long before an hour a WRAPUPSTART may begin and still run into it "
                    "(a wrap-up is a planned duration, usually seconds to minutes).")


# (target kind, source kinds, by reason): the islands built from the raw intervals (each
# list in one statement).
_MERGES = [
    ("login", ["login_raw"], False),
    ("member", ["member_raw"], False),
    ("pause", ["pause_seg"], False),
    ("pause_reason", ["pause_seg"], True),
]
# per-queue login and the PAUSEALL part of per-queue pause: global intervals x membership
_INTERSECTS = [("qlogin", "login"), ("qpause_all", "pause_seg")]
_QUEUE_MERGES = [
    ("qpause", ["qpause_seg", "qpause_all"], False),
    ("qpause_reason", ["qpause_seg", "qpause_all"], True),
]


def compute_agent_hours(conn, config: WazoConfig, start: dt.datetime, end: dt.datetime,
                        horizon: dt.datetime, wrapup_lookback_hours: int = 24) -> DimensionSync:
    """Replace stat_agent_periodic / stat_agent_pause_reason of [start, end), inside the
    caller's transaction; returns what the dimension sync before it did."""
    params = {"start": start, "end": end, "horizon": horizon,
              "wrapup_lookback": f"{wrapup_lookback_hours} hours"}
    sync = sync_dimensions(conn, config, start, end, refresh=False)
    conn.execute(_q("prepare"))
    conn.execute(_q("collect"), params)
    if config.keep_unknown_agents:
        conn.execute(_q("register_unknown_agents"), {
            "master_tenant": master_tenant(sync.document, config),
            "has_config": sync.document is not None})
    conn.execute(_q("aliases"))
    conn.execute(_q("resolve"))
    conn.execute(_q("segments"), params)
    _merge(conn, _MERGES)
    conn.execute(_q("intersect"), {"targets": [target for target, _ in _INTERSECTS],
                                   "sources": [source for _, source in _INTERSECTS]})
    _merge(conn, _QUEUE_MERGES)
    conn.execute(_q("clear"), params)
    _insert_hours(conn, params)
    return sync


def _merge(conn, merges) -> None:
    """The islands of every (target, sources, by_reason) of ``merges``, in one statement."""
    pairs = [(target, source, by_reason) for target, sources, by_reason in merges
             for source in sources]
    conn.execute(_q("merge"), {"targets": [p[0] for p in pairs], "sources": [p[1] for p in pairs],
                               "by_reason": [p[2] for p in pairs]})


def _insert_hours(conn, params: dict) -> None:
    """agents.sql ``insert_hours``, without the per-row cost of the four foreign keys of
    stat_agent_periodic and stat_agent_pause_reason where we may (their triggers cost about
    as much as the rest of the insert: 30 days, 37,000 rows, ~0.35 s of server CPU): as
    stat_call_on_queue (calls.py ``_insert_stat_calls``), a superuser inserts with the row
    triggers off for that statement alone, and the statement itself checks both keys of all
    its rows at once and locks the referenced rows as the per-row checks do; anyone else
    inserts with the triggers (the statement's own check is then redundant). Wazo's schema
    and constraints are unchanged. (The migrations create no other row trigger on these
    tables; one added later must be ENABLE ALWAYS.)"""
    with row_triggers_off(conn):
        missing = conn.execute(_q("insert_hours"), params).one()
    if missing.missing_queue_ids or missing.missing_agent_ids:
        # what the foreign keys would have refused: the transaction rolls back
        raise MissingStatKey(
            f"agent rows point at missing stat_queue ids {missing.missing_queue_ids or []} "
            f"/ stat_agent ids {missing.missing_agent_ids or []}")


def _figures(conn, start: dt.datetime, end: dt.datetime):
    params = {"start": start, "end": end}
    summaries = by_hour(conn.execute(_q("summary"), params))
    reasons = by_hour(conn.execute(_q("reasons_summary"), params))

    def of(hour) -> dict:
        summary = summaries[hour][0] if summaries.get(hour) else None
        return {
            "dagster/row_count": summary.n if summary else 0,
            "agents": summary.agents if summary else 0,
            **{f"{kind}_seconds": dg.MetadataValue.float(
                round(float(getattr(summary, f"{kind}_s")) if summary else 0.0, 3))
               for kind in ("login", "pause", "wrapup")},
            "pause_seconds_by_reason": dg.MetadataValue.json(
                {r.reason or "(none)": round(float(r.seconds), 3) for r in reasons.get(hour, [])}),
        }
    return of


def agent_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        name="stat_agent_periodic",
        **hourly(partitions, "agent_stats"),  # single-run backfills, warehouse pool, retries
        deps=["queue_log", "stat_agent", "stat_queue"],
        description="Wazo's stat_agent_periodic: per hour and agent, login, pause and wrap-up "
                    "time (global row, and one row per queue the agent is a member of); plus "
                    "stat_agent_pause_reason, pause time per reason.",
    )
    def stat_agent_periodic(context: dg.AssetExecutionContext, config: AgentStatsConfig,
                            warehouse: Warehouse, wazo_config: WazoConfig,
                            source: QueueLogSource) -> dg.MaterializeResult:
        start, end = context.partition_time_window
        members = run_members(context, source, wazo_config)
        with warehouse.engine().begin() as conn:
            partition_write(conn, "stat_agent_periodic", start, end, context.run.run_id,
                            [m.name for m in members])
            for member in members:  # each source's agents, on its rows (scope.py)
                until = member.source.until
                horizon = (dt.datetime.fromisoformat(until) if until
                           else dt.datetime.now(dt.timezone.utc))
                with source_scope(conn, member.name):
                    sync = compute_agent_hours(conn, member.config, start, end, horizon,
                                               config.wrapup_lookback_hours)
                    report_config_changes(context, conn, sync, member.name)
            report(context, conn, _figures)
        return dg.MaterializeResult()

    return [stat_agent_periodic]
