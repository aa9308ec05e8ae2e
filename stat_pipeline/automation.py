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
between two ticks loses nothing (re-running an hour is harmless). Only the hour in progress
holds the cursor: a row dated later (within the plausible window, time_window.py) does not,
its hour is requested by the closed-hour sweep when it closes; a row outside the window
touches no hour at all (touched_hours.sql), so one row dated 2200 can neither pin the cursor
nor make a tick request every hour up to it.

Catch-up in bounded steps: a cluster longer than ``STAT_CATCHUP_CHUNK_HOURS`` hours or
holding more than ``STAT_CATCHUP_CHUNK_ROWS`` new rows (a first tick over years of rows, a
login left open for months) is requested as several runs, oldest first, tagged
``stat_pipeline/chunk`` = "k/n". Successive chunks overlap by the look-ahead + 1 hours, so
every hour is classified last by a run that has copied the 25 hours on both sides of it, in
whatever order the runs' steps interleave (``chunk_ranges``); the daemon's pool starts them
in the order requested, which agent times (they read the state rows before a chunk) need.

An agent state touches every hour until the agent's next state row, or up to now: a login
never logged off (wazo-stat counts it until the end of its run) touches every hour since.
Hours that only such a span touches, farther than the look-ahead from any new row, change
only in ``stat_agent_periodic``: they are requested for that asset alone, after the full
runs (``split_agent_only``, ``agent_requests``), one materialization per hour instead of five.

Failed, killed or half-written hours are re-requested by the ``stale_hours`` sensor
(healing.py).
"""
import bisect
import datetime as dt
import json
import os
from typing import Optional

import dagster as dg

from stat_pipeline.healing import MAX_RUNTIME_SECONDS, healing
from stat_pipeline.partitions import KEY_FORMAT, hour_floor
from stat_pipeline.resources import Warehouse
from stat_pipeline.sources import QueueLogSource
from stat_pipeline.sources.config import SOURCE_TAG, SourceSet
from stat_pipeline.touched_hours import TouchedHoursTimeout

HOUR = dt.timedelta(hours=1)
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
# Rows read per tick. touched_hours.sql costs ~30 us a row on a timestamp column (~100 us on
# old Wazo's text column), so 200,000 rows take 6-20 s of the tick's 60 s: the 30-day set
# (320,255 rows) is read in two ticks (it took seven of 50,000, 225 s). A query stopped by
# STAT_SENSOR_QUERY_TIMEOUT_SECONDS is tried again at once on an eighth of the batch.
BATCH_ROWS = int(os.environ.get("STAT_SENSOR_BATCH_ROWS", "200000"))
LOOKAHEAD_HOURS = 24
AGENT_ASSET = "stat_agent_periodic"


def hour_ranges(hours: list[dt.datetime], max_gap: dt.timedelta) -> list[tuple[dt.datetime, dt.datetime]]:
    """Group sorted hours into (first, last) ranges; hours at most ``max_gap`` apart join."""
    ranges: list[tuple[dt.datetime, dt.datetime]] = []
    for hour in sorted(set(hours)):
        if ranges and hour - ranges[-1][1] <= max_gap:
            ranges[-1] = (ranges[-1][0], hour)
        else:
            ranges.append((hour, hour))
    return ranges


# Chunk sizes, measured (docs/performance.md, bench/run.py): SQL costs ~20 us per source row
# over the five assets and Dagster ~1.2 ms per asset-hour on the PostgreSQL instance (~35 ms
# on the default SQLite one). 336 hours x 5 assets: ~2 s of bookkeeping on PostgreSQL, ~60 s
# on SQLite; 250,000 rows: ~5 s of SQL. So a chunk ends in seconds to a minute, and the
# 25-hour overlap re-does 7% of the work.
CHUNK_HOURS = int(os.environ.get("STAT_CATCHUP_CHUNK_HOURS", "336"))
CHUNK_ROWS = int(os.environ.get("STAT_CATCHUP_CHUNK_ROWS", "250000"))
CHUNK_TAG = "stat_pipeline/chunk"


def chunk_ranges(first: dt.datetime, last: dt.datetime, rows_per_hour: dict[dt.datetime, int],
                 lookahead: dt.timedelta, max_hours: int = 0, max_rows: int = 0
                 ) -> list[tuple[dt.datetime, dt.datetime]]:
    """Split the cluster [first, last] into runs of at most ``max_hours`` hours and about
    ``max_rows`` rows (a single hour may hold more), oldest first, each starting
    ``lookahead`` + 1 hours before the previous one ends.

    Why that is correct in any order of the runs and their steps: an hour's classification
    reads the rows of the ``lookahead`` around it. An hour inside one chunk only has them in
    that chunk; an hour in an overlap has them in the union of its two chunks, and whichever
    of the two classifies it last has, by then, had both copies done (each run copies before
    it classifies). Chunks are at least three overlaps long, so overlaps never meet."""
    max_hours = max_hours or CHUNK_HOURS
    max_rows = max_rows or CHUNK_ROWS
    overlap = int(lookahead / HOUR) + 1
    size_floor = 3 * overlap
    max_hours = max(max_hours, size_floor)
    chunks: list[tuple[dt.datetime, dt.datetime]] = []
    start = first
    while True:
        end, rows = start, rows_per_hour.get(start, 0)
        while end < last and int((end - start) / HOUR) + 1 < max_hours:
            following = rows_per_hour.get(end + HOUR, 0)
            if rows + following > max_rows and int((end - start) / HOUR) + 1 >= size_floor:
                break
            end += HOUR
            rows += following
        if last - end < overlap * HOUR and int((last - start) / HOUR) + 1 <= max_hours:
            end = last  # too short a tail for a chunk of its own (a short one is correct too)
        chunks.append((start, end))
        if end >= last:
            return chunks
        start = end - (overlap - 1) * HOUR


# Hours that only an agent state touches, far from any new row: a login left open since
# long ago (wazo-stat counts it up to now, wazo_stat_algorithm.md 9.2) touches every hour
# since. Only stat_agent_periodic changes there, so those hours are requested for that asset
# alone: one materialization per hour instead of five. Measured (2 cores): ~2 ms per hour,
# SQL < 0.1 ms; 2,000 hours in 4.1 s. Runs of up to a year of hours then end in ~20 s.
AGENT_CHUNK_HOURS = int(os.environ.get("STAT_CATCHUP_AGENT_CHUNK_HOURS", "8760"))
# a shorter stretch stays in the full runs: a run of its own would cost more than it saves
AGENT_ONLY_MIN_HOURS = int(os.environ.get("STAT_CATCHUP_AGENT_ONLY_MIN_HOURS", "336"))


def split_agent_only(hours: list[dt.datetime], row_hours: set[dt.datetime],
                     lookahead: dt.timedelta) -> tuple[list[dt.datetime], list[dt.datetime]]:
    """(hours for the full chain, hours for stat_agent_periodic alone). An hour needs the
    full chain when it is within the look-ahead of an hour holding new rows (its
    classification may change: calls' starts, outcomes, wrap-ups are all within it) or is a
    ``row_hours`` hour itself; the others are touched only by an agent state's span. Stretches
    of those shorter than AGENT_ONLY_MIN_HOURS stay in the full chain."""
    anchors = sorted(row_hours)
    full, agent_only = [], []
    for hour in sorted(set(hours)):
        i = bisect.bisect_left(anchors, hour - lookahead)
        (full if i < len(anchors) and anchors[i] <= hour + lookahead else agent_only).append(hour)
    kept = []
    for first, last in hour_ranges(agent_only, HOUR):  # contiguous stretches
        stretch = [first + k * HOUR for k in range(int((last - first) / HOUR) + 1)]
        (kept if len(stretch) >= AGENT_ONLY_MIN_HOURS else full).extend(stretch)
    return sorted(full), kept


def agent_requests(hours: list[dt.datetime], max_id: int, reason: str = "agent state"
                   ) -> list[dg.RunRequest]:
    """stat_agent_periodic alone over ``hours``, in runs of at most AGENT_CHUNK_HOURS,
    oldest first. No overlap is needed: an hour's agent times read only the warehouse's rows
    (the state rows before it were copied by the full runs, requested before these)."""
    requests = []
    for first, last in hour_ranges(hours, HOUR):
        start = first
        while start <= last:
            end = min(last, start + (AGENT_CHUNK_HOURS - 1) * HOUR)
            requests.append(range_request(
                start, end, f"agent-{start:%Y%m%d%H}-{end:%Y%m%d%H}@{max_id}",
                f"{reason}, catch-up").with_replaced_attrs(
                    asset_selection=[dg.AssetKey(AGENT_ASSET)]))
            start = end + HOUR
    for k, request in enumerate(requests, 1):
        requests[k - 1] = request.with_replaced_attrs(
            tags={**request.tags, CHUNK_TAG: f"agent {k}/{len(requests)}"})
    return requests


def requests_for(hours: list[dt.datetime], max_id: int, lookahead: dt.timedelta,
                 rows_per_hour: Optional[dict[dt.datetime, int]] = None,
                 reason: str = "new rows") -> list[dg.RunRequest]:
    """One range run per cluster of touched hours; a large cluster in chunks (chunk_ranges),
    oldest first."""
    requests = []
    for first, last in hour_ranges(hours, lookahead):
        chunks = chunk_ranges(first, last, rows_per_hour or {}, lookahead)
        for k, (start, end) in enumerate(chunks, 1):
            request = range_request(start, end, f"{start:%Y%m%d%H}-{end:%Y%m%d%H}@{max_id}",
                                    reason if len(chunks) == 1 else f"{reason}, catch-up")
            if len(chunks) > 1:
                request = request.with_replaced_attrs(
                    tags={**request.tags, CHUNK_TAG: f"{k}/{len(chunks)}"})
            requests.append(request)
    return requests


def range_request(first: dt.datetime, last: dt.datetime, run_key: Optional[str],
                  reason: str) -> dg.RunRequest:
    # dagster/max_runtime: with run monitoring on (dagster.yaml), a run whose worker was
    # killed is failed after this instead of staying "started" for ever; then healed
    return dg.RunRequest(run_key=run_key, tags={
        RANGE_START: first.strftime(KEY_FORMAT), RANGE_END: last.strftime(KEY_FORMAT),
        "stat_pipeline/reason": reason, "dagster/max_runtime": MAX_RUNTIME_SECONDS})


def plan_new_rows(touched: list[tuple[int, Optional[dt.datetime], bool]], cursor: int,
                  closed_through: Optional[dt.datetime], now: dt.datetime,
                  first_partition: dt.datetime, partitions_end: Optional[dt.datetime] = None
                  ) -> tuple[list[dt.datetime], int, dt.datetime, dict]:
    """Pure part of the sensor: (complete hours to request, new row cursor, last closed hour
    requested, counts for the log).

    Besides the hours rows touch, every hour that has closed since the last tick is
    requested once, rows or not: a logged-in agent accrues time in a quiet hour too. On the
    first tick history is left alone (the rows bring their hours)."""
    hour_in_progress = hour_floor(now)
    open_hour = hour_in_progress
    if partitions_end is not None:
        open_hour = min(open_hour, partitions_end)
    last_closed = open_hour - HOUR
    # only the hour in progress holds the cursor: rows dated later (or beyond the partitions)
    # would hold it for as long as they are ahead, and every tick would re-read them
    waiting = [row_id for row_id, hour, own in touched
               if own and hour == hour_in_progress and hour == open_hour]
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
        "rows_without_plausible_time": len({r for r, h, own in touched if own and h is None}),
        "rows_before_partitions": len({r for r, h, _ in touched
                                       if h is not None and h < first_partition}),
    }
    return sorted(hours), max(new_cursor, cursor), max(last_closed, closed_through or last_closed), counts


def rows_per_hour(touched: list[tuple[int, Optional[dt.datetime], bool]]) -> dict[dt.datetime, int]:
    """New rows per own hour: what sizes the catch-up chunks."""
    counts: dict[dt.datetime, int] = {}
    for _, hour, own in touched:
        if own and hour is not None:
            counts[hour] = counts.get(hour, 0) + 1
    return counts


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


def _source_tagged(requests: list[dg.RunRequest], source_name: Optional[str]
                   ) -> list[dg.RunRequest]:
    """A per-source sensor's requests: tagged with its source (the run then works on that
    source's rows only, sources/config.py), run keys prefixed (unique across sensors)."""
    if source_name is None:
        return requests
    return [r.with_replaced_attrs(
        run_key=f"{source_name}:{r.run_key}" if r.run_key else None,
        tags={**r.tags, SOURCE_TAG: source_name}) for r in requests]


def _reader(source: QueueLogSource, source_name: Optional[str]) -> QueueLogSource:
    """What a sensor reads: the one source, or its member of a sources file."""
    if source_name is None:
        return source
    if not isinstance(source, SourceSet):
        raise TypeError(f"sensor of source {source_name}: the code location has no sources file")
    return source.member(source_name).source


def new_rows_sensor(job_name: str, partitions: dg.TimeWindowPartitionsDefinition,
                    source_name: Optional[str] = None) -> dg.SensorDefinition:
    """The new-rows sensor of one source: ``queue_log_new_rows`` for the one-source shorthand,
    ``queue_log_new_rows_<name>`` for each source of a sources file (own cursor, own tick
    messages; its runs are tagged with the source)."""
    first_partition = partitions.start.astimezone(dt.timezone.utc)
    partitions_end = partitions.end.astimezone(dt.timezone.utc) if partitions.end else None
    of_source = f" Source: {source_name}." if source_name else ""

    @dg.sensor(
        name="queue_log_new_rows" + (f"_{source_name}" if source_name else ""),
        job_name=job_name,
        minimum_interval_seconds=int(os.environ.get("STAT_SENSOR_INTERVAL_SECONDS", "30")),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests the hours touched by new source rows (also late rows for old "
                    "hours, and the start hours of the calls they complete). Watches a "
                    "database table or an Asterisk flat file (tailed, rotations followed); "
                    "a CSV export or a MySQL dump cannot be watched (skipped)." + of_source,
    )
    def queue_log_new_rows(context: dg.SensorEvaluationContext, source: QueueLogSource,
                           warehouse: Warehouse):
        cursor, closed_through, position = _read_cursor(context.cursor)
        reader = _reader(source, source_name)
        try:
            # the warehouse is a file source's scratch database, where its lines are parsed
            try:
                new = reader.new_rows(cursor, position, BATCH_ROWS, LOOKAHEAD_HOURS, warehouse)
            except TouchedHoursTimeout as exc:  # a slow source: a smaller batch, this tick
                context.log.warning(f"{exc}; reading {BATCH_ROWS // 8} rows instead")
                new = reader.new_rows(cursor, position, BATCH_ROWS // 8, LOOKAHEAD_HOURS,
                                      warehouse)
        except NotImplementedError as exc:  # a CSV export or a dump: no new rows to wait for
            return dg.SkipReason(f"{exc}; turn on the schedule hourly_safety_net instead")
        if new.note:
            context.log.warning(new.note)
        touched = new.touched
        hours, new_cursor, new_closed, counts = plan_new_rows(
            touched, cursor, closed_through, dt.datetime.now(dt.timezone.utc), first_partition,
            partitions_end)
        max_id = max((row_id for row_id, _, _ in touched), default=cursor)
        per_hour = rows_per_hour(touched)
        lookahead = dt.timedelta(hours=LOOKAHEAD_HOURS)
        # the closed-hour sweep's hours stay in the full chain (rows may come for them)
        swept = {h for h in hours if closed_through is not None and h > closed_through}
        full, agent_only = split_agent_only(hours, set(per_hour) | swept, lookahead)
        agent_runs = agent_requests(agent_only, max_id)
        requests = _source_tagged(
            requests_for(full, max_id, lookahead, per_hour) + agent_runs, source_name)
        state = _write_cursor(new_cursor, new_closed, new.resume_at(new_cursor))
        if counts["rows_without_plausible_time"]:
            context.log.warning(
                f"{counts['rows_without_plausible_time']} new row(s) have no plausible time "
                "(empty, unreadable, or outside STAT_EARLIEST_EVENT_TIME .. now + "
                "STAT_MAX_FUTURE_HOURS): they touch no hour; the copy keeps them aside")
        if not requests:
            return dg.SensorResult(skip_reason=dg.SkipReason(
                f"no complete hour to request (rows up to id {max_id})"), cursor=state)
        chunks = [r for r in requests if CHUNK_TAG in r.tags and not r.asset_selection]
        message = (f"rows {cursor + 1}..{max_id}: {counts}; {len(hours)} hour(s) in "
                   f"{len(requests)} run(s)"
                   + (f", {len(chunks)} of them catch-up chunks of at most {CHUNK_HOURS} hours "
                      f"({chunks[0].tags[RANGE_START]} .. {chunks[-1].tags[RANGE_END]}, oldest "
                      "first)" if chunks else "")
                   + (f", {len(agent_runs)} for the {len(agent_only)} hour(s) "
                      f"touched only by an open agent state, as {AGENT_ASSET} alone "
                      f"({agent_only[0]:%Y-%m-%d-%H:%M} .. {agent_only[-1]:%Y-%m-%d-%H:%M})"
                      if agent_only else "")
                   + f"; cursor {cursor} -> {new_cursor}")
        context.log.info(message)
        return dg.SensorResult(run_requests=requests, cursor=state)

    return queue_log_new_rows


def automation(job_name: str, partitions: dg.TimeWindowPartitionsDefinition,
               source_names: Optional[list[str]] = None):
    """The sensors and schedules: per source of a sources file (``source_names``) a new-rows
    sensor and a healing sensor; for the one-source shorthand, one of each (today's names)."""
    first_partition = partitions.start.astimezone(dt.timezone.utc)
    lookahead = dt.timedelta(hours=LOOKAHEAD_HOURS)
    sensors = [sensor for name in (source_names or [None])
               for sensor in (new_rows_sensor(job_name, partitions, name),
                              healing(job_name, partitions, lookahead, name))]

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

    return sensors, [hourly_safety_net]
