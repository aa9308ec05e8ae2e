"""The engine's shortcuts (issue 16) keep what they replace: a cached template cluster is
the cluster its set-up makes, and stat_call_on_queue's set-based key check refuses what
Wazo's foreign keys refuse."""
from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from stat_pipeline.assets.calls import MissingStatKey, _insert_stat_calls, _q
from stat_pipeline.resources import warehouse_engine
from stat_pipeline.warehouse.embedded import EmbeddedPostgres, cached_cluster
from stat_pipeline.warehouse.scope import source_scope

HOUR = (dt.datetime(2024, 1, 1, 10, tzinfo=dt.timezone.utc),
        dt.datetime(2024, 1, 1, 11, tzinfo=dt.timezone.utc))


def test_template_cluster_is_built_once_and_copied(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAT_CACHE_DIR", str(tmp_path / "cache"))
    built = []

    def prepare(pg: EmbeddedPostgres) -> None:
        built.append(pg.data_dir)
        pg.create_database("prepared")
        engine = sa.create_engine(pg.url("prepared"), poolclass=sa.NullPool)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE marker (v text); INSERT INTO marker VALUES ('set up')")
        engine.dispose()

    first = cached_cluster("t", ["v1"], prepare)
    again = cached_cluster("t", ["v1"], prepare)
    assert first is not None and again == first and len(built) == 1
    assert not (first / "postmaster.pid").exists()  # stopped cleanly, nothing half-built left
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.name]
    other = cached_cluster("t", ["v2"], prepare)  # another key (another install): another build
    assert other != first and len(built) == 2
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted([first.name, other.name])
    month_ago = time.time() - 31 * 86400  # a template unused for a month goes at the next build
    os.utime(other, (month_ago, month_ago))
    cached_cluster("t", ["v3"], prepare)
    assert other.name not in [p.name for p in (tmp_path / "cache").iterdir()]
    assert first.exists() and len(built) == 3

    for n in (1, 2):  # two copies, each its own cluster
        with EmbeddedPostgres(tmp_path / f"copy{n}" / "pg", template=first) as pg:
            engine = sa.create_engine(pg.url("prepared"), poolclass=sa.NullPool)
            with engine.begin() as conn:
                assert conn.exec_driver_sql("SELECT v FROM marker").scalar() == "set up"
                conn.exec_driver_sql("INSERT INTO marker VALUES ('copy only')")
            engine.dispose()
    pg = EmbeddedPostgres(tmp_path / "copy3" / "pg", template=first)
    pg.start(wait=False)  # as compute does: the copy runs while the caller imports Dagster
    try:
        assert not pg.is_running
        pg.wait_ready()
        engine = sa.create_engine(pg.url("prepared"), poolclass=sa.NullPool)
        with engine.begin() as conn:  # the template itself was not written through a copy
            assert conn.exec_driver_sql("SELECT count(*) FROM marker").scalar() == 1
        engine.dispose()
    finally:
        pg.stop()
    stopped_early = EmbeddedPostgres(tmp_path / "copy4" / "pg", template=first)
    stopped_early.start(wait=False)
    stopped_early.stop()  # before its launch: the copy is stopped, no server is left
    assert not stopped_early.is_running


def test_unwritable_cache_falls_back_to_initdb(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("STAT_CACHE_DIR", str(blocker / "cache"))
    assert cached_cluster("t", ["v1"], lambda pg: None) is None


def test_failed_template_build_falls_back_to_initdb(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAT_CACHE_DIR", str(tmp_path / "cache"))

    def broken(pg: EmbeddedPostgres) -> None:
        raise RuntimeError("set-up failed")

    assert cached_cluster("t", ["v1"], broken) is None
    assert list((tmp_path / "cache").iterdir()) == []  # nothing half-built left


def _stat_call(conn, queue_id, agent_id) -> None:
    conn.execute(sa.text(
        "INSERT INTO stat_call_on_queue (callid, \"time\", status, stat_queue_id, stat_agent_id) "
        "VALUES ('c1', :t, 'answered', :q, :a)"), {"t": HOUR[0], "q": queue_id, "a": agent_id})


def test_set_based_key_check_finds_what_the_foreign_keys_refuse(warehouse_url: str) -> None:
    engine = warehouse_engine(warehouse_url)
    params = {"start": HOUR[0], "end": HOUR[1]}
    with engine.begin() as conn:
        queue = conn.exec_driver_sql(
            "INSERT INTO stat_queue (name, tenant_uuid, queue_id, deleted) "
            "VALUES ('q1', '00000000-0000-0000-0000-000000000000', 1, false) "
            "RETURNING id").scalar()
        # the test server: a superuser, who may switch the row triggers off
        assert conn.exec_driver_sql("SELECT current_setting('is_superuser') = 'on'").scalar()
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        _stat_call(conn, queue, None)
        _stat_call(conn, queue + 1000, 424242)  # what the per-row triggers would refuse
        conn.exec_driver_sql("SET LOCAL session_replication_role = origin")
        missing = conn.execute(_q("lock_stat_call_keys"), params).one()
        assert missing.missing_queue_ids == [queue + 1000]
        assert missing.missing_agent_ids == [424242]
        conn.rollback()
    with engine.begin() as conn:  # the same rows with the triggers on: refused
        with pytest.raises(sa.exc.IntegrityError):
            _stat_call(conn, 999, None)


def test_bulk_insert_checks_keys_in_the_transaction(warehouse_url: str) -> None:
    """The asset's insert with the row triggers off: a call whose queue row vanished under
    it would point nowhere; the set-based check raises and nothing is committed."""
    engine = warehouse_engine(warehouse_url)
    params = {"start": HOUR[0], "end": HOUR[1]}
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO stat_queue (name, tenant_uuid, queue_id, deleted, source) "
            "VALUES ('q1', '00000000-0000-0000-0000-000000000000', 1, false, 'pbx')")
        conn.execute(sa.text(
            "INSERT INTO classified_calls (callid, queuename, call_time, status, source) "
            "VALUES ('c1', 'q1', :t, 'abandoned', 'pbx')"), {"t": HOUR[0]})
    # as the asset runs it: inside the source's scope (warehouse/scope.py)
    with engine.connect() as conn:
        transaction = conn.begin()
        with source_scope(conn, "pbx"):
            assert _insert_stat_calls(conn, params) == 1
            assert conn.execute(_q("lock_stat_call_keys"), params).one() == (None, None)
        transaction.rollback()
    # a concurrent writer cannot delete the queue row once the check locked it
    with engine.connect() as writer, engine.connect() as other:
        with writer.begin(), source_scope(writer, "pbx"):
            assert _insert_stat_calls(writer, params) == 1
            with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                with other.begin():
                    other.exec_driver_sql("SET LOCAL lock_timeout = '200ms'")
                    other.exec_driver_sql("DELETE FROM stat_queue WHERE name = 'q1'")


def test_bulk_insert_refuses_a_missing_key(warehouse_url: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Were the statement to write a key that does not exist (what the per-row triggers
    refuse), the set-based check raises and the transaction writes nothing."""
    import stat_pipeline.assets.calls as calls

    engine = warehouse_engine(warehouse_url)
    params = {"start": HOUR[0], "end": HOUR[1]}
    bad = sa.text("INSERT INTO stat_call_on_queue (callid, \"time\", status, stat_queue_id) "
                  "VALUES ('c1', :start, 'answered', 777)")
    real = calls.query
    monkeypatch.setattr(calls, "query", lambda module, name, *a: bad
                        if name == "stat_call_on_queue.sql" else real(module, name, *a))
    with pytest.raises(MissingStatKey, match=r"stat_queue ids \[777\]"):
        with engine.begin() as conn:
            _insert_stat_calls(conn, params)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM stat_call_on_queue").scalar() == 0


def _agent_intervals(conn, agent_id: int) -> None:
    """agents.sql's temporary tables as compute_agent_hours leaves them before its insert,
    holding one login interval of ``agent_id`` over HOUR."""
    from stat_pipeline.assets import agents

    for name in ("prepare", "aliases", "resolve"):
        conn.execute(agents._q(name))
    conn.execute(sa.text("INSERT INTO agent_iv (kind, stat_agent_id, s, e) "
                         "VALUES ('login', :a, :s, :e)"), {"a": agent_id, "s": HOUR[0], "e": HOUR[1]})


def test_agent_hours_refuse_a_missing_key(warehouse_url: str) -> None:
    """stat_agent_periodic written with the row triggers off (agents.py _insert_hours): an
    interval of an agent that has no stat_agent row, which the per-row foreign-key checks
    refuse, makes the set-based check raise, and the transaction writes nothing."""
    from stat_pipeline.assets.agents import _insert_hours
    from stat_pipeline.warehouse.writes import row_triggers_off

    engine = warehouse_engine(warehouse_url)
    with engine.connect() as conn:
        with row_triggers_off(conn) as off:
            assert off  # the test server: superuser, so the triggers are off for the insert
        conn.rollback()
    with pytest.raises(MissingStatKey, match=r"stat_agent ids \[424242\]"):
        with engine.begin() as conn, source_scope(conn, "pbx"):
            _agent_intervals(conn, 424242)
            _insert_hours(conn, {"start": HOUR[0], "end": HOUR[1]})
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM stat_agent_periodic").scalar() == 0


def test_agent_hours_lock_the_agents_they_reference(warehouse_url: str) -> None:
    """As the per-row checks do, the agent rows written lock their stat_agent row until the
    commit: a concurrent writer cannot delete it from under them."""
    from stat_pipeline.assets.agents import _insert_hours

    engine = warehouse_engine(warehouse_url)
    with engine.begin() as conn:
        agent = conn.exec_driver_sql(
            "INSERT INTO stat_agent (name, tenant_uuid, agent_id, deleted, source) "
            "VALUES ('Agent/1', '00000000-0000-0000-0000-000000000000', 1, false, 'pbx') "
            "RETURNING id").scalar()
    with engine.connect() as writer, engine.connect() as other:
        with writer.begin(), source_scope(writer, "pbx"):
            _agent_intervals(writer, agent)
            _insert_hours(writer, {"start": HOUR[0], "end": HOUR[1]})
            assert writer.exec_driver_sql(
                "SELECT extract(epoch FROM login_time) FROM stat_agent_periodic").scalar() == 3600
            with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                with other.begin():
                    other.exec_driver_sql("SET LOCAL lock_timeout = '200ms'")
                    other.exec_driver_sql("DELETE FROM stat_agent WHERE name = 'Agent/1'")
