"""``stat-pipeline demo``: the whole product on a bundled sample, in the Dagster UI.

This command owns the embedded PostgreSQL (never a Dagster step: the server dies with the
process that started it). It plays a Wazo server's ``asterisk`` database holding one day of
queue_log (the sample, moved to yesterday), materializes every hour of it, then runs
``dagster dev`` on 127.0.0.1 until Ctrl-C, and stops everything.
"""
from __future__ import annotations

import ctypes
import datetime as dt
import gzip
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine

from stat_pipeline.sql import query
from stat_pipeline.warehouse.embedded import EmbeddedPostgres

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
SAMPLE_DAY = "2024-03-04T00:00:00+00:00"


def _q(name: str):
    return query(__file__, "demo.sql", name)


def _load_sample(source_url: str, day: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    engine = create_engine(source_url)
    sample = SAMPLE_DIR / "queue_log.csv.gz"
    try:
        with engine.begin() as conn:
            conn.execute(_q("create_source"))
            if conn.execute(_q("bounds")).one().n == 0:
                conn.execute(_q("staging"))
                cursor = conn.connection.dbapi_connection.cursor()
                with sample.open("rb") as raw, gzip.open(raw) as rows:
                    cursor.copy_expert("COPY sample_rows FROM STDIN WITH (FORMAT csv, HEADER true, "
                                       "NULL '\\N')", rows)
                conn.execute(_q("insert_shifted"), {"day": day, "sample_day": SAMPLE_DAY})
            bounds = conn.execute(_q("bounds")).one()
    finally:
        engine.dispose()
    return bounds.first, bounds.last


def _materialize_all(first: dt.datetime, last: dt.datetime) -> None:
    import dagster as dg

    from stat_pipeline.definitions import DIMENSIONS_JOB, HOURLY_JOB, QUIET, build_definitions
    from stat_pipeline.partitions import partition_key

    defs = build_definitions()
    instance = dg.DagsterInstance.get()
    # every complete hour, quiet ones included: an hour without calls is a result too
    last_complete = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    defs.resolve_job_def(DIMENSIONS_JOB).execute_in_process(instance=instance, run_config=QUIET)
    defs.resolve_job_def(HOURLY_JOB).execute_in_process(instance=instance, run_config=QUIET, tags={
        "dagster/asset_partition_range_start": partition_key(first),
        "dagster/asset_partition_range_end": partition_key(last_complete)})


_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # dagster dev must not outlive this command (which owns PostgreSQL), even on SIGKILL.
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _sigterm_as_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def run_demo(state_dir: Path, port: int = 3000, ui: bool = True) -> int:
    state_dir = state_dir.resolve()
    dagster_home = state_dir / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    project = Path(__file__).resolve().parent.parent
    shutil.copyfile(project / "dagster.yaml", dagster_home / "dagster.yaml")
    # The UI's first-visit newsletter dialog would cover the demo; this is its "Skip".
    (dagster_home / ".nux").mkdir(exist_ok=True)
    (dagster_home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    yesterday = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0,
                                                          microsecond=0) - dt.timedelta(days=1)
    with EmbeddedPostgres(state_dir / "pg") as pg:
        pg.create_database("stat")
        pg.create_database("asterisk")
        first, last = _load_sample(pg.url("asterisk"), yesterday)
        confd = SAMPLE_DIR / "confd.json"
        os.environ.update({
            "STAT_WAREHOUSE_URL": pg.url("stat"),
            "STAT_SOURCE_URL": pg.url("asterisk").replace("postgres@", "stat_reader@"),
            "STAT_CONFD_JSON": str(confd),
            "STAT_PARTITIONS_START": first.strftime("%Y-%m-%d-00:00"),
            "DAGSTER_HOME": str(dagster_home),
        })
        print(f"demo: source queue_log has rows from {first} to {last}; materializing them…",
              flush=True)
        _materialize_all(first, last)
        if not ui:
            return 0
        print(f"demo: Dagster UI on http://127.0.0.1:{port} — Ctrl-C stops it and PostgreSQL",
              flush=True)
        ui_proc = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port),
             "-w", str(project / "workspace.yaml")],
            cwd=dagster_home, preexec_fn=_die_with_parent)
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
        try:
            return ui_proc.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            if ui_proc.poll() is None:
                ui_proc.send_signal(signal.SIGTERM)
                try:
                    ui_proc.wait(60)
                except subprocess.TimeoutExpired:
                    ui_proc.kill()
