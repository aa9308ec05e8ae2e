-- No row twice in queue_log, enforced by PostgreSQL (issue 12 items 1 and 5).
--
-- A copied row is identified by its content, not by its source id: its source, its instant
-- and its nine fields. A source id does not identify a row: an overlapping CSV export or a
-- MySQL dump loaded twice repeats ids with the same content, and two different rows may
-- carry the same id (a file whose id column is not unique). The same content twice is one
-- row (the other copies are listed in queue_log_rejects by the queue_log asset); two
-- different rows under one id are both kept.
--
-- The nine fields are compared through a hash of them, within one (source, time): an index
-- on the ten columns themselves would be as large as the table and its sort slow. md5 over
-- an injective encoding of the fields (each field as its length and its text, NULL as '-'):
-- 'a' and NULL, '' and NULL, or a field's end moved into the next one never encode alike.
-- The function is immutable (md5, length, casts to text and uuid, text || text: not the
-- stable anynonarray || text) and plain SQL, so PostgreSQL inlines it where it is called.
CREATE FUNCTION queue_log_row_hash(callid text, queuename text, agent text, event text,
                                   data1 text, data2 text, data3 text, data4 text, data5 text)
RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CAST(md5(coalesce(CAST(length(callid) AS text) || ':' || callid, '-') || '|'
                 || coalesce(CAST(length(queuename) AS text) || ':' || queuename, '-') || '|'
                 || coalesce(CAST(length(agent) AS text) || ':' || agent, '-') || '|'
                 || coalesce(CAST(length(event) AS text) || ':' || event, '-') || '|'
                 || coalesce(CAST(length(data1) AS text) || ':' || data1, '-') || '|'
                 || coalesce(CAST(length(data2) AS text) || ':' || data2, '-') || '|'
                 || coalesce(CAST(length(data3) AS text) || ':' || data3, '-') || '|'
                 || coalesce(CAST(length(data4) AS text) || ':' || data4, '-') || '|'
                 || coalesce(CAST(length(data5) AS text) || ':' || data5, '-')) AS uuid)
$$;

-- Stored, computed by PostgreSQL on every insert: no writer can forget it or get it wrong.
ALTER TABLE queue_log ADD COLUMN row_hash uuid
    GENERATED ALWAYS AS (queue_log_row_hash(callid, queuename, agent, event,
                                            data1, data2, data3, data4, data5)) STORED;

-- A warehouse written by two overlapping runs before this migration holds rows twice (or
-- 2^n times after n re-materializations of a source with repeated ids). Keep one copy of
-- each: the lowest source id (then the oldest physical row), with the group's first
-- ingestion time so lateness figures stay true.
CREATE TEMP TABLE queue_log_extra_copies ON COMMIT DROP AS
SELECT ctid AS row_ref, source, "time", row_hash,
       min(ingested_at) OVER w AS first_ingested_at,
       row_number() OVER (w ORDER BY source_id, id, ctid) AS copy_no
FROM queue_log
WHERE (source, "time", row_hash) IN (SELECT source, "time", row_hash FROM queue_log
                                     GROUP BY 1, 2, 3 HAVING count(*) > 1)
WINDOW w AS (PARTITION BY source, "time", row_hash);

DELETE FROM queue_log q USING queue_log_extra_copies x
WHERE q.ctid = x.row_ref AND x.copy_no > 1;

UPDATE queue_log q SET ingested_at = x.first_ingested_at
FROM queue_log_extra_copies x
WHERE q.ctid = x.row_ref AND x.copy_no = 1 AND q.ingested_at <> x.first_ingested_at;

-- The statistics computed from the doubled rows are doubled too: record the hours as
-- rewritten now, so they read as out of date (their queue_log newer than their
-- classified_calls) until they are materialized again.
INSERT INTO partition_writes (asset, hour, written_at, run_id)
SELECT DISTINCT 'queue_log', date_trunc('hour', "time", 'UTC'), clock_timestamp(),
       'migration 0009_queue_log_unique_rows'
FROM queue_log_extra_copies WHERE copy_no > 1
ON CONFLICT (asset, hour) DO UPDATE SET written_at = excluded.written_at,
                                        run_id = excluded.run_id;

-- Time first: rows are copied in time order, so new entries land at the index's right edge.
CREATE UNIQUE INDEX queue_log__row ON queue_log ("time", source, row_hash);
