"""Runs of the real hourly job over a golden day, for the concurrency tests: in this process,
or as a separate process (``python -m stat_pipeline_tests.overlap URL SET_DIR READY_FILE GO_FILE``)
that says it is ready, then waits for ``GO_FILE`` to appear, so that two processes start their runs at the same moment.
Also what those tests compare: every table of two warehouses, surrogate ids and clocks left
out."""
from __future__ import annotations

import datetime as dt
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Optional

import dagster as dg
from sqlalchemy import create_engine, text

from stat_pipeline.definitions import DIMENSIONS_JOB, HOURLY_JOB, QUIET, build_definitions
from stat_pipeline.partitions import KEY_FORMAT, hour_floor, hourly_partitions
from stat_pipeline.resources import Warehouse, WazoConfig
from stat_pipeline.sources import CsvQueueLogSource, QueueLogSource
from stat_pipeline_tests.golden import GoldenSet

HOUR = dt.timedelta(hours=1)

# Columns that differ between two correct runs: serial ids of rows that are replaced on every
# write, and the clocks of the writes. Dimension ids stay: the statistics refer to them.
VOLATILE = {"recorded_at", "ingested_at", "written_at", "run_id", "loaded_at"}
KEEP_ID = {"stat_queue", "stat_agent"}


def golden_set(path: str | Path) -> GoldenSet:
    path = Path(path)
    return GoldenSet(path.name, path)


def first_hour(golden: GoldenSet) -> dt.datetime:
    with open(golden.queue_log) as f:
        next(f)
        return hour_floor(dt.datetime.fromisoformat(next(f).split(",", 1)[0]))


def materialize(warehouse_url: str, source: QueueLogSource, first: dt.datetime,
                last: dt.datetime, confd: Optional[Path] = None,
                assets: Optional[list[str]] = None) -> None:
    """The dimensions job, then the hours [first, last] as one run (a backfill's shape)."""
    defs = build_definitions(
        partitions=hourly_partitions(start=first.replace(hour=0), end=last + HOUR),
        source=source, warehouse=Warehouse(url=warehouse_url),
        wazo_config=WazoConfig(confd_json=str(confd) if confd else None))
    instance = dg.DagsterInstance.ephemeral()
    tags = {"dagster/asset_partition_range_start": first.strftime(KEY_FORMAT),
            "dagster/asset_partition_range_end": last.strftime(KEY_FORMAT)}
    if assets is None:
        assert defs.resolve_job_def(DIMENSIONS_JOB).execute_in_process(
            instance=instance, run_config=QUIET).success
        job = defs.resolve_job_def(HOURLY_JOB)
    else:
        job = dg.define_asset_job("subset", selection=assets).resolve(
            asset_graph=defs.resolve_asset_graph())
    assert job.execute_in_process(instance=instance, run_config=QUIET, tags=tags,
                                  resources=None if assets is None else {
                                      "warehouse": Warehouse(url=warehouse_url),
                                      "source": source,
                                      "wazo_config": WazoConfig(
                                          confd_json=str(confd) if confd else None)}).success


def materialize_golden(warehouse_url: str, golden: GoldenSet) -> None:
    """Every hour of the golden day up to its reference's end, as the reference computed it."""
    source = CsvQueueLogSource(path=str(golden.queue_log), until=golden.until.isoformat())
    materialize(warehouse_url, source, first_hour(golden), golden.until - HOUR, golden.confd)


def tables(warehouse_url: str) -> dict[str, Counter]:
    """Every table of the warehouse's public schema as a multiset of rows (VOLATILE columns,
    and the serial ids of replaced rows, left out)."""
    engine = create_engine(warehouse_url)
    try:
        with engine.connect() as conn:
            columns: dict[str, list[str]] = {}
            for table, column in conn.execute(text(
                    "SELECT c.table_name, c.column_name FROM information_schema.columns c "
                    "JOIN information_schema.tables t USING (table_schema, table_name) "
                    "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
                    "ORDER BY c.table_name, c.ordinal_position")):
                if column in VOLATILE or (column == "id" and table not in KEEP_ID):
                    continue
                columns.setdefault(table, []).append(column)
            return {table: Counter(tuple(row) for row in conn.execute(text(
                        "SELECT " + ", ".join(f'CAST("{c}" AS text)' for c in cols)
                        + f" FROM {table}")))
                    for table, cols in columns.items()}
    finally:
        engine.dispose()


def differences(got: dict[str, Counter], want: dict[str, Counter]) -> dict[str, str]:
    """Per differing table: its row counts and a few rows only one side has."""
    out = {}
    for table in sorted(set(got) | set(want)):
        g, w = got.get(table, Counter()), want.get(table, Counter())
        if g != w:
            extra, missing = g - w, w - g
            out[table] = (f"{sum(g.values())} rows instead of {sum(w.values())}; extra "
                          f"{list(extra.elements())[:2]}, missing {list(missing.elements())[:2]}")
    return out


def _wait_for(go_file: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not go_file.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{go_file} never appeared")
        time.sleep(0.002)


if __name__ == "__main__":
    url, set_dir, ready, go = sys.argv[1:5]
    golden = golden_set(set_dir)
    # everything imported before the signal: both processes start their runs together
    Path(ready).touch()
    _wait_for(Path(go))
    materialize_golden(url, golden)
