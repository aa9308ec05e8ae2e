"""stat_queue and stat_agent: Wazo's queue and agent dimensions.

Rules of wazo-stat (wazo_stat_algorithm.md section 4): queues come from the confd config and
from the names seen in queue_log; agents only from the config. A queue or agent deleted and
re-created in the config keeps its old row (renamed ``name_``) so history stays attached.
``sync_dimensions`` is also called by every stat_call_on_queue write, in its transaction, so
a new queue name is known before its calls are written.
"""

import datetime as dt
import json
from typing import Any, Optional

import dagster as dg
from sqlalchemy import Connection

from stat_pipeline.resources import Warehouse, WazoConfig
from stat_pipeline.sql import query
from stat_pipeline.warehouse.writes import lock_warehouse

_ALL_TIME = (dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc),
             dt.datetime(9999, 12, 31, tzinfo=dt.timezone.utc))


def _q(name: str):
    return query(__file__, "dimensions.sql", name)


def sync_dimensions(conn: Connection, config: WazoConfig,
                    start: Optional[dt.datetime] = None, end: Optional[dt.datetime] = None) -> None:
    """Apply the config and register the queue names of queue_log in [start, end)."""
    document = config.document()
    # Hourly runs may sync concurrently: one at a time, or two would insert the same new
    # name. The warehouse's write lock (not a lock of its own: a stat_call_on_queue write
    # already holds it when it syncs, and two locks taken in two orders could deadlock).
    lock_warehouse(conn)
    if document is None:
        conn.execute(_q("clear_config"))
    else:
        conn.execute(_q("store_config"), {"document": json.dumps(document)})
    conn.execute(_q("confd_tables"))
    if document is not None:
        conn.execute(_q("queues_recreated"))
        conn.execute(_q("queues_gone"))
        conn.execute(_q("queues_from_confd"))
    conn.execute(_q("queues_from_log"), {
        "start": start or _ALL_TIME[0], "end": end or _ALL_TIME[1],
        "master_tenant": master_tenant(document, config),
        "has_config": document is not None,
    })
    if document is not None:
        _rename_deleted(conn, _q("queues_to_rename"), _q("queue_name_taken"), _q("rename_queue"))
        conn.execute(_q("agents_recreated"))
        conn.execute(_q("agents_gone"))
        conn.execute(_q("agents_from_confd"))
        _rename_deleted(conn, _q("agents_to_rename"), _q("agent_name_taken"), _q("rename_agent"))
    if config.keep_unknown_agents:
        conn.execute(_q("agents_from_log"), {
            "start": start or _ALL_TIME[0], "end": end or _ALL_TIME[1],
            "master_tenant": master_tenant(document, config),
            "has_config": document is not None,
        })
    conn.execute(_q("drop_confd_tables"))


def master_tenant(document: Optional[dict[str, Any]], config: WazoConfig) -> str:
    return document["master_tenant"] if document else config.default_tenant


def _rename_deleted(conn: Connection, select, taken, rename) -> None:
    # Wazo appends '_' until the name is free; a handful of rows at most, so a loop is fine.
    for row in conn.execute(select).mappings().all():
        params: dict[str, Any] = dict(row)
        name = row["name"]
        while True:
            name += "_"
            if not conn.execute(taken, {**params, "name": name}).scalar():
                break
        conn.execute(rename, {"id": row["id"], "name": name})


def _md_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(empty)"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(r[h]) for h in header) + " |" for r in rows]
    return "\n".join(lines)


def dimension_assets() -> list[dg.AssetsDefinition]:
    @dg.multi_asset(
        specs=[
            dg.AssetSpec("stat_queue", group_name="dimensions", kinds={"postgres"},
                         owners=["team:stat-pipeline"],
                         description="Wazo's queue dimension: confd queues plus names seen in "
                                     "queue_log, with Wazo's deleted/renamed rules."),
            dg.AssetSpec("stat_agent", group_name="dimensions", kinds={"postgres"},
                         owners=["team:stat-pipeline"],
                         description="Wazo's agent dimension (Agent/<number> + tenant), "
                                     "from the confd config."),
        ],
    )
    def dimensions(warehouse: Warehouse, wazo_config: WazoConfig):
        with warehouse.engine().begin() as conn:
            sync_dimensions(conn, wazo_config)
            queues = [dict(r) for r in conn.execute(_q("queue_summary")).mappings()]
            agents = [dict(r) for r in conn.execute(_q("agent_summary")).mappings()]
        yield dg.MaterializeResult(asset_key="stat_queue", metadata={
            "dagster/row_count": len(queues),
            "live_queues": sum(not q["deleted"] for q in queues),
            "queues": dg.MetadataValue.md(_md_table(queues)),
        })
        yield dg.MaterializeResult(asset_key="stat_agent", metadata={
            "dagster/row_count": len(agents),
            "live_agents": sum(not a["deleted"] for a in agents),
            "agents": dg.MetadataValue.md(_md_table(agents)),
        })

    return [dimensions]
