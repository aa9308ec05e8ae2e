"""Calls: queue_log rows -> classified_calls (one row per call passage) -> Wazo's
stat_call_on_queue.

A call is kept in the partition of its Wazo time (its ENTERQUEUE, or the event time of
FULL/CLOSED/JOINEMPTY/DIVERT_*). Its outcome may come hours later: the classification reads
the warehouse's queue_log up to ``lookahead_hours`` past the hour, so a call still *pending*
becomes final as soon as its hour is re-materialized after the outcome row was copied (the
new-rows sensor requests exactly those hours; a range run copies before it classifies).
"""

import datetime as dt
from typing import Literal

import dagster as dg
from pydantic import Field

from stat_pipeline.assets.dimensions import report_config_changes, sync_dimensions
from stat_pipeline.assets.policies import hourly, subsettable_asset
from stat_pipeline.assets.run_metadata import by_hour, check_outcomes, merge_checks, report
from stat_pipeline.resources import Warehouse, WazoConfig
from stat_pipeline.sources import QueueLogSource
from stat_pipeline.sources.config import run_members
from stat_pipeline.sql import analyze_after_bulk, query
from stat_pipeline.warehouse.scope import source_scope
from stat_pipeline.warehouse.writes import partition_write, row_triggers_off

# The columns of classified_calls that some statement filters, joins or groups on (this
# module's, dimensions.sql's): ANALYZE after a bulk classification samples these only. The
# durations and the partial flag are only counted or copied (30 days: 5 of 19 columns, ~25 %
# of the ANALYZE).
CLASSIFIED_CALLS_PLANNED_COLUMNS = (
    "source", "callid", "queuename", "call_time", "enter_time", "end_time", "status", "agent",
    "note", "enter_row_id", "outcome_row_id", "connect_row_id", "exitempty_row_id",
    "waittime_by_events")

WAZO_STATUSES = ("answered", "abandoned", "timeout", "leaveempty", "full", "closed",
                 "joinempty", "divert_ca_ratio", "divert_waittime")


def _q(name: str):
    return query(__file__, "calls.sql", name)


class ClassifyConfig(dg.Config):
    durations_from: Literal["asterisk", "events"] = Field(
        default="asterisk",
        description="Wait/talk seconds written to the Wazo tables: 'asterisk' = the seconds "
                    "Asterisk put in the outcome row (what wazo-stat stores), 'events' = the "
                    "differences of the events' own timestamps. classified_calls keeps both.")
    skew_warning_seconds: float = Field(
        default=5.0, ge=0,
        description="The clock_skew check warns when Asterisk's wait and the timestamps' "
                    "wait of answered calls differ by more than this (99th percentile).")
    lookahead_hours: int = Field(
        default=24, ge=1,
        description="How long after its ENTERQUEUE a call's outcome is looked for; a call "
                    "without outcome after that is 'no_outcome' instead of 'pending'.")


def _status_metadata(counts: dict[str, int]) -> dict[str, dg.MetadataValue]:
    # One numeric entry per status so the UI plots each over partitions.
    meta: dict[str, dg.MetadataValue] = {
        f"calls_{status}": dg.MetadataValue.int(counts.get(status, 0)) for status in WAZO_STATUSES}
    meta["calls_by_status"] = dg.MetadataValue.json(counts)
    return meta


def _classified_figures(conn, start: dt.datetime, end: dt.datetime):
    params = {"start": start, "end": end}
    calls = by_hour(conn.execute(_q("calls_by_status"), params))
    rejects = by_hour(conn.execute(_q("rejects_by_disposition"), params))
    skew = {hour: rows[0].p99 for hour, rows in by_hour(conn.execute(_q("skew_by_hour"), params)).items()}

    def of(hour) -> dict:
        rows = calls.get(hour, [])
        counts = {r.status: r.n for r in rows}
        rejected = {r.disposition: r.n for r in rejects.get(hour, [])}
        return {
            "dagster/row_count": sum(counts.values()),
            **_status_metadata(counts),
            "wait_skew_p99_s": dg.MetadataValue.float(float(skew.get(hour) or 0)),
            "calls_pending": counts.get("pending", 0),
            "calls_no_outcome": counts.get("no_outcome", 0),
            "calls_partial": sum(r.partial for r in rows),
            "calls_with_note": sum(r.noted for r in rows),
            # outcome or CONNECT logged before the ENTERQUEUE (writers' clocks), paired with it
            "calls_paired_before_enterqueue": sum(r.paired_before_enter for r in rows),
            "rejected_rows": sum(rejected.values()),
            "rejected_rows_by_disposition": dg.MetadataValue.json(rejected),
        }
    return of


def _stat_call_figures(conn, start: dt.datetime, end: dt.datetime):
    calls = by_hour(conn.execute(_q("stat_calls_by_status"), {"start": start, "end": end}))

    def of(hour) -> dict:
        rows = calls.get(hour, [])
        counts = {r.status: r.n for r in rows}
        return {
            "dagster/row_count": sum(counts.values()),
            **_status_metadata(counts),
            "calls_without_queue": sum(r.without_queue for r in rows),
        }
    return of


def _checks(conn, params: dict, lookahead_hours: int,
            skew_warning_seconds: float) -> list[dg.AssetCheckResult]:
    enter = conn.execute(_q("check_enterqueues"), params).one()
    durations = conn.execute(_q("check_durations"),
                             {**params, "max_seconds": lookahead_hours * 3600}).one()
    stale = conn.execute(_q("check_stale_pending"), params).one()
    rejected = conn.execute(_q("check_rejects"), params).scalar()
    unused = conn.execute(_q("check_unused_outcomes"), params).one()
    skew = conn.execute(_q("skew"), params).one()
    return [
        dg.AssetCheckResult(
            check_name="clock_skew", passed=float(skew.p99 or 0) <= skew_warning_seconds,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"answered_calls": skew.calls,
                      "wait_skew_p50_s": float(skew.p50 or 0), "wait_skew_p99_s": float(skew.p99 or 0),
                      "wait_skew_max_s": float(skew.max or 0)}),
        dg.AssetCheckResult(
            check_name="one_call_per_enterqueue",
            passed=enter.enterqueues == enter.calls and enter.duplicated == 0,
            metadata={"enterqueues": enter.enterqueues, "calls": enter.calls,
                      "duplicated": enter.duplicated}),
        dg.AssetCheckResult(
            check_name="plausible_durations", passed=durations.negative + durations.absurd == 0,
            metadata={"negative": durations.negative, "beyond_lookahead": durations.absurd}),
        dg.AssetCheckResult(
            check_name="unused_outcome_rows", passed=unused.unused == 0,
            metadata={"unused_outcome_rows": unused.unused,
                      "unused_by_event": dg.MetadataValue.json(unused.by_event),
                      "first_unused": unused.first_rows or "-"}),
        dg.AssetCheckResult(
            check_name="no_stale_pending_calls", passed=stale.stale == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"stale_pending": stale.stale,
                      "oldest": str(stale.oldest) if stale.oldest else "-"}),
        dg.AssetCheckResult(
            check_name="rejected_rows", passed=rejected == 0, severity=dg.AssetCheckSeverity.WARN,
            metadata={"rejected_rows": rejected}),
    ]


class MissingStatKey(RuntimeError):
    """stat_call_on_queue rows that point at no stat_queue / stat_agent row."""


def _insert_stat_calls(conn, params: dict) -> int:
    """stat_call_on_queue.sql, without the per-row cost of Wazo's two foreign keys where we
    may: their triggers cost about as much as the rest of the insert (30 days: ~1 s of
    ~2.7 s under EXPLAIN). A superuser (the embedded warehouse of ``compute`` and ``serve``)
    inserts with the row triggers off for that statement alone and checks both keys for all
    the new rows at once in the same transaction (locking the referenced rows as the
    per-row checks do); anyone else inserts with the triggers. Wazo's schema and
    constraints are unchanged: readers and every other writer see the same table. (Any
    other row trigger on the table would be skipped for that statement too: the
    migrations create none; one added later must be ENABLE ALWAYS.)"""
    with row_triggers_off(conn) as bulk:
        rows = conn.execute(query(__file__, "stat_call_on_queue.sql"), params).rowcount
    if not bulk:  # PostgreSQL's own checks ran
        return rows
    missing = conn.execute(_q("lock_stat_call_keys"), params).one()
    if missing.missing_queue_ids or missing.missing_agent_ids:
        # what the foreign keys would have refused: the transaction rolls back
        raise MissingStatKey(
            f"stat_call_on_queue rows point at missing stat_queue ids "
            f"{missing.missing_queue_ids or []} / stat_agent ids {missing.missing_agent_ids or []}")
    return rows


def call_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    # subsettable, so that jobs run it without planning its checks (check_outcomes)
    @subsettable_asset(
        name="classified_calls",
        check_specs=[
            dg.AssetCheckSpec("one_call_per_enterqueue", asset="classified_calls",
                              description="Every ENTERQUEUE of the hours has exactly one "
                                          "classified call (decided or pending)."),
            dg.AssetCheckSpec("plausible_durations", asset="classified_calls",
                              description="No negative wait/talk/ring, none beyond the look-ahead."),
            dg.AssetCheckSpec("unused_outcome_rows", asset="classified_calls",
                              description="Every outcome row (COMPLETE*, transfers, ABANDON, "
                                          "EXITWITHTIMEOUT, LEAVEEMPTY, exits) and CONNECT of "
                                          "the hours is read by a classified call: fails with "
                                          "the count and the first rows otherwise (a repeated "
                                          "row, or a call whose hour is out of date)."),
            dg.AssetCheckSpec("no_stale_pending_calls", asset="classified_calls",
                              description="No call anywhere still pending after the look-ahead "
                                          "(its hour needs re-materializing)."),
            dg.AssetCheckSpec("clock_skew", asset="classified_calls",
                              description="Asterisk's reported wait vs the wait measured on the "
                                          "rows' timestamps (99th percentile): writers' clocks "
                                          "disagree when it is large."),
            dg.AssetCheckSpec("rejected_rows", asset="classified_calls",
                              description="Rows of the hours kept aside in queue_log_rejects "
                                          "(warns, with the count)."),
        ],
        **hourly(partitions, "calls"),
        deps=["queue_log"],
        description="One row per call passage in a queue, in the hour of its Wazo time: "
                    "status (Wazo's nine, or pending / no_outcome / exitwithkey / exitempty / "
                    "withdraw), wait/talk/ring seconds, agent, and the source ids of the rows "
                    "that decided it.",
    )
    def classified_calls(context: dg.AssetExecutionContext, config: ClassifyConfig,
                         warehouse: Warehouse, source: QueueLogSource, wazo_config: WazoConfig):
        start, end = context.partition_time_window
        members = run_members(context, source, wazo_config)
        checks = []
        with warehouse.engine().begin() as conn:
            partition_write(conn, "classified_calls", start, end, context.run.run_id,
                            [m.name for m in members])
            for member in members:  # the same statements, on each source's rows (scope.py)
                until = member.source.until
                horizon = (dt.datetime.fromisoformat(until) if until
                           else dt.datetime.now(dt.timezone.utc))
                params = {"start": start, "end": end, "horizon": horizon,
                          "lookahead": f"{config.lookahead_hours} hours",
                          "durations_from": config.durations_from}
                with source_scope(conn, member.name) as scope:
                    conn.execute(_q("clear_calls"), params)
                    calls = conn.execute(query(__file__, "classify_calls.sql"), params).rowcount
                    analyze_after_bulk(conn, scope.table("classified_calls"), calls,
                                       columns=CLASSIFIED_CALLS_PLANNED_COLUMNS)
                    conn.execute(_q("clear_rejects"), params)
                    conn.execute(query(__file__, "classify_rejects.sql"), params)
                    checks.append((member.name, _checks(conn, params, config.lookahead_hours,
                                                        config.skew_warning_seconds)))
            report(context, conn, _classified_figures)  # every source of the hours
        yield dg.MaterializeResult()
        yield from check_outcomes(context, merge_checks(checks))

    @dg.asset(
        name="stat_call_on_queue",
        **hourly(partitions, "calls"),
        deps=["classified_calls", "stat_queue", "stat_agent"],
        description="Wazo's stat_call_on_queue rows (the nine Wazo statuses) for the calls "
                    "whose time is in the hour.",
    )
    def stat_call_on_queue(context: dg.AssetExecutionContext, warehouse: Warehouse,
                           source: QueueLogSource,
                           wazo_config: WazoConfig) -> dg.MaterializeResult:
        start, end = context.partition_time_window
        params = {"start": start, "end": end}
        members = run_members(context, source, wazo_config)
        with warehouse.engine().begin() as conn:
            partition_write(conn, "stat_call_on_queue", start, end, context.run.run_id,
                            [m.name for m in members])
            for member in members:
                with source_scope(conn, member.name) as scope:
                    sync = sync_dimensions(conn, member.config, start, end, refresh=False)
                    report_config_changes(context, conn, sync, member.name)
                    conn.execute(_q("clear_stat_calls"), params)
                    rows = _insert_stat_calls(conn, params)
                    analyze_after_bulk(conn, scope.table("stat_call_on_queue"), rows)
            report(context, conn, _stat_call_figures)
        return dg.MaterializeResult()

    return [classified_calls, stat_call_on_queue]
