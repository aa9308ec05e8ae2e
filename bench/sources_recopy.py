#!/usr/bin/env python3
"""Benchmark (issue 15): should a run for new rows of ONE source re-copy (and recompute)
every source's rows of its hours, or only that source's?

    .venv/bin/python bench/sources_recopy.py [--days 7] [--calls-per-day 3000] [--repeat 3]

Two Wazo-like sources (two queue_log tables of one embedded PostgreSQL, the same generated
rows in each: the same names and ids, the worst case for the scoping) feed one warehouse
through a sources file. After a backfill of every day, it times, ``--repeat`` times each
(median printed; the machine is shared, so the spread is printed too):

  hour / tagged     a one-hour run tagged stat_pipeline/source=a (what a's sensor requests)
  hour / untagged   the same hour, untagged: both sources re-copied and recomputed
  day / tagged      a one-day run (24 hours) tagged
  day / untagged    the same day, untagged

wall time of the in-process run and its queue_log step (the copy). Figures, not assertions.
"""
import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
GEN = HERE.parent.parent / "shared" / "tools" / "gen_queue_log.py"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--calls-per-day", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import dagster as dg
    from sqlalchemy import create_engine

    from run import step_seconds
    from stat_pipeline.definitions import DIMENSIONS_JOB, HOURLY_JOB, QUIET, build_definitions
    from stat_pipeline.partitions import KEY_FORMAT, hourly_partitions
    from stat_pipeline.resources import Warehouse, dispose_engines
    from stat_pipeline.sources.config import SOURCE_TAG, SourceSet
    from stat_pipeline.warehouse.embedded import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="bench-sources-") as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "data"
        subprocess.run([sys.executable, str(GEN), "--out", str(data), "--seed", "15",
                        "--start-date", "2024-01-01", "--days", str(args.days),
                        "--calls-per-day", str(args.calls_per_day), "--queues", "10",
                        "--agents", "50"], check=True, stdout=subprocess.DEVNULL)
        with EmbeddedPostgres(tmp / "pg", fast=True) as pg:
            pg.create_database("pbx")
            pg.create_database("wh")
            engine = create_engine(pg.url("pbx"))
            with engine.begin() as conn:
                cursor = conn.connection.dbapi_connection.cursor()
                for schema in ("a", "b"):
                    conn.exec_driver_sql(
                        f'CREATE SCHEMA {schema}; CREATE TABLE {schema}.queue_log ("time" timestamptz, '
                        "callid varchar(80), queuename varchar(256), agent text, event varchar(20), "
                        "data1 text, data2 text, data3 text, data4 text, data5 text, "
                        "id serial PRIMARY KEY)")
                    with open(data / "queue_log.csv", "rb") as fh:
                        cursor.copy_expert(
                            f'COPY {schema}.queue_log ("time", callid, queuename, agent, event, '
                            "data1, data2, data3, data4, data5) FROM STDIN WITH (FORMAT csv, "
                            "HEADER true, NULL '\\N')", fh)
                    conn.exec_driver_sql(f'CREATE INDEX ON {schema}.queue_log ("time")')
                rows = conn.exec_driver_sql("SELECT count(*) FROM a.queue_log").scalar()
            engine.dispose()
            os.environ["BENCH_PBX_URL"] = pg.url("pbx")
            sources = tmp / "sources.yml"
            sources.write_text(
                "- {name: a, kind: wazo, url: {env: BENCH_PBX_URL}, table: a.queue_log}\n"
                "- {name: b, kind: wazo, url: {env: BENCH_PBX_URL}, table: b.queue_log}\n")
            first = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
            last = first + dt.timedelta(days=args.days) - dt.timedelta(hours=1)
            until = (last + dt.timedelta(hours=1)).isoformat()
            defs = build_definitions(
                partitions=hourly_partitions(start=first, end=last + dt.timedelta(hours=1)),
                source=SourceSet(sources_file=str(sources), until=until),
                warehouse=Warehouse(url=pg.url("wh")))
            instance = dg.DagsterInstance.ephemeral()
            job = defs.resolve_job_def(HOURLY_JOB)
            assert defs.resolve_job_def(DIMENSIONS_JOB).execute_in_process(
                instance=instance, run_config=QUIET).success

            def run(start: dt.datetime, end: dt.datetime, **tags) -> tuple[float, float]:
                began = time.perf_counter()
                result = job.execute_in_process(instance=instance, run_config=QUIET, tags={
                    "dagster/asset_partition_range_start": start.strftime(KEY_FORMAT),
                    "dagster/asset_partition_range_end": end.strftime(KEY_FORMAT), **tags})
                wall = time.perf_counter() - began
                assert result.success
                return wall, step_seconds(instance, result.run_id).get("queue_log", 0.0)

            began = time.perf_counter()
            run(first, last)
            print(f"{rows} rows per source x 2 sources, {args.days} days; backfill of both: "
                  f"{time.perf_counter() - began:.1f} s")
            mid = first + dt.timedelta(days=args.days // 2)
            cases = {"hour": (mid + dt.timedelta(hours=10), mid + dt.timedelta(hours=10)),
                     "day": (mid, mid + dt.timedelta(hours=23))}
            for case, (start, end) in cases.items():
                for label, tags in (("tagged (a only)", {SOURCE_TAG: "a"}), ("untagged (a+b)", {})):
                    walls, copies = zip(*(run(start, end, **tags) for _ in range(args.repeat)))
                    print(f"{case:4} {label:16} wall median {statistics.median(walls):6.2f} s "
                          f"(range {min(walls):.2f}-{max(walls):.2f}); queue_log step median "
                          f"{statistics.median(copies):6.2f} s (range {min(copies):.2f}-{max(copies):.2f})")
            dispose_engines()
    return 0


if __name__ == "__main__":
    sys.exit(main())
