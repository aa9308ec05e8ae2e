#!/usr/bin/env python3
"""Scale figures for docs/scale.md (issue 17): figures, not assertions.

    .venv/bin/python bench/scale.py history [--calls-per-day 2000] [--repeat 3] [--unpartitioned]
    .venv/bin/python bench/scale.py load [--sources 5] [--calls-per-day 10000] [--repeat 3]

history  Is one hour's work independent of the history behind it? One year of queue_log,
         ending yesterday
         (../shared/tools/gen_queue_log.py, seeded) in a source table; two warehouses on one
         embedded PostgreSQL: one backfilled with the last 30 days only, one with the whole
         year (each one range run on the bulk instance, as `stat-pipeline compute` does).
         Then the same hour (the busiest of the last two days) re-materialized --repeat
         times in each: wall time of the run and SQL time inside it (every warehouse
         statement timed at the driver), medians. --unpartitioned: the same without
         migration 0018 (the tables as before issue 17), for the comparison.
history  runs each variant in a fresh process, so that both start alike.

load     S PBXs x C calls a day, one day (the day before yesterday: the warehouse has the
         months a live one has), each PBX its own seeded log, source
         database and warehouse database, all on ONE PostgreSQL server (the shared warehouse
         CPU), one Dagster instance in PostgreSQL. Every hour of the day is run for every PBX
         as its own one-hour run (what the sensor launches), in hour order: wall and SQL time
         per run, source rows per run, Dagster instance events per run (rows added to
         event_logs). --repeat: the day again on fresh databases; medians of the repeats.

Prints one JSON object per variant/repeat and the summary; --json FILE keeps them.
"""
import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
sys.path.insert(0, str(PROJECT))
GEN = PROJECT.parent / "shared" / "tools" / "gen_queue_log.py"


def generate(name: str, args: list[str]) -> Path:
    out = HERE / ".data" / name
    if not (out / "queue_log.csv").exists():
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(GEN), "--out", str(out), *args], check=True,
                       stdout=subprocess.DEVNULL)
    return out


def load_source(source_url: str, data: Path):
    """A Wazo-like source table holding the generated rows; (first, last) time."""
    from sqlalchemy import create_engine, text

    engine = create_engine(source_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            'CREATE TABLE queue_log ("time" timestamptz, callid varchar(80), '
            "queuename varchar(256), agent text, event varchar(20), data1 text, "
            "data2 text, data3 text, data4 text, data5 text, id serial PRIMARY KEY)")
        cursor = conn.connection.dbapi_connection.cursor()
        with open(data / "queue_log.csv", "rb") as fh:
            cursor.copy_expert(
                'COPY queue_log ("time", callid, queuename, agent, event, data1, data2, '
                "data3, data4, data5) FROM STDIN WITH (FORMAT csv, HEADER true, NULL '\\N')", fh)
        conn.exec_driver_sql('CREATE INDEX ON queue_log ("time"); ANALYZE queue_log')
        first, last = conn.execute(text('SELECT min("time"), max("time") FROM queue_log')).one()
    engine.dispose()
    return first, last


class SqlTimer:
    """Seconds spent in warehouse statements (at the driver), per engine."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.reset()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, params, context, many):
        conn.info["t0"] = time.perf_counter()

    def _after(self, conn, cursor, statement, params, context, many):
        took = time.perf_counter() - conn.info.pop("t0", time.perf_counter())
        self.seconds += took
        self.statements += 1
        key = " ".join(statement.split())[:90]
        self.by_statement[key] = self.by_statement.get(key, 0.0) + took

    def reset(self):
        self.seconds, self.statements, self.by_statement = 0.0, 0, {}

    def top(self, n: int = 8) -> list:
        ranked = sorted(self.by_statement.items(), key=lambda kv: -kv[1])[:n]
        return [[round(1000 * took, 1), key] for key, took in ranked]


def without_partitions():
    """The warehouse as before issue 17: migration 0018 left out, writes without it."""
    from stat_pipeline.warehouse import migrate, writes

    every = migrate.migration_files
    migrate.migration_files = lambda: [m for m in every() if not m[0].startswith("0018")]
    writes.prepare_hours = lambda conn, start, end: None
    return every


def history_variant(calls_per_day: int, repeat: int, partitioned: bool) -> dict:
    every_migration = None if partitioned else without_partitions()
    import dagster as dg
    from sqlalchemy import text

    from stat_pipeline.definitions import HOURLY_JOB, QUIET, build_definitions
    from stat_pipeline.instance import bulk_instance, run_job
    from stat_pipeline.partitions import KEY_FORMAT, hour_floor, hourly_partitions
    from stat_pipeline.resources import Warehouse, WazoConfig, warehouse_engine
    from stat_pipeline.sources import PostgresQueueLogSource
    from stat_pipeline.warehouse.embedded import EmbeddedPostgres

    # the year ends yesterday: the warehouse then has the months a live one has (the
    # migration creates this month and the next; the months are contiguous)
    start_date = (dt.date.today() - dt.timedelta(days=366)).isoformat()
    data = generate(f"scale-year-{calls_per_day}-{start_date}",
                    ["--days", "365", "--calls-per-day", str(calls_per_day), "--queues", "10",
                     "--agents", "50", "--seed", "8", "--start-date", start_date])
    figures: dict = {"variant": "partitioned" if partitioned else "unpartitioned",
                     "calls_per_day": calls_per_day}
    with tempfile.TemporaryDirectory(prefix="stat-scale-") as tmp, ExitStack() as stack:
        tmp = Path(tmp)
        pg = stack.enter_context(EmbeddedPostgres(tmp / "pg"))
        pg.create_database("asterisk")
        source_url = pg.url("asterisk")
        first, last = load_source(source_url, data)
        last_day = hour_floor(last).replace(hour=0)
        # the busiest hour of the last two days (the log's last rows may be a night shift's)
        from sqlalchemy import create_engine

        source = create_engine(source_url)
        with source.connect() as conn:
            hour = conn.execute(text(
                "SELECT date_trunc('hour', \"time\") FROM queue_log "
                "WHERE \"time\" >= :since GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"),
                {"since": last_day - dt.timedelta(days=2)}).scalar()
        source.dispose()
        with_rows = {}
        for history, start in (("month", last_day - dt.timedelta(days=29)),
                               ("year", hour_floor(first))):
            pg.create_database(f"stat_{history}")
            pg.create_database(f"dagster_{history}")
            url = pg.url(f"stat_{history}")
            engine = warehouse_engine(url)
            timer = SqlTimer(engine)
            end = last_day + dt.timedelta(days=1)
            defs = build_definitions(
                partitions=hourly_partitions(start=start, end=end),
                source=PostgresQueueLogSource(url=source_url), warehouse=Warehouse(url=url),
                wazo_config=WazoConfig(confd_json=str(data / "confd.json")))
            job = defs.resolve_job_def(HOURLY_JOB)
            instance = stack.enter_context(bulk_instance(pg.url(f"dagster_{history}"),
                                                         tmp / f"home_{history}"))
            started = time.perf_counter()
            tags = {"dagster/asset_partition_range_start": start.strftime(KEY_FORMAT),
                    "dagster/asset_partition_range_end":
                        (end - dt.timedelta(hours=1)).strftime(KEY_FORMAT)}
            assert run_job(job, instance, QUIET, tags).is_success
            figures[f"{history}_backfill_s"] = round(time.perf_counter() - started, 1)
            with engine.connect() as conn:
                figures[f"{history}_queue_log_rows"] = conn.execute(
                    text("SELECT count(*) FROM queue_log")).scalar()
                with_rows[history] = conn.execute(text(
                    'SELECT count(*) FROM queue_log WHERE "time" >= :h '
                    "AND \"time\" < :h + interval '1 hour'"), {"h": hour}).scalar()
                conn.exec_driver_sql("ANALYZE")
            walls, sqls = [], []
            for _ in range(repeat):
                timer.reset()
                started = time.perf_counter()
                assert job.execute_in_process(instance=instance, run_config=QUIET,
                                              partition_key=hour.strftime(KEY_FORMAT)).success
                walls.append(time.perf_counter() - started)
                sqls.append(timer.seconds)
            figures[f"{history}_hour_wall_s"] = [round(w, 3) for w in walls]
            figures[f"{history}_hour_sql_s"] = [round(s, 3) for s in sqls]
            figures[f"{history}_hour_sql_median_s"] = round(statistics.median(sqls), 3)
            figures[f"{history}_hour_top_statements_ms"] = timer.top()
            figures[f"{history}_hour_wall_median_s"] = round(statistics.median(walls), 3)
            if every_migration is not None and history == "year":
                # what migration 0018 costs on a year of history (one transaction)
                from stat_pipeline.warehouse import migrate

                migrate.migration_files = every_migration
                started = time.perf_counter()
                assert migrate.migrate(engine) == ["0018_monthly_partitions"]
                figures["migration_0018_year_s"] = round(time.perf_counter() - started, 1)
            engine.dispose()
        assert with_rows["month"] == with_rows["year"], with_rows
        figures["hour"] = hour.isoformat()
        figures["hour_source_rows"] = with_rows["year"]
    return figures


def load_day(sources: int, calls_per_day: int) -> dict:
    import dagster as dg
    from sqlalchemy import text

    from stat_pipeline.definitions import HOURLY_JOB, QUIET, build_definitions
    from stat_pipeline.instance import bulk_instance
    from stat_pipeline.partitions import KEY_FORMAT, hourly_partitions
    from stat_pipeline.resources import Warehouse, WazoConfig, warehouse_engine
    from stat_pipeline.sources import PostgresQueueLogSource
    from stat_pipeline.warehouse.embedded import EmbeddedPostgres

    # the day before yesterday: a live warehouse's months (see history_variant)
    today = dt.date.today()
    day = dt.datetime(today.year, today.month, today.day, tzinfo=dt.timezone.utc) \
        - dt.timedelta(days=2)
    runs = []
    with tempfile.TemporaryDirectory(prefix="stat-load-") as tmp, ExitStack() as stack:
        tmp = Path(tmp)
        pg = stack.enter_context(EmbeddedPostgres(tmp / "pg"))
        pg.create_database("dagster")
        instance = stack.enter_context(bulk_instance(pg.url("dagster"), tmp / "home"))
        pbx = []
        for i in range(sources):
            data = generate(f"scale-pbx{i}-{calls_per_day}-{day.date().isoformat()}",
                            ["--days", "1", "--calls-per-day", str(calls_per_day),
                             "--queues", "10", "--agents", "60", "--seed", str(100 + i),
                             "--start-date", day.date().isoformat()])
            pg.create_database(f"pbx{i}")
            pg.create_database(f"stat{i}")
            load_source(pg.url(f"pbx{i}"), data)
            engine = warehouse_engine(pg.url(f"stat{i}"))
            defs = build_definitions(
                partitions=hourly_partitions(start=day, end=day + dt.timedelta(days=1)),
                source=PostgresQueueLogSource(url=pg.url(f"pbx{i}")),
                warehouse=Warehouse(url=pg.url(f"stat{i}")),
                wazo_config=WazoConfig(confd_json=str(data / "confd.json")))
            pbx.append((defs.resolve_job_def(HOURLY_JOB), SqlTimer(engine),
                        pg.url(f"pbx{i}")))

        from sqlalchemy import create_engine

        dagster_db = create_engine(pg.url("dagster"))
        sources_db = {i: create_engine(url) for i, (_, _, url) in enumerate(pbx)}

        def events() -> int:
            with dagster_db.connect() as conn:
                return conn.execute(text("SELECT count(*) FROM event_logs")).scalar()

        started_day = time.perf_counter()
        for h in range(24):
            hour = day + dt.timedelta(hours=h)
            for i, (job, timer, _url) in enumerate(pbx):
                with sources_db[i].connect() as conn:
                    rows = conn.execute(text(
                        'SELECT count(*) FROM queue_log WHERE "time" >= :h '
                        "AND \"time\" < :h + interval '1 hour'"), {"h": hour}).scalar()
                before = events()
                timer.reset()
                started = time.perf_counter()
                assert job.execute_in_process(instance=instance, run_config=QUIET,
                                              partition_key=hour.strftime(KEY_FORMAT)).success
                runs.append({"hour": h, "pbx": i, "rows": rows,
                             "wall_s": time.perf_counter() - started, "sql_s": timer.seconds,
                             "events": events() - before})
        day_s = time.perf_counter() - started_day
        for engine in [dagster_db, *sources_db.values()]:
            engine.dispose()
    total_rows = sum(r["rows"] for r in runs)
    busy = [r for r in runs if r["rows"] > 0]
    peak_hour = max(range(24), key=lambda h: sum(r["rows"] for r in runs if r["hour"] == h))
    peak = [r for r in runs if r["hour"] == peak_hour]
    return {
        "sources": sources, "calls_per_day": calls_per_day, "runs": len(runs),
        "day_s": round(day_s, 1), "source_rows": total_rows,
        "sql_s": round(sum(r["sql_s"] for r in runs), 2),
        "wall_s": round(sum(r["wall_s"] for r in runs), 2),
        "run_wall_median_s": round(statistics.median(r["wall_s"] for r in runs), 3),
        "run_sql_median_s": round(statistics.median(r["sql_s"] for r in runs), 3),
        "events_per_run_median": statistics.median(r["events"] for r in runs),
        "events_total": sum(r["events"] for r in runs),
        "peak_hour": peak_hour, "peak_rows_per_pbx": round(statistics.mean(r["rows"] for r in peak)),
        "peak_run_sql_median_s": round(statistics.median(r["sql_s"] for r in peak), 3),
        "peak_run_wall_median_s": round(statistics.median(r["wall_s"] for r in peak), 3),
        # SQL = fixed part per run + part per row: least squares over the runs holding rows
        **fit([r["rows"] for r in busy], [r["sql_s"] for r in busy]),
    }


def fit(xs: list[float], ys: list[float]) -> dict:
    slope, intercept = statistics.linear_regression(xs, ys)
    return {"sql_fixed_per_run_ms": round(1000 * intercept, 1),
            "sql_per_source_row_us": round(1e6 * slope, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["history", "load", "_history_variant"])
    parser.add_argument("--calls-per-day", type=int)
    parser.add_argument("--sources", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--unpartitioned", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    load = os.getloadavg()
    if args.mode == "_history_variant":
        print(json.dumps(history_variant(args.calls_per_day, args.repeat,
                                         not args.unpartitioned)))
        return 0
    if args.mode == "history":
        variants = [[]] + ([["--unpartitioned"]] if args.unpartitioned else [])
        for extra in variants:
            done = subprocess.run([sys.executable, __file__, "_history_variant",
                                   "--calls-per-day", str(args.calls_per_day or 2000),
                                   "--repeat", str(args.repeat), *extra],
                                  check=True, capture_output=True, text=True)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), flush=True)
    else:
        for _ in range(args.repeat):
            results.append(load_day(args.sources, args.calls_per_day or 10000))
            print(json.dumps(results[-1]), flush=True)
        keys = [k for k, v in results[0].items() if isinstance(v, (int, float))]
        summary = {k: statistics.median(r[k] for r in results) for k in keys}
        print(json.dumps({"median_of_repeats": summary}))
        results.append({"median_of_repeats": summary})
    results.append({"loadavg_at_start": load, "loadavg_at_end": os.getloadavg()})
    print(json.dumps(results[-1]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
