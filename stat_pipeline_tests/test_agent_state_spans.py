"""The agents' state look-ups on monthly partitions (issue 17 item 3): agent_state_span
(migration 0020) tells assets/agents.sql which names have state rows and between which
times, so an hour does not probe every month kept. What must hold, on a real PostgreSQL and
through the real Dagster job: each span covers its rows whatever wrote, re-wrote or dropped
them, and the agent times are those the unbounded look-ups give."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from stat_pipeline.retention import drop_raw_months
from stat_pipeline.warehouse import migrate as migrations
from stat_pipeline_tests.harness import CallCentre, at
from stat_pipeline_tests.test_agents import AGENT_ASSETS, END_OF_DAY, PREV, _config, rows

UTC = dt.timezone.utc
YEAR_BACK = dt.datetime(2023, 3, 14, 9, 0, tzinfo=UTC)

# state rows of queue_log without a span that covers them (the look-ups would miss them)
UNCOVERED = """
SELECT count(*) FROM queue_log q
WHERE q.agent IS NOT NULL
  AND (q.event IN ('AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF', 'PAUSEALL', 'UNPAUSEALL')
       OR (q.event IN ('ADDMEMBER', 'REMOVEMEMBER', 'PAUSE', 'UNPAUSE')
           AND q.queuename IS NOT NULL))
  AND NOT EXISTS (
      SELECT 1 FROM agent_state_span s
      WHERE s.source = q.source AND s.agent = q.agent AND s.event = q.event
        AND s.queuename = CASE WHEN q.event IN ('ADDMEMBER', 'REMOVEMEMBER', 'PAUSE', 'UNPAUSE')
                               THEN q.queuename ELSE '' END
        AND q."time" BETWEEN s.first_time AND s.last_time)
"""
# the spans as the rows give them now (the narrowest that cover)
EXACT = """
SELECT source, agent, event,
       CASE WHEN event IN ('ADDMEMBER', 'REMOVEMEMBER', 'PAUSE', 'UNPAUSE')
            THEN queuename ELSE '' END, min("time"), max("time")
FROM queue_log
WHERE agent IS NOT NULL
  AND (event IN ('AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF', 'PAUSEALL', 'UNPAUSEALL')
       OR (event IN ('ADDMEMBER', 'REMOVEMEMBER', 'PAUSE', 'UNPAUSE') AND queuename IS NOT NULL))
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""
SPANS = "SELECT * FROM agent_state_span ORDER BY 1, 2, 3, 4"


@pytest.fixture
def centre(warehouse_url, tmp_path):
    c = CallCentre(warehouse_url, _config(tmp_path), until=END_OF_DAY)
    yield c
    c.close()


def _day_of_agents(centre: CallCentre) -> None:
    """Agent/1: logged in and member since yesterday, paused this morning; Agent/2: logs in,
    pauses in queue1 and logs off today; Local/id-3: added to queue2 by Wazo yesterday."""
    centre.log((at("20:00:00", PREV), "NONE", "NONE", "Agent/1", "AGENTCALLBACKLOGIN",
                "1001@default"),
               (at("20:00:01", PREV), "NONE", "queue1", "Agent/1", "ADDMEMBER", ""),
               (at("21:00:00", PREV), "NONE", "queue2", "Local/id-3@agentcallback",
                "ADDMEMBER", ""),
               (at("09:10:00"), "NONE", "NONE", "Agent/1", "PAUSEALL", "lunch"),
               (at("09:40:00"), "NONE", "NONE", "Agent/1", "UNPAUSEALL", ""),
               (at("10:05:00"), "NONE", "NONE", "Agent/2", "AGENTCALLBACKLOGIN", "1002@default"),
               (at("10:06:00"), "NONE", "queue1", "Agent/2", "ADDMEMBER", ""),
               (at("10:20:00"), "NONE", "queue1", "Agent/2", "PAUSE", "coffee"),
               (at("10:30:00"), "NONE", "queue1", "Agent/2", "UNPAUSE", ""),
               (at("11:30:00"), "NONE", "NONE", "Agent/2", "AGENTCALLBACKLOGOFF",
                "1002@default", "5100"))


def _agent_rows(centre: CallCentre) -> list[tuple]:
    return rows(centre)


def test_spans_cover_the_rows_through_reruns_recopies_and_retention(centre):
    _day_of_agents(centre)
    centre.run("2024-02-29-20:00", "11:00")
    assert centre.query(UNCOVERED) == [(0,)]
    assert centre.query(SPANS) == centre.query(EXACT)  # written by the hours' copies
    times = _agent_rows(centre)
    assert {(a, q) for _, a, q, *_ in times} >= {("Agent/1", ""), ("Agent/1", "queue1"),
                                                 ("Agent/2", ""), ("Agent/2", "queue1")}

    # a re-run copies the same rows again: the same spans, the same times
    centre.run("2024-02-29-20:00", "11:00")
    assert centre.query(SPANS) == centre.query(EXACT)
    assert _agent_rows(centre) == times

    # the source loses a row (Agent/2's logoff) and the hour is re-copied: the span stays
    # wider than the rows (never narrower), and the times are those of exact spans
    with centre.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM asterisk.queue_log WHERE event = 'AGENTCALLBACKLOGOFF'")
    centre.run("11:00")
    centre.run("10:00", "11:00", assets=AGENT_ASSETS)
    assert centre.query(UNCOVERED) == [(0,)]
    assert centre.query(SPANS) != centre.query(EXACT)
    wide = _agent_rows(centre)
    assert wide != times  # Agent/2's session is now open to the horizon
    with centre.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM agent_state_span")
        conn.exec_driver_sql("INSERT INTO agent_state_span " + EXACT)
    centre.run("2024-02-29-20:00", "11:00", assets=AGENT_ASSETS)
    assert _agent_rows(centre) == wide

    # retention drops February: the spans still cover what is left, March's times stay
    march = [r for r in wide if not r[0].startswith("02-")]
    with centre.engine.begin() as conn:
        assert drop_raw_months(conn, 1, now=dt.datetime(2024, 4, 15, tzinfo=UTC)) == [
            dt.date(2024, 2, 1)]
    assert centre.query(UNCOVERED) == [(0,)]
    assert centre.query("SELECT count(*) FROM queue_log WHERE \"time\" < '2024-03-01'") == [(0,)]
    centre.run("00:00", "11:00", assets=AGENT_ASSETS)
    # Agent/1's login and membership of February are gone with their rows: March's hours
    # now see only what is left, exactly as the unbounded look-ups would
    after = [r for r in _agent_rows(centre) if not r[0].startswith("02-")]
    assert [r for r in after if r[1] == "Agent/2"] == [r for r in march if r[1] == "Agent/2"]


def test_a_login_a_year_back_counts_with_a_year_of_months_kept(centre):
    """An agent whose last login is eleven months and many partitions before the hour is
    still logged in (and a member) during it; a name without rows is not looked up."""
    centre.log((at("10:05:00"), "NONE", "NONE", "Agent/2", "AGENTCALLBACKLOGIN", "1002@default"))
    centre.run("10:00")
    source = centre.query("SELECT DISTINCT source FROM queue_log")[0][0]
    with centre.engine.begin() as conn:
        # a year of monthly partitions, and two rows of a year ago written straight into
        # queue_log (as a bulk load would): the trigger records their span all the same
        conn.exec_driver_sql("SELECT stat_prepare_hours('2023-03-01', '2024-03-01')")
        conn.exec_driver_sql(
            "INSERT INTO queue_log (source, source_id, \"time\", callid, queuename, agent, "
            "event, data1, data2, data3, data4, data5, ingested_at, source_time) VALUES "
            f"('{source}', -1, '{YEAR_BACK.isoformat()}', 'NONE', 'NONE', 'Agent/1', "
            "'AGENTCALLBACKLOGIN', '1001@default', '', '', '', '', now(), ''), "
            f"('{source}', -2, '{(YEAR_BACK + dt.timedelta(seconds=1)).isoformat()}', 'NONE', "
            "'queue1', 'Agent/1', 'ADDMEMBER', '', '', '', '', '', now(), '')")
    months = centre.query("SELECT count(*) FROM pg_inherits WHERE inhparent = 'queue_log'::regclass")
    assert months[0][0] >= 13
    assert centre.query(UNCOVERED) == [(0,)]
    centre.run("11:00", assets=AGENT_ASSETS)
    at_11 = [r for r in _agent_rows(centre) if r[0] == "11:00"]
    assert ("11:00", "Agent/1", "", 3600.0, 0.0, 0.0) in at_11
    assert ("11:00", "Agent/1", "queue1", 3600.0, 0.0, 0.0) in at_11
    assert ("11:00", "Agent/2", "", 3600.0, 0.0, 0.0) in at_11
    # names that never logged in, paused or joined (Agent/3, Local/id-3...) have no span
    assert centre.query("SELECT count(*) FROM agent_state_span WHERE agent IN "
                        "('Agent/3', 'Local/id-3@agentcallback')") == [(0,)]


def test_migration_fills_the_spans_of_the_rows_already_copied(versioned_warehouse_url,
                                                              monkeypatch):
    """A warehouse with rows before 0020 (on each server version): the migration records
    their spans; later inserts, of several sources in one statement, extend them."""
    engine = sa.create_engine(versioned_warehouse_url)
    every = migrations.migration_files()
    monkeypatch.setattr(migrations, "migration_files",
                        lambda: [m for m in every if m[0] < "0020"])
    migrations.migrate(engine)
    insert = """
        INSERT INTO queue_log (source, source_id, "time", callid, queuename, agent, event)
        SELECT s, g, timestamptz '2024-01-20 00:00+00' + g * interval '1 day', 'NONE',
               CASE WHEN g % 3 = 0 THEN NULL ELSE 'q' || g % 2 END, 'Agent/' || g % 4,
               (ARRAY['AGENTCALLBACKLOGIN', 'PAUSEALL', 'ADDMEMBER', 'PAUSE', 'CONNECT'])[g % 5 + 1]
        FROM generate_series(:first, :last) g, (VALUES ('a'), ('b')) v(s)"""
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(insert), {"first": 1, "last": 60})
        monkeypatch.setattr(migrations, "migration_files", lambda: every)
        assert "0020_agent_state_spans" in migrations.migrate(engine)
        with engine.begin() as conn:
            exact = conn.exec_driver_sql(EXACT).all()
            assert exact and conn.exec_driver_sql(SPANS).all() == exact
            conn.execute(sa.text(insert), {"first": 61, "last": 90})
            assert conn.exec_driver_sql(SPANS).all() == conn.exec_driver_sql(EXACT).all()
            assert conn.exec_driver_sql(UNCOVERED).scalar() == 0
    finally:
        engine.dispose()
