"""The bulk Dagster instance of `stat-pipeline compute` (instance.py): PostgreSQL storage,
batched events, one planned event per asset. It must change the bookkeeping, not the
results, and still record every hour as materialized."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import dagster as dg
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage
import pytest

from stat_pipeline.compute import COMPUTE_FIRST_JOB, compute_into
from stat_pipeline.definitions import DIMENSION_ASSETS, HOURLY_JOB
from stat_pipeline.instance import BULK_SWITCHES, RunFailed, bulk_instance, raise_for_failure, run_job
from stat_pipeline.resources import dispose_engines

SAMPLE = Path(__file__).resolve().parents[1] / "stat_pipeline" / "sample"
ASSETS = ["queue_log", "classified_calls", "stat_call_on_queue", "stat_queue_periodic",
          "stat_agent_periodic"]


def test_bulk_instance_same_results_every_hour_recorded(pg_server, warehouse_url, tmp_path):
    # the reference: the same file through the default in-memory instance
    compute_into(warehouse_url, SAMPLE / "queue_log.csv.gz", tmp_path / "plain",
                 SAMPLE / "confd.json")
    dispose_engines()

    names = [f"test_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    for name in names:
        pg_server.create_database(name)
    warehouse, storage = (pg_server.url(n) for n in names)
    try:
        with bulk_instance(storage, tmp_path / "home") as instance:
            assert all(os.environ.get(k) == v for k, v in BULK_SWITCHES.items())
            result = compute_into(warehouse, SAMPLE / "queue_log.csv.gz", tmp_path / "bulk",
                                  SAMPLE / "confd.json", instance=instance)
            assert result.hours > 24
            # one run: the config synced, then every hour (compute's first run)
            [run] = instance.get_runs()
            assert run.job_name == COMPUTE_FIRST_JOB
            planned = instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED).records
            # one planned event per asset, naming the whole range (not one per hour)
            # (and the two dimensions, unpartitioned)
            assert sorted(r.asset_key.path[-1] for r in planned) == sorted(ASSETS + DIMENSION_ASSETS)
            for asset in ASSETS:
                materialized = instance.get_materialized_partitions(dg.AssetKey(asset))
                assert len(materialized) == result.hours, asset
            # Dagster's PostgreSQL storages (subclassed: their schema look-ups asked once)
            assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
            assert isinstance(instance.run_storage, PostgresRunStorage)
        assert all(os.environ.get(k) != v for k, v in BULK_SWITCHES.items())
    finally:
        dispose_engines()
        for name in names:
            pg_server.drop_database(name)

    for filename in ("calls.csv", "queue_periodic.csv", "agent_periodic.csv"):
        plain = (tmp_path / "plain" / filename).read_text().splitlines()
        bulk = (tmp_path / "bulk" / filename).read_text().splitlines()
        assert len(plain) > 1 and sorted(plain) == sorted(bulk), filename


def test_run_job_reports_the_failing_step():
    @dg.asset
    def fine() -> None:
        return None

    @dg.asset(deps=[fine])
    def broken() -> None:
        raise ValueError("the source row 42 is not a call")

    job = dg.Definitions(assets=[fine, broken],
                         jobs=[dg.define_asset_job("both")]).resolve_job_def("both")
    with dg.DagsterInstance.ephemeral() as instance:
        run = run_job(job, instance, {}, {"purpose": "test"})
        assert not run.is_success and run.tags["purpose"] == "test"
        materialized = {e.dagster_event.asset_key.path[-1] for e in instance.all_logs(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}
        assert materialized == {"fine"}
        with pytest.raises(RunFailed, match="step broken: .*the source row 42 is not a call"):
            raise_for_failure(run, instance)
        raise_for_failure(run_job(dg.Definitions(assets=[fine], jobs=[dg.define_asset_job(
            "one")]).resolve_job_def("one"), instance, {}, {}), instance)  # success: no error
