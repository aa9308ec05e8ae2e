-- The no_stale_pending_calls check looks at the whole table (a call left pending in any
-- hour). Without this index that is a scan of every classified call: ~1 s per run after a
-- year of history, for a check whose answer is usually "none". Pending calls are few (at
-- most a day's worth), so the partial index stays small.
CREATE INDEX classified_calls__pending ON classified_calls (enter_time) WHERE status = 'pending';
