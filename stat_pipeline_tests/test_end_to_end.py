"""The real thing: `dagster dev` (webserver + daemon) on workspace.yaml, a Wazo-like source
table receiving rows, and the sensor's runs updating stat_queue_periodic with nobody clicking.
Shut down by PID with SIGTERM (Popen, so the signal is not ignored; dagster_handson.md)."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from stat_pipeline_tests.harness import CallCentre, at

PROJECT = Path(__file__).resolve().parents[1]
WAIT_S = int(os.environ.get('STAT_E2E_WAIT_S', '240'))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(what: str, condition, state, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert proc.poll() is None, f"dagster dev exited:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what}: not within {WAIT_S} s: {state()}"
        time.sleep(1)


def test_sensor_keeps_statistics_right_as_rows_arrive(tmp_path, warehouse_url, dagster_pg_url):
    centre = CallCentre(warehouse_url)   # creates asterisk.queue_log in the test database
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "STAT_WAREHOUSE_URL": warehouse_url,
           "STAT_DAGSTER_PG_URL": dagster_pg_url,
           "STAT_SOURCE_URL": warehouse_url, "STAT_SOURCE_TABLE": "asterisk.queue_log",
           "STAT_PARTITIONS_START": "2024-03-01-00:00", "STAT_SENSOR_INTERVAL_SECONDS": "5"}
    log = tmp_path / "dagster_dev.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p",
             str(_free_port()), "-w", str(PROJECT / "workspace.yaml")],
            cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def periodic():
            return {(p[0], p[1]): p[4] for p in centre.periodic()}

        centre.log((at("10:00:00"), "c1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
                   (at("10:00:40"), "c1", "q1", "NONE", "ABANDON", "1", "1", "40"),
                   (at("11:00:00"), "c2", "q1", "NONE", "FULL"))
        _wait_for("first rows", lambda: periodic() == {
            (at("10:00:00"), "q1"): 1, (at("11:00:00"), "q1"): 1}, periodic, proc, log)

        # a late row for an hour already done, and a call completed hours after it began
        centre.log((at("10:30:00"), "c3", "q1", "NONE", "CLOSED"),
                   (at("11:59:00"), "c4", "q2", "NONE", "ENTERQUEUE", "", "06", "1"))
        centre.log((at("13:00:10"), "c4", "q2", "Agent/1", "COMPLETECALLER", "30", "40", "1"))
        _wait_for("late rows", lambda: periodic() == {
            (at("10:00:00"), "q1"): 2, (at("11:00:00"), "q1"): 1,
            (at("11:00:00"), "q2"): 1}, lambda: (periodic(), centre.classified()), proc, log)
        assert [c[3] for c in centre.calls() if c[0] == "c4"] == ["answered"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        centre.close()
    assert proc.returncode is not None
