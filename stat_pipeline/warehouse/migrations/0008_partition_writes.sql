-- Which run last wrote each hour of each hourly asset, and when: written in the same
-- transaction as the hour's rows (warehouse/writes.py), so it is true even when Dagster's
-- own records are not (a run killed between its write and its event, two deployments on one
-- warehouse). The self-healing sensor compares an hour's assets with it: an hour whose
-- queue_log was written after its classified_calls is out of date.
CREATE TABLE partition_writes (
    asset       text        NOT NULL,
    hour        timestamptz NOT NULL,
    written_at  timestamptz NOT NULL,
    run_id      text,
    PRIMARY KEY (asset, hour)
);
