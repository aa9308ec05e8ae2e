"""The statistics behind our wazo-call-logd-compatible API, as plain functions.

Each function takes a SQLAlchemy ``Connection`` and already validated parameters (the API
validates them like call-logd does) and returns a list of dicts whose keys and values are
exactly the JSON items of wazo-call-logd's statistics routes, plus our extra KPIs under
extra keys (call-logd's fields are never changed). The numbers come from the warehouse's SQL
functions (migrations 0013 and 0015: ``stat_queue_kpi``, ``stat_agent_kpi``, ``stat_queue_qos`` and
their ``*_by_interval`` forms), so the API and a BI tool querying them cannot disagree.

What stays here is what call-logd does in Python around its SQL (``services.py``): the
default ``from`` (the queue's/agent's oldest hour row) and ``until`` (tomorrow 00:00 in the
zone), which item gets which bounds, and the ISO strings in the requested zone.

Parameters common to every function:
    start, end      aware datetimes (call-logd's ``from`` / ``until``), or None for
                    call-logd's defaults;
    timezone        IANA zone name (validated by the caller);
    day_start_hour, day_end_hour
                    hours 0-23 of ``day_start_time`` / ``day_end_time`` (only applied when
                    both are given; the end hour is inclusive);
    week_days       ISO week days (Monday = 1); an empty list matches nothing, like call-logd;
    tenant_uuids    the tenants the caller may see; None = every tenant, [] = none.
"""
from __future__ import annotations

import calendar
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

ALL_WEEK_DAYS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
INTERVALS = ("hour", "day", "month")


class RangeTooLargeError(ValueError):
    """``interval=hour`` over more than one month (call-logd's 400
    ``date-range-too-large-for-interval``, details 'Maximum of 1 month for interval by hour')."""

    error_id = "date-range-too-large-for-interval"
    details = "Maximum of 1 month for interval by hour"


class QueueNotFoundError(LookupError):
    """No visible, non-deleted queue with that confd id (call-logd's 404
    ``queue-not-found-with-given-id``)."""

    error_id = "queue-not-found-with-given-id"


class AgentNotFoundError(LookupError):
    """No visible, non-deleted agent with that confd id (call-logd's 404
    ``agent-not-found-with-given-id``)."""

    error_id = "agent-not-found-with-given-id"


# --- existence (the 404s) --------------------------------------------------------------

def queue_exists(conn: Connection, queue_id: int, tenant_uuids: Sequence[str] | None = None) -> bool:
    return _find(conn, _QUEUES, queue_id, tenant_uuids) is not None


def agent_exists(conn: Connection, agent_id: int, tenant_uuids: Sequence[str] | None = None) -> bool:
    return _find(conn, _AGENTS, agent_id, tenant_uuids) is not None


# --- queues ----------------------------------------------------------------------------

def queue_statistics(conn: Connection, *, start: datetime | None = None, end: datetime | None = None,
                     timezone: str = "UTC", interval: str | None = None,
                     qos_threshold: int | None = None,
                     day_start_hour: int | None = None, day_end_hour: int | None = None,
                     week_days: Iterable[int] | None = ALL_WEEK_DAYS,
                     tenant_uuids: Sequence[str] | None = None, queue_id: int | None = None,
                     short_abandon_threshold: int | None = None) -> list[dict[str, Any]]:
    """``/queues/statistics`` (queue_id None: one item per queue, ``interval`` ignored) or
    ``/queues/{queue_id}/statistics`` (one item per kept interval, then the whole period).

    Extra keys (ours): offered, short_abandoned, abandon_rate, service_level (answered within
    ``qos_threshold`` over offered minus short abandons), average_speed_of_answer,
    average_handling_time, longest_waiting_time; ``short_abandon_threshold`` (seconds, None =
    no call left out) only changes abandon_rate and service_level.
    """
    params = _filters(timezone, day_start_hour, day_end_hour, week_days, tenant_uuids)
    params.update(qos=qos_threshold, short=short_abandon_threshold)
    return _statistics(conn, _QUEUES, queue_id, start, end, interval, params)


def queue_qos(conn: Connection, *, queue_id: int, start: datetime | None = None,
              end: datetime | None = None, timezone: str = "UTC", interval: str | None = None,
              qos_thresholds: Iterable[int] = (),
              day_start_hour: int | None = None, day_end_hour: int | None = None,
              week_days: Iterable[int] | None = ALL_WEEK_DAYS,
              tenant_uuids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """``/queues/{queue_id}/statistics/qos``: per item, ``quality_of_service`` is the list of
    wait buckets ``{min, max, answered, abandoned}`` ([0, t1), [t1, t2), ..., [tn, None))."""
    params = _filters(timezone, day_start_hour, day_end_hour, week_days, tenant_uuids)
    params.update(thresholds=sorted(set(qos_thresholds)))
    items: list[dict[str, Any]] = []
    for bucket in _statistics(conn, _QOS, queue_id, start, end, interval, params):
        if not items or (items[-1]["from"], items[-1]["until"]) != (bucket["from"], bucket["until"]):
            items.append({**bucket["item"], "quality_of_service": []})
        items[-1]["quality_of_service"].append(bucket["bucket"])
    return items


# --- agents ----------------------------------------------------------------------------

def agent_statistics(conn: Connection, *, start: datetime | None = None, end: datetime | None = None,
                     timezone: str = "UTC", interval: str | None = None,
                     day_start_hour: int | None = None, day_end_hour: int | None = None,
                     week_days: Iterable[int] | None = ALL_WEEK_DAYS,
                     tenant_uuids: Sequence[str] | None = None,
                     agent_id: int | None = None) -> list[dict[str, Any]]:
    """``/agents/statistics`` (agent_id None) or ``/agents/{agent_id}/statistics``.

    Extra keys (ours): average_handling_time ((conversation + wrap-up) / answered),
    pause_by_reason ([{reason, pause_time}], seconds, reason '' = no reason given).
    """
    params = _filters(timezone, day_start_hour, day_end_hour, week_days, tenant_uuids)
    return _statistics(conn, _AGENTS, agent_id, start, end, interval, params)


# --- the routes' common flow (call-logd's services.py) -------------------------------------

@dataclass(frozen=True)
class _Kind:
    """What differs between queues and agents: the SQL of the list and of the by-id series,
    the look-up of the confd id, the 404 and the JSON item."""
    list_sql: str | None
    series_sql: str
    find_sql: str
    not_found: type[LookupError]
    item: Callable[..., dict[str, Any]]


def _statistics(conn: Connection, kind: _Kind, entity_id: int | None, start: datetime | None,
                end: datetime | None, interval: str | None, params: dict[str, Any]) -> list[dict[str, Any]]:
    zone = ZoneInfo(params["tz"])
    if entity_id is None:
        # call-logd aggregates the list with the request's bounds as given (no until: no
        # upper bound) and only shows tomorrow as the items' until.
        rows = conn.execute(text(kind.list_sql), {**params, "start": start, "end": end}).mappings()
        shown_until = end or tomorrow(zone)
        return [kind.item(row, start or row["first_stat_time"], shown_until, zone) for row in rows]

    entity = _find(conn, kind, entity_id, params["tenants"])
    if entity is None:
        raise kind.not_found(entity_id)
    # the by-id period: from = given or the oldest hour row (None when there are no
    # statistics at all), until = given or tomorrow
    first = entity["first_stat_time"]
    start = start or (first.astimezone(zone) if first else None)
    end = end or tomorrow(zone)
    _check_range(interval, start, end, zone)
    rows = conn.execute(text(kind.series_sql), {
        **params, "start": start, "end": end, "interval": interval, "id": entity_id,
        "stat_id": entity["stat_id"]}).mappings()
    # the period row's bounds are the period's own (start may be None)
    return [kind.item(row, start if row["is_period"] else row["interval_start"],
                      end if row["is_period"] else row["interval_end"], zone, entity=entity)
            for row in rows]


def _find(conn: Connection, kind: _Kind, entity_id: int, tenant_uuids: Sequence[str] | None):
    """The first non-deleted row with that confd id among the visible tenants, with the
    oldest hour row of every non-deleted row with that id (call-logd's find_oldest_time)."""
    return conn.execute(text(kind.find_sql), {
        "id": entity_id, "tenants": None if tenant_uuids is None else [str(t) for t in tenant_uuids],
    }).mappings().first()


# --- call-logd's defaults and checks ---------------------------------------------------

def tomorrow(zone: ZoneInfo, now: datetime | None = None) -> datetime:
    """call-logd's default ``until``: tomorrow 00:00 in the zone."""
    today = (now or datetime.now(zone)).astimezone(zone).date()
    return datetime.combine(today + timedelta(days=1), time(), tzinfo=zone)


def hour_range_too_large(start: datetime, end: datetime, zone: ZoneInfo) -> bool:
    """call-logd's ``from + relativedelta(months=1) < until`` for ``interval=hour``: one
    month of wall-clock time in the zone (Jan 31 + 1 month = Feb 28/29)."""
    local_start = start.astimezone(zone).replace(tzinfo=None)
    year, month = (local_start.year + local_start.month // 12, local_start.month % 12 + 1)
    day = min(local_start.day, calendar.monthrange(year, month)[1])
    month_later = local_start.replace(year=year, month=month, day=day)
    return month_later < end.astimezone(zone).replace(tzinfo=None)


def _check_range(interval: str | None, start: datetime | None, end: datetime, zone: ZoneInfo) -> None:
    if interval is not None and interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    if interval == "hour" and start is not None and hour_range_too_large(start, end, zone):
        raise RangeTooLargeError(RangeTooLargeError.details)


def _filters(timezone: str, day_start_hour: int | None, day_end_hour: int | None,
             week_days: Iterable[int] | None, tenant_uuids: Sequence[str] | None) -> dict[str, Any]:
    return {"tz": timezone, "start_hour": day_start_hour, "end_hour": day_end_hour,
            "week_days": None if week_days is None else sorted(set(week_days)),
            "tenants": None if tenant_uuids is None else [str(t) for t in tenant_uuids]}


# --- JSON items --------------------------------------------------------------------------

_QUEUE_EXTRAS = ("offered", "short_abandoned", "abandon_rate", "service_level",
                 "average_speed_of_answer", "average_handling_time", "longest_waiting_time")


def _bounds(row: Any, start: datetime | None, end: datetime | None, zone: ZoneInfo,
            entity: Any, id_key: str) -> dict[str, Any]:
    """from, until, tenant_uuid and the confd id: a by-id route names the requested row."""
    return {"from": _iso(start, zone), "until": _iso(end, zone),
            "tenant_uuid": _uuid((entity or row)["tenant_uuid"]), id_key: (entity or row)[id_key]}


def _queue_item(row: Any, start: datetime | None, end: datetime | None, zone: ZoneInfo,
                entity: Any = None) -> dict[str, Any]:
    item = {
        **_bounds(row, start, end, zone, entity, "queue_id"),
        "queue_name": (entity or row)["queue_name"],
        "received": row["received"], "answered": row["answered"], "abandoned": row["abandoned"],
        "closed": row["closed"], "not_answered": row["not_answered"],
        "saturated": row["saturated"], "blocked": row["blocked"],
        "average_waiting_time": row["average_waiting_time"],
        "answered_rate": _float(row["answered_rate"]),
        "quality_of_service": _float(row["quality_of_service"]),
    }
    for key in _QUEUE_EXTRAS:
        value = row[key]
        item[key] = value if value is None or isinstance(value, int) else float(value)
    return item


def _qos_bucket(row: Any, start: datetime | None, end: datetime | None, zone: ZoneInfo,
                entity: Any = None) -> dict[str, Any]:
    """One bucket row; queue_qos gathers the buckets of one interval into its item."""
    bounds = _bounds(row, start, end, zone, entity, "queue_id")
    return {"from": bounds["from"], "until": bounds["until"],
            "item": {**bounds, "queue_name": entity["queue_name"]},
            "bucket": {"min": row["min"], "max": row["max"], "answered": row["answered"],
                       "abandoned": row["abandoned"]}}


def _agent_item(row: Any, start: datetime | None, end: datetime | None, zone: ZoneInfo,
                entity: Any = None) -> dict[str, Any]:
    return {
        **_bounds(row, start, end, zone, entity, "agent_id"),
        "agent_number": (entity or row)["agent_number"],
        "answered": row["answered"], "conversation_time": row["conversation_time"],
        "login_time": row["login_time"], "pause_time": row["pause_time"],
        "wrapup_time": row["wrapup_time"], "queues": row["queues"],
        "average_handling_time": _float(row["average_handling_time"]),
        "pause_by_reason": row["pause_by_reason"],
    }


def _iso(moment: datetime | None, zone: ZoneInfo) -> str | None:
    return None if moment is None else moment.astimezone(zone).isoformat()


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _uuid(value: str | None) -> str | None:
    """call-logd dumps tenant_uuid through marshmallow's UUID field: canonical lower case."""
    if value is None:
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return str(value)


_FIND_QUEUE = (
    "SELECT q.id AS stat_id, q.queue_id, q.name AS queue_name, q.tenant_uuid,"
    "       (SELECT min(p.\"time\") FROM stat_queue_periodic p JOIN stat_queue s ON s.id = p.stat_queue_id"
    "        WHERE NOT s.deleted AND s.queue_id = q.queue_id) AS first_stat_time"
    " FROM stat_queue q WHERE q.queue_id = :id AND NOT q.deleted"
    "   AND (CAST(:tenants AS text[]) IS NULL OR q.tenant_uuid = ANY (CAST(:tenants AS text[])))"
    " ORDER BY q.id LIMIT 1")
_QUEUES = _Kind(
    list_sql="SELECT * FROM stat_queue_kpi(:start, :end, :tz, :start_hour, :end_hour, :week_days,"
             " :tenants, NULL, :qos, :short)",
    series_sql="SELECT * FROM stat_queue_kpi_by_interval(:start, :end, :interval, :tz, :start_hour,"
               " :end_hour, :week_days, :tenants, :id, :qos, :short) WHERE stat_queue_id = :stat_id",
    find_sql=_FIND_QUEUE, not_found=QueueNotFoundError, item=_queue_item)
_QOS = _Kind(
    list_sql=None,
    series_sql="SELECT * FROM stat_queue_qos_by_interval(:id, :start, :end, :interval, :tz,"
               " :start_hour, :end_hour, :week_days, :tenants, :thresholds)",
    find_sql=_FIND_QUEUE, not_found=QueueNotFoundError, item=_qos_bucket)
_AGENTS = _Kind(
    list_sql="SELECT * FROM stat_agent_kpi(:start, :end, :tz, :start_hour, :end_hour, :week_days,"
             " :tenants, NULL)",
    series_sql="SELECT * FROM stat_agent_kpi_by_interval(:start, :end, :interval, :tz, :start_hour,"
               " :end_hour, :week_days, :tenants, :id) WHERE stat_agent_id = :stat_id",
    find_sql=(
        "SELECT a.id AS stat_id, a.agent_id, regexp_replace(a.name, '^Agent/', '') AS agent_number,"
        "       a.tenant_uuid,"
        "       (SELECT min(p.\"time\") FROM stat_agent_periodic p JOIN stat_agent s ON s.id = p.stat_agent_id"
        "        WHERE NOT s.deleted AND s.agent_id = a.agent_id) AS first_stat_time"
        " FROM stat_agent a WHERE a.agent_id = :id AND NOT a.deleted"
        "   AND (CAST(:tenants AS text[]) IS NULL OR a.tenant_uuid = ANY (CAST(:tenants AS text[])))"
        " ORDER BY a.id LIMIT 1"),
    not_found=AgentNotFoundError, item=_agent_item)


__all__ = [
    "ALL_WEEK_DAYS", "INTERVALS", "AgentNotFoundError", "QueueNotFoundError", "RangeTooLargeError",
    "agent_exists", "agent_statistics", "hour_range_too_large", "queue_exists", "queue_qos",
    "queue_statistics", "tomorrow",
]
