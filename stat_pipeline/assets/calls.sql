-- name: clear_calls
DELETE FROM classified_calls WHERE call_time >= :start AND call_time < :end

-- name: clear_rejects
DELETE FROM queue_log_rejects WHERE stage = 'classify' AND hour >= :start AND hour < :end

-- name: calls_by_status
-- Per hour of [start, end) and (grouping() = 1) the whole range, in one scan
-- (run_metadata.py): every hour's materialization gets its own figures.
SELECT hour, grouping(hour) = 1 AS whole_range, status, count(*) AS n,
       count(*) FILTER (WHERE partial) AS partial, count(*) FILTER (WHERE noted) AS noted
FROM (SELECT date_trunc('hour', call_time, 'UTC') AS hour, status, partial,
             note IS NOT NULL AS noted
      FROM classified_calls WHERE call_time >= :start AND call_time < :end) c
GROUP BY GROUPING SETS ((hour, status), (status)) ORDER BY status

-- name: rejects_by_disposition
-- Per hour of [start, end) and (grouping() = 1) the whole range, in one scan
-- (run_metadata.py): every hour's materialization gets its own figures.
SELECT hour, grouping(hour) = 1 AS whole_range, disposition, count(*) AS n
FROM queue_log_rejects
WHERE stage = 'classify' AND hour >= :start AND hour < :end
GROUP BY GROUPING SETS ((hour, disposition), (disposition)) ORDER BY disposition

-- name: clear_stat_calls
DELETE FROM stat_call_on_queue WHERE "time" >= :start AND "time" < :end

-- name: stat_calls_by_status
-- Per hour of [start, end) and (grouping() = 1) the whole range, in one scan
-- (run_metadata.py): every hour's materialization gets its own figures.
SELECT hour, grouping(hour) = 1 AS whole_range, status, count(*) AS n,
       count(*) FILTER (WHERE without_queue) AS without_queue
FROM (SELECT date_trunc('hour', "time", 'UTC') AS hour, CAST(status AS text) AS status,
             stat_queue_id IS NULL AS without_queue
      FROM stat_call_on_queue WHERE "time" >= :start AND "time" < :end) c
GROUP BY GROUPING SETS ((hour, status), (status)) ORDER BY status

-- name: check_enterqueues
-- Every ENTERQUEUE of the hours has exactly one classified call (with an outcome, or pending).
SELECT (SELECT count(*) FROM queue_log
        WHERE "time" >= :start AND "time" < :end AND event = 'ENTERQUEUE'
          AND callid IS NOT NULL AND queuename IS NOT NULL) AS enterqueues,
       count(*) AS calls, count(*) - count(DISTINCT enter_row_id) AS duplicated
FROM classified_calls
WHERE call_time >= :start AND call_time < :end AND enter_row_id IS NOT NULL

-- name: check_durations
SELECT count(*) FILTER (WHERE waittime < 0 OR talktime < 0 OR ringtime < 0) AS negative,
       count(*) FILTER (WHERE waittime > :max_seconds OR talktime > :max_seconds) AS absurd
FROM classified_calls WHERE call_time >= :start AND call_time < :end

-- name: check_stale_pending
-- Anywhere in the table: a call still pending past the look-ahead means its hour was not
-- re-materialized after its outcome could have arrived.
SELECT count(*) AS stale, min(call_time) AS oldest FROM classified_calls
WHERE status = 'pending'
  AND enter_time + CAST(:lookahead AS interval) < CAST(:horizon AS timestamptz)

-- name: check_rejects
SELECT count(*) AS n FROM queue_log_rejects
WHERE (hour >= :start AND hour < :end) OR hour IS NULL

-- name: skew
-- Clock/counter disagreement between writers: Asterisk's reported wait vs the same wait
-- measured on the rows' timestamps (different processes, different clocks), per call.
SELECT count(*) AS calls,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(waittime_by_events - waittime)) AS p50,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY abs(waittime_by_events - waittime)) AS p99,
       max(abs(waittime_by_events - waittime)) AS max
FROM classified_calls
WHERE call_time >= :start AND call_time < :end AND status = 'answered'
  AND waittime_by_events IS NOT NULL AND note IS NULL

-- name: skew_by_hour
-- The skew query's 99th percentile per hour of [start, end) and (grouping() = 1) the whole
-- range, in one scan (run_metadata.py): every hour's materialization gets its own figure.
SELECT hour, grouping(hour) = 1 AS whole_range, percentile_cont(0.99) WITHIN GROUP (ORDER BY d) AS p99
FROM (SELECT date_trunc('hour', call_time, 'UTC') AS hour,
             abs(waittime_by_events - waittime) AS d
      FROM classified_calls
      WHERE call_time >= :start AND call_time < :end AND status = 'answered'
        AND waittime_by_events IS NOT NULL AND note IS NULL) c
GROUP BY GROUPING SETS ((hour), ())
