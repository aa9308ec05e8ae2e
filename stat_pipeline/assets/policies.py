"""What every hourly asset shares: partitions, one run per range, the warehouse pool, retries."""
import os

import dagster as dg

# Every step that writes the warehouse takes a slot of this pool (limit in dagster.yaml):
# runs for overlapping hours then never interleave their writes.
WAREHOUSE_POOL = "stat_warehouse"

# A lost connection (warehouse restarted, PBX database failing over) fails the step with
# the driver's message; the step is tried again later. Its writes were one transaction,
# rolled back, so a retry starts from the previous complete state.
def retry_policy() -> dg.RetryPolicy:
    return dg.RetryPolicy(max_retries=3,
                          delay=float(os.environ.get("STAT_RETRY_DELAY_SECONDS", "15")),
                          backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def hourly(partitions: dg.PartitionsDefinition, group_name: str) -> dict:
    return dict(
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),  # a range is one run
        pool=WAREHOUSE_POOL,
        retry_policy=retry_policy(),
        group_name=group_name,
        kinds={"postgres"},
        owners=["team:stat-pipeline"],
    )


def subsettable_asset(*, name: str, check_specs, deps, description: str, partitions_def,
                      backfill_policy, pool, retry_policy, group_name, kinds, owners):
    """``@dg.asset(name=..., check_specs=..., **hourly(...))`` as a one-asset
    ``@multi_asset(can_subset=True)``: a job can then select the asset without its checks
    (``AssetSelection.without_checks()``; a plain @asset with checks cannot be subset).
    The function yields its MaterializeResult, then ``run_metadata.check_outcomes``."""
    return dg.multi_asset(
        name=name,
        specs=[dg.AssetSpec(name, deps=deps, description=description, group_name=group_name,
                            kinds=kinds, owners=owners)],
        check_specs=check_specs, can_subset=True, partitions_def=partitions_def,
        backfill_policy=backfill_policy, pool=pool, retry_policy=retry_policy)
