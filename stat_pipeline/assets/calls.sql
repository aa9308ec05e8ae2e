-- name: clear_calls
DELETE FROM classified_calls WHERE call_time >= :start AND call_time < :end

-- name: clear_rejects
DELETE FROM queue_log_rejects WHERE stage = 'classify' AND hour >= :start AND hour < :end

-- name: calls_by_status
-- Per hour of [start, end) and (grouping() = 1) the whole range, in one scan
-- (run_metadata.py): every hour's materialization gets its own figures. Counted per (hour,
-- status) by hashing first (a few thousand groups), then the grouping sets over those: the
-- planner cannot tell the hours' few values and sorted every call instead (spilling).
SELECT hour, grouping(hour) = 1 AS whole_range, status, CAST(sum(n) AS bigint) AS n,
       CAST(sum(partial) AS bigint) AS partial, CAST(sum(noted) AS bigint) AS noted,
       CAST(sum(paired_before_enter) AS bigint) AS paired_before_enter
FROM (SELECT utc_hour(call_time) AS hour, status, count(*) AS n,
             count(*) FILTER (WHERE partial) AS partial,
             count(*) FILTER (WHERE note IS NOT NULL) AS noted,
             count(*) FILTER (WHERE note LIKE '%before its ENTERQUEUE%') AS paired_before_enter
      FROM classified_calls WHERE call_time >= :start AND call_time < :end
      GROUP BY 1, 2) c
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
-- (run_metadata.py): every hour's materialization gets its own figures. Hashed per (hour,
-- status) first, as calls_by_status.
SELECT hour, grouping(hour) = 1 AS whole_range, status, CAST(sum(n) AS bigint) AS n,
       CAST(sum(without_queue) AS bigint) AS without_queue
FROM (SELECT utc_hour("time") AS hour, CAST(status AS text) AS status,
             count(*) AS n, count(*) FILTER (WHERE stat_queue_id IS NULL) AS without_queue
      FROM stat_call_on_queue WHERE "time" >= :start AND "time" < :end
      GROUP BY 1, 2) c
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

-- name: check_unused_outcomes
-- Outcome rows (and CONNECTs) of the hours that no classified call read: a call that
-- disappeared, a repeated row, or a call whose hour is out of date. The rows of a call may lie
-- in other hours than the call: a call with an ENTERQUEUE reads rows up to the look-ahead
-- before (early rows) or after it (classify_calls.sql), so its call_time is within the
-- look-ahead of each of them, and such calls are looked up by time; a partial call (no
-- ENTERQUEUE) has a time derived from its durations, and is looked up by callid (the partial
-- index of migration 0022). Rows without callid or queue are in queue_log_rejects already.
WITH unused AS (
    SELECT q.source_id, q."time", q.callid, q.queuename, q.event
    FROM queue_log q
    WHERE q."time" >= :start AND q."time" < :end
      AND q.event IN ('CONNECT', 'COMPLETEAGENT', 'COMPLETECALLER', 'TRANSFER', 'BLINDTRANSFER',
                      'ATTENDEDTRANSFER', 'ABANDON', 'EXITWITHTIMEOUT', 'LEAVEEMPTY',
                      'EXITWITHKEY', 'EXITEMPTY', 'WITHDRAW')
      AND q.callid IS NOT NULL AND q.queuename IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM classified_calls c
          WHERE c.call_time >= CAST(:start AS timestamptz) - CAST(:lookahead AS interval)
            AND c.call_time <= CAST(:end AS timestamptz) + CAST(:lookahead AS interval)
            AND c.callid = q.callid AND c.queuename = q.queuename
            AND q.source_id IN (c.outcome_row_id, c.connect_row_id, c.exitempty_row_id))
      AND NOT EXISTS (
          SELECT 1 FROM classified_calls c
          WHERE c.partial AND c.callid = q.callid AND c.queuename = q.queuename
            AND q.source_id IN (c.outcome_row_id, c.connect_row_id, c.exitempty_row_id))
)
SELECT (SELECT count(*) FROM unused) AS unused,
       (SELECT coalesce(jsonb_object_agg(event, n), '{}')
        FROM (SELECT event, count(*) AS n FROM unused GROUP BY event) e) AS by_event,
       (SELECT string_agg(format('%s %s %s/%s (row %s)',
                                 to_char(f."time" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                                 f.event, f.callid, f.queuename, f.source_id), '; ')
        FROM (SELECT * FROM unused ORDER BY "time", source_id LIMIT 5) f) AS first_rows

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
FROM (SELECT utc_hour(call_time) AS hour,
             abs(waittime_by_events - waittime) AS d
      FROM classified_calls
      WHERE call_time >= :start AND call_time < :end AND status = 'answered'
        AND waittime_by_events IS NOT NULL AND note IS NULL) c
GROUP BY GROUPING SETS ((hour), ())

-- name: lock_stat_call_keys
-- What stat_call_on_queue's two foreign keys check per row, for the rows just written, in
-- one statement: every stat_queue_id / stat_agent_id exists, and the referenced rows are
-- locked FOR KEY SHARE until the commit (as the per-row checks lock them), so that no
-- concurrent transaction can remove them. Returns the referenced ids that do not exist.
WITH referenced_queues AS (
    SELECT DISTINCT stat_queue_id AS id FROM stat_call_on_queue
    WHERE "time" >= :start AND "time" < :end AND stat_queue_id IS NOT NULL
), referenced_agents AS (
    SELECT DISTINCT stat_agent_id AS id FROM stat_call_on_queue
    WHERE "time" >= :start AND "time" < :end AND stat_agent_id IS NOT NULL
), locked_queues AS (
    SELECT q.id FROM stat_queue q WHERE q.id IN (SELECT id FROM referenced_queues)
    FOR KEY SHARE OF q
), locked_agents AS (
    SELECT a.id FROM stat_agent a WHERE a.id IN (SELECT id FROM referenced_agents)
    FOR KEY SHARE OF a
)
SELECT (SELECT array_agg(id ORDER BY id) FROM referenced_queues
        WHERE id NOT IN (SELECT id FROM locked_queues)) AS missing_queue_ids,
       (SELECT array_agg(id ORDER BY id) FROM referenced_agents
        WHERE id NOT IN (SELECT id FROM locked_agents)) AS missing_agent_ids
