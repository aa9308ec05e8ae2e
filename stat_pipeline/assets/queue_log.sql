-- name: hash_rows
-- Each staged row of the hours with the hash of its fields (migration 0009), computed once:
-- duplicates and the previous copies of the rows are found by (time, row_hash). The row's
-- columns come along, so that replace_rows reads this table alone, in staged (time) order:
-- joined back to the staged rows by ctid, the rows reached queue_log in the scrambled order
-- of a spilling hash join, each at a random place of its unique (time, row_hash) index
-- (a year of rows: 117 s of CPU with the join, 76 s without; issue 16).
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
-- sorting the rows (issue 16); only the repeated rows are ranked. row_ref (the staged row's
-- ctid) tells apart copies that share their source id.
CREATE TEMP TABLE incoming_duplicates ON COMMIT DROP AS
WITH repeated AS (
    SELECT "time", row_hash FROM incoming_rows GROUP BY "time", row_hash HAVING count(*) > 1
), ranked AS (
    SELECT h.row_ref, first_value(h.source_id) OVER w AS first_id, row_number() OVER w AS copy_no
    FROM incoming_rows h JOIN repeated r ON r."time" = h."time" AND r.row_hash = h.row_hash
    WINDOW w AS (PARTITION BY h."time", h.row_hash ORDER BY h.source_id, h.row_ref)
)
SELECT row_ref, first_id FROM ranked WHERE copy_no > 1

-- name: replace_rows
-- Replace the warehouse copy of [:start, :end) by what the source holds now (under the
-- warehouse's write lock). A row already copied keeps its first ingestion time, so
-- re-materializing does not hide lateness: previous copies are matched by content (time
-- and row_hash; the unique index queue_log__time_row makes that one row), and reduced to one per
-- content first, so that the join can never multiply a row whatever the table held.
WITH previous AS (
    DELETE FROM queue_log
    WHERE source = :source AND "time" >= :start AND "time" < :end
    RETURNING "time", row_hash, ingested_at
), first_ingested AS (
    SELECT "time", row_hash, min(ingested_at) AS ingested_at FROM previous GROUP BY 1, 2
)
INSERT INTO queue_log (source, source_id, "time", callid, queuename, agent, event,
                       data1, data2, data3, data4, data5, ingested_at, source_time)
SELECT :source, i.source_id, i."time", i.callid, i.queuename, i.agent, i.event,
       i.data1, i.data2, i.data3, i.data4, i.data5, coalesce(p.ingested_at, now()), i.time_text
FROM incoming_rows i
LEFT JOIN first_ingested p ON p."time" = i."time" AND p.row_hash = i.row_hash
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
SELECT :source, i.source_id, date_trunc('hour', i."time", 'UTC'), 'ingest',
       'exact duplicate of source row ' || d.first_id, 'ignored', to_jsonb(i) - 'reject_reason'
FROM incoming_duplicates d JOIN incoming_queue_log i ON i.ctid = d.row_ref

-- name: lateness
-- (:sources: the run's sources)
-- How late rows reached us: ingestion time - event time, for the rows of the hours.
-- Per hour of [start, end) and (grouping() = 1) the whole range, in one scan
-- (run_metadata.py): every hour's materialization gets its own figures. The lag is sorted
-- as double precision, the type percentile_cont takes: the same values as the numeric it
-- was cast from before, without sorting (and spilling) numerics (issue 16, second round).
SELECT hour, grouping(hour) = 1 AS whole_range,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) AS p50,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) AS p99, max(lag) AS max
FROM (SELECT date_trunc('hour', "time", 'UTC') AS hour,
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
    SELECT date_trunc('hour', "time", 'UTC') AS hour, event, count(*) AS n FROM queue_log
    WHERE source = ANY(CAST(:sources AS text[])) AND "time" >= :start AND "time" < :end
    GROUP BY 1, 2
)
SELECT hour, event, n FROM counts ORDER BY event
