"""How long one catch-up chunk takes: the 30-day set computed in chunks of N hours (the same
overlapping chunks as the sensor's catch-up, automation.chunk_ranges), on the bulk
PostgreSQL instance and on Dagster's in-memory instance; prints each run's wall time.

    .venv/bin/python bench/chunk_sizes.py [--hours 336,720] [--instance bulk|memory]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", default="336,720")
    parser.add_argument("--instance", default="bulk", choices=["bulk", "memory"])
    args = parser.parse_args()
    import dagster as dg

    from run import generate  # bench/run.py: the issue-8 30-day set
    from stat_pipeline import compute
    from stat_pipeline.definitions import HOURLY_JOB
    from stat_pipeline.instance import bulk_instance
    from stat_pipeline.resources import dispose_engines
    from stat_pipeline.warehouse.embedded import EmbeddedPostgres

    data = generate("30d")
    for hours in (int(h) for h in args.hours.split(",")):
        compute.COMPUTE_CHUNK_HOURS = hours
        with tempfile.TemporaryDirectory(prefix="bench-chunks-") as tmp:
            with EmbeddedPostgres(Path(tmp) / "pg", fast=True) as pg:
                pg.create_database("stat")
                pg.create_database("dagster")
                try:
                    if args.instance == "bulk":
                        ctx = bulk_instance(pg.url("dagster"), Path(tmp) / "home")
                    else:
                        ctx = dg.DagsterInstance.ephemeral()
                    with ctx as instance:
                        began = time.monotonic()
                        result = compute.compute_into(
                            pg.url("stat"), data / "queue_log.csv", Path(tmp) / "out",
                            data / "confd.json", instance=instance)
                        total = time.monotonic() - began
                        runs = [r for r in instance.get_run_records()
                                if r.dagster_run.job_name in (HOURLY_JOB, compute.COMPUTE_FIRST_JOB)]
                        walls = sorted(round(r.end_time - r.start_time, 1) for r in runs
                                       if r.end_time and r.start_time)
                finally:
                    dispose_engines()
        print(f"{args.instance} instance, chunks of {hours} h: {result.runs} run(s) for "
              f"{result.hours} hours; run walls {walls} s; compute total {total:.1f} s",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
