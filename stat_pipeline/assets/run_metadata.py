"""Materialization metadata that stays true when one run covers many hours.

Dagster attaches a step's metadata to every partition the step materialized. For a one-hour
run the figures are that hour's, under their plain names (what the UI plots per partition).
For a range run (backfill, catch-up) they are the run's totals: they get a ``run_`` prefix,
so they never pose as one hour's figures on the per-partition plots.
"""
import dagster as dg

# Every step that writes the warehouse takes a slot of this pool (limit in dagster.yaml):
# runs for overlapping hours then never interleave their writes.
WAREHOUSE_POOL = "stat_warehouse"

def hour_or_run(context: dg.AssetExecutionContext, metadata: dict) -> dict:
    keys = context.partition_keys
    if len(keys) <= 1:
        return metadata
    out = {("run_rows" if k == "dagster/row_count" else "run_" + k): v
           for k, v in metadata.items()}
    out["run_hours"] = len(keys)
    out["run_partition_range"] = f"{keys[0]} … {keys[-1]}"
    return out
