-- name: keep_staged
-- The whole file, parsed once (the source's stage() over all time): the bounds come from
-- it and the range run reads it back (StagedRows) instead of parsing the file again.
-- UNLOGGED: a scratch copy, gone with the command's throwaway server anyway.
DROP TABLE IF EXISTS compute_staged_rows;
CREATE UNLOGGED TABLE compute_staged_rows AS SELECT * FROM incoming_queue_log;
DROP TABLE incoming_queue_log

-- name: bounds
SELECT min("time") AS first, max("time") AS last FROM compute_staged_rows

-- name: stage_range
CREATE TEMP TABLE incoming_queue_log ON COMMIT DROP AS
SELECT * FROM compute_staged_rows
WHERE ("time" >= :start AND "time" < :end) OR "time" IS NULL

-- name: drop_staged
DROP TABLE IF EXISTS compute_staged_rows
