#!/usr/bin/env python3
"""Where the SQL time of a range run goes, statement by statement, against the floor.

    .venv/bin/python bench/sql_steps.py [--size 30d] [--repeat 3] [--top 15] [--keep DIR]

Loads bench/run.py's generated set into a Wazo-like source table of a throwaway embedded
PostgreSQL, runs the whole range as ONE Dagster run on the bulk instance (as
``stat-pipeline compute`` and bench/run.py do) ``--repeat`` times, each into a fresh
warehouse database, and prints per run: the SQL time (every statement timed at the
driver, and the server process's CPU time for it, which hardly moves with the machine's
load), the time per asset step (its statements), the largest statements (named after
their .sql file and ``-- name:``), and the floor (bench/floor.sql: a rough set-based
pairing and hourly aggregation, plus the COPY of the rows), with our SQL as a multiple of
it. The medians over the repeats close the output. ``--keep DIR``: the cluster in DIR is
kept (with the last warehouse, database ``stat_<n>``) for EXPLAIN ANALYZE by hand.

Figures, not assertions: run it 3x on a loaded machine and compare medians.
"""
import argparse
import datetime as dt
import os
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

ASSET_OF_FILE = {"queue_log": "queue_log", "classify_calls": "classified_calls",
                 "calls": "classified_calls / stat_call_on_queue",
                 "classify_rejects": "classified_calls",
                 "stat_call_on_queue": "stat_call_on_queue", "agents": "stat_agent_periodic",
                 "stat_queue_periodic": "stat_queue_periodic", "dimensions": "dimensions"}


def statement_names() -> dict[str, str]:
    """Text of every statement of the package's .sql files -> 'file:name'."""
    from stat_pipeline.sql import queries

    names = {}
    for path in (HERE.parent / "stat_pipeline").rglob("*.sql"):
        if "migrations" in path.parts:
            continue
        for name, clause in queries(path).items():
            names[_normal(clause.text)] = f"{path.stem}:{name}" if name != path.stem else path.stem
    return names


def _normal(statement: str) -> str:
    """A statement as text() wrote it (``:name`` parameters) and as the driver got it
    (``%(name)s``) compare equal once normalized."""
    return " ".join(re.sub(r"%\((\w+)\)s", r":\1", statement).replace("%%", "%").split())


def floor_seconds(source_url: str, data: Path) -> tuple[float, float]:
    """(pairing + hourly aggregation, COPY of the rows) on the source, in seconds."""
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(source_url)
    conn = psycopg2.connect(dbname=url.database, user=url.username, host=url.query["host"],
                            port=url.query.get("port", 5432))
    try:
        cur = conn.cursor()
        cur.execute("ANALYZE queue_log")
        started = time.perf_counter()
        cur.execute((HERE / "floor.sql").read_text())
        cur.fetchall()
        pairing = time.perf_counter() - started
        cur.execute('CREATE TEMP TABLE floor_copy AS SELECT "time", callid, queuename, agent, '
                    "event, data1, data2, data3, data4, data5 FROM queue_log LIMIT 0")
        started = time.perf_counter()
        with open(data / "queue_log.csv", "rb") as fh:
            cur.copy_expert('COPY floor_copy ("time", callid, queuename, agent, event, data1, '
                            "data2, data3, data4, data5) FROM STDIN WITH (FORMAT csv, "
                            "HEADER true, NULL '\\N')", fh)
        copy = time.perf_counter() - started
        conn.rollback()
    finally:
        conn.close()
    return pairing, copy


def one_run(pg, source_url, data, first_hour, last_hour, n: int, names: dict[str, str]) -> dict:
    from sqlalchemy import event

    from run import step_seconds
    from stat_pipeline.definitions import HOURLY_JOB, QUIET, build_definitions
    from stat_pipeline.instance import bulk_instance, run_job
    from stat_pipeline.partitions import KEY_FORMAT, hourly_partitions
    from stat_pipeline.resources import Warehouse, WazoConfig, dispose_engines, warehouse_engine
    from stat_pipeline.sources import PostgresQueueLogSource

    pg.create_database(f"stat_{n}")
    pg.create_database(f"dagster_{n}")
    wh_url = pg.url(f"stat_{n}")
    per_statement: dict[str, float] = defaultdict(float)
    cpu_per_statement: dict[str, float] = defaultdict(float)

    def before(conn, cursor, statement, params, context, many):
        if "backend" not in conn.info:
            cur = conn.connection.dbapi_connection.cursor()
            cur.execute("SELECT pg_backend_pid()")
            conn.info["backend"] = cur.fetchone()[0]
        conn.info["cpu0"] = _backend_cpu(conn.info["backend"])
        conn.info["t0"] = time.perf_counter()

    def after(conn, cursor, statement, params, context, many):
        key = names.get(_normal(statement))
        if key is None:
            key = "other: " + " ".join(statement.split())[:60]
        per_statement[key] += time.perf_counter() - conn.info.pop("t0", time.perf_counter())
        cpu_per_statement[key] += _backend_cpu(conn.info["backend"]) - conn.info.pop("cpu0")

    wh_engine = warehouse_engine(wh_url)
    event.listen(wh_engine, "before_cursor_execute", before)
    event.listen(wh_engine, "after_cursor_execute", after)
    defs = build_definitions(
        partitions=hourly_partitions(start=first_hour, end=last_hour + dt.timedelta(hours=1)),
        source=PostgresQueueLogSource(url=source_url), warehouse=Warehouse(url=wh_url),
        wazo_config=WazoConfig(confd_json=str(data / "confd.json")))
    job = defs.resolve_job_def(HOURLY_JOB)
    tags = {"dagster/asset_partition_range_start": first_hour.strftime(KEY_FORMAT),
            "dagster/asset_partition_range_end": last_hour.strftime(KEY_FORMAT)}
    with tempfile.TemporaryDirectory(prefix="stat-steps-home-") as home:
        with bulk_instance(pg.url(f"dagster_{n}"), Path(home)) as instance:
            started = time.perf_counter()
            run = run_job(job, instance, QUIET, tags)
            wall = time.perf_counter() - started
            assert run.is_success, run.status
            steps = step_seconds(instance, run.run_id)
    dispose_engines()
    wh_engine.dispose()
    return {"wall": wall, "sql": sum(per_statement.values()), "steps": steps,
            "statements": dict(per_statement), "sql_cpu": sum(cpu_per_statement.values()),
            "cpu": dict(cpu_per_statement)}


_TICK = os.sysconf("SC_CLK_TCK")


def _backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) the server process ``pid`` has used: unlike the wall
    time, it hardly moves when other processes share the cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def main() -> int:
    from run import generate, load_source
    from stat_pipeline.partitions import hour_floor
    from stat_pipeline.warehouse.embedded import EmbeddedPostgres

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="30d")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--keep", help="keep the cluster in this folder (for EXPLAIN by hand)")
    args = parser.parse_args()

    data = generate(args.size)
    names = statement_names()
    with tempfile.TemporaryDirectory(prefix="stat-steps-") as tmp:
        pg_dir = Path(args.keep) if args.keep else Path(tmp) / "pg"
        with EmbeddedPostgres(pg_dir) as pg:
            for db in ("asterisk",):
                pg.drop_database(db)
            for k in range(args.repeat):
                pg.drop_database(f"stat_{k}")
                pg.drop_database(f"dagster_{k}")
            pg.create_database("asterisk")
            source_url = pg.url("asterisk")
            first, last = load_source(source_url, data)
            first_hour, last_hour = hour_floor(first), hour_floor(last)
            runs = []
            for n in range(args.repeat):
                load = os.getloadavg()[0]
                pairing, copy = floor_seconds(source_url, data)
                r = one_run(pg, source_url, data, first_hour, last_hour, n, names)
                r.update(floor=pairing + copy, pairing=pairing, copy=copy, load=load)
                runs.append(r)
                print(f"run {n + 1}: load {load:.2f}, wall {r['wall']:.2f} s, SQL {r['sql']:.2f} s "
                      f"(server CPU {r['sql_cpu']:.2f} s), "
                      f"floor {r['floor']:.2f} s (pairing {pairing:.2f} + COPY {copy:.2f}): "
                      f"SQL = {r['sql'] / r['floor']:.1f} x floor", flush=True)
                for key, s in sorted(r["statements"].items(), key=lambda kv: -kv[1])[:args.top]:
                    print(f"    {s:7.2f} s  (CPU {r['cpu'].get(key, 0):5.2f})  {key}")
                print(f"    steps: {r['steps']}", flush=True)
                if not args.keep or n < args.repeat - 1:
                    pg.drop_database(f"stat_{n}")
                pg.drop_database(f"dagster_{n}")

    def med(values):
        return statistics.median(values)

    print(f"\nmedian of {len(runs)} ({args.size}): SQL {med([r['sql'] for r in runs]):.2f} s "
          f"(server CPU {med([r['sql_cpu'] for r in runs]):.2f} s), "
          f"wall {med([r['wall'] for r in runs]):.2f} s, floor {med([r['floor'] for r in runs]):.2f} s "
          f"(pairing {med([r['pairing'] for r in runs]):.2f}, COPY {med([r['copy'] for r in runs]):.2f}), "
          f"SQL = {med([r['sql'] / r['floor'] for r in runs]):.1f} x floor; "
          f"load at starts {', '.join(format(r['load'], '.2f') for r in runs)}")
    steps = sorted({s for r in runs for s in r["steps"]})
    for s in steps:
        print(f"    step {s}: {med([r['steps'].get(s, 0) for r in runs]):.2f} s")
    keys = sorted({k for r in runs for k in r["statements"]},
                  key=lambda k: -med([r["statements"].get(k, 0) for r in runs]))
    for k in keys[:args.top]:
        print(f"    {med([r['statements'].get(k, 0) for r in runs]):7.2f} s  "
              f"(CPU {med([r['cpu'].get(k, 0) for r in runs]):5.2f})  {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
