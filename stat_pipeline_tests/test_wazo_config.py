"""Queues, agents and tenants from Wazo itself: its `asterisk` database's tables (through the
read-only account) or wazo-confd's REST API — no hand-made confd.json.

The stand-in Wazo tables are the demo's (stat_pipeline/demo.sql), filled from a confd.json:
the same configuration written the way a Wazo server holds it. The REST path runs against a
small local HTTP server answering like wazo-confd (lists under ``items``, X-Auth-Token).
"""
from __future__ import annotations

import copy
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import pytest
from sqlalchemy import create_engine, make_url, text

from stat_pipeline.compute import compute_into
from stat_pipeline.demo import SAMPLE_DIR
from stat_pipeline.demo import _q as demo_sql
from stat_pipeline.resources import ConfigError, WazoConfig
from stat_pipeline_tests.golden import compare_module, golden_sets
from stat_pipeline_tests.harness import CallCentre, at

T1 = "11111111-1111-4111-8111-111111111111"
T2 = "22222222-2222-4222-8222-222222222222"
MASTER = "00000000-0000-4000-8000-000000000000"
TOKEN = "a-confd-token"
CONFIG = {
    "master_tenant": MASTER,
    "queues": [{"id": 1, "name": "q1", "tenant_uuid": T1},
               {"id": 2, "name": "q2", "tenant_uuid": T2}],
    "agents": [{"id": 10, "number": "1001", "tenant_uuid": T1},
               {"id": 11, "number": "1002", "tenant_uuid": T2}],
    "contexts": [{"name": "ctx-one", "tenant_uuid": T1}, {"name": "ctx-two", "tenant_uuid": T2}],
}


def stand_in_wazo(url: str, document: dict, schema: str = "asterisk") -> str:
    """Wazo's config tables (and queue_log) in ``schema`` of the database at ``url``, filled
    with ``document``; returns the URL of the read-only account that reads them."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}; SET LOCAL search_path TO {schema}")
        conn.execute(demo_sql("create_source"))
        conn.execute(demo_sql("create_wazo_config"))
        conn.execute(demo_sql("fill_wazo_config"), {"document": json.dumps(document)})
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO stat_reader")
    engine.dispose()
    return make_url(url).set(username="stat_reader").render_as_string(hide_password=False)


def wazo_sql(url: str, sql: str, **params) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL search_path TO asterisk")
        conn.execute(text(sql), params)
    engine.dispose()


def _dimensions(url: str) -> tuple[list, list]:
    engine = create_engine(url)
    with engine.connect() as conn:
        queues = sorted(conn.execute(text(
            "SELECT name, tenant_uuid, queue_id, deleted FROM stat_queue")).all())
        agents = sorted(conn.execute(text(
            "SELECT name, tenant_uuid, agent_id, deleted FROM stat_agent")).all())
    engine.dispose()
    return queues, agents


def _latest(centre: CallCentre, key: str) -> dict:
    event = centre.instance.get_latest_materialization_event(dg.AssetKey(key))
    assert event is not None
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


# ---------------------------------------------------------------- the database path

def test_reads_wazo_tables_through_the_read_only_account(warehouse_url):
    reader = stand_in_wazo(warehouse_url, CONFIG)
    doc = WazoConfig(database_url=reader, database_schema="asterisk").document()
    # same document as the confd.json it was written from: ids, names, tenants, contexts;
    # the master tenant is the one tenant that owns nothing
    assert doc == CONFIG


def test_config_origin_precedence(warehouse_url, tmp_path):
    reader = stand_in_wazo(warehouse_url, CONFIG)
    path = tmp_path / "confd.json"
    path.write_text(json.dumps({**CONFIG, "queues": CONFIG["queues"][:1]}))
    # an explicit file wins over the database
    both = WazoConfig(confd_json=str(path), database_url=reader, database_schema="asterisk")
    assert both.origin() == "file" and len(both.document()["queues"]) == 1
    assert WazoConfig(database_url=reader, database_schema="asterisk").origin() == "database"
    assert WazoConfig(database_url=reader, database_schema="asterisk",
                      wazo_tables="off").origin() is None
    # a plain queue_log database (no Wazo tables) is no config, as before
    assert WazoConfig(database_url=reader, database_schema="public").origin() is None
    assert WazoConfig(master_tenant=MASTER).document() is None


@pytest.mark.parametrize("break_it, message", [
    ("DROP TABLE agentfeatures", "table agentfeatures not found in schema asterisk"),
    ("ALTER TABLE queuefeatures DROP COLUMN tenant_uuid", "queuefeatures has no column tenant_uuid"),
    ("REVOKE SELECT ON context FROM stat_reader", "table context not found"),
    ("INSERT INTO tenant (uuid) VALUES ('33333333-3333-4333-8333-333333333333')",
     "set STAT_MASTER_TENANT"),
])
def test_bad_wazo_tables_are_a_one_line_error(warehouse_url, break_it, message):
    reader = stand_in_wazo(warehouse_url, CONFIG)
    wazo_sql(warehouse_url, break_it)
    with pytest.raises(ConfigError) as error:
        WazoConfig(database_url=reader, database_schema="asterisk",
                   wazo_tables="require").document()
    assert message in str(error.value) and "\n" not in str(error.value)


def test_master_tenant_setting_wins(warehouse_url):
    reader = stand_in_wazo(warehouse_url, CONFIG)
    wazo_sql(warehouse_url, "INSERT INTO tenant (uuid) VALUES (:t)", t=T2[:-1] + "9")
    doc = WazoConfig(database_url=reader, database_schema="asterisk",
                     master_tenant=MASTER).document()
    assert doc["master_tenant"] == MASTER


def test_unreachable_database_is_a_one_line_error():
    config = WazoConfig(database_url="postgresql+psycopg2://stat_reader@127.0.0.1:1/asterisk",
                        wazo_tables="require")
    with pytest.raises(ConfigError) as error:
        config.document()
    assert "unreachable" in str(error.value) and "\n" not in str(error.value)


# ------------------------------------------- same statistics as the equivalent confd.json

GOLDEN = {s.name: s for s in golden_sets()}


@pytest.mark.skipif("day1_s1" not in GOLDEN, reason="../shared/golden is not beside the project")
def test_golden_day_from_wazo_tables_equals_confd_json(pg_server, warehouse_url, tmp_path):
    golden = GOLDEN["day1_s1"]
    document = json.loads(golden.confd.read_text())
    from_file = tmp_path / "file"
    compute_into(warehouse_url, golden.queue_log, from_file, golden.confd, golden.until)

    other = f"test_{uuid.uuid4().hex[:12]}"
    pg_server.create_database(other)
    try:
        other_url = pg_server.url(other)
        reader = stand_in_wazo(other_url, document)
        from_wazo = tmp_path / "wazo"
        compute_into(other_url, golden.queue_log, from_wazo, until=golden.until,
                     wazo_config=WazoConfig(database_url=reader, database_schema="asterisk"))
        cmp = compare_module()
        for name in ("calls.csv", "queue_periodic.csv", "agent_periodic.csv"):
            header_file, rows_file = cmp.load(str(from_file / name))
            header_wazo, rows_wazo = cmp.load(str(from_wazo / name))
            assert header_file == header_wazo and rows_file == rows_wazo, name
            assert sum(rows_wazo.values()) > 0, name
        assert _dimensions(warehouse_url) == _dimensions(other_url)
        # and they are the config's, derived from the file itself
        queues, agents = _dimensions(other_url)
        live = {(q[0], q[1], q[2]) for q in queues if not q[3]}
        assert {(q["name"], q["tenant_uuid"], q["id"]) for q in document["queues"]} <= live
        assert {("Agent/" + a["number"], a["tenant_uuid"], a["id"])
                for a in document["agents"]} == {(a[0], a[1], a[2]) for a in agents if not a[3]}
    finally:
        from stat_pipeline.resources import dispose_engines
        dispose_engines()
        pg_server.drop_database(other)


# ------------------------------------------------------------- changes and refreshes

def test_new_renamed_deleted_are_shown_in_the_dimension_metadata(warehouse_url):
    reader = stand_in_wazo(warehouse_url, CONFIG)
    centre = CallCentre(warehouse_url, wazo_config=WazoConfig(
        database_url=reader, database_schema="asterisk"))
    centre.sync_dimensions()
    first = _latest(centre, "stat_queue")
    assert first["config_origin"] == "database" and first["config_new"] == 2
    assert _latest(centre, "stat_agent")["config_new"] == 2 + 2  # agents + contexts

    # in Wazo: q1 deleted, q2 renamed (same confd id), q3 created; agent 1002 renumbered
    # 1012, agent 1001 moved to tenant T2
    wazo_sql(warehouse_url, "DELETE FROM queuefeatures WHERE id = 1")
    wazo_sql(warehouse_url, "UPDATE queuefeatures SET name = 'q2-renamed' WHERE id = 2")
    wazo_sql(warehouse_url, "INSERT INTO queuefeatures (id, tenant_uuid, name, displayname) "
                            "VALUES (3, :t, 'q3', 'q3')", t=T1)
    wazo_sql(warehouse_url, "UPDATE agentfeatures SET number = '1012' WHERE id = 11")
    wazo_sql(warehouse_url, "UPDATE agentfeatures SET tenant_uuid = :t WHERE id = 10", t=T2)
    centre.sync_dimensions()
    queues = _latest(centre, "stat_queue")
    assert (queues["config_new"], queues["config_renamed"], queues["config_deleted"]) == (1, 1, 1)
    changes = queues["config_changes"]
    assert "q2-renamed" in changes and "was q2" in changes and "q3" in changes
    agents = _latest(centre, "stat_agent")
    assert (agents["config_renamed"], agents["config_moved"], agents["config_new"]) == (1, 1, 0)
    assert "was 1002" in agents["config_changes"] and f"was in tenant {T1}" in agents["config_changes"]
    rows = centre.query("SELECT name, queue_id, deleted FROM stat_queue ORDER BY name")
    assert ("q1", 1, True) in rows and ("q3", 3, False) in rows and ("q2-renamed", 2, False) in rows
    assert ("Agent/1012", 11, False) in centre.query(
        "SELECT name, agent_id, deleted FROM stat_agent")

    centre.sync_dimensions()  # nothing changed in Wazo: nothing reported
    again = _latest(centre, "stat_queue")
    assert (again["config_new"], again["config_renamed"], again["config_deleted"]) == (0, 0, 0)
    centre.close()


def test_a_queue_new_to_the_stored_config_is_read_from_wazo_before_its_calls(warehouse_url):
    reader = stand_in_wazo(warehouse_url, CONFIG)
    centre = CallCentre(warehouse_url, wazo_config=WazoConfig(
        database_url=reader, database_schema="asterisk"))
    centre.sync_dimensions()
    before = centre.instance.get_latest_materialization_event(dg.AssetKey("stat_queue"))
    # created in Wazo after the last refresh, and called at once
    wazo_sql(warehouse_url, "INSERT INTO queuefeatures (id, tenant_uuid, name, displayname) "
                            "VALUES (9, :t, 'q9', 'q9')", t=T2)
    centre.log((at("10:00:00"), "c1", "q9", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("10:00:30"), "c1", "q9", "NONE", "ABANDON", "1", "1", "30"))
    centre.run("10:00")
    # the queue's own row (confd id, its tenant), not a deleted log-only row of the master
    assert centre.query("SELECT name, tenant_uuid, queue_id, deleted FROM stat_queue "
                        "WHERE name LIKE 'q9%'") == [("q9", T2, 9, False)]
    assert [c[1] for c in centre.calls()] == ["q9"]
    # and the UI shows the change on stat_queue, recorded by the hourly run
    after = centre.instance.get_latest_materialization_event(dg.AssetKey("stat_queue"))
    assert after.run_id != before.run_id
    metadata = after.asset_materialization.metadata
    assert metadata["config_new"].value == 1 and "queue q9" in metadata["config_read_because"].value

    # an hour whose names the stored config knows does not read Wazo (the tables are gone:
    # reading them would fail the run)
    wazo_sql(warehouse_url, "REVOKE SELECT ON queuefeatures FROM stat_reader")
    centre.log((at("11:00:00"), "c2", "q9", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("11:00:20"), "c2", "q9", "NONE", "ABANDON", "1", "1", "20"))
    centre.run("11:00")
    assert [c[1] for c in centre.calls()] == ["q9", "q9"]
    centre.close()


# ---------------------------------------------------------------- the REST path

class StandInConfd:
    """wazo-confd's list routes for one token: /1.1/{queues,agents,contexts}?recurse=true
    and /1.1/tenants (the token's own tenant), with confd's extra fields in the items."""

    def __init__(self, document: dict) -> None:
        self.document = copy.deepcopy(document)
        self.requests: list[tuple[str, dict]] = []
        confd = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                confd.requests.append((parts.path, parse_qs(parts.query)))
                if self.headers.get("X-Auth-Token") != TOKEN:
                    return self._send(401, {"message": "Unauthorized", "error_id": "unauthorized"})
                resource = parts.path.removeprefix("/api/confd/1.1/")
                recurse = parse_qs(parts.query).get("recurse") == ["true"]
                doc = confd.document
                if resource == "tenants":
                    items = [{"uuid": doc["master_tenant"], "sip_templates_generated": True}]
                elif resource in ("queues", "agents", "contexts"):
                    items = [{**item, "label": str(item.get("name", "")), "links": []}
                             for item in doc[resource]
                             if recurse or item["tenant_uuid"] == doc["master_tenant"]]
                else:
                    return self._send(404, {"message": "not found"})
                self._send(200, {"items": items, "total": len(items)})

            def _send(self, status: int, body: dict) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/confd"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def confd():
    server = StandInConfd(CONFIG)
    yield server
    server.close()


def test_reads_confd_rest_api_like_wazo_stat(confd):
    doc = WazoConfig(confd_url=confd.url, confd_token=TOKEN).document()
    assert doc == CONFIG  # sub-tenants' objects included: recurse=true, as wazo-stat asks
    asked = {path: query for path, query in confd.requests}
    for resource in ("queues", "agents", "contexts"):
        assert asked[f"/api/confd/1.1/{resource}"] == {"recurse": ["true"]}


def test_confd_wins_over_the_database_and_feeds_the_dimensions(confd, warehouse_url):
    reader = stand_in_wazo(warehouse_url, {**CONFIG, "queues": []})
    centre = CallCentre(warehouse_url, wazo_config=WazoConfig(
        confd_url=confd.url + "/1.1/", confd_token=TOKEN, database_url=reader,
        database_schema="asterisk"))
    centre.sync_dimensions()
    assert _latest(centre, "stat_queue")["config_origin"] == "confd"
    assert sorted(centre.query("SELECT name, tenant_uuid, queue_id FROM stat_queue "
                               "WHERE NOT deleted")) == [("q1", T1, 1), ("q2", T2, 2)]
    centre.close()


@pytest.mark.parametrize("setting, message", [
    ({"confd_token": "wrong"}, "HTTP 401"),
    ({"confd_url": "http://127.0.0.1:1/api/confd"}, "unreachable"),
    ({"confd_token": None}, "STAT_CONFD_TOKEN is not"),
])
def test_bad_confd_is_a_one_line_error(confd, setting, message):
    config = WazoConfig(**{"confd_url": confd.url, "confd_token": TOKEN, **setting})
    with pytest.raises(ConfigError) as error:
        config.document()
    assert message in str(error.value) and "\n" not in str(error.value)
    assert TOKEN not in str(error.value)


# ---------------------------------------------------------------- the demo's stand-in

def test_demo_stand_in_holds_the_sample_config(warehouse_url):
    sample = json.loads((SAMPLE_DIR / "confd.json").read_text())
    reader = stand_in_wazo(warehouse_url, sample)
    assert WazoConfig(database_url=reader, database_schema="asterisk").document() == sample


# ---------------------------------------------------------------- wiring from the environment

def test_environment_wiring_reads_the_source_databases_wazo_tables(warehouse_url, monkeypatch):
    from stat_pipeline.definitions import DIMENSIONS_JOB, QUIET, build_definitions

    reader = stand_in_wazo(warehouse_url, CONFIG)
    for unset in ("STAT_CONFD_JSON", "STAT_CONFD_URL", "STAT_CONFD_TOKEN", "STAT_SOURCE_FILE",
                  "STAT_SOURCE_CSV", "STAT_MASTER_TENANT", "STAT_WAZO_TABLES"):
        monkeypatch.delenv(unset, raising=False)
    monkeypatch.setenv("STAT_SOURCE_URL", reader)
    monkeypatch.setenv("STAT_SOURCE_TABLE", "asterisk.queue_log")
    monkeypatch.setenv("STAT_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("STAT_PARTITIONS_START", "2024-03-01-00:00")
    defs = build_definitions()
    schedule = defs.resolve_schedule_def("dimensions_refresh")
    assert schedule.job_name == DIMENSIONS_JOB
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    with dg.DagsterInstance.ephemeral() as instance:
        assert defs.resolve_job_def(DIMENSIONS_JOB).execute_in_process(
            instance=instance, run_config=QUIET).success
    queues, agents = _dimensions(warehouse_url)
    assert [(q[0], q[1], q[2]) for q in queues if not q[3]] == [
        (q["name"], q["tenant_uuid"], q["id"]) for q in CONFIG["queues"]]
    assert [(a[0], a[1], a[2]) for a in agents if not a[3]] == [
        ("Agent/" + a["number"], a["tenant_uuid"], a["id"]) for a in CONFIG["agents"]]
