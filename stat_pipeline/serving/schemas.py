"""Query-string validation and response shaping of the statistics API, rule for rule as
wazo-call-logd's ``plugins/support_center/schemas.py`` (marshmallow + Wazo's ``xivo.mallow``).

Why so literal: the API is meant to be a drop-in for call-logd, so a value call-logd rejects
must be a 400 here too, with the same ``details`` a Wazo client would show, and a value it
accepts must mean the same thing. The rules that matter:

* every parameter is a string of the query; a repeated key counts once (its first value, as
  Flask's ``request.args.to_dict()`` gives call-logd); unknown keys are ignored;
* ``from``/``until``: marshmallow's ISO-8601 datetime grammar (a date alone is refused, a
  space may replace the ``T``, seconds are optional); naive = in ``timezone``, aware =
  converted to ``timezone``; ``until`` must be after ``from``;
* ``day_start_time``/``day_end_time``: ``HH:MM``; only the hour is used, but the check
  "start < end" compares the two texts (call-logd compares before turning them into hours);
* ``week_days``/``qos_thresholds``: comma lists of integers (``int()``'s grammar), each
  counted once; an empty value is "Not a valid list.";
* field errors first; the cross-field checks run only when every field is valid.

Errors come out as call-logd's ``details``: ``{field: [{"message", "constraint_id",
"constraint"}]}``, ``{field: {index: [...]}}`` for an element of a list, and ``{field:
"text"}`` for the cross-field checks.
"""
from __future__ import annotations

import re
import zoneinfo
from datetime import datetime, timedelta, timezone as fixed_timezone
from functools import lru_cache
from typing import Any, ClassVar, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

HOUR_PATTERN = r"^([0,1][0-9]|2[0-3]):[0-5][0-9]$"
INTERVALS = ("hour", "day", "month")
WEEK_DAYS = (1, 2, 3, 4, 5, 6, 7)

# marshmallow 3's ISO-8601 grammar (utils.from_iso_datetime), which call-logd's DateTime
# fields use: what it accepts and refuses is the API's contract.
_ISO_DATETIME = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})"
    r"[T ](?P<hour>\d{1,2}):(?P<minute>\d{1,2})"
    r"(?::(?P<second>\d{1,2})(?:\.(?P<microsecond>\d{1,6})\d{0,6})?)?"
    r"(?P<tzinfo>Z|[+-]\d{2}(?::?\d{2})?)?$"
)


@lru_cache(maxsize=None)
def available_timezones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


class QueryInvalid(Exception):
    """A 400 ``invalid-data``; ``details`` is call-logd's error dict."""

    def __init__(self, details: dict[str, Any]) -> None:
        super().__init__("Sent data is invalid")
        self.details = details


def _constraint(message: str, constraint_id: str, constraint: Any) -> dict[str, Any]:
    return {"message": message, "constraint_id": constraint_id, "constraint": constraint}


def _fail(detail: Any) -> PydanticCustomError:
    # the detail travels in the error's context and is read back by parse_query
    return PydanticCustomError("call_logd", "invalid", {"detail": detail})


NOT_A_LIST = _constraint("Not a valid list.", "type", "list")
NOT_AN_INTEGER = _constraint("Not a valid integer.", "type", "integer")
NOT_A_DATETIME = _constraint("Not a valid datetime", "type", "datetime")


# stat_call_on_queue.waittime is a PostgreSQL integer: no wait is longer than this
LONGEST_WAIT = 2**31 - 1


def _min_zero(value: int) -> Optional[dict[str, Any]]:
    if value < 0:
        return _constraint("Must be greater than or equal to 0.", "range", {"min": 0})
    return None


def _bucket_bound(value: int) -> Optional[dict[str, Any]]:
    """A QoS bucket bound: >= 0 as in call-logd, and (ours) a wait a PostgreSQL integer can
    hold; call-logd would answer an empty bucket, we say why rather than fail in SQL."""
    if value < 0 or value > LONGEST_WAIT:
        return _constraint(f"Must be greater than or equal to 0 and less than or equal to {LONGEST_WAIT}.",
                           "range", {"min": 0, "max": LONGEST_WAIT})
    return None


def _one_of(value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise _fail([_constraint(f"Must be one of: {', '.join(choices)}.", "enum",
                                 {"choices": list(choices)})])


def parse_integer(text: str) -> int:
    """An integer the way marshmallow's non-strict Integer reads one: Python's ``int()``."""
    try:
        return int(text)
    except (TypeError, ValueError):
        raise _fail([NOT_AN_INTEGER]) from None


def parse_datetime(text: str) -> datetime:
    match = _ISO_DATETIME.match(text)
    if not match:
        raise _fail([NOT_A_DATETIME])
    parts = match.groupdict()
    if parts["microsecond"]:
        parts["microsecond"] = parts["microsecond"].ljust(6, "0")
    offset_text = parts.pop("tzinfo")
    try:
        tzinfo = None
        if offset_text == "Z":
            tzinfo = fixed_timezone.utc
        elif offset_text is not None:
            minutes = 60 * int(offset_text[1:3]) + (int(offset_text[-2:]) if len(offset_text) > 3 else 0)
            tzinfo = fixed_timezone(timedelta(minutes=-minutes if offset_text[0] == "-" else minutes))
        return datetime(**{k: int(v) for k, v in parts.items() if v is not None}, tzinfo=tzinfo)
    except (ValueError, OverflowError):
        raise _fail([NOT_A_DATETIME]) from None


def _integer_list(text: str, element_check=None) -> list[int]:
    """A comma list as call-logd reads it: each item once, an empty value is no list."""
    if text == "":
        raise _fail([NOT_A_LIST])
    errors: dict[int, list[dict[str, Any]]] = {}
    values: list[int] = []
    for index, item in enumerate(dict.fromkeys(text.split(","))):
        try:
            value = int(item)
        except ValueError:
            errors[index] = [NOT_AN_INTEGER]
            continue
        problem = element_check(value) if element_check else None
        if problem:
            errors[index] = [problem]
        values.append(value)
    if errors:
        raise _fail(errors)
    return values


def _normalize(moment: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)


class StatisticsQuery(BaseModel):
    """What every statistics route accepts (call-logd's ``_StatisticsListRequestSchema``)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    from_: Optional[datetime] = Field(None, alias="from")
    until: Optional[datetime] = None
    day_start_time: Optional[str] = None
    day_end_time: Optional[str] = None
    week_days: list[int] = Field(default_factory=lambda: list(WEEK_DAYS))
    timezone: str = "UTC"

    # the query keys each route reads, in the order call-logd's schema declares them
    FIELDS: ClassVar[tuple[str, ...]] = (
        "from", "until", "day_start_time", "day_end_time", "week_days", "timezone")

    @field_validator("from_", "until", mode="before")
    @classmethod
    def _datetime(cls, value: Any) -> Any:
        return parse_datetime(value) if isinstance(value, str) else value

    @field_validator("day_start_time", "day_end_time", mode="before")
    @classmethod
    def _hour_text(cls, value: Any) -> Any:
        if not re.match(HOUR_PATTERN, value):
            raise _fail([_constraint("String does not match expected pattern.", "regex", HOUR_PATTERN)])
        return value

    @field_validator("week_days", mode="before")
    @classmethod
    def _week_days(cls, value: Any) -> Any:
        days = _integer_list(value)
        if any(day not in WEEK_DAYS for day in days):
            raise _fail([_constraint(
                "One or more of the choices you made was not in: 1, 2, 3, 4, 5, 6, 7.",
                "enum", {"choices": list(WEEK_DAYS)})])
        return days

    @field_validator("timezone", mode="before")
    @classmethod
    def _timezone(cls, value: Any) -> Any:
        _one_of(value, available_timezones())
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> "StatisticsQuery":
        zone = zoneinfo.ZoneInfo(self.timezone)
        if self.from_ is not None:
            self.from_ = _normalize(self.from_, zone)
        if self.until is not None:
            self.until = _normalize(self.until, zone)
        if self.from_ is not None and self.until is not None and self.until <= self.from_:
            raise _fail({"until": "Field must be greater than from"})
        # call-logd compares the "HH:MM" texts themselves (before keeping only the hour)
        if self.day_start_time and self.day_end_time and self.day_start_time >= self.day_end_time:
            raise _fail({"day_start_time": "Field must be lower than day_end_time"})
        return self

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def day_start_hour(self) -> Optional[int]:
        return int(self.day_start_time[:2]) if self.day_start_time else None

    @property
    def day_end_hour(self) -> Optional[int]:
        return int(self.day_end_time[:2]) if self.day_end_time else None

    def kpi_arguments(self) -> dict[str, Any]:
        """Keyword arguments of the ``stat_pipeline.serving.kpi`` functions."""
        return {
            "start": self.from_,
            "end": self.until,
            "timezone": self.timezone,
            "day_start_hour": self.day_start_hour,
            "day_end_hour": self.day_end_hour,
            "week_days": tuple(self.week_days),
        }


class _QosThreshold(BaseModel):
    qos_threshold: Optional[int] = None

    @field_validator("qos_threshold", mode="before")
    @classmethod
    def _threshold(cls, value: Any) -> Any:
        number = parse_integer(value)
        if problem := _min_zero(number):
            raise _fail([problem])
        # "wait <= threshold" is the same for every threshold past the longest possible wait
        return min(number, LONGEST_WAIT)


class _Interval(BaseModel):
    interval: Optional[str] = None

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> Any:
        _one_of(value, INTERVALS)
        return value


class QueueListQuery(StatisticsQuery, _QosThreshold):
    """``GET /queues/statistics`` (``QueueStatisticsListRequestSchema``)."""

    FIELDS: ClassVar[tuple[str, ...]] = StatisticsQuery.FIELDS + ("qos_threshold",)


class AgentListQuery(StatisticsQuery, _QosThreshold):
    """``GET /agents/statistics``: call-logd's schema declares (and then ignores) ``qos_threshold``,
    so a bad value is a 400 here too."""

    FIELDS: ClassVar[tuple[str, ...]] = StatisticsQuery.FIELDS + ("qos_threshold",)


class QueueQuery(StatisticsQuery, _QosThreshold, _Interval):
    """``GET /queues/{queue_id}/statistics``."""

    FIELDS: ClassVar[tuple[str, ...]] = StatisticsQuery.FIELDS + ("qos_threshold", "interval")


class AgentQuery(StatisticsQuery, _QosThreshold, _Interval):
    """``GET /agents/{agent_id}/statistics``."""

    FIELDS: ClassVar[tuple[str, ...]] = StatisticsQuery.FIELDS + ("qos_threshold", "interval")


class QosQuery(StatisticsQuery, _Interval):
    """``GET /queues/{queue_id}/statistics/qos``: thresholds deduplicated and sorted."""

    qos_thresholds: list[int] = Field(default_factory=list)
    FIELDS: ClassVar[tuple[str, ...]] = StatisticsQuery.FIELDS + ("interval", "qos_thresholds")

    @field_validator("qos_thresholds", mode="before")
    @classmethod
    def _thresholds(cls, value: Any) -> Any:
        return sorted(_integer_list(value, _bucket_bound))


def first_values(query: Any) -> dict[str, str]:
    """One value per key, the first one (Flask's ``to_dict()``), from Starlette's QueryParams
    or any mapping of lists."""
    if hasattr(query, "multi_items"):
        pairs = query.multi_items()
    else:
        pairs = [(k, v) for k, values in query.items() for v in (values if isinstance(values, list) else [values])]
    result: dict[str, str] = {}
    for key, value in pairs:
        result.setdefault(key, value)
    return result


def parse_query(model: type[StatisticsQuery], query: Mapping[str, Any] | Any) -> StatisticsQuery:
    """The validated query, or ``QueryInvalid`` with call-logd's ``details``."""
    values = {k: v for k, v in first_values(query).items() if k in model.FIELDS}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        details: dict[str, Any] = {}
        for error in exc.errors(include_url=False):
            detail = (error.get("ctx") or {}).get("detail")
            if detail is None:  # not one of ours: keep pydantic's words rather than hide it
                detail = [_constraint(error["msg"], "type", error["type"])]
            if error["loc"]:
                field = error["loc"][0]
                details[model.model_fields[field].alias or field if field in model.model_fields else field] = detail
            else:
                details.update(detail)
        raise QueryInvalid(details) from None


# ---- responses ---------------------------------------------------------------------------
# call-logd dumps every item through a marshmallow schema: missing fields get their
# dump_default, integers are int() (so average_waiting_time 9.33 -> 9), rates are float().
# Our extra KPI fields follow call-logd's, unchanged.

def _as_int(value: Any) -> Optional[int]:
    return None if value is None else int(value)


def _as_float(value: Any) -> Optional[float]:
    return None if value is None else float(value)


def _as_text(value: Any) -> Optional[str]:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


_PERIOD = (("from", _as_text, None), ("until", _as_text, None), ("tenant_uuid", _as_text, None))

QUEUE_FIELDS = _PERIOD + (
    ("queue_id", _as_int, None), ("queue_name", _as_text, None),
    ("received", _as_int, 0), ("answered", _as_int, 0), ("abandoned", _as_int, 0),
    ("closed", _as_int, 0), ("not_answered", _as_int, 0), ("saturated", _as_int, 0),
    ("blocked", _as_int, 0), ("average_waiting_time", _as_int, None),
    ("answered_rate", _as_float, None), ("quality_of_service", _as_float, None),
)
_QOS_BUCKET_FIELDS = (("min", _as_int, None), ("max", _as_int, None),
                      ("answered", _as_int, 0), ("abandoned", _as_int, 0))
_AGENT_QUEUE_FIELDS = (("queue_id", _as_int, None), ("answered", _as_int, 0),
                       ("conversation_time", _as_int, 0), ("login_time", _as_int, 0),
                       ("pause_time", _as_int, 0), ("wrapup_time", _as_int, 0))
AGENT_FIELDS = _PERIOD + (
    ("agent_id", _as_int, None), ("agent_number", _as_text, None),
    ("answered", _as_int, 0), ("conversation_time", _as_int, 0), ("login_time", _as_int, 0),
    ("pause_time", _as_int, 0), ("wrapup_time", _as_int, 0),
)


def _dump(item: Mapping[str, Any], fields) -> dict[str, Any]:
    out = {name: convert(item[name]) if item.get(name) is not None else default
           for name, convert, default in fields}
    out.update((k, _as_text(v) if isinstance(v, datetime) else v)
               for k, v in item.items() if k not in out)
    return out


def dump_queue_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return _dump(item, QUEUE_FIELDS)


def dump_qos_item(item: Mapping[str, Any]) -> dict[str, Any]:
    out = _dump({k: v for k, v in item.items() if k != "quality_of_service"}, _PERIOD + (
        ("queue_id", _as_int, None), ("queue_name", _as_text, None)))
    out["quality_of_service"] = [_dump(b, _QOS_BUCKET_FIELDS) for b in item.get("quality_of_service") or []]
    return out


def dump_agent_item(item: Mapping[str, Any]) -> dict[str, Any]:
    out = _dump({k: v for k, v in item.items() if k != "queues"}, AGENT_FIELDS)
    out["queues"] = [_dump(q, _AGENT_QUEUE_FIELDS) for q in item.get("queues") or []]
    return out


def envelope(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": items, "total": len(items)}
