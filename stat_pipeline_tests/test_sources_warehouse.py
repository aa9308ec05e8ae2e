"""Several PBXs, one warehouse (issue 15 items 3-4), through the real Dagster machinery and a
real PostgreSQL: a stand-in Wazo (its queue_log and config tables, tenants) and a plain
Asterisk's flat file, with the SAME queue, agent and call names and OVERLAPPING row ids.

* Computed together (per-source sensors, their tagged runs, late rows on one of them) the
  warehouse holds exactly the union of each source computed alone in a warehouse of its own;
  `sales` of each PBX is its own stat_queue row, in its own tenant.
* A PBX that is down does not stop the other's statistics: its runs fail, the other's hours
  keep coming, and its healing sensor redoes its hours, per source, once it is back.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import create_engine, text

from stat_pipeline.definitions import DIMENSIONS_JOB, HOURLY_JOB, QUIET, build_definitions
from stat_pipeline.partitions import hourly_partitions
from stat_pipeline.resources import Warehouse, warehouse_engine
from stat_pipeline.sources.config import SOURCE_TAG, SourceSet
from stat_pipeline_tests.harness import DAY, at, log_rows
from stat_pipeline_tests.test_wazo_config import stand_in_wazo

T_PARIS = "11111111-1111-4111-8111-111111111111"
MASTER_PARIS = "00000000-0000-4000-8000-000000000000"
T_LYON = "33333333-3333-4333-8333-333333333333"
DOWN = "postgresql+psycopg2://nobody@127.0.0.1:1/none"   # nothing listens on port 1
UNTIL = (DAY + dt.timedelta(days=1)).isoformat()
RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")

# The same names on both PBXs: queue `sales` (confd id 1), agent 1001 (confd id 10).
PARIS_CONFIG = {"master_tenant": MASTER_PARIS,
                "queues": [{"id": 1, "name": "sales", "tenant_uuid": T_PARIS}],
                "agents": [{"id": 10, "number": "1001", "tenant_uuid": T_PARIS}],
                "contexts": [{"name": "default", "tenant_uuid": T_PARIS}]}
LYON_CONFIG = {"master_tenant": T_LYON,
               "queues": [{"id": 1, "name": "sales", "tenant_uuid": T_LYON}],
               "agents": [{"id": 10, "number": "1001", "tenant_uuid": T_LYON}]}


def paris_rows():
    return [(at("09:50:00"), "NONE", "NONE", "Agent/1001", "AGENTCALLBACKLOGIN", "1001@default"),
            (at("10:05:00"), "c1", "sales", "NONE", "ENTERQUEUE", "", "0600", "1"),
            (at("10:06:00"), "c1", "sales", "Agent/1001", "CONNECT", "60", "c1.1", "3"),
            (at("10:16:00"), "c1", "sales", "Agent/1001", "COMPLETECALLER", "60", "600", "1"),
            (at("11:20:00"), "c2", "sales", "NONE", "ENTERQUEUE", "", "0601", "1"),
            (at("11:21:00"), "c2", "sales", "NONE", "ABANDON", "1", "1", "60"),
            (at("12:30:00"), "NONE", "NONE", "Agent/1001", "AGENTCALLBACKLOGOFF", "1001@default",
             "9600", "CommandLogoff")]


def lyon_lines(late: bool):
    rows = [("09:40:00", "NONE", "NONE", "Agent/1001", "AGENTCALLBACKLOGIN", "1001@default"),
            ("10:30:00", "c1", "sales", "NONE", "ENTERQUEUE", "", "0700", "1"),
            ("10:31:00", "c1", "sales", "Agent/1001", "CONNECT", "60", "c1.9", "2"),
            ("10:40:00", "c1", "sales", "Agent/1001", "COMPLETEAGENT", "60", "540", "1"),
            ("11:05:00", "c2", "sales", "NONE", "ENTERQUEUE", "", "0701", "1")]
    if late:  # arrive after the first ticks: an outcome for 11:05, a call of its own
        rows += [("11:07:00", "c2", "sales", "NONE", "EXITWITHTIMEOUT", "1", "1", "120"),
                 ("11:40:00", "c3", "sales", "NONE", "FULL"),
                 ("12:10:00", "NONE", "NONE", "Agent/1001", "AGENTCALLBACKLOGOFF", "1001@default",
                  "9000", "CommandLogoff")]
    return ["|".join([str(int(at(r[0]).timestamp())), *r[1:]]) + "\n" for r in rows]


class Pbxs:
    """The two PBXs and sources files naming them (both, or one alone)."""

    def __init__(self, pg_server, tmp_path: Path, monkeypatch) -> None:
        self.pbx_url = pg_server.url(self._database(pg_server, "pbx"))
        reader = stand_in_wazo(self.pbx_url, PARIS_CONFIG)
        monkeypatch.setenv("PARIS_DB_URL", reader)
        self.reader_url = reader
        engine = create_engine(self.pbx_url)
        log_rows(engine, paris_rows())
        engine.dispose()
        self.flat = tmp_path / "lyon_queue_log"
        self.flat.write_text("".join(lyon_lines(late=False)))
        confd = tmp_path / "lyon_confd.json"
        confd.write_text(json.dumps(LYON_CONFIG))
        paris = ("- name: paris\n  kind: wazo\n  url: {env: PARIS_DB_URL}\n"
                 "  table: asterisk.queue_log\n")
        lyon = (f"- name: lyon\n  kind: asterisk_file\n  path: {self.flat}\n  tenant: {T_LYON}\n"
                f"  config: {{confd_json: {confd}}}\n")
        self.files = {}
        for name, body in (("both", paris + lyon), ("paris", paris), ("lyon", lyon)):
            self.files[name] = tmp_path / f"{name}.yml"
            self.files[name].write_text(body)
        self.server = pg_server

    @staticmethod
    def _database(pg_server, prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        pg_server.create_database(name)
        return name

    def add_late_lyon_rows(self) -> None:
        self.flat.write_text("".join(lyon_lines(late=True)))

    def warehouse(self, which: str, url: str | None = None) -> "Warehouse_":
        return Warehouse_(url or self.server.url(self._database(self.server, "wh")),
                          str(self.files[which]))


class Warehouse_:
    """A warehouse fed by a sources file through the real definitions."""

    def __init__(self, url: str, sources_file: str) -> None:
        self.url = url
        warehouse_engine(url)
        self.source = SourceSet(sources_file=sources_file, until=UNTIL)
        self.defs = build_definitions(
            partitions=hourly_partitions(start=DAY - dt.timedelta(days=1),
                                         end=DAY + dt.timedelta(days=2)),
            source=self.source, warehouse=Warehouse(url=url))
        self.instance = dg.DagsterInstance.ephemeral()

    def run(self, first: str, last: str, **tags) -> dg.ExecuteInProcessResult:
        return self.defs.resolve_job_def(HOURLY_JOB).execute_in_process(
            instance=self.instance, run_config=QUIET, raise_on_error=False,
            tags={RANGE[0]: f"2024-03-01-{first}", RANGE[1]: f"2024-03-01-{last}", **tags})

    def dimensions(self) -> None:
        assert self.defs.resolve_job_def(DIMENSIONS_JOB).execute_in_process(
            instance=self.instance, run_config=QUIET).success

    def tick(self, sensor_name: str, cursor=None):
        sensor = self.defs.resolve_sensor_def(sensor_name)
        with dg.build_sensor_context(cursor=cursor, instance=self.instance, resources={
                "source": self.source, "warehouse": Warehouse(url=self.url)}) as context:
            return sensor(context)

    def execute(self, result) -> list:
        """Run what a sensor asked for, as the daemon would; the (source, range) of each."""
        done = []
        for request in result.run_requests:
            job = self.defs.resolve_job_def(HOURLY_JOB)
            if request.asset_selection:
                job = job.get_subset(asset_selection=set(request.asset_selection))
            assert job.execute_in_process(instance=self.instance, run_config=QUIET,
                                          tags=request.tags).success
            done.append((request.tags.get(SOURCE_TAG), request.tags[RANGE[0]],
                         request.tags[RANGE[1]]))
        return done

    def query(self, sql: str) -> list:
        engine = create_engine(self.url)
        with engine.connect() as conn:
            rows = conn.execute(text(sql)).all()
        engine.dispose()
        return rows

    def tables(self) -> dict[str, Counter]:
        """The outputs as multisets of rows, ids replaced by what they point to."""
        return {name: Counter(map(tuple, self.query(sql))) for name, sql in {
            "stat_call_on_queue":
                "SELECT c.callid, q.name, q.tenant_uuid, a.name, a.tenant_uuid, "
                "CAST(c.status AS text), c.\"time\", c.waittime, c.talktime, c.source "
                "FROM stat_call_on_queue c LEFT JOIN stat_queue q ON q.id = c.stat_queue_id "
                "LEFT JOIN stat_agent a ON a.id = c.stat_agent_id",
            "stat_queue_periodic":
                "SELECT p.\"time\", q.name, q.tenant_uuid, p.answered, p.abandoned, p.total, "
                "p.\"full\", p.timeout, p.source "
                "FROM stat_queue_periodic p LEFT JOIN stat_queue q ON q.id = p.stat_queue_id",
            "stat_agent_periodic":
                "SELECT p.\"time\", a.name, a.tenant_uuid, q.name, p.login_time, p.pause_time, "
                "p.wrapup_time, p.source FROM stat_agent_periodic p "
                "JOIN stat_agent a ON a.id = p.stat_agent_id "
                "LEFT JOIN stat_queue q ON q.id = p.stat_queue_id",
            "stat_queue": "SELECT name, tenant_uuid, queue_id, deleted, source FROM stat_queue",
            "stat_agent": "SELECT name, tenant_uuid, agent_id, deleted, source FROM stat_agent",
            "classified_calls":
                "SELECT source, callid, queuename, call_time, status, waittime, talktime, agent, "
                "enter_row_id, outcome_row_id FROM classified_calls",
            "queue_log": "SELECT source, source_id, \"time\", callid, event FROM queue_log",
            "queue_log_rejects":
                "SELECT source, source_id, hour, stage, reason FROM queue_log_rejects",
        }.items()}


def union(*parts: dict[str, Counter]) -> dict[str, Counter]:
    return {name: sum((p[name] for p in parts), Counter()) for name in parts[0]}


def alone(pbxs: Pbxs, which: str) -> dict[str, Counter]:
    """``which`` computed in a warehouse of its own: one untagged run of the whole day."""
    wh = pbxs.warehouse(which)
    wh.dimensions()
    assert wh.run("00:00", "23:00").success
    return wh.tables()


@pytest.fixture
def pbxs(pg_server, tmp_path, monkeypatch):
    return Pbxs(pg_server, tmp_path, monkeypatch)


def test_two_pbxs_with_the_same_names_equal_each_computed_alone(pbxs, warehouse_url):
    both = pbxs.warehouse("both", warehouse_url)
    assert {s.name for s in both.defs.sensors} == {
        "queue_log_new_rows_paris", "stale_hours_paris", "queue_log_new_rows_lyon",
        "stale_hours_lyon"}
    both.dimensions()
    paris = both.tick("queue_log_new_rows_paris")
    lyon = both.tick("queue_log_new_rows_lyon")
    # each sensor requests runs of its own source only
    # (the hours an open agent login touches, up to the partitions' end, included)
    assert {run[0] for run in both.execute(paris)} == {"paris"}
    assert {run[0] for run in both.execute(lyon)} == {"lyon"}
    paris_rows_before = both.query("SELECT id, ingested_at FROM queue_log WHERE source = 'paris' "
                                   "ORDER BY id")
    paris_calls_before = both.query("SELECT id FROM stat_call_on_queue WHERE source = 'paris' "
                                    "ORDER BY id")

    # late rows on lyon, through lyon's sensor: paris's cursor and rows are not involved
    pbxs.add_late_lyon_rows()
    assert both.tick("queue_log_new_rows_paris", paris.cursor).run_requests == []
    late = both.tick("queue_log_new_rows_lyon", lyon.cursor)
    assert {run[0] for run in both.execute(late)} == {"lyon"}
    assert both.query("SELECT id, ingested_at FROM queue_log WHERE source = 'paris' "
                      "ORDER BY id") == paris_rows_before
    assert both.query("SELECT id FROM stat_call_on_queue WHERE source = 'paris' "
                      "ORDER BY id") == paris_calls_before

    together = both.tables()
    # `sales` of each PBX is its own row, in its own tenant; the same callids stay apart
    assert sorted(together["stat_queue"]) == [("sales", T_PARIS, 1, False, "paris"),
                                              ("sales", T_LYON, 1, False, "lyon")]
    calls = sorted((c[0], c[2], c[4], c[5]) for c in together["stat_call_on_queue"])
    assert calls == [("c1", T_PARIS, T_PARIS, "answered"), ("c1", T_LYON, T_LYON, "answered"),
                     ("c2", T_PARIS, None, "abandoned"), ("c2", T_LYON, None, "timeout"),
                     ("c3", T_LYON, None, "full")]
    # overlapping row ids: line 2 of lyon's file and row 2 of paris's table are two rows
    assert {s for s, i, *_ in together["queue_log"] if i == 2} == {"paris", "lyon"}
    assert together == union(alone(pbxs, "paris"), alone(pbxs, "lyon"))

    # an untagged run (the UI's materialize or backfill) does every source: same tables
    assert both.run("00:00", "23:00").success
    assert both.tables() == together


def test_a_pbx_down_does_not_stop_the_other(pbxs, warehouse_url, monkeypatch):
    both = pbxs.warehouse("both", warehouse_url)
    both.dimensions()
    paris = both.tick("queue_log_new_rows_paris")        # requested while paris was up
    lyon = both.tick("queue_log_new_rows_lyon")
    monkeypatch.setenv("PARIS_DB_URL", DOWN)              # then paris goes down
    both.dimensions()                                     # lyon's config is still refreshed
    event = both.instance.get_latest_materialization_event(dg.AssetKey("stat_queue"))
    not_refreshed = event.asset_materialization.metadata["sources_not_refreshed"].value
    assert list(not_refreshed) == ["paris"] and "unreachable" in not_refreshed["paris"]
    for request in paris.run_requests:                    # its runs fail
        assert not both.run(request.tags[RANGE[0]][-5:], request.tags[RANGE[1]][-5:],
                            **{SOURCE_TAG: "paris"}).success
    assert both.execute(lyon)                             # lyon's hours keep coming
    pbxs.add_late_lyon_rows()
    assert both.execute(both.tick("queue_log_new_rows_lyon", lyon.cursor))
    assert {c[9] for c in both.tables()["stat_call_on_queue"]} == {"lyon"}
    assert isinstance(both.tick("stale_hours_lyon"), dg.SkipReason)  # nothing of lyon's failed

    # an untagged backfill (every source) fails too; lyon's healer redoes its hours for lyon
    # (they were lyon's too), paris's healer waits for paris, spending no attempt
    assert not both.run("09:00", "12:00").success
    heal_lyon = both.tick("stale_hours_lyon")
    assert not isinstance(heal_lyon, dg.SkipReason), heal_lyon.skip_message
    assert {r.tags[SOURCE_TAG] for r in heal_lyon.run_requests} == {"lyon"}
    both.execute(heal_lyon)
    assert isinstance(both.tick("stale_hours_lyon"), dg.SkipReason)
    waiting = both.tick("stale_hours_paris")
    assert isinstance(waiting, dg.SkipReason)
    assert "waiting for the source" in waiting.skip_message
    assert "out of date: 2024-03-01-09:00.." in waiting.skip_message
    with pytest.raises(Exception, match="unreachable"):   # its new-rows sensor says why
        both.tick("queue_log_new_rows_paris", paris.cursor)

    monkeypatch.setenv("PARIS_DB_URL", pbxs.reader_url)  # paris is back
    healed = both.tick("stale_hours_paris")
    assert not isinstance(healed, dg.SkipReason), healed.skip_message
    assert {r.tags[SOURCE_TAG] for r in healed.run_requests} == {"paris"}
    both.execute(healed)
    done = both.tick("stale_hours_paris")
    assert isinstance(done, dg.SkipReason) and "up to date" in done.skip_message
    assert both.tables() == union(alone(pbxs, "paris"), alone(pbxs, "lyon"))


def test_migration_0017_labels_an_existing_warehouse_with_its_one_source(warehouse_url):
    """A warehouse of one source, from before migration 0017: its rows get that source's
    name (the name queue_log holds), its stored config becomes that source's."""
    from stat_pipeline.warehouse.migrate import migrate, migration_files

    engine = create_engine(warehouse_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE stat_pipeline_migrations (version text PRIMARY KEY, "
                             "applied_at timestamptz NOT NULL DEFAULT now())")
        for version, sql in migration_files():
            if version >= "0017":
                break
            conn.exec_driver_sql(sql)
            conn.execute(text("INSERT INTO stat_pipeline_migrations (version) VALUES (:v)"),
                         {"v": version})
        conn.exec_driver_sql(
            "INSERT INTO queue_log (source, source_id, \"time\", event) "
            "VALUES ('pg:asterisk.queue_log', 1, '2024-03-01 10:00+00', 'FULL');"
            "INSERT INTO stat_queue (name, tenant_uuid, deleted) VALUES ('sales', 't', false);"
            "INSERT INTO confd_snapshot (document) VALUES ('{}');"
            "INSERT INTO classified_calls (callid, queuename, call_time, status) "
            "VALUES ('c1', 'sales', '2024-03-01 10:00+00', 'full');"
            "INSERT INTO partition_writes (asset, hour, written_at) "
            "VALUES ('queue_log', '2024-03-01 10:00+00', now())")
    assert migrate(engine) == [v for v, _ in migration_files() if v >= "0017"]
    with engine.connect() as conn:
        for table in ("stat_queue", "confd_snapshot", "classified_calls", "partition_writes"):
            assert conn.exec_driver_sql(f"SELECT source FROM {table}").scalars().all() == [
                "pg:asterisk.queue_log"], table
        # new rows name their source (no default left behind)
        assert conn.exec_driver_sql(
            "SELECT column_default FROM information_schema.columns "
            "WHERE table_name = 'stat_queue' AND column_name = 'source'").scalar() is None
    engine.dispose()


def test_first_partition_is_the_earliest_day_of_the_database_sources(pbxs, tmp_path,
                                                                      monkeypatch):
    """With a sources file, the partitions start on the day of the earliest row of its Wazo
    sources (a PBX whose history starts before the others' must not lose its first days); a
    source whose URL variable is not set, or a file, is not read at load."""
    from stat_pipeline.partitions import partitions_start_from_env

    for name in ("STAT_PARTITIONS_START", "STAT_WAREHOUSE_URL", "STAT_SOURCE_URL"):
        monkeypatch.delenv(name, raising=False)
    older = create_engine(pbxs.pbx_url)  # paris gets a row two days before its others
    log_rows(older, [(at("08:00:00") - dt.timedelta(days=2), "NONE", "NONE", "Agent/1001",
                      "PAUSEALL", "")])
    older.dispose()
    unset = tmp_path / "with_unset.yml"
    unset.write_text(pbxs.files["both"].read_text()
                     + "- name: nice\n  kind: wazo\n  url: {env: NICE_DB_URL_UNSET}\n")
    monkeypatch.delenv("NICE_DB_URL_UNSET", raising=False)
    monkeypatch.setenv("STAT_SOURCES_FILE", str(unset))
    assert partitions_start_from_env() == DAY - dt.timedelta(days=2)
    monkeypatch.setenv("STAT_SOURCES_FILE", str(pbxs.files["lyon"]))  # a file only: unknown
    assert partitions_start_from_env() is None


def test_names_shared_by_two_sources_in_one_tenant_are_said(pbxs, tmp_path, warehouse_url):
    """Two PBXs configured into one tenant: their `sales` stay two rows (never merged), and
    the dimension's materialization names the queue and agent shown twice in that tenant;
    PBXs in tenants of their own get no such note."""
    def shared_of(warehouse) -> dict:
        result = warehouse.defs.resolve_job_def(DIMENSIONS_JOB).execute_in_process(
            instance=warehouse.instance, run_config=QUIET)
        return {m.asset_key.path[-1]: m.metadata.get("names_shared_across_sources")
                for m in result.asset_materializations_for_node("dimensions")}

    assert shared_of(pbxs.warehouse("both", warehouse_url)) == {"stat_queue": None,
                                                                "stat_agent": None}
    same = json.loads(json.dumps(LYON_CONFIG).replace(T_LYON, T_PARIS))
    confd = tmp_path / "lyon_in_paris_tenant.json"
    confd.write_text(json.dumps(same))
    pbxs.files["one_tenant"] = tmp_path / "one_tenant.yml"
    pbxs.files["one_tenant"].write_text(pbxs.files["both"].read_text().replace(
        str(tmp_path / "lyon_confd.json"), str(confd)))
    one_tenant = pbxs.warehouse("one_tenant")
    shared = shared_of(one_tenant)
    assert shared["stat_queue"].data == [{"tenant_uuid": T_PARIS, "name": "sales",
                                          "sources": ["lyon", "paris"]}]
    assert shared["stat_agent"].data == [{"tenant_uuid": T_PARIS, "name": "Agent/1001",
                                          "sources": ["lyon", "paris"]}]
    assert len(one_tenant.query("SELECT id FROM stat_queue WHERE name = 'sales' "
                                "AND NOT deleted")) == 2


def test_dimension_sync_leaves_planner_statistics_of_its_rows(pbxs, warehouse_url):
    """Rows written by the dimension rules are analyzed at once: a small call centre never
    reaches autovacuum's threshold, and without statistics a scope's `source = …` is
    estimated at one row (stat_call_on_queue's insert then re-ran its look-ups per call)."""
    both = pbxs.warehouse("both", warehouse_url)
    both.dimensions()
    assert both.query("SELECT c.relname, c.reltuples::int, "
                      "(SELECT count(*) FROM stat_queue), (SELECT count(*) FROM stat_agent) "
                      "FROM pg_class c WHERE c.relname IN ('stat_queue', 'stat_agent') "
                      "AND c.relkind = 'r' ORDER BY 1") == [
        ("stat_agent", 2, 2, 2), ("stat_queue", 2, 2, 2)]
