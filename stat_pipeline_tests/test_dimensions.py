"""stat_queue / stat_agent: wazo-stat's dimension rules (wazo_stat_algorithm.md section 4)."""
from __future__ import annotations

import json

import pytest

from stat_pipeline.resources import ConfigError, WazoConfig
from stat_pipeline_tests.harness import CallCentre, at

T1 = "11111111-1111-4111-8111-111111111111"
MASTER = "00000000-0000-4000-8000-000000000000"


def _config(tmp_path, queues, agents, name="confd.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"master_tenant": MASTER, "queues": queues, "agents": agents}))
    return str(path)


def _queues(centre):
    return sorted(centre.query("SELECT name, tenant_uuid, queue_id, deleted FROM stat_queue"))


def test_queues_from_config_and_log(warehouse_url, tmp_path):
    cfg = _config(tmp_path, [{"id": 1, "name": "q1", "tenant_uuid": T1}],
                  [{"id": 10, "number": "1001", "tenant_uuid": T1}])
    centre = CallCentre(warehouse_url, config_path=cfg)
    centre.log((at("10:00:00"), "c1", "q_log", "NONE", "FULL"),
               (at("10:00:01"), "NONE", "NONE", "Agent/1001", "PAUSEALL"))
    centre.run("10:00")
    assert _queues(centre) == [("q1", T1, 1, False), ("q_log", MASTER, None, True)]
    assert centre.query("SELECT name, agent_id, deleted FROM stat_agent") == [("Agent/1001", 10, False)]
    centre.close()


def test_recreated_queue_and_agent_keep_history(warehouse_url, tmp_path):
    queues = [{"id": 1, "name": "q1", "tenant_uuid": T1}]
    agents = [{"id": 10, "number": "1001", "tenant_uuid": T1}]
    centre = CallCentre(warehouse_url, config_path=_config(tmp_path, queues, agents))
    centre.log((at("10:00:00"), "c1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("10:01:00"), "c1", "q1", "Agent/1001", "COMPLETEAGENT", "5", "55", "1"))
    centre.run("10:00")
    # q1 and agent 1001 deleted and re-created in confd (new ids); q2 appears
    new_cfg = _config(tmp_path, [{"id": 7, "name": "q1", "tenant_uuid": T1},
                                 {"id": 8, "name": "q2", "tenant_uuid": T1}],
                      [{"id": 11, "number": "1001", "tenant_uuid": T1}], "confd2.json")
    later = CallCentre(warehouse_url, config_path=new_cfg)
    later.sync_dimensions()
    assert _queues(later) == [("q1", T1, 7, False), ("q1_", T1, 1, True), ("q2", T1, 8, False)]
    assert sorted(later.query("SELECT name, agent_id, deleted FROM stat_agent")) == [
        ("Agent/1001", 11, False), ("Agent/1001_", 10, True)]
    # the old call still points at the old (renamed) rows
    assert [(c[1], c[2]) for c in later.calls()] == [("q1_", "Agent/1001_")]
    later.close()
    centre.close()


def test_without_config_log_queues_are_live_and_none_is_not_a_queue(warehouse_url):
    centre = CallCentre(warehouse_url)
    centre.log((at("10:00:00"), "c1", "support", "NONE", "FULL"),
               (at("10:00:05"), "NONE", "NONE", "Agent/1", "UNPAUSEALL"))
    centre.run("10:00")
    assert [(q[0], q[3]) for q in _queues(centre)] == [("support", False)]
    centre.close()


@pytest.mark.parametrize("content, message", [
    ("{not json", "not readable JSON"),
    ('{"queues": []}', "'master_tenant'"),
    ('{"master_tenant": "t", "queues": [{"id": 1, "name": "q"}]}', "queues[0] lacks tenant_uuid"),
    ('{"master_tenant": "t", "agents": [{"id": "x", "number": "1", "tenant_uuid": "t"}]}',
     "agents[0].id must be an integer"),
    # Wazo's column sizes (wazo_schema.sql), said before any work
    ('{"master_tenant": "t", "queues": [{"id": 1, "name": "%s", "tenant_uuid": "t"}]}' % ("q" * 129),
     "queues[0].name is 129 characters long: stat_queue.name holds at most 128"),
    ('{"master_tenant": "t", "agents": [{"id": 1, "number": "%s", "tenant_uuid": "t"}]}' % ("1" * 123),
     "agents[0].number is 123 characters long"),
    ('{"master_tenant": "t", "queues": [{"id": 1, "name": "q", "tenant_uuid": "%s"}]}' % ("t" * 37),
     "queues[0].tenant_uuid is 37 characters long: stat_queue.tenant_uuid holds at most 36"),
    ('{"master_tenant": "t", "agents": [{"id": 4294967296, "number": "1", "tenant_uuid": "t"}]}',
     "agents[0].id must be an integer from 0 to 2147483647"),
    ('{"master_tenant": "t", "contexts": [{"name": "%s", "tenant_uuid": "t"}]}' % ("c" * 80),
     "contexts[0].name is 80 characters long"),
])
def test_bad_config_is_a_one_line_error(tmp_path, content, message):
    path = tmp_path / "confd.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        WazoConfig(confd_json=str(path)).document()
    assert message in str(err.value) and "\n" not in str(err.value)
