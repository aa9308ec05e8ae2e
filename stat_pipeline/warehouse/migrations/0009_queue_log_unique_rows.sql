-- No row twice in queue_log, enforced by PostgreSQL (issue 12 items 1 and 5).
--
-- A copied row is identified by its content, not by its source id: its source, its instant
-- and its nine fields. A source id does not identify a row: an overlapping CSV export or a
-- MySQL dump loaded twice repeats ids with the same content, and two different rows may
-- carry the same id (a file whose id column is not unique). The same content twice is one
-- row (the other copies are listed in queue_log_rejects by the queue_log asset); two
-- different rows under one id are both kept.
--
-- Rows are compared through a hash of the source and the nine fields, within one instant:
-- an index on the eleven columns themselves would be as large as the table and its sort
-- slow. md5 over an injective encoding: each value as quote_nullable writes it (NULL bare,
-- text quoted with its quotes doubled), comma-separated, so that NULL and '', or a field's
-- end moved into the next field, never encode alike. (Measured on 30 days of rows: half
-- the time of a length-prefixed encoding; hash_record_extended is faster still but a 64-bit
-- linear combination, whose collisions a crafted row could aim for.) Immutable and plain
-- SQL: PostgreSQL inlines it where it is called (quote_nullable(text) is immutable).
CREATE FUNCTION queue_log_row_hash(source text, callid text, queuename text, agent text,
                                   event text, data1 text, data2 text, data3 text,
                                   data4 text, data5 text)
RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CAST(md5(quote_nullable(source) || ',' || quote_nullable(callid) || ','
                    || quote_nullable(queuename) || ',' || quote_nullable(agent) || ','
                    || quote_nullable(event) || ',' || quote_nullable(data1) || ','
                    || quote_nullable(data2) || ',' || quote_nullable(data3) || ','
                    || quote_nullable(data4) || ',' || quote_nullable(data5)) AS uuid)
$$;

-- Stored, computed by PostgreSQL on every insert: no writer can forget it or get it wrong.
ALTER TABLE queue_log ADD COLUMN row_hash uuid
    GENERATED ALWAYS AS (queue_log_row_hash(source, callid, queuename, agent, event,
                                            data1, data2, data3, data4, data5)) STORED;

-- A warehouse written by two overlapping runs before this migration holds rows twice (or
-- 2^n times after n re-materializations of a source with repeated ids). Keep one copy of
-- each: the lowest source id (then the oldest physical row), with the group's first
-- ingestion time so lateness figures stay true.
CREATE TEMP TABLE queue_log_extra_copies ON COMMIT DROP AS
SELECT ctid AS row_ref, "time", row_hash,
       min(ingested_at) OVER w AS first_ingested_at,
       row_number() OVER (w ORDER BY source_id, id, ctid) AS copy_no
FROM queue_log
WHERE ("time", row_hash) IN (SELECT "time", row_hash FROM queue_log
                             GROUP BY 1, 2 HAVING count(*) > 1)
WINDOW w AS (PARTITION BY "time", row_hash);

DELETE FROM queue_log q USING queue_log_extra_copies x
WHERE q.ctid = x.row_ref AND x.copy_no > 1;

UPDATE queue_log q SET ingested_at = x.first_ingested_at
FROM queue_log_extra_copies x
WHERE q.ctid = x.row_ref AND x.copy_no = 1 AND q.ingested_at <> x.first_ingested_at;

-- The statistics computed from the doubled rows are doubled too: record the hours as
-- rewritten now, so they read as out of date (their queue_log newer than their
-- classified_calls) until they are materialized again.
INSERT INTO partition_writes (asset, hour, written_at, run_id)
SELECT 'queue_log', hour, now(), 'migration 0009_queue_log_unique_rows'
FROM (SELECT DISTINCT date_trunc('hour', "time", 'UTC') AS hour
      FROM queue_log_extra_copies WHERE copy_no > 1) h
ON CONFLICT (asset, hour) DO UPDATE SET written_at = excluded.written_at,
                                        run_id = excluded.run_id;

-- It replaces the plain time index: led by time, it serves the same range scans (the
-- classification's, the agent states', the copy's DELETE), and a copied row then pays one
-- index, not two (30 days of rows: INSERT 12.3 s with it alone, 19.7 s with both, on a
-- loaded machine; 8.7 s with neither).
CREATE UNIQUE INDEX queue_log__time_row ON queue_log ("time", row_hash);
DROP INDEX queue_log__time;
