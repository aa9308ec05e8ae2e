"""PLACEHOLDER in the api branch only, replaced by engineer kpi's module when the kpi branch
is merged: just enough of the agreed interface (queue_exists, agent_exists and list items
carrying the ids, names and tenants of the stat_queue / stat_agent rows) for the API's HTTP
tests of routing, validation, auth and tenants."""
from __future__ import annotations

import sqlalchemy as sa


def _tenant_filter(tenant_uuids):
    return "" if tenant_uuids is None else " AND tenant_uuid = ANY(:tenants)"


def queue_exists(conn, queue_id, tenant_uuids) -> bool:
    return conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM stat_queue WHERE queue_id = :id"
                                " AND NOT deleted" + _tenant_filter(tenant_uuids) + ")"),
                        {"id": queue_id, "tenants": list(tenant_uuids or [])}).scalar()


def agent_exists(conn, agent_id, tenant_uuids) -> bool:
    return conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM stat_agent WHERE agent_id = :id"
                                " AND NOT deleted" + _tenant_filter(tenant_uuids) + ")"),
                        {"id": agent_id, "tenants": list(tenant_uuids or [])}).scalar()


def queue_statistics(conn, *, start, end, timezone, interval=None, qos_threshold=None,
                     day_start_hour=None, day_end_hour=None, week_days=(1, 2, 3, 4, 5, 6, 7),
                     tenant_uuids=None, queue_id=None):
    rows = conn.execute(sa.text(
        "SELECT queue_id, name AS queue_name, tenant_uuid FROM stat_queue WHERE NOT deleted"
        + _tenant_filter(tenant_uuids) + ("" if queue_id is None else " AND queue_id = :id")
        + " ORDER BY queue_id"), {"tenants": list(tenant_uuids or []), "id": queue_id}).mappings()
    return [{"from": start, "until": end, **row} for row in rows]


def queue_qos(conn, *, queue_id, start, end, timezone, interval, qos_thresholds, **filters):
    return [{**item, "quality_of_service": []} for item in
            queue_statistics(conn, start=start, end=end, timezone=timezone, queue_id=queue_id, **filters)]


def agent_statistics(conn, *, start, end, timezone, interval=None, day_start_hour=None,
                     day_end_hour=None, week_days=(1, 2, 3, 4, 5, 6, 7), tenant_uuids=None,
                     agent_id=None):
    rows = conn.execute(sa.text(
        "SELECT agent_id, substr(name, 7) AS agent_number, tenant_uuid FROM stat_agent WHERE NOT deleted"
        + _tenant_filter(tenant_uuids) + ("" if agent_id is None else " AND agent_id = :id")
        + " ORDER BY agent_id"), {"tenants": list(tenant_uuids or []), "id": agent_id}).mappings()
    return [{"from": start, "until": end, **row} for row in rows]
