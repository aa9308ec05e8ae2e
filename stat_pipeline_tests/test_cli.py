"""The console commands, run as a user runs them (subprocesses, their own embedded server)."""
from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine


BIN = Path(sys.executable).parent
SAMPLE = Path(__file__).resolve().parents[1] / "stat_pipeline" / "sample"


def _run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAT_")}
    return subprocess.run([str(BIN / "stat-pipeline"), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _no_postgres_under(path: Path) -> bool:
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "postgres" in cmdline and str(path) in cmdline:
            return False
    return True


def test_compute_gzip_with_until(tmp_path):
    out = tmp_path / "out"
    done = _run("compute", str(SAMPLE / "queue_log.csv.gz"), "--config",
                str(SAMPLE / "confd.json"), "--until", "2024-03-04T12:00:00+00:00",
                "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "hours computed" in done.stdout
    with open(out / "calls.csv", newline="") as fh:
        calls = list(csv.DictReader(fh))
    assert calls and all(c["time"] < "2024-03-04T12" for c in calls)
    with open(out / "queue_periodic.csv", newline="") as fh:
        periodic = list(csv.DictReader(fh))
    assert sum(int(p["total"]) for p in periodic) == len(calls)
    assert max(p["time"] for p in periodic) < "2024-03-04T12"


def test_compute_keeps_malformed_lines_aside(tmp_path):
    src = tmp_path / "messy.csv.gz"
    with gzip.open(src, "wt", newline="") as fh:
        fh.write("time,callid,queuename,agent,event,data1,data2,data3,data4,data5\n"
                 "2024-03-01T09:00:00+00:00,c1,q1,NONE,ENTERQUEUE,,06,1,,\n"
                 "2024-03-01T09:00:30+00:00,c1,q1,NONE,ABANDON,1,1,30,,\n"
                 "2024-03-01T09:01:00+00:00,c2,q1,NONE,FULL,,,\n"          # 8 fields
                 "yesterday,c3,q1,NONE,FULL,,,,,\n"                         # bad time
                 "2024-03-01T09:02:00+00:00,c4,q1,NONE,CLOSED,,,,,\n")
    done = _run("compute", str(src), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "2 ignored" in done.stdout  # both bad lines, counted
    calls = (tmp_path / "out" / "calls.csv").read_text().splitlines()
    assert sorted(line.split(",")[3] for line in calls[1:]) == ["abandoned", "closed"]


def test_compute_bad_config_is_one_line(tmp_path):
    bad = tmp_path / "confd.json"
    bad.write_text('{"queues": [}')
    done = _run("compute", str(SAMPLE / "queue_log.csv.gz"), "--config", str(bad),
                "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "confd.json" in done.stderr


def test_demo_without_ui_materializes_and_stops_its_server(tmp_path):
    state = tmp_path / "state"
    done = _run("demo", "--no-ui", "--state-dir", str(state))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "materializing" in done.stdout
    assert (state / "dagster_home" / "dagster.yaml").exists()
    assert _no_postgres_under(state)
    # Dagster's instance is the `dagster` database of the demo's server, not SQLite
    assert not (state / "dagster_home" / "history").exists()
    from stat_pipeline.warehouse.embedded import EmbeddedPostgres

    with EmbeddedPostgres(state / "pg") as pg:
        engine = create_engine(pg.url("dagster"))
        try:
            with engine.connect() as conn:
                runs = dict(conn.exec_driver_sql(
                    "SELECT pipeline_name, status FROM runs").all())
        finally:
            engine.dispose()
        warehouse = create_engine(pg.url("stat"))
        try:
            with warehouse.connect() as conn:
                agents = set(conn.exec_driver_sql(
                    "SELECT name, tenant_uuid, agent_id FROM stat_agent WHERE NOT deleted").all())
                origin = conn.exec_driver_sql(
                    "SELECT document->>'origin' FROM confd_snapshot").scalar()
        finally:
            warehouse.dispose()
    assert runs == {"sync_dimensions": "SUCCESS", "hourly_queue_stats": "SUCCESS"}
    # no confd.json: the agents and their tenants come from the stand-in's Wazo tables,
    # filled from the sample's config
    sample = json.loads((SAMPLE / "confd.json").read_text())
    assert origin == "database"
    assert agents == {("Agent/" + a["number"], a["tenant_uuid"], a["id"]) for a in sample["agents"]}
