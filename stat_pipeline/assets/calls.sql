-- name: clear_calls
DELETE FROM classified_calls WHERE call_time >= :start AND call_time < :end

-- name: clear_rejects
DELETE FROM queue_log_rejects WHERE stage = 'classify' AND hour >= :start AND hour < :end

-- name: calls_by_status
SELECT status, count(*) AS n, count(*) FILTER (WHERE partial) AS partial,
       count(*) FILTER (WHERE note IS NOT NULL) AS noted
FROM classified_calls WHERE call_time >= :start AND call_time < :end
GROUP BY status ORDER BY status

-- name: rejects_by_disposition
SELECT disposition, count(*) AS n FROM queue_log_rejects
WHERE stage = 'classify' AND hour >= :start AND hour < :end
GROUP BY disposition

-- name: clear_stat_calls
DELETE FROM stat_call_on_queue WHERE "time" >= :start AND "time" < :end

-- name: stat_calls_by_status
SELECT CAST(status AS text) AS status, count(*) AS n,
       count(*) FILTER (WHERE stat_queue_id IS NULL) AS without_queue
FROM stat_call_on_queue WHERE "time" >= :start AND "time" < :end
GROUP BY status ORDER BY status
