"""The statistics behind our wazo-call-logd-compatible API, as plain functions.

Each function takes a SQLAlchemy ``Connection`` and already validated parameters (the API
validates them like call-logd does) and returns a list of dicts whose keys and values are
exactly the JSON items of wazo-call-logd's statistics routes, plus our extra KPIs under
extra keys (call-logd's fields are never changed). The numbers come from the warehouse's SQL
functions (migration 0013: ``stat_queue_kpi``, ``stat_agent_kpi``, ``stat_queue_qos`` and
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
from collections.abc import Iterable, Sequence
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
    return _find_queue(conn, queue_id, tenant_uuids) is not None


def agent_exists(conn: Connection, agent_id: int, tenant_uuids: Sequence[str] | None = None) -> bool:
    return _find_agent(conn, agent_id, tenant_uuids) is not None


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
    zone = ZoneInfo(timezone)
    filters = _filters(timezone, day_start_hour, day_end_hour, week_days, tenant_uuids)
    filters.update(qos=qos_threshold, short=short_abandon_threshold)
    if queue_id is None:
        # call-logd aggregates the list with the request's bounds as given (no until: no
        # upper bound) and only shows tomorrow as the items' until.
        rows = conn.execute(text(
            "SELECT * FROM stat_queue_kpi(:start, :end, :tz, :start_hour, :end_hour, :week_days,"
            " :tenants, NULL, :qos, :short)"), {**filters, "start": start, "end": end}).mappings()
        shown_until = end or tomorrow(zone)
        return [_queue_item(row, start or row["first_stat_time"], shown_until, row["queue_id"], zone)
                for row in rows]

    queue = _find_queue(conn, queue_id, tenant_uuids)
    if queue is None:
        raise QueueNotFoundError(queue_id)
    start, end = _period(start, end, queue["first_stat_time"], zone)
    _check_range(interval, start, end, zone)
    rows = conn.execute(text(
        "SELECT * FROM stat_queue_kpi_by_interval(:start, :end, :interval, :tz, :start_hour,"
        " :end_hour, :week_days, :tenants, :queue_id, :qos, :short)"
        " WHERE stat_queue_id = :stat_queue_id"),
        {**filters, "start": start, "end": end, "interval": interval, "queue_id": queue_id,
         "stat_queue_id": queue["stat_queue_id"]}).mappings()
    return [_queue_item(row, row["interval_start"], row["interval_end"], queue_id, zone,
                        name=queue["name"], tenant_uuid=queue["tenant_uuid"])
            for row in _period_items(rows, start, end)]


def queue_qos(conn: Connection, *, queue_id: int, start: datetime | None = None,
              end: datetime | None = None, timezone: str = "UTC", interval: str | None = None,
              qos_thresholds: Iterable[int] = (),
              day_start_hour: int | None = None, day_end_hour: int | None = None,
              week_days: Iterable[int] | None = ALL_WEEK_DAYS,
              tenant_uuids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """``/queues/{queue_id}/statistics/qos``: per item, ``quality_of_service`` is the list of
    wait buckets ``{min, max, answered, abandoned}`` ([0, t1), [t1, t2), ..., [tn, None))."""
    zone = ZoneInfo(timezone)
    queue = _find_queue(conn, queue_id, tenant_uuids)
    if queue is None:
        raise QueueNotFoundError(queue_id)
    start, end = _period(start, end, queue["first_stat_time"], zone)
    _check_range(interval, start, end, zone)
    rows = conn.execute(text(
        "SELECT * FROM stat_queue_qos_by_interval(:queue_id, :start, :end, :interval, :tz,"
        " :start_hour, :end_hour, :week_days, :tenants, :thresholds)"),
        {**_filters(timezone, day_start_hour, day_end_hour, week_days, tenant_uuids),
         "queue_id": queue_id, "start": start, "end": end, "interval": interval,
         "thresholds": sorted(set(qos_thresholds))}).mappings()
    items: list[dict[str, Any]] = []
    for row in _period_items(rows, start, end):
        if not items or (items[-1]["_start"], items[-1]["_end"]) != (row["interval_start"], row["interval_end"]):
            items.append({"_start": row["interval_start"], "_end": row["interval_end"],
                          "from": _iso(row["interval_start"], zone), "until": _iso(row["interval_end"], zone),
                          "tenant_uuid": _uuid(queue["tenant_uuid"]), "queue_id": queue_id,
                          "queue_name": queue["name"], "quality_of_service": []})
        items[-1]["quality_of_service"].append(
            {"min": row["min"], "max": row["max"], "answered": row["answered"], "abandoned": row["abandoned"]})
    for item in items:
        del item["_start"], item["_end"]
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
    zone = ZoneInfo(timezone)
    filters = _filters(timezone, day_start_hour, day_end_hour, week_days, tenant_uuids)
    if agent_id is None:
        rows = conn.execute(text(
            "SELECT * FROM stat_agent_kpi(:start, :end, :tz, :start_hour, :end_hour, :week_days,"
            " :tenants, NULL)"), {**filters, "start": start, "end": end}).mappings()
        shown_until = end or tomorrow(zone)
        return [_agent_item(row, start or row["first_stat_time"], shown_until, row["agent_id"], zone)
                for row in rows]

    agent = _find_agent(conn, agent_id, tenant_uuids)
    if agent is None:
        raise AgentNotFoundError(agent_id)
    start, end = _period(start, end, agent["first_stat_time"], zone)
    _check_range(interval, start, end, zone)
    rows = conn.execute(text(
        "SELECT * FROM stat_agent_kpi_by_interval(:start, :end, :interval, :tz, :start_hour,"
        " :end_hour, :week_days, :tenants, :agent_id) WHERE stat_agent_id = :stat_agent_id"),
        {**filters, "start": start, "end": end, "interval": interval, "agent_id": agent_id,
         "stat_agent_id": agent["stat_agent_id"]}).mappings()
    return [_agent_item(row, row["interval_start"], row["interval_end"], agent_id, zone,
                        number=agent["number"], tenant_uuid=agent["tenant_uuid"])
            for row in _period_items(rows, start, end)]


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


def _period(start: datetime | None, end: datetime | None, first_stat_time: datetime | None,
            zone: ZoneInfo) -> tuple[datetime | None, datetime]:
    """The by-id routes' period: from = given or the oldest hour row (None when the queue
    or agent has no statistics at all), until = given or tomorrow."""
    return (start or (first_stat_time.astimezone(zone) if first_stat_time else None),
            end or tomorrow(zone))


def _period_items(rows: Iterable[Any], start: datetime | None, end: datetime) -> list[Any]:
    """The SQL series' rows; the period row carries the period's own bounds (start may be
    None: a queue without statistics and without ``from``)."""
    items = []
    for row in rows:
        if row["is_period"]:
            row = {**row, "interval_start": start, "interval_end": end}
        items.append(row)
    return items


def _filters(timezone: str, day_start_hour: int | None, day_end_hour: int | None,
             week_days: Iterable[int] | None, tenant_uuids: Sequence[str] | None) -> dict[str, Any]:
    return {"tz": timezone, "start_hour": day_start_hour, "end_hour": day_end_hour,
            "week_days": None if week_days is None else sorted(set(week_days)),
            "tenants": None if tenant_uuids is None else [str(t) for t in tenant_uuids]}


def _find_queue(conn: Connection, queue_id: int, tenant_uuids: Sequence[str] | None):
    return conn.execute(text(
        "SELECT q.id AS stat_queue_id, q.name, q.tenant_uuid,"
        "       (SELECT min(p.\"time\") FROM stat_queue_periodic p JOIN stat_queue s ON s.id = p.stat_queue_id"
        "        WHERE NOT s.deleted AND s.queue_id = q.queue_id) AS first_stat_time"
        " FROM stat_queue q WHERE q.queue_id = :id AND NOT q.deleted"
        "   AND (CAST(:tenants AS text[]) IS NULL OR q.tenant_uuid = ANY (CAST(:tenants AS text[])))"
        " ORDER BY q.id LIMIT 1"),
        {"id": queue_id, "tenants": None if tenant_uuids is None else [str(t) for t in tenant_uuids]},
    ).mappings().first()


def _find_agent(conn: Connection, agent_id: int, tenant_uuids: Sequence[str] | None):
    return conn.execute(text(
        "SELECT a.id AS stat_agent_id, regexp_replace(a.name, '^Agent/', '') AS number, a.tenant_uuid,"
        "       (SELECT min(p.\"time\") FROM stat_agent_periodic p JOIN stat_agent s ON s.id = p.stat_agent_id"
        "        WHERE NOT s.deleted AND s.agent_id = a.agent_id) AS first_stat_time"
        " FROM stat_agent a WHERE a.agent_id = :id AND NOT a.deleted"
        "   AND (CAST(:tenants AS text[]) IS NULL OR a.tenant_uuid = ANY (CAST(:tenants AS text[])))"
        " ORDER BY a.id LIMIT 1"),
        {"id": agent_id, "tenants": None if tenant_uuids is None else [str(t) for t in tenant_uuids]},
    ).mappings().first()


# --- JSON items --------------------------------------------------------------------------

_QUEUE_EXTRAS = ("offered", "short_abandoned", "abandon_rate", "service_level",
                 "average_speed_of_answer", "average_handling_time", "longest_waiting_time")


def _queue_item(row: Any, start: datetime | None, end: datetime | None, queue_id: int | None,
                zone: ZoneInfo, *, name: str | None = None, tenant_uuid: str | None = None) -> dict[str, Any]:
    item = {
        "from": _iso(start, zone), "until": _iso(end, zone),
        "tenant_uuid": _uuid(tenant_uuid or row["tenant_uuid"]),
        "queue_id": queue_id, "queue_name": name or row["queue_name"],
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


def _agent_item(row: Any, start: datetime | None, end: datetime | None, agent_id: int | None,
                zone: ZoneInfo, *, number: str | None = None, tenant_uuid: str | None = None) -> dict[str, Any]:
    return {
        "from": _iso(start, zone), "until": _iso(end, zone),
        "tenant_uuid": _uuid(tenant_uuid or row["tenant_uuid"]),
        "agent_id": agent_id, "agent_number": number or row["agent_number"],
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


__all__ = [
    "ALL_WEEK_DAYS", "INTERVALS", "AgentNotFoundError", "QueueNotFoundError", "RangeTooLargeError",
    "agent_exists", "agent_statistics", "hour_range_too_large", "queue_exists", "queue_qos",
    "queue_statistics", "tomorrow",
]
