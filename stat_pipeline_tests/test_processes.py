"""Process hygiene of the commands, as a user meets it: ``serve`` on its PostgreSQL instance
and nothing of it left after a SIGKILL; ``compute`` stopped by SIGTERM or losing its
PostgreSQL ends cleanly, in one line, and leaves no temp folder."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import sqlalchemy as sa

from stat_pipeline.commands.processes import remove_orphaned_tempdirs

BIN = Path(sys.executable).parent
GOLDEN_DAY = Path(__file__).resolve().parents[2] / "shared" / "golden" / "day1_s1"
SAMPLE = Path(__file__).resolve().parents[1] / "stat_pipeline" / "sample" / "queue_log.csv.gz"
WAIT_S = 300  # the machine is shared: Dagster's three processes take long to import


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("STAT_") and not k.startswith("DAGSTER_")}
    return {**env, **extra}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid), or None once the process is gone (zombies count as gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = raw[raw.rindex(")") + 2:].split()[:2]
    return None if state == "Z" else (state, int(ppid))


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _proc_stat(int(entry.name))):
            children.setdefault(st[1], []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _wait(what: str, condition, proc: subprocess.Popen, log: Path, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert proc.poll() is None, f"exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s\n" \
                                            f"{log.read_text()[-3000:]}"
        time.sleep(0.5)
    return value


def assert_all_gone(pids: set[int], timeout: float) -> None:
    """Every process of ``pids`` ends within ``timeout`` (a command's whole tree)."""
    deadline = time.monotonic() + timeout
    while (alive := {p for p in pids if _proc_stat(p)}) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not alive, [Path(f"/proc/{p}/cmdline").read_bytes()[:120] for p in alive]


def _answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2).close()
        return True
    except OSError:
        return False


def test_serve_keeps_the_instance_in_postgres_and_dies_whole(tmp_path, warehouse_url):
    state, port, log = tmp_path / "state", _free_port(), tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "stat-pipeline"), "serve", "--state-dir", str(state), "--port", str(port)],
            env=_env(STAT_SOURCE_URL=warehouse_url, STAT_PARTITIONS_START="2024-03-01-00:00",
                     STAT_SENSOR_INTERVAL_SECONDS="3600"),
            stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait("webserver /server_info", lambda: _answers(port), proc, log)
        instance = sa.create_engine(
            f"postgresql+psycopg2://postgres@/dagster?host={state / 'pg'}", poolclass=sa.NullPool)
        try:
            with instance.connect() as conn:
                tables = set(sa.inspect(conn).get_table_names())
                assert {"runs", "event_logs", "asset_keys", "daemon_heartbeats"} <= tables

            def heartbeats():
                with instance.connect() as conn:
                    return {r[0] for r in conn.exec_driver_sql(
                        "SELECT daemon_type FROM daemon_heartbeats")}
            beating = _wait("daemon heartbeats", heartbeats, proc, log)
            assert {"SENSOR", "BACKFILL", "QUEUED_RUN_COORDINATOR"} <= beating
        finally:
            instance.dispose()
        assert not (state / "dagster_home" / "history").exists()  # no SQLite instance
        spawned = _descendants(proc.pid)
        assert len(spawned) >= 4  # dagster dev, code server, webserver, daemon, postgres…
        checked = []
        for pid in spawned:  # the instance's settings reach every Dagster process
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except (FileNotFoundError, ProcessLookupError):
                continue  # a short-lived child that has exited since it was listed
            # Dagster's processes are ``python -m dagster…``; a PostgreSQL backend of the
            # ``dagster`` database also has the word in its (rewritten) command line
            if not any(arg.startswith(b"dagster") for arg in cmdline.split(b"\0")[1:4]):
                continue
            if not environ.strip(b"\0"):
                continue  # exiting: a zombie's environ reads empty
            checked.append(cmdline.split(b"\0")[:3])
            assert b"DAGSTER_EVENT_BATCH_SIZE=1000" in environ.split(b"\0"), pid
            assert b"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1" in environ.split(b"\0"), pid
        # dagster dev, its code server, webserver and daemon at least
        assert len(checked) >= 4, checked

        proc.kill()  # SIGKILL: no cleanup code of ours runs
        proc.wait(10)
        assert_all_gone(spawned, 90)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_without_a_source_says_so_in_one_line(tmp_path):
    done = subprocess.run([str(BIN / "stat-pipeline"), "serve", "--state-dir",
                           str(tmp_path / "state")], env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "STAT_SOURCE_URL" in done.stderr


def _start_compute(tmp_path: Path, queue_log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "stat-pipeline"), "compute", str(queue_log), "--out", str(tmp_path / "out")],
        env=_env(TMPDIR=str(tmp_path)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def _wait_for_its_instance(tmp_path: Path, proc: subprocess.Popen) -> Path:
    """The command's temp folder, once its PostgreSQL runs and Dagster's instance is open."""
    deadline = time.monotonic() + WAIT_S
    while not (homes := list(tmp_path.glob("stat-compute-*/dagster_home"))):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return homes[0].parent


def test_compute_stopped_by_sigterm_removes_its_folder_and_server(tmp_path):
    proc = _start_compute(tmp_path, SAMPLE)
    folder = _wait_for_its_instance(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err == "stat-pipeline: stopped\n"
    assert not folder.exists()
    assert not any(b"postgres" in Path(f"/proc/{p}/cmdline").read_bytes()
                   and str(folder).encode() in Path(f"/proc/{p}/cmdline").read_bytes()
                   for p in map(int, filter(str.isdigit, os.listdir("/proc")))
                   if _proc_stat(p))


def test_compute_whose_postgres_dies_says_so_in_one_line(tmp_path):
    proc = _start_compute(tmp_path, GOLDEN_DAY / "queue_log.csv")
    folder = _wait_for_its_instance(tmp_path, proc)
    pid = int((folder / "pg" / "postmaster.pid").read_text().split("\n", 1)[0])
    os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 1
    assert err.count("\n") == 1, err[-3000:]
    assert "PostgreSQL stopped answering" in err
    assert not folder.exists()


def test_folders_of_killed_owners_are_removed_at_the_next_start(tmp_path):
    # a SIGKILLed owner: its folder stays, its lock is released by the kernel
    killed = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path\n"
        "from stat_pipeline.commands.processes import owned_tempdir\n"
        "with owned_tempdir('stat-compute-') as d:\n"
        "    (d / 'pg').mkdir(); print(d, flush=True); time.sleep(600)\n")],
        env=_env(TMPDIR=str(tmp_path)), stdout=subprocess.PIPE, text=True)
    orphan = Path(killed.stdout.readline().strip())
    assert remove_orphaned_tempdirs("stat-compute-", tmp_path) == []  # owner alive: kept
    killed.kill()
    killed.wait()
    assert orphan.exists()
    assert remove_orphaned_tempdirs("stat-compute-", tmp_path) == [orphan]
    assert not orphan.exists()
