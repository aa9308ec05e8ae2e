-- Run on the SOURCE database (read-only, maybe an old PostgreSQL: no helper functions, no
-- pg_input_is_valid): which hours do the rows after %(cursor)s touch? Each new row touches the
-- hour of its own time and, when it decides a call, the hour the call started in: the hour of
-- its ENTERQUEUE (same callid and queue, up to the look-ahead before, or after: an outcome
-- logged before its ENTERQUEUE, issue 12 #8), or, without one, the hour of end - talk - wait
-- (Wazo's "partial call" time). An agent state row (login, pause, membership) touches every
-- hour up to the agent's next state row (or now: the state is still open), and a WRAPUPSTART
-- the hours its wrap-up lasts.
-- "{table}" is replaced by the caller, and SAFE_TIME(x) by an expression that reads x as an
-- instant or gives NULL (touched_hours.py: old Wazo's text column holds '' and worse, and a
-- failing CAST would fail every tick). A time outside the plausible window
-- [%(earliest)s, %(latest)s) counts as no time: such a row touches no hour and never holds the
-- cursor back (the copy keeps it aside in queue_log_rejects). psycopg2 placeholders.
WITH new_rows AS (
    -- a naive or text "time" (Asterisk realtime, Wazo <= 20.13) is read in the session's
    -- zone, which is the source's configured zone
    SELECT id, CASE WHEN t >= %(earliest)s AND t < %(latest)s THEN t END AS "time",
           callid, queuename, agent, event, data1, data2, data3, data4, data5
    FROM (SELECT id, SAFE_TIME(s."time") AS t, callid, queuename, agent, event,
                 data1, data2, data3, data4, data5
          FROM {table} s
          WHERE id > %(cursor)s
          ORDER BY id
          LIMIT %(limit)s) r
),
-- The look-ups below read the source once each, for the batch's calls and agents only, and
-- join by hash: a per-row sub-query would scan the whole table per row where the source
-- has no index on callid or agent (Wazo's queue_log has none on agent), which made a first
-- tick over 30 days of rows outlast Dagster's 60 s sensor timeout.
entered_calls_rows AS (
    SELECT SAFE_TIME(s."time") AS t, s.callid, s.queuename, s.event,
           s.data1, s.data2, s.data3, s.data4, s.data5
    FROM {table} s
    WHERE s.callid IN (SELECT callid FROM new_rows WHERE event = 'ENTERQUEUE')
),
agent_states AS (
    -- every plausible state time of the batch's agents, each with the next one: one in 2200
    -- does not stretch a state to 2200
    SELECT agent, t, lead(t) OVER (PARTITION BY agent ORDER BY t) AS next_time
    FROM (SELECT DISTINCT s.agent, SAFE_TIME(s."time") AS t
          FROM {table} s
          -- the batch's few agents as an array computed once: as an IN (sub-query) the
          -- planner, with the table's statistics, re-scanned the batch per state row (38 s)
          WHERE s.agent = ANY (ARRAY(SELECT DISTINCT agent FROM new_rows WHERE event IN (
                    'AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF', 'PAUSEALL', 'UNPAUSEALL',
                    'PAUSE', 'UNPAUSE', 'ADDMEMBER', 'REMOVEMEMBER')))
            AND s.event IN ('AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF', 'PAUSEALL',
                            'UNPAUSEALL', 'PAUSE', 'UNPAUSE', 'ADDMEMBER', 'REMOVEMEMBER')) x
    WHERE t >= %(earliest)s AND t < %(latest)s
),
outcomes AS (
    SELECT n.id, n."time", n.callid, n.queuename,
           -- Asterisk's wait + talk seconds of the outcome row, per event form
           CASE WHEN n.event IN ('COMPLETEAGENT', 'COMPLETECALLER') THEN n.i1 + n.i2
                WHEN n.event IN ('TRANSFER', 'BLINDTRANSFER') THEN n.i3 + n.i4
                WHEN n.event = 'ATTENDEDTRANSFER' AND n.data1 IN ('BRIDGE', 'APP') THEN n.i3 + n.i4
                WHEN n.event = 'ATTENDEDTRANSFER' THEN n.i4 + n.i5
                ELSE n.i3
           END AS seconds
    FROM (SELECT r.*,
                 CASE WHEN r.data1 ~ '^\s*[0-9]{1,9}\s*$' THEN CAST(btrim(r.data1) AS integer) ELSE 0 END AS i1,
                 CASE WHEN r.data2 ~ '^\s*[0-9]{1,9}\s*$' THEN CAST(btrim(r.data2) AS integer) ELSE 0 END AS i2,
                 CASE WHEN r.data3 ~ '^\s*[0-9]{1,9}\s*$' THEN CAST(btrim(r.data3) AS integer) ELSE 0 END AS i3,
                 CASE WHEN r.data4 ~ '^\s*[0-9]{1,9}\s*$' THEN CAST(btrim(r.data4) AS integer) ELSE 0 END AS i4,
                 CASE WHEN split_part(r.data5, '|', 1) ~ '^\s*[0-9]{1,9}\s*$'
                      THEN CAST(btrim(split_part(r.data5, '|', 1)) AS integer) ELSE 0 END AS i5
          FROM (SELECT id, "time", callid, queuename, event, data1, data2, data3, data4, data5
                FROM new_rows
                UNION ALL
                -- a new ENTERQUEUE takes an outcome logged up to the look-ahead before it
                -- (writers' clocks, classify_calls.sql): that outcome's hours change too
                SELECT n.id, o.t, o.callid, o.queuename, o.event,
                       o.data1, o.data2, o.data3, o.data4, o.data5
                FROM new_rows n
                JOIN entered_calls_rows o
                  ON o.callid = n.callid AND o.queuename = n.queuename
                 AND o.t BETWEEN n."time" - CAST(%(lookahead)s AS interval) AND n."time"
                WHERE n.event = 'ENTERQUEUE') r
          WHERE r."time" IS NOT NULL AND r.callid IS NOT NULL
            AND r.event IN ('COMPLETEAGENT', 'COMPLETECALLER', 'TRANSFER', 'BLINDTRANSFER',
                            'ATTENDEDTRANSFER', 'ABANDON', 'EXITWITHTIMEOUT', 'LEAVEEMPTY',
                            'EXITWITHKEY', 'EXITEMPTY', 'WITHDRAW', 'CONNECT')) n
)
-- "own": the row's own hour (the cursor waits for it to close), one per row. The derived
-- hours come once each, with the first row id touching them: an agent left logged in since
-- long ago touches every hour up to now, and per row that was millions of rows to sort and
-- to send (2.4 million on the 30-day set) where the sensor needs only the set of hours.
SELECT id, date_trunc('hour', "time" AT TIME ZONE 'UTC') AS hour, true AS own FROM new_rows
UNION ALL
SELECT min(id), hour, false FROM (
SELECT n.id, generate_series(date_trunc('hour', n."time" AT TIME ZONE 'UTC'),
                             date_trunc('hour', coalesce(nx.next_time, now()) AT TIME ZONE 'UTC'),
                             interval '1 hour'), false
FROM new_rows n
JOIN agent_states nx ON nx.agent = n.agent AND nx.t = n."time"
WHERE n."time" IS NOT NULL
  AND n.event IN ('AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF', 'PAUSEALL', 'UNPAUSEALL',
                  'PAUSE', 'UNPAUSE', 'ADDMEMBER', 'REMOVEMEMBER')
UNION ALL
SELECT n.id, generate_series(date_trunc('hour', n."time" AT TIME ZONE 'UTC'),
                             date_trunc('hour', (n."time" + make_interval(secs => least(
                                 CASE WHEN n.data1 ~ '^\s*[0-9]{1,9}\s*$'
                                      THEN CAST(btrim(n.data1) AS integer) ELSE 0 END,
                                 extract(epoch FROM CAST(%(lookahead)s AS interval)))))
                                 AT TIME ZONE 'UTC'),
                             interval '1 hour'), false
FROM new_rows n
WHERE n."time" IS NOT NULL AND n.event = 'WRAPUPSTART'
UNION ALL
SELECT o.id, date_trunc('hour', e.t AT TIME ZONE 'UTC'), false
FROM outcomes o
JOIN (SELECT SAFE_TIME(s."time") AS t, s.callid, s.queuename FROM {table} s
      WHERE s.event = 'ENTERQUEUE' AND s.callid IN (SELECT callid FROM outcomes)) e
  ON e.callid = o.callid AND e.queuename = o.queuename
 AND e.t BETWEEN o."time" - CAST(%(lookahead)s AS interval)
             AND o."time" + CAST(%(lookahead)s AS interval)
UNION ALL
SELECT o.id, date_trunc('hour', (o."time" - make_interval(secs => least(
           o.seconds, extract(epoch FROM CAST(%(lookahead)s AS interval))))) AT TIME ZONE 'UTC'),
       false
FROM outcomes o
) AS derived (id, hour, own)
GROUP BY hour
ORDER BY 1
