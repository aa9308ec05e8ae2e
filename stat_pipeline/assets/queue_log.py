"""queue_log: the warehouse copy of the source's rows, one hour per partition."""

import dagster as dg

from stat_pipeline.assets.policies import hourly
from stat_pipeline.assets.run_metadata import by_hour, report
from stat_pipeline.resources import Warehouse
from stat_pipeline.sources import QueueLogSource
from stat_pipeline.sql import analyze, analyze_after_bulk, query
from stat_pipeline.warehouse.writes import partition_write


def _q(name: str):
    return query(__file__, "queue_log.sql", name)


def _figures(conn, source_name: str, start, end):
    params = {"source": source_name, "start": start, "end": end}
    by_event = by_hour(conn.execute(_q("summary"), params))
    lateness = {hour: rows[0] for hour, rows in by_hour(conn.execute(_q("lateness"), params)).items()}

    def of(hour) -> dict:
        counts = {row.event or "NULL": row.n for row in by_event.get(hour, [])}
        late = lateness.get(hour)
        return {"dagster/row_count": sum(counts.values()),
                "rows_by_event": dg.MetadataValue.json(counts),
                **{f"lateness_{q}_s": dg.MetadataValue.float(
                    round(float(getattr(late, q) or 0) if late else 0.0, 1))
                   for q in ("p50", "p99", "max")}}
    return of


def queue_log_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        name="queue_log",
        **hourly(partitions, "ingest"),
        description="Copy of the source's queue_log rows whose event time is in the hour "
                    "(replaced on every materialization), with the source row id and the "
                    "time we first ingested it. Rows without a usable time, and exact "
                    "duplicates (kept once), are listed in queue_log_rejects.",
    )
    def queue_log(context: dg.AssetExecutionContext, warehouse: Warehouse,
                  source: QueueLogSource) -> dg.MaterializeResult:
        start, end = context.partition_time_window
        source_name = source.source_name()
        params = {"source": source_name, "start": start, "end": end}
        with warehouse.engine().begin() as conn:
            source.stage(conn, start, end)
            # conservation: rows read = rows copied + rows kept aside (timeless, duplicates)
            read = conn.exec_driver_sql("SELECT count(*) FROM incoming_queue_log").scalar()
            # a temporary table is never auto-analyzed, and without statistics the planner
            # takes the hour's rows for a handful (nested loops over a backfill's rows)
            analyze(conn, "incoming_queue_log", coarse=True)
            conn.execute(_q("hash_rows"), params)
            conn.execute(_q("find_duplicates"), params)
            # Everything above touched only this transaction's temporary tables (reading the
            # source may take seconds): the warehouse's write lock is held from here to the
            # commit, for the warehouse work alone.
            partition_write(conn, "queue_log", start, end, context.run.run_id)
            copied = conn.execute(_q("replace_rows"), params).rowcount
            analyze_after_bulk(conn, "queue_log", copied, coarse=True)
            conn.execute(_q("clear_rejects"), params)
            rejected = conn.execute(_q("record_rejects"), params).rowcount
            duplicates = conn.execute(_q("record_duplicates"), params).rowcount
            # rows without a usable time belong to no hour, and duplicates are counted
            # over the run: facts of the run (on the hour, for a one-hour run)
            report(context, conn, lambda c, s, e: _figures(c, source_name, s, e),
                   {"rows_without_time": rejected, "duplicate_rows_removed": duplicates,
                    "rows_read": read, "rows_copied": copied,
                    "rows_kept_aside": rejected + duplicates})
        if rejected:
            context.log.warning(f"{rejected} source rows have no usable time: see queue_log_rejects")
        return dg.MaterializeResult(metadata={"source": source_name})

    return [queue_log]
