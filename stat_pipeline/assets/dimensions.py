"""stat_queue and stat_agent: Wazo's queue and agent dimensions.

Rules of wazo-stat (wazo_stat_algorithm.md section 4): queues come from the confd config and
from the names seen in queue_log; agents only from the config. A queue or agent deleted and
re-created in the config keeps its old row (renamed ``name_``) so history stays attached.
``sync_dimensions`` is also called by every stat_call_on_queue write, in its transaction, so
a new queue name is known before its calls are written.
"""

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Optional

import dagster as dg
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from stat_pipeline.resources import LIVE_ORIGINS, ConfigError, Warehouse, WazoConfig
from stat_pipeline.sources import QueueLogSource
from stat_pipeline.sources.config import run_members
from stat_pipeline.warehouse.scope import source_scope
from stat_pipeline.sql import analyze, query
from stat_pipeline.warehouse.writes import lock_warehouse

_ALL_TIME = (dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc),
             dt.datetime(9999, 12, 31, tzinfo=dt.timezone.utc))


def _q(name: str):
    return query(__file__, "dimensions.sql", name)


@dataclass
class DimensionSync:
    """What one sync applied: the config document (None: no config), where it came from,
    whether it was (re-)read now, why, and what changed in it since the stored one."""

    document: Optional[dict[str, Any]]
    origin: Optional[str]
    refreshed: bool
    reason: str = ""
    changes: list[dict[str, Any]] = field(default_factory=list)


def sync_dimensions(conn: Connection, config: WazoConfig,
                    start: Optional[dt.datetime] = None, end: Optional[dt.datetime] = None,
                    refresh: bool = True) -> DimensionSync:
    """Apply the config and register the queue names of queue_log in [start, end).

    A file is read every time (cheap, and what the golden runs did). A live config (confd,
    Wazo's tables) is read when ``refresh`` (the dimension assets, their schedule), when none
    is stored yet, or when the rows of [start, end) carry a queue or agent name the stored
    one does not know; otherwise the stored one is applied (an hourly run does not call
    wazo-confd for nothing)."""
    stored = conn.execute(_q("stored_config")).scalar()
    stored_origin = stored.get("origin") if stored else None
    origin = config.origin(stored_origin)
    reason = "refresh" if refresh else ""
    if origin in LIVE_ORIGINS and not refresh:
        reason = _why_read(conn, origin, stored_origin, start or _ALL_TIME[0],
                           end or _ALL_TIME[1])
    fetched = config.document(stored_origin) if origin not in LIVE_ORIGINS or reason else None
    # Hourly runs may sync concurrently: one at a time, or two would insert the same new
    # name. The warehouse's write lock (not a lock of its own: a stat_call_on_queue write
    # already holds it when it syncs, and two locks taken in two orders could deadlock).
    # Taken after the (network) read, before the stored config is compared and replaced.
    lock_warehouse(conn)
    previous = conn.execute(_q("stored_config")).scalar()
    if origin in LIVE_ORIGINS and fetched is None and previous is None:
        fetched = config.document(stored_origin)  # cleared since it was looked at: read it
    if origin in LIVE_ORIGINS and fetched is None:
        document = {k: v for k, v in previous.items() if k != "origin"}
        sync = DimensionSync(document, origin, refreshed=False)
    else:
        document = fetched
        changes = config_changes(previous, document) if document is not None else []
        sync = DimensionSync(document, origin, refreshed=True, reason=reason, changes=changes)
    if document is None:
        conn.execute(_q("clear_config"))
    elif sync.refreshed:
        conn.execute(_q("store_config"), {"document": json.dumps({**document, "origin": origin})})
    conn.execute(_q("confd_tables"))
    changed = 0  # rows the rules wrote (renames aside: they move no row between sources)
    if document is not None:
        changed += conn.execute(_q("queues_recreated")).rowcount
        changed += conn.execute(_q("queues_gone")).rowcount
        changed += conn.execute(_q("queues_from_confd")).rowcount
    changed += conn.execute(_q("queues_from_log"), {
        "start": start or _ALL_TIME[0], "end": end or _ALL_TIME[1],
        "master_tenant": master_tenant(document, config),
        "has_config": document is not None,
    }).rowcount
    if document is not None:
        _rename_deleted(conn, _q("queues_to_rename"), _q("queue_name_taken"), _q("rename_queue"))
        changed += conn.execute(_q("agents_recreated")).rowcount
        changed += conn.execute(_q("agents_gone")).rowcount
        changed += conn.execute(_q("agents_from_confd")).rowcount
        _rename_deleted(conn, _q("agents_to_rename"), _q("agent_name_taken"), _q("rename_agent"))
    if config.keep_unknown_agents:
        changed += conn.execute(_q("agents_from_log"), {
            "start": start or _ALL_TIME[0], "end": end or _ALL_TIME[1],
            "master_tenant": master_tenant(document, config),
            "has_config": document is not None,
        }).rowcount
    conn.execute(_q("drop_confd_tables"))
    if changed:
        _analyze_dimensions(conn)
    return sync


def _analyze_dimensions(conn: Connection) -> None:
    """Fresh planner statistics for stat_queue and stat_agent once the rules wrote rows.
    Small tables: autovacuum analyzes a table after 50 changed rows, so a call centre of 30
    agents is never analyzed, and a source scope's ``WHERE source = …`` (warehouse/scope.py)
    is then estimated at one row: stat_call_on_queue's insert re-ran its agent look-ups per
    call (week_s1's 10,985 calls: 3.4 s instead of ~0.1 s). A millisecond each; under the
    warehouse lock taken above, so concurrent syncs cannot interleave. The real tables, not
    a scope's views of them."""
    schema = conn.execute(_q("current_schema")).scalar()
    for table in ("stat_queue", "stat_agent"):
        analyze(conn, f'"{schema}".{table}')


def _why_read(conn: Connection, origin: str, stored_origin: Optional[str], start: dt.datetime,
              end: dt.datetime) -> str:
    """Why a live config must be re-read before computing [start, end): '' = it need not."""
    if stored_origin != origin:
        return f"no config from {origin} stored yet"
    unknown = conn.execute(_q("unknown_names"), {"start": start, "end": end}).all()
    if not unknown:
        return ""
    return "unknown to the stored config: " + ", ".join(f"{r.kind} {r.name}" for r in unknown)


def config_changes(previous: Optional[dict[str, Any]],
                   current: dict[str, Any]) -> list[dict[str, Any]]:
    """What changed from the stored config to ``current``: queues and agents by confd id
    (new, renamed, deleted, moved to another tenant), contexts by name (new, deleted,
    moved). Wazo renames keep the id: that is what tells a rename from a delete + create."""
    before = previous or {}
    changes: list[dict[str, Any]] = []
    for kind, key, label in (("queues", "id", "name"), ("agents", "id", "number"),
                             ("contexts", "name", "name")):
        old = {item[key]: item for item in before.get(kind) or []}
        new = {item[key]: item for item in current.get(kind) or []}
        what = kind[:-1]
        for ident in sorted(new.keys() - old.keys(), key=str):
            changes.append(_change(what, "new", new[ident], label))
        for ident in sorted(old.keys() - new.keys(), key=str):
            changes.append(_change(what, "deleted", old[ident], label))
        for ident in sorted(old.keys() & new.keys(), key=str):
            if str(old[ident][label]) != str(new[ident][label]):
                changes.append(_change(what, "renamed", new[ident], label,
                                       f"was {old[ident][label]}"))
            if old[ident]["tenant_uuid"] != new[ident]["tenant_uuid"]:
                changes.append(_change(what, "moved", new[ident], label,
                                       f"was in tenant {old[ident]['tenant_uuid']}"))
    return changes


def _change(what: str, change: str, item: dict[str, Any], label: str,
            detail: str = "") -> dict[str, Any]:
    return {"what": what, "change": change, "id": item.get("id", ""),
            "name": str(item[label]), "tenant_uuid": item["tenant_uuid"], "detail": detail}


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


def dimension_metadata(conn: Connection, sync: DimensionSync) -> dict[str, dict[str, Any]]:
    """Each dimension asset's materialization metadata: its rows, where the config came from
    and what changed in it (queues for stat_queue; agents and contexts for stat_agent)."""
    queues = [dict(r) for r in conn.execute(_q("queue_summary")).mappings()]
    agents = [dict(r) for r in conn.execute(_q("agent_summary")).mappings()]
    origin = sync.origin or "none (queues from queue_log only)"
    common = {"config_origin": origin,
              "config_read_now": sync.refreshed,
              **({"config_read_because": sync.reason} if sync.reason else {})}

    def changes(whats: tuple[str, ...]) -> dict[str, Any]:
        mine = [c for c in sync.changes if c["what"] in whats]
        counts = {kind: sum(c["change"] == kind for c in mine)
                  for kind in ("new", "renamed", "deleted", "moved")}
        return {**{f"config_{k}": v for k, v in counts.items()},
                "config_changes": dg.MetadataValue.md(
                    _md_table(mine) if mine else "(no change since the stored config)")}

    return {
        "stat_queue": {
            "dagster/row_count": len(queues),
            "live_queues": sum(not q["deleted"] for q in queues),
            **common, **changes(("queue",)),
            "queues": dg.MetadataValue.md(_md_table(queues)),
        },
        "stat_agent": {
            "dagster/row_count": len(agents),
            "live_agents": sum(not a["deleted"] for a in agents),
            **common, **changes(("agent", "context")),
            "agents": dg.MetadataValue.md(_md_table(agents)),
        },
    }


def report_config_changes(context, conn: Connection, sync: DimensionSync,
                          source_name: Optional[str] = None) -> None:
    """From an hourly asset: a config re-read there (a name unknown to the stored config)
    that changed something is a new state of the dimensions, shown on their own pages
    like one of their runs (in a source's scope: that source's rows, and its name)."""
    if not (sync.refreshed and sync.changes and sync.origin in LIVE_ORIGINS):
        return
    of = f" of source {source_name}" if source_name else ""
    context.log.info(f"Wazo config{of} re-read ({sync.reason}): {len(sync.changes)} changes")
    for key, metadata in dimension_metadata(conn, sync).items():
        if source_name:
            metadata = {"source": source_name, **metadata}
        context.log_event(dg.AssetMaterialization(asset_key=key, metadata=metadata))


def merge_metadata(per_source: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A dimension asset's metadata for a run of several sources: the row counts summed,
    each source's figures and tables under ``<source>/<entry>`` (one source: unchanged)."""
    if len(per_source) == 1:
        return next(iter(per_source.values()))
    merged: dict[str, Any] = {}
    for name, metadata in per_source.items():
        for key, value in metadata.items():
            if key in ("dagster/row_count", "live_queues", "live_agents"):
                merged[key] = merged.get(key, 0) + value
            else:
                merged[f"{name}/{key}"] = value
    merged["sources"] = ", ".join(per_source)
    return merged


def _names_shared_across_sources(warehouse: Warehouse, context) -> dict[str, list[dict]]:
    """Per dimension, the live names that several sources hold in one tenant (dimensions.sql
    names_shared_across_sources), with a warning: kept apart, but listed twice by Wazo."""
    with warehouse.engine().connect() as conn:
        rows = conn.execute(_q("names_shared_across_sources")).all()
    shared: dict[str, list[dict]] = {}
    for row in rows:
        shared.setdefault(row.kind, []).append(
            {"tenant_uuid": row.tenant_uuid, "name": row.name, "sources": list(row.sources)})
    for kind, items in shared.items():
        context.log.warning(
            f"{kind}: {len(items)} name(s) live on several sources in one tenant, e.g. "
            f"{items[0]['name']!r} of {', '.join(items[0]['sources'])} in tenant "
            f"{items[0]['tenant_uuid']}: kept apart (one row per source), but Wazo's API "
            "and reports show the name twice in that tenant; give each PBX its own tenant")
    return shared


def dimension_assets() -> list[dg.AssetsDefinition]:
    @dg.multi_asset(
        specs=[
            dg.AssetSpec("stat_queue", group_name="dimensions", kinds={"postgres"},
                         owners=["team:stat-pipeline"],
                         description="Wazo's queue dimension: the configured queues (confd.json, "
                                     "wazo-confd or Wazo's tables) plus names seen in "
                                     "queue_log, with Wazo's deleted/renamed rules. Metadata: "
                                     "what changed in the config."),
            dg.AssetSpec("stat_agent", group_name="dimensions", kinds={"postgres"},
                         owners=["team:stat-pipeline"],
                         description="Wazo's agent dimension (Agent/<number> + tenant), "
                                     "from the configured agents. Metadata: what changed in "
                                     "the agents and contexts."),
        ],
    )
    def dimensions(context: dg.AssetExecutionContext, warehouse: Warehouse,
                   source: QueueLogSource, wazo_config: WazoConfig):
        members = run_members(context, source, wazo_config)
        per_source: dict[str, dict[str, dict[str, Any]]] = {}
        failed: dict[str, str] = {}
        for member in members:
            # one transaction per source: with several PBXs, one whose config cannot be read
            # (its database down, wazo-confd unreachable) leaves the others' refreshed
            try:
                with warehouse.engine().begin() as conn:
                    with source_scope(conn, member.name):  # each PBX's own rows and config
                        sync = sync_dimensions(conn, member.config)
                        per_source[member.name] = dimension_metadata(conn, sync)
            except (ConfigError, OperationalError) as exc:
                if len(members) == 1:
                    raise
                failed[member.name] = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
                context.log.warning(f"source {member.name}: config not refreshed: "
                                    f"{failed[member.name]}")
        if not per_source:
            raise dg.Failure(description="no source's config could be read: " + "; ".join(
                f"{name}: {why}" for name, why in failed.items()))
        shared = _names_shared_across_sources(warehouse, context) if len(members) > 1 else {}
        for key in ("stat_queue", "stat_agent"):
            metadata = merge_metadata({name: m[key] for name, m in per_source.items()})
            if failed:
                metadata = {**metadata, "sources_not_refreshed": dg.MetadataValue.json(failed)}
            if shared.get(key):
                metadata = {**metadata, "names_shared_across_sources":
                            dg.MetadataValue.json(shared[key])}
            yield dg.MaterializeResult(asset_key=key, metadata=metadata)

    return [dimensions]
