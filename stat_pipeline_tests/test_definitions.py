"""The code location as Dagster loads it: definitions, policies, and the webserver reading
workspace.yaml."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg

from stat_pipeline.definitions import HOURLY_ASSETS, HOURLY_JOB, build_definitions

PROJECT = Path(__file__).resolve().parents[1]


def test_hourly_assets_are_one_run_per_range():
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    for name in HOURLY_ASSETS:
        node = graph.get(dg.AssetKey(name))
        assert node.backfill_policy == dg.BackfillPolicy.single_run(), name
        assert isinstance(node.partitions_def, dg.HourlyPartitionsDefinition), name
        assert node.partitions_def.timezone == "UTC"
    assert defs.resolve_job_def(HOURLY_JOB) is not None
    dg.Definitions.validate_loadable(defs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql",
                                 data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["data"]


def test_webserver_loads_workspace_and_shows_the_asset_graph(tmp_path, warehouse_url, dagster_pg_url):
    port = _free_port()
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "STAT_WAREHOUSE_URL": warehouse_url,
           "STAT_DAGSTER_PG_URL": dagster_pg_url,
           "STAT_SOURCE_URL": warehouse_url, "STAT_PARTITIONS_START": "2024-03-01-00:00"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-h", "127.0.0.1", "-p",
         str(port), "-w", str(PROJECT / "workspace.yaml")],
        cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "webserver did not answer in 120 s"
                time.sleep(0.5)
        data = _graphql(port, """{ assetNodes { assetKey { path } groupName isPartitioned
                                     dependencyKeys { path } } }""")
        nodes = {n["assetKey"]["path"][0]: n for n in data["assetNodes"]}
        assert set(nodes) == {"queue_log", "classified_calls", "stat_call_on_queue",
                              "stat_queue_periodic", "stat_queue", "stat_agent",
                              "stat_agent_periodic"}
        deps = {k: {d["path"][0] for d in n["dependencyKeys"]} for k, n in nodes.items()}
        assert deps["classified_calls"] == {"queue_log"}
        assert deps["stat_call_on_queue"] == {"classified_calls", "stat_queue", "stat_agent"}
        assert deps["stat_queue_periodic"] == {"stat_call_on_queue"}
        assert deps["stat_agent_periodic"] == {"queue_log", "stat_agent", "stat_queue"}
        assert all(nodes[a]["isPartitioned"] for a in HOURLY_ASSETS)
        loc = _graphql(port, """{ workspaceOrError { ... on Workspace { locationEntries {
                                  name loadStatus } } } }""")
        assert loc["workspaceOrError"]["locationEntries"] == [
            {"name": "stat_pipeline", "loadStatus": "LOADED"}]
    finally:
        proc.terminate()
        proc.wait(60)
