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
-- compute plan every hour in between (hundreds of thousands).
WITH plausible AS (
    SELECT "time", agent, event, data1 FROM compute_staged_rows
    WHERE "time" >= :earliest AND "time" < :latest
      AND (CAST(:until AS timestamptz) IS NULL OR "time" < :until)
),
last_row AS (SELECT max("time") AS t FROM plausible),
states AS (
    SELECT "time", event,
           lead("time") OVER (PARTITION BY agent ORDER BY "time") AS next_time
    FROM plausible
    WHERE event IN ('AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF', 'PAUSEALL', 'UNPAUSEALL',
                    'PAUSE', 'UNPAUSE', 'ADDMEMBER', 'REMOVEMEMBER')
)
SELECT date_trunc('hour', "time" AT TIME ZONE 'UTC') AS hour FROM plausible
UNION
SELECT generate_series(date_trunc('hour', s."time" AT TIME ZONE 'UTC'),
                       date_trunc('hour', coalesce(s.next_time,
                                                   CAST(:until AS timestamptz) - interval '1 microsecond',
                                                   l.t) AT TIME ZONE 'UTC'),
                       interval '1 hour')
FROM states s CROSS JOIN last_row l
WHERE s.event <> 'AGENTCALLBACKLOGOFF'  -- a logged-off agent accrues no time
UNION
SELECT generate_series(date_trunc('hour', "time" AT TIME ZONE 'UTC'),
                       date_trunc('hour', least(
                           "time" + make_interval(secs => least(
                               CASE WHEN data1 ~ '^\s*[0-9]{1,9}\s*$'
                                    THEN CAST(btrim(data1) AS integer) ELSE 0 END,
                               extract(epoch FROM CAST(:lookahead AS interval)))),
                           coalesce(CAST(:until AS timestamptz) - interval '1 microsecond',
                                    'infinity')) AT TIME ZONE 'UTC'),
                       interval '1 hour')
FROM plausible
WHERE event = 'WRAPUPSTART'
ORDER BY 1

-- name: stage_range
CREATE TEMP TABLE incoming_queue_log ON COMMIT DROP AS
SELECT * FROM compute_staged_rows
WHERE ("time" >= :start AND "time" < :end) OR "time" IS NULL

-- name: drop_staged
DROP TABLE IF EXISTS compute_staged_rows
