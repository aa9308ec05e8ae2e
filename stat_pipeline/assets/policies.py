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
