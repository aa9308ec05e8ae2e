"""queue_log: the warehouse copy of the source's rows, one hour per partition."""

from collections import defaultdict

import dagster as dg
from psycopg2.errorcodes import UNIQUE_VIOLATION
from sqlalchemy.exc import IntegrityError

from stat_pipeline.assets.policies import hourly
from stat_pipeline.assets.run_metadata import WHOLE_RANGE, by_hour, report
from stat_pipeline.resources import Warehouse, WazoConfig
from stat_pipeline.sources import QueueLogSource
from stat_pipeline.sources.config import run_members
from stat_pipeline.sql import analyze, analyze_after_bulk, query
from stat_pipeline.warehouse.scope import drop_temp_created_since, temp_relations
from stat_pipeline.warehouse.writes import partition_write


def _q(name: str):
    return query(__file__, "queue_log.sql", name)


def _figures(conn, source_names: list[str], start, end):
    params = {"sources": source_names, "start": start, "end": end}
    # hour -> event -> rows; the range's totals per event summed here (one hash aggregate
    # over the rows instead of grouping sets sorting them all: queue_log.sql)
    by_event: dict = defaultdict(dict)
    range_totals: dict = {}
    for row in conn.execute(_q("summary"), params):  # in event order
        by_event[row.hour][row.event or "NULL"] = row.n
        range_totals[row.event] = range_totals.get(row.event, 0) + row.n
    by_event[WHOLE_RANGE] = {event or "NULL": n for event, n in range_totals.items()}
    lateness = {hour: rows[0] for hour, rows in by_hour(conn.execute(_q("lateness"), params)).items()}

    def of(hour) -> dict:
        counts = by_event.get(hour, {})
        late = lateness.get(hour)
        return {"dagster/row_count": sum(counts.values()),
                "rows_by_event": dg.MetadataValue.json(counts),
                **{f"lateness_{q}_s": dg.MetadataValue.float(
                    round(float(getattr(late, q) or 0) if late else 0.0, 1))
                   for q in ("p50", "p99", "max")}}
    return of


def _is_duplicate_row(exc: IntegrityError) -> bool:
    """``exc`` is queue_log's unique index refusing a row already there (in a monthly
    partition the index is named queue_log__time_row_pYYYY_MM)."""
    diag = getattr(exc.orig, "diag", None)
    code = getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)
    return (code == UNIQUE_VIOLATION
            and (getattr(diag, "constraint_name", None) or "").startswith("queue_log__time_row"))


_COUNTS = ("rows_read", "rows_copied", "rows_kept_aside", "rows_without_time",
           "duplicate_rows_removed")


def _copy(context, conn, source: QueueLogSource, source_name: str, start, end, locked: bool,
          names: list[str]) -> dict[str, int]:
    """Replace ``source_name``'s rows of [start, end) in queue_log (and its ingest rejects)
    by what the source holds now; the counts of the conservation law."""
    params = {"source": source_name, "start": start, "end": end}
    before = temp_relations(conn)
    source.stage(conn, start, end)
    # conservation: rows read = rows copied + rows kept aside (timeless, duplicates)
    read = conn.exec_driver_sql("SELECT count(*) FROM incoming_queue_log").scalar()
    # a temporary table is never auto-analyzed, and without statistics the planner
    # takes the hour's rows for a handful (nested loops over a backfill's rows)
    analyze(conn, "incoming_queue_log", coarse=True)
    # Everything above touched only this transaction's temporary tables (reading the
    # source may take seconds): the warehouse's write lock is held from here to the
    # commit, for the warehouse work alone. (With several sources, the next ones are read
    # under the lock: an untagged run; the sensors' runs read one source.)
    if not locked:
        partition_write(conn, "queue_log", start, end, context.run.run_id, names)
    conn.execute(_q("create_previous"))
    again = conn.execute(_q("take_previous"), params).rowcount > 0
    conn.execute(_q("clear_rejects"), params)
    duplicates = 0
    try:
        with conn.begin_nested():  # undone alone if the staged rows hold a duplicate
            copied = conn.execute(_q("copy_rows_again" if again else "copy_rows"), params).rowcount
    except IntegrityError as exc:
        if not _is_duplicate_row(exc):
            raise
        conn.execute(_q("hash_rows"), params)
        conn.execute(_q("find_duplicates"), params)
        copied = conn.execute(_q("copy_rows_but_duplicates"), params).rowcount
        duplicates = conn.execute(_q("record_duplicates"), params).rowcount
    analyze_after_bulk(conn, "queue_log", copied, coarse=True)
    rejected = conn.execute(_q("record_rejects"), params).rowcount
    drop_temp_created_since(conn, before)  # the next source stages into the same names
    return {"rows_read": read, "rows_copied": copied, "rows_kept_aside": rejected + duplicates,
            "rows_without_time": rejected, "duplicate_rows_removed": duplicates}


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
                  source: QueueLogSource, wazo_config: WazoConfig) -> dg.MaterializeResult:
        start, end = context.partition_time_window
        # the run's sources: the one its stat_pipeline/source tag names, else every source
        # (sources/config.py); each replaces its own rows of the hours, in one transaction
        members = run_members(context, source, wazo_config)
        names = [m.name for m in members]
        by_source: dict[str, dict[str, int]] = {}
        with warehouse.engine().begin() as conn:
            for member in members:
                by_source[member.name] = _copy(context, conn, member.source, member.name,
                                               start, end, locked=bool(by_source), names=names)
            totals = {k: sum(c[k] for c in by_source.values()) for k in _COUNTS}
            per_source = {}
            if len(members) > 1:  # what each PBX brought, plottable per partition
                per_source = {f"{k}__{name}": counts[k]
                              for name, counts in by_source.items() for k in _COUNTS}
                per_source["rows_by_source"] = dg.MetadataValue.json(by_source)
            # rows without a usable time belong to no hour, and duplicates are counted
            # over the run: facts of the run (on the hour, for a one-hour run)
            report(context, conn, lambda c, s, e: _figures(c, names, s, e),
                   {**totals, **per_source})
        rejected = totals["rows_without_time"]
        if rejected:
            context.log.warning(f"{rejected} source rows have no usable time: see queue_log_rejects")
        return dg.MaterializeResult(metadata={"source": ", ".join(names)})

    return [queue_log]
