"""Which event times are plausible. A row dated before ``STAT_EARLIEST_EVENT_TIME`` (default
2000-01-01, before any Asterisk queue_log) or more than ``STAT_MAX_FUTURE_HOURS`` (default 24)
after the moment it is read is kept aside in queue_log_rejects with the reason: it never
defines partitions, never holds the sensor's cursor back and never makes ``compute`` plan
hours. Pure: no Dagster, no database.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Optional

DEFAULT_EARLIEST = "2000-01-01T00:00:00+00:00"
DEFAULT_MAX_FUTURE_HOURS = 24.0


@dataclass(frozen=True)
class TimeWindow:
    earliest: dt.datetime
    max_future: dt.timedelta

    def latest(self, now: Optional[dt.datetime] = None) -> dt.datetime:
        """Times after this, read at ``now``, are in the future by more than allowed."""
        return (now or dt.datetime.now(dt.timezone.utc)) + self.max_future

    def bounds(self, now: Optional[dt.datetime] = None) -> tuple[dt.datetime, dt.datetime]:
        """[earliest, latest): plausible times, as read at ``now``."""
        return self.earliest, self.latest(now)

    def reason(self, t: dt.datetime, now: Optional[dt.datetime] = None) -> Optional[str]:
        """Why ``t`` is not plausible (None: it is). The same wording as the SQL's."""
        if t < self.earliest:
            return f"time {t.isoformat()} is before {self.earliest.isoformat()}"
        if t >= self.latest(now):
            return f"time {t.isoformat()} is more than {self.max_future} after it was read"
        return None


def time_window_from_env() -> TimeWindow:
    """The window from the environment; a bad value is a one-line ValueError."""
    raw_earliest = os.environ.get("STAT_EARLIEST_EVENT_TIME", DEFAULT_EARLIEST)
    raw_hours = os.environ.get("STAT_MAX_FUTURE_HOURS", str(DEFAULT_MAX_FUTURE_HOURS))
    try:
        earliest = dt.datetime.fromisoformat(raw_earliest)
    except ValueError:
        raise ValueError(f"STAT_EARLIEST_EVENT_TIME={raw_earliest!r} is not an ISO date") from None
    if earliest.tzinfo is None:
        earliest = earliest.replace(tzinfo=dt.timezone.utc)
    try:
        hours = float(raw_hours)
    except ValueError:
        raise ValueError(f"STAT_MAX_FUTURE_HOURS={raw_hours!r} is not a number of hours") from None
    if hours < 0:
        raise ValueError(f"STAT_MAX_FUTURE_HOURS={raw_hours!r} must be >= 0")
    return TimeWindow(earliest=earliest, max_future=dt.timedelta(hours=hours))
