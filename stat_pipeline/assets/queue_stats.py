"""stat_queue_periodic: Wazo's hourly counters per queue and status."""

import dagster as dg

from stat_pipeline.assets.policies import hourly, subsettable_asset
from stat_pipeline.assets.run_metadata import by_hour, check_outcomes, report
from stat_pipeline.resources import Warehouse, WazoConfig
from stat_pipeline.sources import QueueLogSource
from stat_pipeline.sources.config import run_members
from stat_pipeline.sql import query
from stat_pipeline.warehouse.scope import source_scope
from stat_pipeline.warehouse.writes import partition_write


def _q(name: str):
    return query(__file__, "queue_stats.sql", name)


def _markdown(rows) -> str:
    if not rows:
        return "No calls in this period."
    head = "| queue | total | answered | abandoned | timeout | leaveempty | not queued | answered rate |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rate = f"{_rate(r.answered, r.answerable)} %" if r.answerable else "-"
        lines.append(f"| {r.queue} | {r.total} | {r.answered} | {r.abandoned} | {r.timeout} | "
                     f"{r.leaveempty} | {r.not_queued} | {rate} |")
    return "\n".join(lines)


def _rate(answered: int, answerable: int) -> float:
    """wazo-call-logd's answered_rate: a percentage with 2 decimals, over the calls that
    could be answered (closed and divert_* left out), as the API and the SQL KPIs give it."""
    return round(100 * answered / answerable, 2)


def _figures(conn, start, end):
    params = {"start": start, "end": end}
    queues = by_hour(conn.execute(_q("per_queue"), params))
    waits = {hour: rows[0].avg_wait
             for hour, rows in by_hour(conn.execute(_q("wait_of_answered"), params)).items()}

    def of(hour) -> dict:
        rows = queues.get(hour, [])
        total = sum(r.total for r in rows)
        answered = sum(r.answered for r in rows)
        answerable = sum(r.answerable for r in rows)
        return {
            "dagster/row_count": int(sum(r.hours for r in rows)),
            "calls_total": int(total),
            "calls_answered": int(answered),
            "calls_abandoned": int(sum(r.abandoned for r in rows)),
            "answered_rate": (dg.MetadataValue.float(_rate(answered, answerable))
                              if answerable else dg.MetadataValue.null()),
            "avg_wait_answered_s": dg.MetadataValue.float(round(float(waits.get(hour) or 0), 1)),
            "per_queue": dg.MetadataValue.md(_markdown(rows)),
        }
    return of


def queue_stats_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    # subsettable, so that jobs run it without planning its check (check_outcomes)
    @subsettable_asset(
        name="stat_queue_periodic",
        **hourly(partitions, "queue_stats"),
        deps=["stat_call_on_queue"],
        check_specs=[dg.AssetCheckSpec(
            "totals_consistent", asset="stat_queue_periodic",
            description="total = sum of the status columns = stat_call_on_queue rows of "
                        "the hour and queue.")],
        description="Wazo's stat_queue_periodic: per hour and queue, the number of calls per "
                    "status and the total.",
    )
    def stat_queue_periodic(context: dg.AssetExecutionContext, warehouse: Warehouse,
                            source: QueueLogSource, wazo_config: WazoConfig):
        start, end = context.partition_time_window
        params = {"start": start, "end": end}
        members = run_members(context, source, wazo_config)
        bad_sums = bad_totals = 0
        with warehouse.engine().begin() as conn:
            partition_write(conn, "stat_queue_periodic", start, end, context.run.run_id,
                            [m.name for m in members])
            for member in members:  # each source's queues of the hours (scope.py)
                with source_scope(conn, member.name):
                    conn.execute(_q("clear_periodic"), params)
                    conn.execute(query(__file__, "stat_queue_periodic.sql"), params)
                    totals = conn.execute(_q("check_totals"), params).one()
                    bad_sums += totals.bad_sums
                    bad_totals += totals.bad_totals
            report(context, conn, _figures)
        check = dg.AssetCheckResult(
            check_name="totals_consistent", passed=bad_sums + bad_totals == 0,
            metadata={"rows_total_not_sum": bad_sums, "rows_total_not_calls": bad_totals})
        yield dg.MaterializeResult()
        yield from check_outcomes(context, [check])

    return [stat_queue_periodic]
