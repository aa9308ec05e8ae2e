"""Real-server tests of stat_pipeline.warehouse.embedded (no mocks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa

from stat_pipeline.warehouse.embedded import BIN_DIR, EmbeddedPostgres, warehouse_server


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, or None if it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    state, ppid = raw[raw.rindex(")") + 2 :].split()[:2]
    return state, int(ppid)


def _alive(pid: int) -> bool:
    st = _proc_stat(pid)
    return st is not None and st[0] != "Z"  # a zombie has exited, it only awaits reaping


def _children(pid: int) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and (_proc_stat(int(p.name)) or ("", 0))[1] == pid]


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])


def _wait_gone(pids: list[int], timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (alive := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def _query(pg: EmbeddedPostgres, sql: str, dbname: str = "postgres") -> list[tuple]:
    conn = psycopg2.connect(dbname=dbname, user="postgres", host=str(pg.socket_dir), port=pg.port)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def test_start_query_stop(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg", fast=True)
    assert not pg.is_running
    with pg:
        assert pg.is_running
        pid = _postmaster_pid(pg.data_dir)
        assert _query(pg, "select 1 + 1, current_setting('TimeZone'), current_setting('fsync')") == [(2, "UTC", "off")]
        assert _query(pg, "select current_setting('server_version_num')::int / 10000")[0][0] == 18
    assert not pg.is_running
    assert not _alive(pid)
    assert not (pg.data_dir / "postmaster.pid").exists()
    pg.stop()  # idempotent


def test_restart_keeps_data(tmp_path: Path) -> None:
    with EmbeddedPostgres(tmp_path / "pg") as pg:
        pg.create_database("keep")
        _query(pg, "create table t (x int); insert into t values (42)", "keep")
    with EmbeddedPostgres(tmp_path / "pg") as pg2:
        assert _query(pg2, "select x from t", "keep") == [(42,)]
        assert _query(pg2, "show fsync") == [("on",)]


def test_sigkill_of_owner_stops_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    script = (
        "import sys, time, pathlib\n"
        "from stat_pipeline.warehouse.embedded import EmbeddedPostgres\n"
        "EmbeddedPostgres(pathlib.Path(sys.argv[1]), fast=True).start()\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script, str(data_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "ready"
        postmaster = _postmaster_pid(data_dir)
        assert (_proc_stat(postmaster) or ("", 0))[1] == owner.pid  # a child of the owner, not daemonized
        server_pids = [postmaster, *_children(postmaster)]
        assert len(server_pids) > 3  # checkpointer, walwriter, ... are there too
    finally:
        owner.kill()
        owner.wait()
    assert _wait_gone(server_pids) == [], "server processes survived the SIGKILL of their owner"
    with EmbeddedPostgres(data_dir) as pg:  # and the data dir is reusable right away
        assert _query(pg, "select 1") == [(1,)]


def test_url_works_with_sqlalchemy(warehouse_url: str) -> None:
    assert warehouse_url.startswith("postgresql+psycopg2://")
    engine = sa.create_engine(warehouse_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("create table stat_probe (ts timestamptz)"))
            conn.execute(sa.text("insert into stat_probe values ('2026-03-01 12:00:00+01')"))
            assert conn.execute(sa.text("select ts::text from stat_probe")).scalar() == "2026-03-01 11:00:00+00"
            assert conn.execute(sa.text("select current_database()")).scalar() == sa.make_url(warehouse_url).database
    finally:
        engine.dispose()


def test_create_and_drop_database(pg_server) -> None:  # type: ignore[no-untyped-def]
    pg_server.create_database("dup_test")
    pg_server.create_database("dup_test")  # no error when it exists
    engine = sa.create_engine(pg_server.url("dup_test"))
    conn = engine.connect()  # an open session must not block the drop (WITH FORCE)
    try:
        pg_server.drop_database("dup_test")
        pg_server.drop_database("dup_test")  # nor a missing database
    finally:
        conn.invalidate()
        engine.dispose()


def test_stale_pidfile_with_dead_pid(tmp_path: Path) -> None:
    with EmbeddedPostgres(tmp_path / "pg"):
        pass
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / "pg" / "postmaster.pid").write_text(f"{dead.pid}\n{tmp_path / 'pg'}\n")
    with EmbeddedPostgres(tmp_path / "pg") as pg:
        assert _query(pg, "select 1") == [(1,)]


def test_running_server_with_live_owner_is_not_stolen(tmp_path: Path) -> None:
    with EmbeddedPostgres(tmp_path / "pg") as first:
        with pytest.raises(RuntimeError, match="already running"):
            EmbeddedPostgres(tmp_path / "pg").start()
        assert _query(first, "select 1") == [(1,)]


def test_orphaned_server_is_stopped_and_replaced(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    with EmbeddedPostgres(data_dir):  # initdb, chown
        pass
    st = data_dir.stat()
    run_as = {"user": st.st_uid, "group": st.st_gid, "extra_groups": []} if os.geteuid() == 0 else {}
    # Daemonized like pg_ctl does it: the shell exits and the server is reparented.
    subprocess.run(["sh", "-c", f'"{BIN_DIR}/postgres" -D "{data_dir}" -k "{data_dir}" -h "" >/dev/null 2>&1 &'],
                   cwd="/", start_new_session=True, check=True, **run_as)
    deadline = time.monotonic() + 15
    while not (data_dir / "postmaster.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    orphan = _postmaster_pid(data_dir)
    try:
        if (_proc_stat(orphan) or ("", 0))[1] != 1:
            pytest.skip("a subreaper adopted the orphan; its parent is not PID 1")
        with EmbeddedPostgres(data_dir) as pg:
            assert not _alive(orphan)
            assert _postmaster_pid(data_dir) != orphan
            assert _query(pg, "select 1") == [(1,)]
    finally:
        if _alive(orphan):
            os.kill(orphan, signal.SIGINT)
            _wait_gone([orphan])


def test_socket_path_too_long_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="107-byte"):
        EmbeddedPostgres(tmp_path / ("d" * 120))


def test_warehouse_server_embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STAT_WAREHOUSE_URL", raising=False)
    with warehouse_server(tmp_path / "state") as url:
        assert sa.make_url(url).database == "stat"
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("select current_database()")).scalar() == "stat"
        engine.dispose()
        pid = _postmaster_pid(tmp_path / "state" / "pg")
    assert _wait_gone([pid], timeout=0) == []
    with warehouse_server(tmp_path / "state") as url2:  # second run: existing cluster and database
        assert url2 == url


def test_warehouse_server_external_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAT_WAREHOUSE_URL", "postgresql+psycopg2://someone@db.invalid/stat")
    with warehouse_server(tmp_path / "state") as url:
        assert url == "postgresql+psycopg2://someone@db.invalid/stat"
    assert not (tmp_path / "state").exists()
