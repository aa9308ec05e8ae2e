-- name: find_duplicates
-- Exact duplicates (every field equal, time to the microsecond): a loader that read a file
-- twice. The first copy is kept; the others are counted in queue_log_rejects.
CREATE TEMP TABLE incoming_duplicates ON COMMIT DROP AS
SELECT source_id, first_id
FROM (SELECT source_id,
             min(source_id) OVER (PARTITION BY "time", callid, queuename, agent, event,
                                               data1, data2, data3, data4, data5) AS first_id
      FROM incoming_queue_log
      WHERE "time" >= :start AND "time" < :end) x
WHERE source_id <> first_id

-- name: replace_rows
-- Replace the warehouse copy of [:start, :end) by what the source holds now. A row already
-- copied keeps its first ingestion time, so re-materializing does not hide lateness.
WITH previous AS (
    DELETE FROM queue_log
    WHERE source = :source AND "time" >= :start AND "time" < :end
    RETURNING source_id, ingested_at
)
INSERT INTO queue_log (source, source_id, "time", callid, queuename, agent, event,
                       data1, data2, data3, data4, data5, ingested_at, source_time)
SELECT :source, i.source_id, i."time", i.callid, i.queuename, i.agent, i.event,
       i.data1, i.data2, i.data3, i.data4, i.data5, coalesce(p.ingested_at, now()), i.time_text
FROM incoming_queue_log i
LEFT JOIN previous p ON p.source_id = i.source_id
WHERE i."time" >= :start AND i."time" < :end
  AND NOT EXISTS (SELECT 1 FROM incoming_duplicates d WHERE d.source_id = i.source_id)

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
FROM incoming_duplicates d JOIN incoming_queue_log i ON i.source_id = d.source_id

-- name: lateness
-- How late rows reached us: ingestion time - event time, for the rows of the hours.
-- Per hour of [start, end) and (grouping() = 1) the whole range, in one scan
-- (run_metadata.py): every hour's materialization gets its own figures.
SELECT hour, grouping(hour) = 1 AS whole_range,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) AS p50,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) AS p99, max(lag) AS max
FROM (SELECT date_trunc('hour', "time", 'UTC') AS hour,
             extract(epoch FROM ingested_at - "time") AS lag FROM queue_log
      WHERE source = :source AND "time" >= :start AND "time" < :end) l
GROUP BY GROUPING SETS ((hour), ())

-- name: summary
-- Per hour of [start, end) and (grouping() = 1) the whole range, in one scan
-- (run_metadata.py): every hour's materialization gets its own figures.
SELECT hour, grouping(hour) = 1 AS whole_range, event, count(*) AS n
FROM (SELECT date_trunc('hour', "time", 'UTC') AS hour, event FROM queue_log
      WHERE source = :source AND "time" >= :start AND "time" < :end) l
GROUP BY GROUPING SETS ((hour, event), (event)) ORDER BY event
