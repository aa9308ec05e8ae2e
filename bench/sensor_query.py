#!/usr/bin/env python3
"""The sensor's question to the source, timed alone: touched_hours.sql over the first N rows
of the 30-day set in a stand-in Wazo source (timestamptz time column, Wazo >= 20.14), and
the same with the guarded text reading old Wazo's text column needs (--text-time).

    .venv/bin/python bench/sensor_query.py [--batches 50000,200000,400000] [--text-time]

Printed per batch: seconds, tuples returned, the latest hour touched (agents still logged in
at the set's end touch every hour up to now). Figures, not assertions.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import first_start  # noqa: E402  _source(): the stand-in asterisk database and its rows
import run as bench  # noqa: E402  generate()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="50000,200000,400000")
    parser.add_argument("--text-time", action="store_true",
                        help="read the time column as old Wazo's text (the guarded cast)")
    args = parser.parse_args()
    from sqlalchemy import create_engine

    from stat_pipeline import touched_hours
    from stat_pipeline.warehouse.embedded import EmbeddedPostgres

    if args.text_time:  # what a text column costs, on the same rows
        touched_hours.time_column_is_text = lambda cursor, table: True
    data = bench.generate("30d")
    with tempfile.TemporaryDirectory(prefix="stat-sensor-query-") as tmp:
        with EmbeddedPostgres(Path(tmp) / "pg") as pg:
            engine = create_engine(first_start._source(pg, data))
            for limit in (int(b) for b in args.batches.split(",")):
                with engine.begin() as conn:
                    started = time.perf_counter()
                    rows = touched_hours.touched(conn.connection.dbapi_connection, "queue_log",
                                                 0, limit, 24)
                    wall = time.perf_counter() - started
                print(f"batch {limit}: {wall:.2f} s, {len(rows)} tuples, latest hour "
                      f"{max(h for _, h, _ in rows if h)}", flush=True)
            engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
