#!/usr/bin/env python3
"""Benchmark: how fast the pipeline turns a queue_log into statistics, and at what memory.

    .venv/bin/python bench/run.py [--sizes 30d,1y] [--json bench/results.json]

For each size it generates a realistic queue_log with ../shared/tools/gen_queue_log.py
(cached under bench/.data/), then, each size in a fresh Python process (so peak RSS is that
size's own):

  load        COPY of the rows into a Wazo-like source table (embedded PostgreSQL)
  backfill    every hourly asset over the whole range as ONE Dagster run (in process),
              wall time and per step, on two Dagster instances, each into a fresh warehouse:
                postgres  the bulk instance `stat-pipeline compute` uses (instance.py:
                          PostgreSQL storage, batched events)      -> backfill_s
                sqlite    Dagster's default instance (SQLite; what    -> backfill_s_sqlite
                          dagster.yaml gave before `serve`)
                          (30d only by default: Dagster's per-hour bookkeeping makes it slow)
  sql         the database time inside that run (every statement timed at the driver)
  floor       issue 16's floor on the same rows (bench/floor.sql: a rough set-based pairing
              and hourly aggregation, plus a COPY of the rows): sql_x_floor = sql / floor
  hour        one incremental hour afterwards (the last one), wall and SQL
  daemon      the way the UI runs it (daemon_runs.py): `stat-pipeline serve` on a fresh
              warehouse and PostgreSQL instance; a backfill of the whole range launched through
              GraphQL (launch -> backfill daemon -> run queue -> run worker -> success), and a
              one-hour run with a sensor's range tags; once with per-hour planned events
              (Dagster's default) and once with one per asset
              (DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1)
  compute     `stat-pipeline compute` on the CSV, end to end (its own server, load,
              Dagster, SQL, export)
  rss         peak RSS of the Python process of the backfill / of compute (its own, not its
              PostgreSQL server's)

Not part of the test suite: figures, not assertions.
"""
import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Optional

from daemon_runs import through_daemon
from sql_steps import floor_seconds

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
GEN = PROJECT.parent / "shared" / "tools" / "gen_queue_log.py"
SIZES = {  # name: generator arguments (issue 8 shapes)
    "30d": ["--days", "30", "--calls-per-day", "3000", "--queues", "10", "--agents", "50"],
    "1y": ["--days", "365", "--calls-per-day", "10000", "--queues", "10", "--agents", "50"],
}
ASSETS = ["queue_log", "classified_calls", "stat_call_on_queue", "stat_queue_periodic",
          "stat_agent_periodic"]


def generate(size: str) -> Path:
    out = HERE / ".data" / size
    if not (out / "queue_log.csv").exists():
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(GEN), "--out", str(out), "--seed", "8",
                        "--start-date", "2024-01-01", *SIZES[size]], check=True)
    return out


def load_source(source_url: str, data: Optional[Path]):
    """A Wazo-like source table; its rows from ``data`` (None: empty). (first, last) time."""
    from sqlalchemy import create_engine, text

    engine = create_engine(source_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            'CREATE TABLE IF NOT EXISTS queue_log ("time" timestamptz, callid varchar(80), '
            "queuename varchar(256), agent text, event varchar(20), data1 text, "
            "data2 text, data3 text, data4 text, data5 text, id serial PRIMARY KEY)")
        if data is not None:
            cursor = conn.connection.dbapi_connection.cursor()
            with open(data / "queue_log.csv", "rb") as fh:
                cursor.copy_expert(
                    'COPY queue_log ("time", callid, queuename, agent, event, data1, '
                    "data2, data3, data4, data5) FROM STDIN WITH (FORMAT csv, HEADER true, "
                    "NULL '\\N')", fh)
            conn.exec_driver_sql('CREATE INDEX ON queue_log ("time"); '
                                 "CREATE INDEX ON queue_log (callid)")
        first, last = conn.execute(text('SELECT min("time"), max("time") FROM queue_log')).one()
    engine.dispose()
    return first, last


def step_seconds(instance, run_id: str) -> dict[str, float]:
    """Wall time per step, from its start and end events only (get_run_step_stats reads
    every event of the run: 44,000 materializations for a year, 500 MB of RSS here)."""
    import dagster as dg

    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS,
             dg.DagsterEventType.STEP_FAILURE}
    times: dict[str, list[float]] = {}
    for record in instance.get_records_for_run(run_id, of_type=kinds, limit=1000).records:
        times.setdefault(record.event_log_entry.step_key, []).append(record.timestamp)
    return {step: round(max(t) - min(t), 2) for step, t in times.items()}


def check_rows(instance) -> dict[str, int]:
    """asset_check_executions rows by status: a range run used to leave one PLANNED row per
    hour and check behind, never resolved."""
    with instance.event_log_storage.index_connection() as conn:
        return dict(conn.exec_driver_sql("SELECT execution_status, count(*) FROM "
                                         "asset_check_executions GROUP BY 1").all())


def measure(size: str, instances: list[str], daemon: list[str]) -> dict:
    """One size, in this process."""
    import dagster as dg
    from sqlalchemy import create_engine, event, text

    from stat_pipeline.definitions import HOURLY_JOB, QUIET, build_definitions
    from stat_pipeline.instance import bulk_instance, run_job
    from stat_pipeline.partitions import KEY_FORMAT, hour_floor, hourly_partitions
    from stat_pipeline.resources import Warehouse, WazoConfig, warehouse_engine
    from stat_pipeline.sources import PostgresQueueLogSource
    from stat_pipeline.warehouse.embedded import EmbeddedPostgres

    data = generate(size)
    figures: dict = {"size": size, "rows": sum(1 for _ in open(data / "queue_log.csv")) - 1}
    with tempfile.TemporaryDirectory(prefix="stat-bench-") as tmp:
        tmp = Path(tmp)
        with EmbeddedPostgres(tmp / "pg") as pg:
            pg.create_database("asterisk")
            source_url = pg.url("asterisk")
            started = time.perf_counter()
            first, last = load_source(source_url, data)
            figures["load_s"] = round(time.perf_counter() - started, 2)

            pairing, copy = floor_seconds(source_url, data)
            figures["floor_s"] = round(pairing + copy, 2)
            first_hour, last_hour = hour_floor(first), hour_floor(last)
            figures["hours"] = int((last_hour - first_hour) / dt.timedelta(hours=1)) + 1
            range_tags = {"dagster/asset_partition_range_start": first_hour.strftime(KEY_FORMAT),
                          "dagster/asset_partition_range_end": last_hour.strftime(KEY_FORMAT)}
            for kind in instances:
                # a fresh warehouse per instance kind: both backfills start from nothing
                pg.create_database(f"stat_{kind}")
                wh_url = pg.url(f"stat_{kind}")
                sql_time = [0.0]

                def before(conn, cursor, statement, params, context, many):
                    conn.info["t0"] = time.perf_counter()

                def after(conn, cursor, statement, params, context, many):
                    sql_time[0] += time.perf_counter() - conn.info.pop("t0", time.perf_counter())

                wh_engine = warehouse_engine(wh_url)
                event.listen(wh_engine, "before_cursor_execute", before)
                event.listen(wh_engine, "after_cursor_execute", after)
                defs = build_definitions(
                    partitions=hourly_partitions(start=first_hour,
                                                 end=last_hour + dt.timedelta(hours=1)),
                    source=PostgresQueueLogSource(url=source_url), warehouse=Warehouse(url=wh_url),
                    wazo_config=WazoConfig(confd_json=str(data / "confd.json")))
                job = defs.resolve_job_def(HOURLY_JOB)
                with ExitStack() as stack:
                    if kind == "sqlite":  # Dagster's default instance
                        home = tmp / "dagster_home"
                        home.mkdir()
                        # the instance dagster.yaml gave before `serve`: SQLite, default settings
                        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
                        instance = stack.enter_context(dg.DagsterInstance.from_config(str(home)))
                    else:  # what stat-pipeline compute uses (stat_pipeline/instance.py)
                        pg.create_database("dagster")
                        instance = stack.enter_context(
                            bulk_instance(pg.url("dagster"), tmp / "bulk_home"))
                    started = time.perf_counter()
                    # as compute runs it: events streamed to the instance, not kept
                    result = run_job(job, instance, QUIET, range_tags)
                    assert result.is_success, result.status
                    suffix = "" if kind == "postgres" else "_" + kind
                    figures["backfill_s" + suffix] = round(time.perf_counter() - started, 2)
                    figures["backfill_runs" + suffix] = len(instance.get_runs())
                    figures["sql_s" + suffix] = round(sql_time[0], 2)
                    figures["sql_x_floor" + suffix] = round(sql_time[0] / figures["floor_s"], 1)
                    figures["backfill_rss_mb"] = round(
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
                    figures["steps_s" + suffix] = step_seconds(instance, result.run_id)
                    # Dagster's share of the run, per asset-hour (target <= 1 ms)
                    figures["dagster_ms_per_asset_hour" + suffix] = round(
                        1000 * (figures["backfill_s" + suffix] - sql_time[0])
                        / (figures["hours"] * len(ASSETS)), 2)
                    figures["check_rows" + suffix] = check_rows(instance)
                    if kind == instances[-1]:
                        sql_time[0] = 0.0
                        started = time.perf_counter()
                        job.execute_in_process(
                            instance=instance, run_config=QUIET,
                            partition_key=(last_hour - dt.timedelta(hours=1)).strftime(KEY_FORMAT))
                        figures["hour_s"] = round(time.perf_counter() - started, 2)
                        figures["hour_sql_s"] = round(sql_time[0], 3)
                with wh_engine.connect() as conn:
                    figures["calls"] = conn.execute(
                        text("SELECT count(*) FROM stat_call_on_queue")).scalar()
                wh_engine.dispose()
            for planned in daemon:  # the way the UI runs it (daemon_runs.py)
                figures.update(through_daemon(pg, tmp, data, first_hour, last_hour,
                                              subset=planned == "subset"))

    out = tmp_out = Path(tempfile.mkdtemp(prefix="stat-bench-out-"))
    started = time.perf_counter()
    # the command's own peak RSS (RUSAGE_SELF in its process: not its PostgreSQL's)
    done = subprocess.run([sys.executable, "-c", COMPUTE_WITH_RSS, "compute",
                           str(data / "queue_log.csv"), "--config", str(data / "confd.json"),
                           "--out", str(out)], check=True, capture_output=True, text=True)
    figures["compute_s"] = round(time.perf_counter() - started, 2)
    figures["compute_rss_mb"] = round(int(done.stderr.split("PEAK_RSS_KB=")[-1].split()[0]) / 1024)
    subprocess.run(["rm", "-rf", str(tmp_out)])
    return figures


# VmHWM, not getrusage: ru_maxrss survives fork and exec, so a child of this (large) process
# would report our peak; VmHWM belongs to the address space the exec created.
COMPUTE_WITH_RSS = """
import re, sys
from stat_pipeline.cli import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read()
print("PEAK_RSS_KB=" + re.search(r"VmHWM:\\s*(\\d+)", status).group(1), file=sys.stderr)
sys.exit(code)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="30d", help="comma-separated: " + ", ".join(SIZES))
    parser.add_argument("--json", default=str(HERE / "results.json"))
    parser.add_argument("--instances", help="comma-separated Dagster instances to backfill on: "
                        "postgres, sqlite (default: both for 30d, postgres for larger sizes)")
    parser.add_argument("--daemon", help="comma-separated planned-event modes of a backfill "
                        "through `stat-pipeline serve`'s daemon: per_hour, subset (default: "
                        "both for 30d, none for larger sizes; 'none' for none)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one size here
    args = parser.parse_args()
    if args.one:
        daemon = [] if args.daemon in (None, "", "none") else args.daemon.split(",")
        print(json.dumps(measure(args.one, args.instances.split(","), daemon)))
        return 0
    results = []
    for size in args.sizes.split(","):
        generate(size)
        instances = args.instances or ("postgres,sqlite" if size == "30d" else "postgres")
        daemon = args.daemon or ("per_hour,subset" if size == "30d" else "none")
        done = subprocess.run([sys.executable, __file__, "--one", size, "--instances", instances,
                               "--daemon", daemon],
                              check=True, capture_output=True, text=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    Path(args.json).write_text(json.dumps(results, indent=1))
    cols = ["size", "rows", "calls", "hours", "load_s", "backfill_s", "backfill_runs", "sql_s",
            "floor_s", "sql_x_floor",
            "dagster_ms_per_asset_hour", "check_rows", "backfill_s_sqlite", "hour_s", "hour_sql_s",
            "compute_s", "backfill_rss_mb",
            "compute_rss_mb"]
    for tag in ("per_hour", "subset"):
        cols += [f"daemon_backfill_s_{tag}", f"daemon_wait_s_{tag}", f"daemon_queue_start_s_{tag}",
                 f"daemon_run_s_{tag}", f"daemon_run_sql_s_{tag}",
                 f"dagster_ms_per_asset_hour_{tag}", f"hour_run_s_{tag}",
                 f"hour_create_to_success_s_{tag}", f"hour_run_sql_s_{tag}",
                 f"worker_env_batch_{tag}"]
    print(" | ".join(cols))
    for r in results:
        print(" | ".join(str(r.get(c, "")) for c in cols))
    for r in results:
        for key in ("steps_s", "steps_s_sqlite"):
            if key in r:
                print(f"{r['size']} {key}: {r[key]}")
    print(f"(JSON: {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
