"""Runs the way the UI makes them: ``stat-pipeline serve`` (webserver, daemon, code server,
run workers in their own processes, the instance in PostgreSQL), a backfill launched through
GraphQL as the UI's "Materialize selected partitions" does, and a one-hour run launched as a
sensor's run request is (a run with the range tags, through the run queue).

Timestamps come from the instance's ``runs`` table (created, started, ended) and the launch
time here; the SQL time inside the run from PostgreSQL's own ``pg_stat_database.active_time``
of the warehouse and the source (the run worker is another process: no driver hook).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ASSETS = ["queue_log", "classified_calls", "stat_call_on_queue", "stat_queue_periodic",
          "stat_agent_periodic"]
LOCATION = "stat_pipeline.definitions"
WAIT_S = 900


def _epoch(created: dt.datetime) -> float:
    # runs.create_timestamp: a timestamp without zone, written in the server's zone (UTC)
    return created.replace(tzinfo=dt.timezone.utc).timestamp()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str, variables: dict) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql",
                                 data=json.dumps({"query": query, "variables": variables}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def _until(what: str, condition, proc: subprocess.Popen, timeout: float = WAIT_S, every=0.1):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what}: serve exited or timed out")
        time.sleep(every)
    return value


def _answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2).close()
        return True
    except OSError:
        return False


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(raw[raw.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _worker_env(serve_pid: int) -> dict[str, str] | None:
    """Environment of the run worker (the code server's multiprocessing child)."""
    for pid in _descendants(serve_pid):
        try:
            if b"spawn_main" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        return dict(p.decode().split("=", 1) for p in pairs if b"=" in p)
    return None


@contextmanager
def serve_process(state_dir: Path, port: int, env: dict, log) -> Iterator[subprocess.Popen]:
    """``stat-pipeline serve`` in a child process (killed with this one: a killed benchmark
    leaves nothing), stopped as a user would (SIGTERM, then SIGKILL after 120 s)."""
    from stat_pipeline.commands.processes import die_with_parent

    proc = subprocess.Popen([sys.executable, "-m", "stat_pipeline.cli", "serve", "--state-dir",
                             str(state_dir), "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=die_with_parent)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()


def through_daemon(pg, tmp: Path, data: Path, first_hour, last_hour, subset: bool) -> dict:
    """Figures of a 30-day-style backfill and a one-hour run on a fresh ``serve``."""
    from sqlalchemy import create_engine, text

    from stat_pipeline.partitions import KEY_FORMAT

    import run as bench  # load_source

    tag = "subset" if subset else "per_hour"
    for db in (f"stat_{tag}", f"dagster_{tag}", f"asterisk_{tag}"):
        pg.create_database(db)
    source_url = pg.url(f"asterisk_{tag}")
    bench.load_source(source_url, None)  # empty until the sensor's first tick is done
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STAT_", "DAGSTER_"))}
    env.update({
        "STAT_WAREHOUSE_URL": pg.url(f"stat_{tag}"), "STAT_DAGSTER_PG_URL": pg.url(f"dagster_{tag}"),
        "STAT_SOURCE_URL": source_url, "STAT_CONFD_JSON": str(data / "confd.json"),
        "STAT_PARTITIONS_START": first_hour.strftime(KEY_FORMAT),
        "STAT_SENSOR_INTERVAL_SECONDS": "86400",  # this measures the backfill, not the sensor
    })
    if subset:
        env["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] = "1"
    port = _free_port()
    log = open(tmp / f"serve_{tag}.log", "wb")
    serve = serve_process(tmp / f"serve_{tag}", port, env, log)
    proc = serve.__enter__()
    instance = create_engine(pg.url(f"dagster_{tag}"))
    stats = create_engine(pg.url("postgres"))
    figures: dict = {}
    try:
        _until("webserver", lambda: _answers(port), proc, every=0.5)

        def ticks():
            with instance.connect() as conn:
                return conn.execute(text("SELECT count(*) FROM job_ticks WHERE status <> 'STARTED'")).scalar()
        _until("first sensor tick", ticks, proc, every=0.5)
        bench.load_source(source_url, data)

        def active_ms() -> float:
            time.sleep(1.1)  # backends report their statistics at most once a second
            with stats.connect() as conn:
                return conn.execute(text(
                    "SELECT sum(active_time) FROM pg_stat_database WHERE datname = ANY(:dbs)"),
                    {"dbs": [f"stat_{tag}", f"asterisk_{tag}"]}).scalar() or 0.0

        def run_times(n: int):
            with instance.connect() as conn:
                rows = conn.execute(text(
                    "SELECT run_id, status, create_timestamp, start_time, end_time FROM runs "
                    "ORDER BY id")).all()
            return rows if len(rows) >= n and rows[n - 1].status in ("SUCCESS", "FAILURE") \
                else None

        n = int((last_hour - first_hour) / dt.timedelta(hours=1)) + 1
        hours = [(first_hour + dt.timedelta(hours=i)).strftime(KEY_FORMAT) for i in range(n)]
        sql0 = active_ms()
        launched = time.time()
        answer = _graphql(port, """mutation($p: LaunchBackfillParams!) {
            launchPartitionBackfill(backfillParams: $p) { __typename
              ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
            {"p": {"assetSelection": [{"path": [a]} for a in ASSETS], "partitionNames": hours}})
        assert answer["data"]["launchPartitionBackfill"]["__typename"] == "LaunchBackfillSuccess", answer
        env_seen: dict = {}

        def done_watching_worker():
            if not env_seen and (worker := _worker_env(proc.pid)):
                env_seen.update(worker)
            return run_times(1)
        rows = _until("backfill run", done_watching_worker, proc)
        run = rows[0]
        sql = (active_ms() - sql0) / 1000
        assert run.status == "SUCCESS", run
        figures.update({
            f"daemon_backfill_s_{tag}": round(run.end_time - launched, 2),
            f"daemon_wait_s_{tag}": round(_epoch(run.create_timestamp) - launched, 2),
            f"daemon_queue_start_s_{tag}": round(run.start_time - _epoch(run.create_timestamp), 2),
            f"daemon_run_s_{tag}": round(run.end_time - run.start_time, 2),
            f"daemon_run_sql_s_{tag}": round(sql, 2),
            f"dagster_ms_per_asset_hour_{tag}": round(
                (run.end_time - run.start_time - sql) * 1000 / (len(hours) * len(ASSETS)), 2),
            f"worker_env_batch_{tag}": env_seen.get("DAGSTER_EVENT_BATCH_SIZE"),
        })

        hour = hours[-2]
        sql0 = active_ms()
        answer = _graphql(port, """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
            __typename ... on PythonError { message } } }""", {"p": {
                "selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__",
                             "jobName": "hourly_queue_stats"},
                "executionMetadata": {"tags": [
                    {"key": "dagster/asset_partition_range_start", "value": hour},
                    {"key": "dagster/asset_partition_range_end", "value": hour}]}}})
        assert answer["data"]["launchRun"]["__typename"] == "LaunchRunSuccess", answer
        rows = _until("one-hour run", lambda: run_times(2), proc)
        run = rows[1]
        assert run.status == "SUCCESS", run
        figures.update({
            f"hour_run_s_{tag}": round(run.end_time - run.start_time, 2),
            f"hour_create_to_success_s_{tag}": round(run.end_time - _epoch(run.create_timestamp), 2),
            f"hour_run_sql_s_{tag}": round((active_ms() - sql0) / 1000, 3),
        })
    finally:
        serve.__exit__(None, None, None)
        instance.dispose()
        stats.dispose()
        log.close()
    return figures
