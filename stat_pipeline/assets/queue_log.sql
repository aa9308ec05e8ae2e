-- name: create_previous
CREATE TEMP TABLE previous_copies ("time" timestamptz, row_hash uuid, ingested_at timestamptz)
ON COMMIT DROP

-- name: take_previous
-- Take this source's previous copy of [:start, :end) out of queue_log (under the
-- warehouse's write lock), keeping of each row its first ingestion time: a row copied
-- again keeps it, so that re-materializing does not hide lateness. Previous copies are
-- matched by content (time and row_hash; the unique index queue_log__time_row makes that
-- one row), reduced to one per content so that no join can ever multiply a row.
WITH previous AS (
    DELETE FROM queue_log
    WHERE source = :source AND "time" >= :start AND "time" < :end
    RETURNING "time", row_hash, ingested_at
)
INSERT INTO previous_copies
SELECT "time", row_hash, min(ingested_at) FROM previous GROUP BY 1, 2

-- name: copy_rows
-- The staged rows of the hours into queue_log, as they come: PostgreSQL computes each
-- row's hash once (the stored row_hash) and its unique index queue_log__time_row refuses
-- an exact duplicate. Rows staged twice are rare (an overlapping export, a dump loaded
-- twice): when the index refuses one, the whole statement is undone (a savepoint,
-- queue_log.py) and the rows go the way of hash_rows below instead. Hashing every row
-- beforehand to find duplicates that are almost never there cost a second md5 per row,
-- a temporary copy of the rows and a hash aggregate: ~40 % of the copy (issue 16).
-- Without a previous copy (the first copy of the hours), every row is first ingested now.
INSERT INTO queue_log (source, source_id, "time", callid, queuename, agent, event,
                       data1, data2, data3, data4, data5, ingested_at, source_time)
SELECT :source, i.source_id, i."time", i.callid, i.queuename, i.agent, i.event,
       i.data1, i.data2, i.data3, i.data4, i.data5, now(), i.time_text
FROM incoming_queue_log i
WHERE i."time" >= :start AND i."time" < :end

-- name: copy_rows_again
-- copy_rows when the hours held a previous copy: each row keeps its first ingestion time.
-- (A separate statement: a left join to an empty previous_copies would still hash every
-- staged row to probe it.)
INSERT INTO queue_log (source, source_id, "time", callid, queuename, agent, event,
                       data1, data2, data3, data4, data5, ingested_at, source_time)
SELECT :source, i.source_id, i."time", i.callid, i.queuename, i.agent, i.event,
       i.data1, i.data2, i.data3, i.data4, i.data5, coalesce(p.ingested_at, now()), i.time_text
FROM incoming_queue_log i
LEFT JOIN previous_copies p
       ON p."time" = i."time"
      AND p.row_hash = queue_log_row_hash(CAST(:source AS text), i.callid, i.queuename, i.agent,
                                          i.event, i.data1, i.data2, i.data3, i.data4, i.data5)
WHERE i."time" >= :start AND i."time" < :end

-- name: hash_rows
-- The way of staged rows that hold exact duplicates (copy_rows was refused). Each staged
-- row of the hours with the hash of its fields (migration 0009), computed once: duplicates
-- and the previous copies of the rows are found by (time, row_hash). The row's columns
-- come along, so that copy_rows_but_duplicates reads this table alone, in staged (time)
-- order: joined back to the staged rows by ctid, the rows reached queue_log in the
-- scrambled order of a spilling hash join, each at a random place of its unique
-- (time, row_hash) index (a year of rows: 117 s of CPU with the join, 76 s without).
CREATE TEMP TABLE incoming_rows ON COMMIT DROP AS
SELECT ctid AS row_ref, source_id, "time", time_text, callid, queuename, agent, event,
       data1, data2, data3, data4, data5,
       queue_log_row_hash(CAST(:source AS text), callid, queuename, agent, event,
                          data1, data2, data3, data4, data5) AS row_hash
FROM incoming_queue_log
WHERE "time" >= :start AND "time" < :end

-- name: find_duplicates
-- Exact duplicates: the same instant (to the microsecond) and the same fields, whatever the
-- rows' source ids (a loader that read a file twice, overlapping exports, a dump loaded
-- twice all repeat ids). The copy with the lowest source id is kept, the others are listed
-- in queue_log_rejects. A hash aggregate finds the repeated (time, row_hash) pairs without
-- sorting the rows; only the repeated rows are ranked. row_ref (the staged row's ctid)
-- tells apart copies that share their source id.
CREATE TEMP TABLE incoming_duplicates ON COMMIT DROP AS
WITH repeated AS (
    SELECT "time", row_hash FROM incoming_rows GROUP BY "time", row_hash HAVING count(*) > 1
), ranked AS (
    SELECT h.row_ref, first_value(h.source_id) OVER w AS first_id, row_number() OVER w AS copy_no
    FROM incoming_rows h JOIN repeated r ON r."time" = h."time" AND r.row_hash = h.row_hash
    WINDOW w AS (PARTITION BY h."time", h.row_hash ORDER BY h.source_id, h.row_ref)
)
SELECT row_ref, first_id FROM ranked WHERE copy_no > 1

-- name: copy_rows_but_duplicates
-- copy_rows for staged rows holding exact duplicates: one copy of each, with its first
-- ingestion time if the hours held a previous copy.
INSERT INTO queue_log (source, source_id, "time", callid, queuename, agent, event,
                       data1, data2, data3, data4, data5, ingested_at, source_time)
SELECT :source, i.source_id, i."time", i.callid, i.queuename, i.agent, i.event,
       i.data1, i.data2, i.data3, i.data4, i.data5, coalesce(p.ingested_at, now()), i.time_text
FROM incoming_rows i
LEFT JOIN previous_copies p ON p."time" = i."time" AND p.row_hash = i.row_hash
WHERE NOT EXISTS (SELECT 1 FROM incoming_duplicates d WHERE d.row_ref = i.row_ref)

-- name: clear_rejects
DELETE FROM queue_log_rejects
WHERE stage = 'ingest' AND source = :source
  AND ((hour >= :start AND hour < :end) OR hour IS NULL)

-- name: record_rejects
-- Lines without a usable time cannot be put in any hour: kept here, hour NULL.
INSERT INTO queue_log_rejects (source, source_id, hour, stage, reason, disposition, raw)
SELECT :source, i.source_id, NULL, 'ingest',
       coalesce(i.reject_reason,
                CASE WHEN i.time_text IS NULL THEN 'time is NULL'
                     ELSE 'time ' || quote_literal(i.time_text) || ' is not a timestamp' END),
       'ignored', to_jsonb(i) - 'reject_reason'
FROM incoming_queue_log i
WHERE i."time" IS NULL

-- name: record_duplicates
INSERT INTO queue_log_rejects (source, source_id, hour, stage, reason, disposition, raw)
SELECT :source, i.source_id, utc_hour(i."time"), 'ingest',
       'exact duplicate of source row ' || d.first_id, 'ignored', to_jsonb(i) - 'reject_reason'
FROM incoming_duplicates d JOIN incoming_queue_log i ON i.ctid = d.row_ref

-- name: lateness
-- (:sources: the run's sources)
-- How late rows reached us: ingestion time - event time, for the rows of the hours.
-- Per hour of [start, end) and (grouping() = 1) the whole range, in one scan
-- (run_metadata.py): every hour's materialization gets its own figures. The lag is sorted
-- as double precision, the type percentile_cont takes: the same values as the numeric it
-- was cast from before, without sorting (and spilling) numerics (issue 16, second round).
-- Not date_part('epoch', ...), a third cheaper: it adds the interval's days and seconds in
-- floating point, one unit in the last place off the exact lag for ~0.2 % of lags.
SELECT hour, grouping(hour) = 1 AS whole_range,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) AS p50,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) AS p99, max(lag) AS max
FROM (SELECT utc_hour("time") AS hour,
             CAST(extract(epoch FROM ingested_at - "time") AS double precision) AS lag
      FROM queue_log
      WHERE source = ANY(CAST(:sources AS text[])) AND "time" >= :start AND "time" < :end) l
GROUP BY GROUPING SETS ((hour), ())

-- name: summary
-- Rows per hour of [start, end) and event, in one scan; the range's totals per event are
-- their sums (queue_log.py). A hash aggregate over the rows, then the ~16 groups an hour
-- sorted by event: grouping sets ((hour, event), (event)) sorted all the rows by
-- (event, hour) instead, spilling to disk (issue 16, second round).
WITH counts AS MATERIALIZED (
    SELECT utc_hour("time") AS hour, event, count(*) AS n FROM queue_log
    WHERE source = ANY(CAST(:sources AS text[])) AND "time" >= :start AND "time" < :end
    GROUP BY 1, 2
)
SELECT hour, event, n FROM counts ORDER BY event
