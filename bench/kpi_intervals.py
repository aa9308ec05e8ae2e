#!/usr/bin/env python3
"""Benchmark: the by-interval KPI reports (the API's /queues/{id}/statistics,
/queues/{id}/statistics/qos and /agents/{id}/statistics with an interval; the dashboard's
grains), before and after migration 0015 made them set-based.

    .venv/bin/python bench/kpi_intervals.py [--month-data DIR] [--json FILE]

On one embedded PostgreSQL, two warehouses per data set hold the same tables: "per-interval"
has the migrations up to 0014 (each interval is one call of the per-period function),
"set-based" has them all. Each case calls stat_pipeline.serving.kpi as the API does (SQL and
the JSON items), 3 times unless the first call takes more than 10 s, and prints the best and
the median wall times; it also checks that both warehouses give the same items.

Data sets:
  week    the golden set week_s1's tables (../shared/golden/week_s1/expected/single);
  month   a 30-day set's tables: the output folder of
              stat-pipeline compute bench/.data/30d/queue_log.csv --config bench/.data/30d/confd.json \
                  --until 2024-01-31T01:00:00+00:00 --out DIR
          (bench/run.py generates bench/.data/30d), given with --month-data DIR.

Not part of the test suite: figures, not assertions.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
sys.path.insert(0, str(PROJECT))

from stat_pipeline.serving import kpi  # noqa: E402
from stat_pipeline.warehouse.embedded import EmbeddedPostgres  # noqa: E402
from stat_pipeline.warehouse.migrate import migration_files  # noqa: E402
from stat_pipeline_tests.golden import GOLDEN  # noqa: E402
from stat_pipeline_tests.warehouse_tables import load_tables  # noqa: E402

SET_BASED_MIGRATION = "0015_kpi_set_based"


def warehouse(pg: EmbeddedPostgres, name: str, *, set_based: bool, folder: Path, confd: Path) -> sa.Engine:
    pg.create_database(name)
    engine = sa.create_engine(pg.url(name))
    with engine.begin() as conn:
        for version, sql in migration_files():
            if set_based or version < SET_BASED_MIGRATION:
                conn.exec_driver_sql(sql)
        load_tables(conn, folder, confd)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    return engine


def timed(engine: sa.Engine, call) -> tuple[list[float], object]:
    walls, result = [], None
    for _ in range(3):
        with engine.connect() as conn:
            began = time.perf_counter()
            result = call(conn)
            walls.append(time.perf_counter() - began)
        if walls[0] > 10:
            break
    return walls, result


def cases(start: datetime, zone: str, days: int):
    end = start + timedelta(days=days)
    common = {"start": start, "end": end, "timezone": zone}
    hours = {"day_start_hour": 8, "day_end_hour": 17, "week_days": (1, 2, 3, 4, 5)}
    return [
        ("queue 1 by hour", lambda c: kpi.queue_statistics(c, **common, interval="hour", qos_threshold=20, queue_id=1)),
        ("queue 1 by hour, 8-17 Mon-Fri", lambda c: kpi.queue_statistics(
            c, **common, interval="hour", qos_threshold=20, queue_id=1, **hours)),
        ("queue 1 by day", lambda c: kpi.queue_statistics(c, **common, interval="day", qos_threshold=20, queue_id=1)),
        ("queue 1 QoS by hour", lambda c: kpi.queue_qos(c, **common, interval="hour", queue_id=1,
                                                         qos_thresholds=(10, 20, 60))),
        ("agent by hour", lambda c: kpi.agent_statistics(c, **common, interval="hour", agent_id=AGENT_ID[0])),
        ("agent by day", lambda c: kpi.agent_statistics(c, **common, interval="day", agent_id=AGENT_ID[0])),
        # the SQL form a BI tool runs: every queue, one series each
        ("every queue by hour (SQL)", lambda c: c.execute(sa.text(
            "SELECT * FROM stat_queue_kpi_by_interval(:start, :end, 'hour', :timezone, p_qos_threshold => 20)"),
            common).all()),
    ]


AGENT_ID = [1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--month-data", type=Path, help="folder of a 30-day set's tables (see above)")
    parser.add_argument("--month-confd", type=Path, default=HERE / ".data" / "30d" / "confd.json")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    week = GOLDEN / "week_s1"
    data_sets = [("week", week / "expected" / "single", week / "confd.json",
                  datetime(2024, 3, 4, tzinfo=ZoneInfo("Europe/Paris")), "Europe/Paris", 7)]
    if args.month_data:
        data_sets.append(("month", args.month_data, args.month_confd,
                          datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Paris")), "Europe/Paris", 31))

    figures = []
    with tempfile.TemporaryDirectory(prefix="kpi-bench-") as tmp, EmbeddedPostgres(Path(tmp) / "pg", fast=True) as pg:
        for label, folder, confd, start, zone, days in data_sets:
            AGENT_ID[0] = json.loads(confd.read_text())["agents"][0]["id"]
            engines = {kind: warehouse(pg, f"{label}_{kind.replace('-', '_')}", set_based=kind == "set-based",
                                       folder=folder, confd=confd)
                       for kind in ("per-interval", "set-based")}
            for name, call in cases(start, zone, days):
                row = {"data": f"{label} ({days} days)", "case": name}
                results = {}
                for kind, engine in engines.items():
                    walls, results[kind] = timed(engine, call)
                    row[kind] = {"best_s": round(min(walls), 3), "median_s": round(statistics.median(walls), 3),
                                 "runs": len(walls)}
                row["items"] = len(results["set-based"])
                row["same_items"] = results["per-interval"] == results["set-based"]
                figures.append(row)
                print(f"{row['data']:<16} {name:<32} items {row['items']:>4}  "
                      f"per-interval {row['per-interval']['best_s']:>7.3f} s (median {row['per-interval']['median_s']:.3f})  "
                      f"set-based {row['set-based']['best_s']:>6.3f} s (median {row['set-based']['median_s']:.3f})  "
                      f"same items: {row['same_items']}", flush=True)
            for engine in engines.values():
                engine.dispose()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0 if all(r["same_items"] for r in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
