"""Routing of the statistics API: both prefixes, Wazo's error JSON for every error the
server makes (404 not found, 405, 404 of a deleted or unknown queue/agent), the OpenAPI
document, and the ``stat-pipeline api`` command itself (token generated and printed once,
one-line errors for bad configuration)."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from stat_pipeline_tests.api_support import (  # noqa: F401 (fixtures)
    TENANT_A, TOKEN, CallLogdClient, CallLogdError, add_agent, add_queue, api_database, api_port,
    call_logd, warehouse,
)


@pytest.fixture
def two_queues_two_agents(warehouse):
    with warehouse.begin() as conn:
        add_queue(conn, 7, TENANT_A, name="sales")
        add_queue(conn, 8, TENANT_A, name="gone", deleted=True)
        add_agent(conn, 70, TENANT_A, number="1070")
        add_agent(conn, 80, TENANT_A, number="1080", deleted=True)


def test_routes_answer_under_both_prefixes(api_port, two_queues_two_agents):
    answers = []
    for prefix in (None, "api/call-logd"):
        client = CallLogdClient("127.0.0.1", port=api_port, https=False, prefix=prefix, token=TOKEN)
        answers.append([client.queue_statistics.list(), client.queue_statistics.get_by_id(7),
                        client.queue_statistics.get_qos_by_id(7), client.agent_statistics.list(),
                        client.agent_statistics.get_by_id(70)])
    for answer in answers:  # the items' until (tomorrow) may differ around midnight: ids only
        assert [i["queue_id"] for i in answer[0]["items"]] == [7]
        assert [i["queue_name"] for i in answer[0]["items"]] == ["sales"]
        assert [i["agent_id"] for i in answer[3]["items"]] == [70]
        assert answer[4]["items"][-1]["agent_number"] == "1070"
    assert [len(a) for a in answers[0]] == [len(a) for a in answers[1]]


def test_deleted_or_unknown_queue_and_agent_are_404(call_logd, two_queues_two_agents):
    for call, object_id, error_id, key in (
            (call_logd.queue_statistics.get_by_id, 8, "queue-not-found-with-given-id", "queue_id"),
            (call_logd.queue_statistics.get_by_id, 9, "queue-not-found-with-given-id", "queue_id"),
            (call_logd.queue_statistics.get_qos_by_id, 8, "queue-not-found-with-given-id", "queue_id"),
            (call_logd.agent_statistics.get_by_id, 80, "agent-not-found-with-given-id", "agent_id"),
            (call_logd.agent_statistics.get_by_id, 7, "agent-not-found-with-given-id", "agent_id")):
        with pytest.raises(CallLogdError) as caught:
            call(object_id)
        assert (caught.value.status_code, caught.value.error_id) == (404, error_id)
        assert caught.value.details == {key: object_id}


def test_validation_comes_before_the_404(call_logd, two_queues_two_agents):
    with pytest.raises(CallLogdError) as caught:
        call_logd.queue_statistics.get_by_id(9, interval="week")
    assert caught.value.status_code == 400


def test_other_paths_and_methods_get_wazo_error_json(api_port, call_logd, two_queues_two_agents):
    base = f"http://127.0.0.1:{api_port}"
    headers = {"X-Auth-Token": TOKEN}
    for path in ("/1.0/queues/abc/statistics", "/1.0/queues/-1/statistics", "/1.0/nothing",
                 "/1.0/queues/7/statistics/other", "/2.0/queues/statistics"):
        response = requests.get(base + path, headers=headers)
        assert response.status_code == 404, path
        assert set(response.json()) == {"message", "error_id", "details", "timestamp"}
    response = requests.post(base + "/1.0/queues/statistics", headers=headers)
    assert response.status_code == 405
    assert response.json()["error_id"] == "method-not-allowed"


def test_openapi_document_matches_the_routes_and_parameters(api_port):
    """Served without a token at /1.0/api/api.yml (and behind the nginx prefix); every
    route's documented query parameters are exactly what its validation reads."""
    from stat_pipeline.serving.schemas import AgentListQuery, AgentQuery, QosQuery, QueueListQuery, QueueQuery

    for path in ("/1.0/api/api.yml", "/api/call-logd/1.0/api/api.yml"):
        response = requests.get(f"http://127.0.0.1:{api_port}{path}")
        assert response.status_code == 200
        spec = yaml.safe_load(response.text)
    assert spec["swagger"] == "2.0" and spec["basePath"] == "/1.0"
    models = {"/queues/statistics": QueueListQuery, "/queues/{queue_id}/statistics": QueueQuery,
              "/queues/{queue_id}/statistics/qos": QosQuery, "/agents/statistics": AgentListQuery,
              "/agents/{agent_id}/statistics": AgentQuery}
    assert set(models) | {"/api/api.yml"} == set(spec["paths"])
    for path, model in models.items():
        refs = [p["$ref"].rsplit("/", 1)[1] for p in spec["paths"][path]["get"]["parameters"]]
        documented = {spec["parameters"][r]["name"] for r in refs if spec["parameters"][r]["in"] == "query"}
        # agents' qos_threshold: declared by call-logd's agent schemas but meaningless, not documented
        assert documented == set(model.FIELDS) - ({"qos_threshold"} if "agents" in path else set()), path
        acl = re.search(r"`(call-logd\.[^`]+)`", spec["paths"][path]["get"]["description"]).group(1)
        assert acl == "call-logd." + path.strip("/").replace("/", ".") + ".read"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(env_changes: dict, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAT_API_")}
    env.update(env_changes)
    return subprocess.Popen([str(Path(sys.executable).parent / "stat-pipeline"), "api", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_command_generates_and_prints_a_token_once(api_database, two_queues_two_agents):
    port = _free_port()
    process = _command({"STAT_WAREHOUSE_URL": api_database}, port)
    try:
        token_line = process.stdout.readline()
        match = re.search(r"X-Auth-Token\): (\S+)$", token_line.strip())
        assert match, token_line
        token = match.group(1)
        url_line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/1.0/queues/statistics" in url_line
        # the server is up once uvicorn says it listens (on stderr)
        seen = []
        for line in process.stderr:
            seen.append(line)
            if "Uvicorn running on" in line:
                break
        assert process.poll() is None, seen
        client = CallLogdClient("127.0.0.1", port=port, https=False, token=token)
        assert [i["queue_id"] for i in client.queue_statistics.list()["items"]] == [7]
        client.set_token("not-it")
        with pytest.raises(CallLogdError) as caught:
            client.queue_statistics.list()
        assert caught.value.status_code == 401
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert token not in out + err  # printed once, never again (not in the access log either)


def test_command_configuration_errors_are_one_line(api_database):
    for env, words in (({}, "STAT_WAREHOUSE_URL is not set"),
                       ({"STAT_WAREHOUSE_URL": "mysql://x/y"}, "must be a PostgreSQL URL"),
                       ({"STAT_WAREHOUSE_URL": api_database, "STAT_API_WAZO_AUTH_URL": "ftp://auth"},
                        "STAT_API_WAZO_AUTH_URL must be an http(s) URL"),
                       ({"STAT_WAREHOUSE_URL": "postgresql+psycopg2://nobody@127.0.0.1:1/none"},
                        "cannot use the warehouse")):
        env = {k: v for k, v in env.items()}
        if "STAT_WAREHOUSE_URL" not in env:
            env["STAT_WAREHOUSE_URL"] = ""
        process = _command(env, _free_port())
        out, err = process.communicate(timeout=60)
        assert process.returncode == 2, (env, err)
        assert len(err.strip().splitlines()) == 1 and words in err, err


def test_browsers_of_other_origins_may_call_it(api_port):
    """Like Wazo's services (CORS on): a page elsewhere may send X-Auth-Token and Wazo-Tenant."""
    response = requests.options(f"http://127.0.0.1:{api_port}/1.0/queues/statistics", headers={
        "Origin": "https://wazo.example.com", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "X-Auth-Token, Wazo-Tenant"})
    assert response.status_code == 200
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "x-auth-token" in allowed and "wazo-tenant" in allowed


def test_database_down_is_503_in_wazo_json(pg_server):
    """A warehouse that does not answer: a 503 in Wazo's error JSON, no SQL or URL in it."""
    from stat_pipeline.serving.app import create_app
    from stat_pipeline.serving.auth import StaticToken
    from stat_pipeline_tests.api_support import serving

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = closed.getsockname()[1]
    url = f"postgresql+psycopg2://secret_user:secret_password@127.0.0.1:{dead}/warehouse"
    with serving(create_app(url, StaticToken(TOKEN), migrate_schema=False)) as port:
        response = requests.get(f"http://127.0.0.1:{port}/1.0/queues/statistics", headers={"X-Auth-Token": TOKEN})
    assert response.status_code == 503
    assert response.json()["error_id"] == "database-unavailable"
    assert "secret" not in response.text and str(dead) not in response.text
