#!/usr/bin/env python3
"""First start of the sensor on history, the way a new user meets it (issue 13 item 4).

    .venv/bin/python bench/first_start.py [--case 30d,day] [--timeout 900]

Each case starts `stat-pipeline serve` (webserver, daemon, code server, run workers; the
instance in a `dagster` database of an embedded PostgreSQL) on a stand-in Wazo `asterisk`
database read through a read-only role (demo.sql's stand-in), holding the rows BEFORE the
first start, with STAT_PARTITIONS_START unset (the first partition comes from the source):

  30d   the benchmark's 30-day set (bench/run.py, gen_queue_log.py; 320,255 rows)
  day   the demo's sample day (day1_s1, 1,239 rows, 2024-03-04, not shifted) with the last
        logoff of one agent removed: an agent never logged off, whose state stays open until
        now (issue 13: 36 min from tick to success before the catch-up chunks)

and measures from the sensor queue_log_new_rows's first tick (its timestamp in the
instance's job_ticks) until every hour holding rows has a materialization of the last asset
of the chain (stat_queue_periodic, stat_agent_periodic) and no run of the hourly job is
queued or going. Printed: the first tick's message, runs (count, chunk tags, status), the
hours materialized, and the walls: serve start -> first tick, first tick -> first run start,
first tick -> done. Times come from the instance's tables (job_ticks, runs), not from here.

Then a late row for the last hour holding rows is inserted into the source, and the
sensor's one-hour run for it is timed (start -> success, per step).

Targets (issue 13): 30d <= 90 s after the first tick; day <= 30 s; one-hour run <= 1.5 s.
Not a test: figures, not assertions.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402  generate(), load_source()
from daemon_runs import _answers, _epoch, _free_port, serve_process  # noqa: E402

JOB = "hourly_queue_stats"
SENSOR = "queue_log_new_rows"
LAST_ASSETS = ("stat_queue_periodic", "stat_agent_periodic")
TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")


def _sample_day_rows(out: Path) -> Path:
    """The demo's sample day as a CSV, minus the last logoff of one agent."""
    from stat_pipeline.demo import SAMPLE_DIR

    with gzip.open(SAMPLE_DIR / "queue_log.csv.gz", "rt") as fh:
        lines = fh.read().splitlines()
    logoffs = [i for i, line in enumerate(lines) if ",AGENTCALLBACKLOGOFF," in line]
    dropped = lines.pop(logoffs[-1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "queue_log.csv").write_text("\n".join(lines) + "\n")
    (out / "confd.json").write_bytes((SAMPLE_DIR / "confd.json").read_bytes())
    print(f"day: dropped the agent's last logoff: {dropped}", flush=True)
    return out


def _source(pg, data: Path) -> str:
    """The stand-in asterisk database, its rows, and the read-only role's URL."""
    from sqlalchemy import create_engine

    from stat_pipeline.demo import _q

    pg.create_database("asterisk")
    engine = create_engine(pg.url("asterisk"))
    with engine.begin() as conn:
        conn.execute(_q("create_source"))  # Wazo's table, its time index, stat_reader
    engine.dispose()
    bench.load_source(pg.url("asterisk"), data)
    return pg.url("asterisk").replace("postgres@", "stat_reader@")


def _poll(instance, source, warehouse) -> dict:
    from sqlalchemy import text

    with instance.connect() as conn:
        ticks = []
        for status, body in conn.execute(text(
                "SELECT status, tick_body FROM job_ticks ORDER BY id")).all():
            tick = json.loads(body)
            if tick.get("job_name") == SENSOR:
                ticks.append((status, tick))
        runs = conn.execute(text(
            "SELECT r.run_id, r.status, r.create_timestamp, r.start_time, r.end_time, "
            "  max(t.value) FILTER (WHERE t.key = 'stat_pipeline/chunk') AS chunk, "
            "  max(t.value) FILTER (WHERE t.key = 'stat_pipeline/reason') AS reason, "
            "  max(t.value) FILTER (WHERE t.key = 'dagster/asset_partition_range_start') AS first, "
            "  max(t.value) FILTER (WHERE t.key = 'dagster/asset_partition_range_end') AS last "
            "FROM runs r LEFT JOIN run_tags t ON t.run_id = r.run_id "
            "WHERE r.pipeline_name = :job GROUP BY r.id ORDER BY r.id"), {"job": JOB}).all()
        materialized = {a: conn.execute(text(
            "SELECT count(DISTINCT partition) FROM event_logs WHERE asset_key = :k "
            "AND dagster_event_type = 'ASSET_MATERIALIZATION'"), {"k": json.dumps([a])}).scalar()
            for a in LAST_ASSETS}
    return {"ticks": ticks, "runs": runs, "materialized": materialized}


def _hours_missing(instance, source_hours: list[str]) -> dict[str, int]:
    from sqlalchemy import text

    with instance.connect() as conn:
        return {a: len(set(source_hours) - set(conn.execute(text(
            "SELECT DISTINCT partition FROM event_logs WHERE asset_key = :k "
            "AND dagster_event_type = 'ASSET_MATERIALIZATION'"),
            {"k": json.dumps([a])}).scalars())) for a in LAST_ASSETS}


def _one_hour_sensor_run(pg, instance, hour_key: str, proc) -> dict:
    """A late row for one past hour, as a PBX writes it: the sensor's next tick requests
    that hour alone; its run's start -> success (issue 13 target <= 1.5 s), where its time
    goes per step, and how long from the row's insert until its hour was done."""
    from sqlalchemy import create_engine, text

    hour = dt.datetime.strptime(hour_key, "%Y-%m-%d-%H:%M").replace(tzinfo=dt.timezone.utc)
    with instance.connect() as conn:
        known = set(conn.execute(text("SELECT run_id FROM runs")).scalars())
    src = create_engine(pg.url("asterisk"))
    with src.begin() as conn:   # a call that found its queue full: one row, one call
        conn.execute(text("INSERT INTO queue_log (\"time\", callid, queuename, agent, event) "
                          "VALUES (:t, 'bench-late-1', 'bench', 'NONE', 'FULL')"),
                     {"t": hour + dt.timedelta(minutes=30)})
    src.dispose()
    inserted = time.time()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        with instance.connect() as conn:
            runs = conn.execute(text(
                "SELECT r.run_id, r.status, r.create_timestamp, r.start_time, r.end_time "
                "FROM runs r JOIN run_tags t ON t.run_id = r.run_id AND t.key = "
                "'stat_pipeline/reason' AND t.value = 'new rows' ORDER BY r.id")).all()
        new = [r for r in runs if r.run_id not in known]
        if new and new[-1].status in TERMINAL:
            run = new[-1]
            steps = {}
            with instance.connect() as conn:
                for step, kind, ts in conn.execute(text(
                        "SELECT step_key, dagster_event_type, timestamp FROM event_logs "
                        "WHERE run_id = :r AND dagster_event_type IN ('STEP_START', "
                        "'STEP_SUCCESS', 'STEP_FAILURE') ORDER BY id"), {"r": run.run_id}).all():
                    steps.setdefault(step, []).append(_epoch(ts))
            return {"one_hour_run_status": run.status,
                    "one_hour_run_start_to_success_s": round(run.end_time - run.start_time, 2),
                    "one_hour_run_created_to_success_s": round(
                        run.end_time - _epoch(run.create_timestamp), 2),
                    "one_hour_row_insert_to_done_s": round(run.end_time - inserted, 1),
                    "one_hour_steps_s": {k: round(max(v) - min(v), 2) for k, v in steps.items()}}
        time.sleep(0.5)
    return {"one_hour_run_status": "not seen within 180 s"}


def measure(case: str, timeout: float, one_hour: bool = True) -> dict:
    from sqlalchemy import create_engine, text

    from stat_pipeline.warehouse.embedded import EmbeddedPostgres

    figures: dict = {"case": case}
    with tempfile.TemporaryDirectory(prefix="stat-first-start-") as tmp:
        tmp = Path(tmp)
        data = bench.generate("30d") if case == "30d" else _sample_day_rows(tmp / "day")
        with EmbeddedPostgres(tmp / "pg") as pg:
            source_url = _source(pg, data)
            for db in ("stat", "dagster"):
                pg.create_database(db)
            src = create_engine(pg.url("asterisk"))
            with src.connect() as conn:
                source_hours = [h.strftime("%Y-%m-%d-%H:%M") for h in conn.execute(text(
                    "SELECT DISTINCT date_trunc('hour', \"time\" AT TIME ZONE 'UTC') "
                    "FROM queue_log ORDER BY 1")).scalars()]
                figures["rows"] = conn.execute(text("SELECT count(*) FROM queue_log")).scalar()
            src.dispose()
            figures["hours_with_rows"] = len(source_hours)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("STAT_", "DAGSTER_"))}
            env.update({"STAT_WAREHOUSE_URL": pg.url("stat"),
                        "STAT_DAGSTER_PG_URL": pg.url("dagster"),
                        "STAT_SOURCE_URL": source_url,
                        "STAT_CONFD_JSON": str(data / "confd.json")})
            port = _free_port()
            log_path = tmp / "serve.log"
            log = open(log_path, "wb")
            started = time.time()
            serve = serve_process(tmp / "serve", port, env, log)
            proc = serve.__enter__()
            instance = create_engine(pg.url("dagster"))
            try:
                deadline = time.monotonic() + timeout
                while not _answers(port):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("serve did not answer")
                    time.sleep(0.5)
                done_at = None
                last_report = 0.0
                while True:
                    state = _poll(instance, None, None)
                    runs = state["runs"]
                    first_done = [t for s, t in state["ticks"] if s != "STARTED"]
                    if first_done and runs and all(r.status in TERMINAL for r in runs):
                        missing = _hours_missing(instance, source_hours)
                        if not any(missing.values()):
                            done_at = max(r.end_time for r in runs)
                            break
                    if proc.poll() is not None:
                        raise RuntimeError(f"serve exited {proc.returncode}")
                    if time.monotonic() > deadline:
                        break
                    if time.monotonic() - last_report > 15:
                        last_report = time.monotonic()
                        print(f"  {case}: {len(runs)} runs, "
                              f"{sum(r.status == 'SUCCESS' for r in runs)} succeeded, "
                              f"{sum(r.status == 'FAILURE' for r in runs)} failed, "
                              f"materialized {state['materialized']}", flush=True)
                    time.sleep(0.5)
                state = _poll(instance, None, None)
                runs = state["runs"]
                first = state["ticks"][0][1] if state["ticks"] else {}
                tick_at = first.get("timestamp")
                figures.update({
                    "serve_start_to_first_tick_s": round(tick_at - started, 1) if tick_at else None,
                    "first_tick_status": state["ticks"][0][0] if state["ticks"] else None,
                    "first_tick_runs": len(first.get("run_ids") or []),
                    "first_tick_skip_reason": first.get("skip_reason"),
                    "ticks": len(state["ticks"]),
                    "runs": len(runs),
                    "runs_by_status": {s: sum(r.status == s for r in runs)
                                       for s in sorted({r.status for r in runs})},
                    "reasons": sorted({r.reason or "" for r in runs}),
                    "chunks": [f"{r.chunk or '-'} {r.first}..{r.last} {r.status} "
                               f"{(r.end_time or 0) - (r.start_time or 0):.1f}s" for r in runs],
                    "materialized_hours": state["materialized"],
                    "hours_with_rows_missing": _hours_missing(instance, source_hours),
                })
                if runs and tick_at:
                    starts = [r.start_time for r in runs if r.start_time]
                    if starts:
                        figures["first_tick_to_first_run_start_s"] = round(min(starts) - tick_at, 1)
                    figures["run_walls_s"] = sorted(round(r.end_time - r.start_time, 1)
                                                    for r in runs if r.end_time and r.start_time)
                    figures["runs_created_span_s"] = round(
                        _epoch(runs[-1].create_timestamp) - _epoch(runs[0].create_timestamp), 1)
                    # when the last hour holding rows got its first materialization
                    with instance.connect() as conn:
                        rows_done = conn.execute(text(
                            "SELECT max(first_ts) FROM (SELECT partition, min(timestamp) "
                            "AS first_ts FROM event_logs WHERE asset_key = ANY(:keys) AND "
                            "dagster_event_type = 'ASSET_MATERIALIZATION' AND "
                            "partition = ANY(:hours) GROUP BY asset_key, partition) x"),
                            {"keys": [json.dumps([a]) for a in LAST_ASSETS],
                             "hours": source_hours}).scalar()
                    if rows_done and not any(figures["hours_with_rows_missing"].values()):
                        figures["first_tick_to_hours_with_rows_done_s"] = round(
                            _epoch(rows_done) - tick_at, 1)
                figures["first_tick_to_done_s"] = (round(done_at - tick_at, 1)
                                                   if done_at and tick_at else
                                                   f"not done after {timeout:.0f} s")
                if done_at and one_hour:
                    figures.update(_one_hour_sensor_run(pg, instance, source_hours[-1], proc))
            finally:
                serve.__exit__(None, None, None)
                instance.dispose()
                log.close()
                figures["serve_log_tail"] = log_path.read_text(errors="replace").splitlines()[-5:]
                figures["sensor_messages"] = [line for line in log_path.read_text(
                    errors="replace").splitlines() if SENSOR in line and "rows " in line][:3]
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="30d,day")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    for case in args.case.split(","):
        figures = measure(case, args.timeout)
        for key, value in figures.items():
            if isinstance(value, list) and len(value) > 12:
                value = value[:6] + [f"... {len(value) - 12} more ..."] + value[-6:]
            print(f"{case} {key}: {value}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
