"""Self-healing: the ``stale_hours`` sensor re-requests the hours that are not right.

The new-rows sensor requests an hour once, when rows touch it; its cursor has moved on by the
time the run fails. So without this sensor a source outage longer than the step retries, or
a killed run worker, leaves those hours empty for good, with no warning. An hour is out of
date when either

* **its last run failed or was canceled** (Dagster's run records: a run of the hourly job
  with range tags, or a single partition tag, that failed after every later successful run
  covering the hour), or
* **the warehouse says so** (``partition_writes``, written in the same transaction as the
  hour's rows, so it is true even when Dagster's records are not: a worker killed between
  its write and its event, a run of another deployment): a downstream asset was written
  before its upstream (rows copied but not classified) or never.

Hours of a run still queued or in progress are left alone: that run will write them. A
killed run worker leaves its run STARTED with Dagster's default launcher (it cannot check
the worker's health), so our requests carry ``dagster/max_runtime`` and dagster.yaml turns
run monitoring on: the run is then marked failed and healed here.

Bounded retries: each heal run carries ``stat_pipeline/heal_attempt``; the hours of a heal
run that fails are requested again with the next attempt number, up to
``STAT_HEAL_MAX_ATTEMPTS``, then left with a warning naming them (the tick's message). While
the source is unreachable nothing is requested and no attempt is spent: the hours wait, the
tick says which, and they are requested on the first tick after the source is back (one
sensor interval + run time). Run keys make a failed run healed once, whatever the number of
ticks that see it.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Iterable, Optional

import dagster as dg
from sqlalchemy import text

from stat_pipeline.partitions import KEY_FORMAT
from stat_pipeline.resources import Warehouse
from stat_pipeline.sources import QueueLogSource
from stat_pipeline.sources.config import SOURCE_TAG

HOUR = dt.timedelta(hours=1)
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
PARTITION = "dagster/partition"
ATTEMPT_TAG = "stat_pipeline/heal_attempt"
HEALS_TAG = "stat_pipeline/heals"
MAX_ATTEMPTS = int(os.environ.get("STAT_HEAL_MAX_ATTEMPTS", "5"))
LOOKBACK = dt.timedelta(hours=float(os.environ.get("STAT_HEAL_LOOKBACK_HOURS", str(7 * 24))))
# A run of ours that is still "started" after this is presumed dead (its worker killed) and
# failed by run monitoring (dagster.yaml), then healed. A catch-up chunk takes under a minute.
MAX_RUNTIME_SECONDS = os.environ.get("STAT_RUN_MAX_RUNTIME_SECONDS", "1800")

FAILED = [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
          dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
          dg.DagsterRunStatus.CANCELING]

# Each hourly asset and the ones it reads (the asset graph, as the ledger checks it).
UPSTREAM = {
    "classified_calls": ["queue_log"],
    "stat_call_on_queue": ["classified_calls"],
    "stat_queue_periodic": ["stat_call_on_queue"],
    "stat_agent_periodic": ["queue_log"],
}

_LEDGER_STALE = text("""
    -- hours whose asset is older than (or missing next to) one it reads, of one source (the
    -- ledger is per source, migration 0017) or, :source NULL, of any
    SELECT up.hour, max(up.written_at) AS written_at
    FROM partition_writes up
    JOIN (VALUES {edges}) AS e(asset, upstream) ON e.upstream = up.asset
    LEFT JOIN partition_writes down
           ON down.asset = e.asset AND down.source = up.source AND down.hour = up.hour
    WHERE up.hour >= :first AND up.hour < :end
      AND (CAST(:source AS text) IS NULL OR up.source = :source)
      AND (down.hour IS NULL OR down.written_at < up.written_at)
    GROUP BY up.hour
    ORDER BY 1""".replace("{edges}", ", ".join(
    f"('{asset}', '{up}')" for asset, ups in UPSTREAM.items() for up in ups)))


def _key(hour: dt.datetime) -> str:
    return hour.strftime(KEY_FORMAT)


def _hour(key: str) -> dt.datetime:
    return dt.datetime.strptime(key, KEY_FORMAT).replace(tzinfo=dt.timezone.utc)


def run_hours(tags: dict) -> list[dt.datetime]:
    """The hours a run of the hourly job covers, from its tags."""
    if RANGE_START in tags and RANGE_END in tags:
        hour, last = _hour(tags[RANGE_START]), _hour(tags[RANGE_END])
        hours = []
        while hour <= last:
            hours.append(hour)
            hour += HOUR
        return hours
    return [_hour(tags[PARTITION])] if PARTITION in tags else []


@dataclass
class RunInfo:
    """What healing needs of a run record (pure: tests build them by hand)."""
    run_id: str
    status: dg.DagsterRunStatus
    created: float
    tags: dict
    # False for a run of some of the assets (the agent-only catch-up runs): its success
    # proves those assets only, so it does not make an hour's earlier failure good
    full_chain: bool = True


@dataclass
class Stale:
    """Out-of-date hours: why (the failed run, or the ledger), and the next attempt number."""
    hours: dict[dt.datetime, tuple[str, int]] = field(default_factory=dict)
    given_up: dict[dt.datetime, str] = field(default_factory=dict)
    in_progress: set[dt.datetime] = field(default_factory=set)


def find_stale(runs: Iterable[RunInfo], ledger_stale: Iterable[dt.datetime],
               max_attempts: int = 0) -> Stale:
    """Pure part of the sensor. An hour is stale when its latest failed run is later than
    its latest successful one, or when the ledger says so; hours of active runs are not."""
    max_attempts = max_attempts or MAX_ATTEMPTS
    last_ok: dict[dt.datetime, float] = {}
    last_failed: dict[dt.datetime, RunInfo] = {}
    stale = Stale()
    for run in runs:
        for hour in run_hours(run.tags):
            if run.status in ACTIVE:
                stale.in_progress.add(hour)
            elif run.status == dg.DagsterRunStatus.SUCCESS:
                if run.full_chain:
                    last_ok[hour] = max(last_ok.get(hour, 0.0), run.created)
            elif run.status in FAILED and (
                    hour not in last_failed or run.created > last_failed[hour].created):
                last_failed[hour] = run
    for hour, run in last_failed.items():
        if run.created <= last_ok.get(hour, 0.0) or hour in stale.in_progress:
            continue
        attempt = int(run.tags.get(ATTEMPT_TAG, "0")) + 1
        if attempt > max_attempts:
            stale.given_up[hour] = run.run_id
        else:
            stale.hours[hour] = (run.run_id, attempt)
    for hour in ledger_stale:
        if hour not in stale.in_progress and hour not in stale.hours and hour not in stale.given_up:
            stale.hours[hour] = ("ledger", 1)
    return stale


def describe(hours: Iterable[dt.datetime], limit: int = 6) -> str:
    """'2024-03-01-10:00..2024-03-01-12:00, 2024-03-02-05:00' (ranges, the first few)."""
    from stat_pipeline.automation import hour_ranges

    ranges = hour_ranges(list(hours), HOUR)
    parts = [_key(a) if a == b else f"{_key(a)}..{_key(b)}" for a, b in ranges[:limit]]
    more = f" and {len(ranges) - limit} more range(s)" if len(ranges) > limit else ""
    return ", ".join(parts) + more


def source_unreachable(source: QueueLogSource) -> Optional[str]:
    """Why the source cannot be read now (None: it can, or it is a file we do not probe)."""
    probe = getattr(source, "_engine", None)
    if probe is None:
        return None
    engine = probe()
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return None
    except Exception as exc:  # noqa: BLE001 - any failure to connect is "unreachable"
        return str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    finally:
        engine.dispose()


def _run_infos(instance: dg.DagsterInstance, job_name: str, since: dt.datetime,
               source_name: Optional[str] = None) -> list[RunInfo]:
    """The runs that matter, not every run of the week (the sensor makes one per tick): the
    failed ones since ``since``, the active ones, and the successful ones created after the
    first of those failures. For one source of a sources file: the runs of that source
    (tagged with it) and the untagged ones (they do every source)."""
    def records(**filters):
        found = instance.get_run_records(dg.RunsFilter(job_name=job_name, **filters))
        if source_name is None:
            return found
        return [r for r in found
                if r.dagster_run.tags.get(SOURCE_TAG, source_name) == source_name]

    found = records(statuses=FAILED, created_after=since) + records(statuses=ACTIVE)
    failed = [r.create_timestamp for r in found if r.dagster_run.status in FAILED]
    if failed:
        found += records(statuses=[dg.DagsterRunStatus.SUCCESS], created_after=min(failed))
    return [RunInfo(r.dagster_run.run_id, r.dagster_run.status, r.create_timestamp.timestamp(),
                    dict(r.dagster_run.tags),
                    full_chain=_is_full_chain(r.dagster_run.asset_selection)) for r in found]


def _is_full_chain(selection) -> bool:
    from stat_pipeline.automation import AGENT_ASSET

    return not selection or selection != {dg.AssetKey(AGENT_ASSET)}


def ledger_stale(warehouse: Warehouse, first: dt.datetime, end: dt.datetime,
                 source_name: Optional[str] = None) -> dict[dt.datetime, dt.datetime]:
    """{hour: when its newest upstream was written} for the half-written hours (of
    ``source_name``'s rows; None: of any source)."""
    with warehouse.engine().connect() as conn:
        return {h.astimezone(dt.timezone.utc): w for h, w in
                conn.execute(_LEDGER_STALE, {"first": first, "end": end,
                                             "source": source_name})}


def healing(job_name: str, partitions: dg.TimeWindowPartitionsDefinition,
            lookahead: dt.timedelta, source_name: Optional[str] = None) -> dg.SensorDefinition:
    """The healing sensor: ``stale_hours`` for the one-source shorthand; for each source of
    a sources file ``stale_hours_<name>``, which heals that source's hours alone (its runs,
    the untagged ones, its ledger rows), waits while that source is unreachable, and
    requests runs tagged with it: a PBX that is down holds back none of the others."""
    from stat_pipeline.automation import _reader, _source_tagged, requests_for

    first_partition = partitions.start.astimezone(dt.timezone.utc)
    partitions_end = partitions.end.astimezone(dt.timezone.utc) if partitions.end else None

    @dg.sensor(
        name="stale_hours" + (f"_{source_name}" if source_name else ""),
        job_name=job_name,
        minimum_interval_seconds=int(os.environ.get("STAT_HEAL_INTERVAL_SECONDS", "60")),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Self-healing: re-requests the hours whose last run failed or was "
                    "canceled, and those the warehouse shows half-written (copied but not "
                    "classified), at most STAT_HEAL_MAX_ATTEMPTS times; waits while the "
                    "source is unreachable. Its tick message names the hours out of date."
                    + (f" Source: {source_name}." if source_name else ""),
    )
    def stale_hours(context: dg.SensorEvaluationContext, source: QueueLogSource,
                    warehouse: Warehouse):
        now = dt.datetime.now(dt.timezone.utc)
        runs = _run_infos(context.instance, job_name, now - LOOKBACK, source_name)
        # the whole ledger (one row per asset and hour: a year is 44,000 rows, by its key)
        ledger = ledger_stale(warehouse, first_partition, partitions_end or now, source_name)
        stale = find_stale(runs, ledger)
        notes = []
        if stale.given_up:
            notes.append(f"{len(stale.given_up)} hour(s) failed {MAX_ATTEMPTS} heal attempts "
                         f"and are left out of date (see the failed runs, then re-run them): "
                         f"{describe(stale.given_up)}")
            context.log.warning(notes[-1])
        if not stale.hours:
            return dg.SkipReason("; ".join(notes) or
                                 f"every hour is up to date ({len(runs)} run(s) examined)")
        out_of_date = f"{len(stale.hours)} hour(s) out of date: {describe(stale.hours)}"
        reason = source_unreachable(_reader(source, source_name))
        if reason:
            message = (f"{out_of_date}; waiting for the source ({reason}): no attempt spent")
            context.log.warning(message)
            return dg.SkipReason("; ".join([message, *notes]))
        requests = []
        # all stale hours clustered and chunked together, like the new-rows sensor's: two
        # failed runs a few hours apart are healed by one run, so copy before classify holds
        for request in requests_for(sorted(stale.hours), 0, lookahead, reason="heal"):
            first, last = _hour(request.tags[RANGE_START]), _hour(request.tags[RANGE_END])
            hours = [h for h in stale.hours if first <= h <= last]
            causes = sorted({stale.hours[h][0] for h in hours})
            attempt = max(stale.hours[h][1] for h in hours)
            key = f"heal:{','.join(causes)}:{_key(first)}..{_key(last)}"
            if "ledger" in causes:  # the same hours half-written again later: a new key
                key += "@" + max(ledger[h] for h in hours if h in ledger).isoformat()
            requests.append(request.with_replaced_attrs(run_key=key, tags={
                **request.tags, ATTEMPT_TAG: str(attempt), HEALS_TAG: ",".join(causes)[:200],
                "stat_pipeline/reason": f"heal, attempt {attempt}/{MAX_ATTEMPTS}"}))
        context.log.warning(f"{out_of_date}; requesting {len(requests)} run(s)")
        return dg.SensorResult(run_requests=_source_tagged(requests, source_name))

    return stale_hours
