"""``stat-pipeline demo``: the whole product on a bundled sample, in the Dagster UI.

This command owns the embedded PostgreSQL (never a Dagster step: the server dies with the
process that started it). It plays a Wazo server's ``asterisk`` database holding one day of
queue_log (the sample, moved to yesterday) and Wazo's config tables (queues, agents,
contexts, tenants: no confd.json), and runs ``stat-pipeline serve`` on it (Dagster's
instance in a ``dagster`` database of the same server) until Ctrl-C; the sensor computes the
sample. Beside the Dagster UI it runs ``stat-pipeline api`` on the same warehouse: the
statistics API and the supervisor dashboard, whose URL and token it prints.
``--no-ui`` materializes the sample in process instead, and stops.
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import secrets
from pathlib import Path

from sqlalchemy import create_engine

from stat_pipeline.commands.serve import API_TOKEN_VARIABLE, StatisticsApi, prepare_home, serve
from stat_pipeline.instance import INSTANCE_URL_VARIABLE, LIVE_SWITCHES
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
            # Wazo's own config tables, filled as the sample's Wazo would have them: the
            # pipeline reads its queues, agents and tenants there, as on a real server.
            conn.execute(_q("create_wazo_config"))
            conn.execute(_q("fill_wazo_config"),
                         {"document": json.dumps(json.loads(
                             (SAMPLE_DIR / "confd.json").read_text()))})
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


def _materialize_all(first: dt.datetime) -> None:
    import dagster as dg

    from stat_pipeline.definitions import DIMENSIONS_JOB, HOURLY_JOB, QUIET, build_definitions
    from stat_pipeline.partitions import partition_key

    defs = build_definitions()
    # every complete hour, quiet ones included: an hour without calls is a result too
    last_complete = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    with dg.DagsterInstance.get() as instance:
        defs.resolve_job_def(DIMENSIONS_JOB).execute_in_process(instance=instance,
                                                                run_config=QUIET)
        defs.resolve_job_def(HOURLY_JOB).execute_in_process(instance=instance, run_config=QUIET, tags={
            "dagster/asset_partition_range_start": partition_key(first),
            "dagster/asset_partition_range_end": partition_key(last_complete)})


def demo_api(port: int) -> StatisticsApi:
    """The demo's statistics API: the operator's ``STAT_API_TOKEN`` if set (never printed),
    else a fresh random token, printed once by ``serve`` (the demo's own, valid while it runs)."""
    own = os.environ.get(API_TOKEN_VARIABLE)
    return StatisticsApi(port=port, token=own or secrets.token_urlsafe(24), generated=not own)


def run_demo(state_dir: Path, port: int = 3000, ui: bool = True, api_port: int = 9298) -> int:
    state_dir = state_dir.resolve()
    yesterday = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0,
                                                          microsecond=0) - dt.timedelta(days=1)
    with EmbeddedPostgres(state_dir / "pg") as pg:
        pg.create_database("asterisk")
        first, last = _load_sample(pg.url("asterisk"), yesterday)
        for own in ("STAT_WAREHOUSE_URL", INSTANCE_URL_VARIABLE, "STAT_SOURCE_FILE",
                    "STAT_SOURCE_CSV", "STAT_SOURCE_TABLE", "STAT_CONFD_JSON", "STAT_CONFD_URL",
                    "STAT_CONFD_TOKEN", "STAT_MASTER_TENANT", "STAT_WAZO_TABLES",
                    "STAT_SOURCES_FILE"):
            os.environ.pop(own, None)  # the demo's databases, not a deployment's
        os.environ.update({
            "STAT_SOURCE_URL": pg.url("asterisk").replace("postgres@", "stat_reader@"),
            "STAT_PARTITIONS_START": first.strftime("%Y-%m-%d-00:00"),
        })
        if ui:
            # The sensor computes the sample on its first tick, through the daemon, as it
            # would any new rows: once, on the instance the UI shows.
            print(f"demo: source queue_log has rows from {first} to {last}; the sensor "
                  "queue_log_new_rows computes their hours on its first tick (see Runs)",
                  flush=True)
            print(f"demo: the supervisor dashboard shows the sample's day, {first:%Y-%m-%d} "
                  "(UTC), once the sensor's run has computed it", flush=True)
            return serve(state_dir, port=port, pg=pg, api=demo_api(api_port))
        # No UI, no daemon: the same instance and warehouse, one run in this process.
        pg.create_database("stat")
        pg.create_database("dagster")
        home = state_dir / "dagster_home"
        prepare_home(home)
        os.environ.update({"STAT_WAREHOUSE_URL": pg.url("stat"),
                           INSTANCE_URL_VARIABLE: pg.url("dagster"),
                           "DAGSTER_HOME": str(home), **LIVE_SWITCHES})
        print(f"demo: source queue_log has rows from {first} to {last}; materializing them…",
              flush=True)
        _materialize_all(first)
        return 0
