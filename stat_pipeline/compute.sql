-- name: keep_staged
-- The whole file, parsed once (the source's stage() over all time): the bounds come from
-- it and the range run reads it back (StagedRows) instead of parsing the file again.
-- UNLOGGED: a scratch copy, gone with the command's throwaway server anyway.
DROP TABLE IF EXISTS compute_staged_rows;
CREATE UNLOGGED TABLE compute_staged_rows AS SELECT * FROM incoming_queue_log;
DROP TABLE incoming_queue_log

-- name: counts
-- What the file held, for the one line that says why nothing can be computed.
SELECT count(*) AS n,
       count(*) FILTER (WHERE "time" IS NULL) AS no_time,
       -- the sources' reason for one of them (an unreadable or implausible time)
       min(reject_reason) FILTER (WHERE "time" IS NULL) AS no_time_reason,
       count(*) FILTER (WHERE "time" IS NOT NULL
                        AND NOT ("time" >= :earliest AND "time" < :latest)) AS implausible
FROM compute_staged_rows

-- name: plan_hours
-- The hours to compute: those holding a plausible row (inside [earliest, latest) and before
-- :until), and those an agent state carries (a login, a pause or a membership lasts until
-- the agent's next state row, else until :until or the last row; a wrap-up its seconds, at
-- most the look-ahead). Never a row outside the window: one row in 1970 or 2200 made
-- compute plan every hour in between (hundreds of thousands). Each part reads the staged
-- rows it needs (the filters pushed into the scans, NOT MATERIALIZED: a materialized copy
-- of all the rows spilled to disk and was read five times), and the hours are made
-- distinct by a hash aggregate (UNION sorted the rows' ~500,000 hours; issue 16). The
-- hours are timestamptz (utc_hour, migration 0023: no zone conversion a row), so the
-- series step in UTC whatever the session's TimeZone: an hour is an hour.
WITH plausible AS NOT MATERIALIZED (
    SELECT "time", agent, event, data1, data2, data3, data4, data5 FROM compute_staged_rows
    WHERE "time" >= :earliest AND "time" < :latest
      AND (CAST(:until AS timestamptz) IS NULL OR "time" < :until)
),
bounds AS MATERIALIZED (SELECT min("time") AS first_row, max("time") AS last_row FROM plausible),
outcomes AS (
    -- an outcome without its ENTERQUEUE is a call dated end - talk - wait (at most the
    -- look-ahead before), maybe in an hour without rows: after a gap in the data, that hour
    -- must be planned too (not before the first row: as before, such calls start the file)
    SELECT "time",
           CASE WHEN event IN ('COMPLETEAGENT', 'COMPLETECALLER') THEN i1 + i2
                WHEN event IN ('TRANSFER', 'BLINDTRANSFER') THEN i3 + i4
                WHEN event = 'ATTENDEDTRANSFER' AND data1 IN ('BRIDGE', 'APP') THEN i3 + i4
                WHEN event = 'ATTENDEDTRANSFER' THEN i4 + i5
                ELSE i3
           END AS seconds
    FROM (SELECT p.*,
                 CASE WHEN data1 ~ '^\s*[0-9]{1,9}\s*$' THEN CAST(btrim(data1) AS integer) ELSE 0 END AS i1,
                 CASE WHEN data2 ~ '^\s*[0-9]{1,9}\s*$' THEN CAST(btrim(data2) AS integer) ELSE 0 END AS i2,
                 CASE WHEN data3 ~ '^\s*[0-9]{1,9}\s*$' THEN CAST(btrim(data3) AS integer) ELSE 0 END AS i3,
                 CASE WHEN data4 ~ '^\s*[0-9]{1,9}\s*$' THEN CAST(btrim(data4) AS integer) ELSE 0 END AS i4,
                 CASE WHEN split_part(data5, '|', 1) ~ '^\s*[0-9]{1,9}\s*$'
                      THEN CAST(btrim(split_part(data5, '|', 1)) AS integer) ELSE 0 END AS i5
          FROM plausible p
          WHERE event IN ('COMPLETEAGENT', 'COMPLETECALLER', 'TRANSFER', 'BLINDTRANSFER',
                          'ATTENDEDTRANSFER', 'ABANDON', 'EXITWITHTIMEOUT', 'LEAVEEMPTY',
                          'EXITWITHKEY', 'EXITEMPTY', 'WITHDRAW')) o
),
states AS (
    SELECT "time", event,
           lead("time") OVER (PARTITION BY agent ORDER BY "time") AS next_time
    FROM plausible
    WHERE event IN ('AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF', 'PAUSEALL', 'UNPAUSEALL',
                    'PAUSE', 'UNPAUSE', 'ADDMEMBER', 'REMOVEMEMBER')
)
SELECT hour FROM (
SELECT utc_hour("time") AS hour FROM plausible
UNION ALL
SELECT generate_series(utc_hour(s."time"),
                       utc_hour(coalesce(s.next_time,
                                         CAST(:until AS timestamptz) - interval '1 microsecond',
                                         b.last_row)),
                       interval '1 hour')
FROM states s CROSS JOIN bounds b
WHERE s.event <> 'AGENTCALLBACKLOGOFF'  -- a logged-off agent accrues no time
UNION ALL
SELECT generate_series(utc_hour("time"),
                       utc_hour(least(
                           "time" + make_interval(secs => least(
                               CASE WHEN data1 ~ '^\s*[0-9]{1,9}\s*$'
                                    THEN CAST(btrim(data1) AS integer) ELSE 0 END,
                               extract(epoch FROM CAST(:lookahead AS interval)))),
                           coalesce(CAST(:until AS timestamptz) - interval '1 microsecond',
                                    'infinity'))),
                       interval '1 hour')
FROM plausible
WHERE event = 'WRAPUPSTART'
UNION ALL
SELECT utc_hour(greatest(
           o."time" - make_interval(secs => least(
               o.seconds, extract(epoch FROM CAST(:lookahead AS interval)))),
           b.first_row))
FROM outcomes o CROSS JOIN bounds b
) hours
GROUP BY hour
ORDER BY hour

-- name: stage_range
CREATE TEMP TABLE incoming_queue_log ON COMMIT DROP AS
SELECT * FROM compute_staged_rows
WHERE ("time" >= :start AND "time" < :end) OR "time" IS NULL

-- name: drop_staged
DROP TABLE IF EXISTS compute_staged_rows

-- name: contiguous_tables
-- The range-partitioned tables whose months are contiguous, between <table>_before and
-- <table>_after (migration 0018); queue_log_rejects has a DEFAULT partition instead.
SELECT table_name FROM partitioned_tables
WHERE to_regclass(table_name || '_default') IS NULL ORDER BY table_name

-- name: month_span
-- Whether :month is one of :table's months or the one after its last (its first write
-- then creates nothing, or one month).
SELECT coalesce(CAST(:month AS timestamptz) >= r.first_month
                AND CAST(:month AS timestamptz) <= r.after_last, false) AS month_is_near
FROM stat_month_range(:table) r

-- name: month_tables
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = to_regclass(:table) AND c.relname ~ '_p[0-9]{4}_[0-9]{2}$'
