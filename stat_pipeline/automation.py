"""Keeping every hour right without anyone clicking: a sensor on new source rows and an
hourly schedule as a safety net.

The sensor's cursor is the source row id (rows can arrive out of time order; ids only grow);
for a flat file, the line number plus where it stopped in the file (``position``: inode, byte
offset, first bytes), so that each tick reads only the complete lines written since, and
follows the file through rotations (renamed, gzip'ed, copy-truncated).
For new rows it requests the hours they touch: their own and the hours the calls they decide
started in (a COMPLETECALLER at 14:10 for a call that entered at 13:55 re-opens 13:00).

Order matters, both ways: an hour's classification reads the rows of the day after it (to
find outcomes) and of the day before it (to know an outcome has no ENTERQUEUE). So all the
touched hours of a cluster (hours less than the look-ahead apart) are requested as ONE range
run, which copies every hour before it classifies any: hour-by-hour runs, in whatever order,
can classify an hour before a neighbour's rows are copied (a test reproduces the double count
that gives). Range runs attach each hour's own figures to that hour (run_metadata.py).

Only complete hours are requested; the cursor stops before the first row of the hour in
progress, so that row is seen again, and requested, once its hour has closed: a crash
between two ticks loses nothing (re-running an hour is harmless).
"""
import datetime as dt
import json
import os
from typing import Optional

import dagster as dg

from stat_pipeline.partitions import KEY_FORMAT, hour_floor
from stat_pipeline.resources import Warehouse
from stat_pipeline.sources import QueueLogSource

HOUR = dt.timedelta(hours=1)
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
BATCH_ROWS = 50_000
LOOKAHEAD_HOURS = 24


def hour_ranges(hours: list[dt.datetime], max_gap: dt.timedelta) -> list[tuple[dt.datetime, dt.datetime]]:
    """Group sorted hours into (first, last) ranges; hours at most ``max_gap`` apart join."""
    ranges: list[tuple[dt.datetime, dt.datetime]] = []
    for hour in sorted(set(hours)):
        if ranges and hour - ranges[-1][1] <= max_gap:
            ranges[-1] = (ranges[-1][0], hour)
        else:
            ranges.append((hour, hour))
    return ranges


def requests_for(hours: list[dt.datetime], max_id: int,
                 lookahead: dt.timedelta) -> list[dg.RunRequest]:
    """One range run per cluster of touched hours."""
    return [range_request(first, last, f"{first:%Y%m%d%H}-{last:%Y%m%d%H}@{max_id}", "new rows")
            for first, last in hour_ranges(hours, lookahead)]


def range_request(first: dt.datetime, last: dt.datetime, run_key: Optional[str],
                  reason: str) -> dg.RunRequest:
    return dg.RunRequest(run_key=run_key, tags={
        RANGE_START: first.strftime(KEY_FORMAT), RANGE_END: last.strftime(KEY_FORMAT),
        "stat_pipeline/reason": reason})


def plan_new_rows(touched: list[tuple[int, Optional[dt.datetime], bool]], cursor: int,
                  closed_through: Optional[dt.datetime], now: dt.datetime,
                  first_partition: dt.datetime, partitions_end: Optional[dt.datetime] = None
                  ) -> tuple[list[dt.datetime], int, dt.datetime, dict]:
    """Pure part of the sensor: (complete hours to request, new row cursor, last closed hour
    requested, counts for the log).

    Besides the hours rows touch, every hour that has closed since the last tick is
    requested once, rows or not: a logged-in agent accrues time in a quiet hour too. On the
    first tick history is left alone (the rows bring their hours)."""
    open_hour = hour_floor(now)
    if partitions_end is not None:
        open_hour = min(open_hour, partitions_end)
    last_closed = open_hour - HOUR
    waiting = [row_id for row_id, hour, own in touched
               if own and hour is not None and hour >= open_hour]
    max_id = max((row_id for row_id, _, _ in touched), default=cursor)
    new_cursor = min(waiting) - 1 if waiting else max_id
    hours = {h for _, h, _ in touched if h is not None and first_partition <= h < open_hour}
    if closed_through is not None:
        hour = max(closed_through + HOUR, first_partition)
        while hour <= last_closed:
            hours.add(hour)
            hour += HOUR
    counts = {
        "rows": len({row_id for row_id, _, _ in touched}),
        "rows_in_open_hour": len(set(waiting)),
        "rows_before_partitions": len({r for r, h, _ in touched
                                       if h is not None and h < first_partition}),
    }
    return sorted(hours), max(new_cursor, cursor), max(last_closed, closed_through or last_closed), counts


def _read_cursor(raw: Optional[str]) -> tuple[int, Optional[dt.datetime], Optional[str]]:
    """(row id, last closed hour requested, source position). Cursors of earlier versions
    have no position: a file is then read after line ``row id``."""
    if not raw:
        return 0, None, None
    if raw.isdigit():  # cursors of earlier versions: the row id alone
        return int(raw), None, None
    state = json.loads(raw)
    closed = state.get("closed_through")
    return int(state["row_id"]), (dt.datetime.strptime(closed, KEY_FORMAT).replace(
        tzinfo=dt.timezone.utc) if closed else None), state.get("position")


def _write_cursor(row_id: int, closed_through: dt.datetime, position: Optional[str] = None) -> str:
    state = {"row_id": row_id, "closed_through": closed_through.strftime(KEY_FORMAT)}
    if position is not None:
        state["position"] = position
    return json.dumps(state)


def automation(job_name: str, partitions: dg.TimeWindowPartitionsDefinition):
    first_partition = partitions.start.astimezone(dt.timezone.utc)
    partitions_end = partitions.end.astimezone(dt.timezone.utc) if partitions.end else None

    @dg.sensor(
        name="queue_log_new_rows",
        job_name=job_name,
        minimum_interval_seconds=int(os.environ.get("STAT_SENSOR_INTERVAL_SECONDS", "30")),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests the hours touched by new source rows (also late rows for old "
                    "hours, and the start hours of the calls they complete). Watches a "
                    "database table or an Asterisk flat file (tailed, rotations followed); "
                    "a CSV export or a MySQL dump cannot be watched (skipped).",
    )
    def queue_log_new_rows(context: dg.SensorEvaluationContext, source: QueueLogSource,
                           warehouse: Warehouse):
        cursor, closed_through, position = _read_cursor(context.cursor)
        try:
            # the warehouse is a file source's scratch database, where its lines are parsed
            new = source.new_rows(cursor, position, BATCH_ROWS, LOOKAHEAD_HOURS, warehouse)
        except NotImplementedError as exc:  # a CSV export or a dump: no new rows to wait for
            return dg.SkipReason(f"{exc}; turn on the schedule hourly_safety_net instead")
        if new.note:
            context.log.warning(new.note)
        touched = new.touched
        hours, new_cursor, new_closed, counts = plan_new_rows(
            touched, cursor, closed_through, dt.datetime.now(dt.timezone.utc), first_partition,
            partitions_end)
        max_id = max((row_id for row_id, _, _ in touched), default=cursor)
        requests = requests_for(hours, max_id, dt.timedelta(hours=LOOKAHEAD_HOURS))
        state = _write_cursor(new_cursor, new_closed, new.resume_at(new_cursor))
        if not requests:
            return dg.SensorResult(skip_reason=dg.SkipReason(
                f"no complete hour to request (rows up to id {max_id})"), cursor=state)
        context.log.info(f"rows {cursor + 1}..{max_id}: {counts}; {len(hours)} hour(s) in "
                         f"{len(requests)} run(s); cursor {cursor} -> {new_cursor}")
        return dg.SensorResult(run_requests=requests, cursor=state)

    @dg.schedule(
        name="hourly_safety_net",
        job_name=job_name,
        cron_schedule="5 * * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="At :05, recompute the last 3 closed hours in one run (for when the "
                    "sensor is off, or the source cannot be watched).",
    )
    def hourly_safety_net(context: dg.ScheduleEvaluationContext):
        last = hour_floor(context.scheduled_execution_time) - HOUR
        first = max(last - 2 * HOUR, first_partition)
        return range_request(first, last, f"schedule-{last:%Y%m%d%H}", "schedule")

    return [queue_log_new_rows], [hourly_safety_net]
