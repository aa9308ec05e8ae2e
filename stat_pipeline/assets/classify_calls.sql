-- Classify every call passage whose Wazo time falls in [:start, :end).
--
-- A passage is one stay of a callid in a queue: its ENTERQUEUE and the rows of the same
-- (callid, queuename) up to the next ENTERQUEUE. Its outcome is the first row that Wazo turns
-- into a status (COMPLETE*/TRANSFER forms, ABANDON, EXITWITHTIMEOUT, LEAVEEMPTY), else the
-- first exit Wazo does not count (EXITWITHKEY, EXITEMPTY, WITHDRAW), else none yet.
-- Pairing inside the passage (not a join on callid+queue) is what keeps a callid that enters
-- the same queue twice at two calls (wazo-stat's join gives 2x2, quirk Q5).
--
-- Rows are read from [:start - :lookahead, :end + :lookahead): an outcome is looked for up to
-- :lookahead after its ENTERQUEUE (wazo-stat looks 1 day ahead), and looking back as far lets
-- every run tell a true "outcome without ENTERQUEUE" from a passage that began before its
-- range. Both bounds make the result for a given hour independent of the range that computed
-- it, which is why any set of hours can be re-materialized in any order.
WITH call_rows AS (
    SELECT q.source_id AS row_id, q."time", q.callid, q.queuename, q.agent, q.event,
           q.data1, q.data2, q.data3, q.data4, q.data5
    FROM queue_log q
    WHERE q."time" >= CAST(:start AS timestamptz) - CAST(:lookahead AS interval)
      AND q."time" <  CAST(:end AS timestamptz) + CAST(:lookahead AS interval)
      AND q.event IN ('ENTERQUEUE', 'CONNECT', 'COMPLETEAGENT', 'COMPLETECALLER', 'TRANSFER',
                      'BLINDTRANSFER', 'ATTENDEDTRANSFER', 'ABANDON', 'EXITWITHTIMEOUT',
                      'LEAVEEMPTY', 'EXITWITHKEY', 'EXITEMPTY', 'WITHDRAW')
      AND q.callid IS NOT NULL AND q.queuename IS NOT NULL
),
numbered AS (
    -- At equal timestamps ENTERQUEUE sorts first: with second-precision clocks an immediate
    -- ABANDON has the ENTERQUEUE's time, and must still belong to it (quirk Q6).
    SELECT r.*,
           count(*) FILTER (WHERE r.event = 'ENTERQUEUE') OVER w AS passage,
           max(r."time") FILTER (WHERE r.event = 'ENTERQUEUE') OVER w AS passage_enter_time,
           count(*) FILTER (WHERE r.event = 'ENTERQUEUE')
               OVER (PARTITION BY r.callid, r.queuename) AS passages_of_call
    FROM call_rows r
    WINDOW w AS (PARTITION BY r.callid, r.queuename
                 ORDER BY r."time", (r.event <> 'ENTERQUEUE'), r.row_id
                 ROWS UNBOUNDED PRECEDING)
),
grouped AS (
    -- Rows more than :lookahead after their ENTERQUEUE (or with none before them) cannot be
    -- that passage's outcome: they form a group of their own, "without ENTERQUEUE".
    SELECT n.*,
           (n.passage_enter_time IS NULL
            OR n."time" - n.passage_enter_time > CAST(:lookahead AS interval)) AS orphan
    FROM numbered n
),
ranked_outcomes AS (
    SELECT g.*,
           row_number() OVER (
               PARTITION BY g.callid, g.queuename, g.passage, g.orphan
               ORDER BY (g.event IN ('EXITWITHKEY', 'EXITEMPTY', 'WITHDRAW')), g."time", g.row_id
           ) AS outcome_rank
    FROM grouped g
    WHERE g.event NOT IN ('ENTERQUEUE', 'CONNECT')
),
passages AS (
    SELECT g.callid, g.queuename, g.passage, g.orphan, g.passages_of_call,
           min(g."time") FILTER (WHERE g.event = 'ENTERQUEUE') AS enter_time,
           min(g.row_id) FILTER (WHERE g.event = 'ENTERQUEUE') AS enter_row_id,
           min(g."time") FILTER (WHERE g.event = 'CONNECT') AS connect_time,
           (array_agg(ql_int(g.data3) ORDER BY g."time", g.row_id)
                FILTER (WHERE g.event = 'CONNECT'))[1] AS connect_ringtime,
           (array_agg(ql_int(g.data3) ORDER BY g."time", g.row_id)
                FILTER (WHERE g.event = 'EXITEMPTY'))[1] AS exitempty_waittime
    FROM grouped g
    GROUP BY g.callid, g.queuename, g.passage, g.orphan, g.passages_of_call
),
decided AS (
    SELECT p.*, o.row_id AS outcome_row_id, o."time" AS end_time, o.event AS outcome_event,
           o.agent AS outcome_agent,
           CASE o.event
               WHEN 'COMPLETEAGENT' THEN 'answered' WHEN 'COMPLETECALLER' THEN 'answered'
               WHEN 'TRANSFER' THEN 'answered' WHEN 'BLINDTRANSFER' THEN 'answered'
               WHEN 'ATTENDEDTRANSFER' THEN 'answered'
               WHEN 'ABANDON' THEN 'abandoned' WHEN 'EXITWITHTIMEOUT' THEN 'timeout'
               WHEN 'LEAVEEMPTY' THEN 'leaveempty'
               WHEN 'EXITWITHKEY' THEN 'exitwithkey' WHEN 'EXITEMPTY' THEN 'exitempty'
               WHEN 'WITHDRAW' THEN 'withdraw'
           END AS outcome_status,
           -- The seconds Asterisk reported (what wazo-stat stores), per event form:
           -- queue_log_format.md section 3.1.
           CASE
               WHEN o.event IN ('COMPLETEAGENT', 'COMPLETECALLER') THEN o.data1
               WHEN o.event IN ('TRANSFER', 'BLINDTRANSFER') THEN o.data3
               WHEN o.event = 'ATTENDEDTRANSFER' AND o.data1 IN ('BRIDGE', 'APP') THEN o.data3
               WHEN o.event = 'ATTENDEDTRANSFER' AND o.data1 = 'LINK' THEN o.data4
               WHEN o.event IN ('ABANDON', 'EXITWITHTIMEOUT', 'EXITEMPTY', 'WITHDRAW') THEN o.data3
               WHEN o.event = 'EXITWITHKEY' THEN o.data4
           END AS wait_text,
           CASE
               WHEN o.event IN ('COMPLETEAGENT', 'COMPLETECALLER') THEN o.data2
               WHEN o.event IN ('TRANSFER', 'BLINDTRANSFER') THEN o.data4
               WHEN o.event = 'ATTENDEDTRANSFER' AND o.data1 IN ('BRIDGE', 'APP') THEN o.data4
               WHEN o.event = 'ATTENDEDTRANSFER' AND o.data1 = 'LINK' THEN split_part(o.data5, '|', 1)
           END AS talk_text
    FROM passages p
    LEFT JOIN ranked_outcomes o
           ON o.callid = p.callid AND o.queuename = p.queuename
          AND o.passage = p.passage AND o.orphan = p.orphan AND o.outcome_rank = 1
    -- an orphan group is a call only if it holds an outcome
    WHERE NOT p.orphan OR o.row_id IS NOT NULL
),
timed AS (
    SELECT d.*,
           CASE
               WHEN d.outcome_event = 'LEAVEEMPTY' AND d.enter_time IS NOT NULL
                   -- Wazo: LEAVEEMPTY time - ENTERQUEUE time, rounded to the second
                   THEN round(extract(epoch FROM d.end_time - d.enter_time))::integer
               WHEN d.outcome_event = 'LEAVEEMPTY' THEN d.exitempty_waittime
               ELSE ql_int(d.wait_text)
           END AS wait_reported,
           CASE WHEN d.outcome_status = 'answered' THEN ql_int(d.talk_text) ELSE 0 END AS talk_reported
    FROM decided d
),
by_events AS (
    -- The same durations from the events' own timestamps (Genesys' "source timestamps"):
    -- wait = CONNECT (or the outcome) - ENTERQUEUE, talk = outcome - CONNECT.
    SELECT t.*,
           CASE WHEN t.enter_time IS NOT NULL THEN
               round(extract(epoch FROM coalesce(
                   CASE WHEN t.outcome_status = 'answered' THEN t.connect_time END,
                   t.end_time) - t.enter_time))::integer
           END AS wait_events,
           CASE WHEN t.outcome_status = 'answered' THEN
               -- without a CONNECT: from the ENTERQUEUE plus the reported wait
               round(extract(epoch FROM t.end_time - coalesce(
                   t.connect_time,
                   t.enter_time + make_interval(secs => coalesce(t.wait_reported, 0)))))::integer
           WHEN t.outcome_status IS NOT NULL THEN 0
           END AS talk_events
    FROM timed t
),
measured AS (
    -- Asterisk's seconds by default (what wazo-stat stores); the event timestamps when asked
    -- (:durations_from = 'events'), and whenever Asterisk's field is empty or not a number.
    SELECT b.*,
           CASE WHEN :durations_from = 'events'
                THEN coalesce(b.wait_events, b.wait_reported, 0)
                ELSE coalesce(b.wait_reported, b.wait_events, 0) END AS waittime,
           CASE WHEN :durations_from = 'events'
                THEN coalesce(b.talk_events, b.talk_reported, 0)
                ELSE coalesce(b.talk_reported, b.talk_events, 0) END AS talktime
    FROM by_events b
),
calls AS (
    SELECT m.callid, m.queuename,
           CASE
               WHEN m.enter_time IS NOT NULL THEN m.enter_time
               -- outcome without ENTERQUEUE: wazo-stat's "partial call" time, end - talk - wait
               ELSE m.end_time - make_interval(secs => m.talktime + m.waittime)
           END AS call_time,
           m.enter_time, m.end_time,
           CASE
               WHEN m.outcome_status IS NOT NULL THEN m.outcome_status
               WHEN m.passage < m.passages_of_call THEN 'no_outcome'
               WHEN m.enter_time + CAST(:lookahead AS interval) <= CAST(:horizon AS timestamptz)
                   THEN 'no_outcome'
               ELSE 'pending'
           END AS status,
           CASE WHEN m.outcome_status IS NULL THEN 0 ELSE m.waittime END AS waittime,
           m.talktime,
           m.wait_events AS waittime_by_events,
           m.talk_events AS talktime_by_events,
           coalesce(m.connect_ringtime, 0) AS ringtime,
           CASE WHEN m.outcome_status = 'answered' THEN m.outcome_agent END AS agent,
           m.enter_time IS NULL AS partial,
           m.enter_row_id, m.outcome_row_id,
           nullif(concat_ws('; ',
               CASE WHEN m.enter_time IS NULL
                    THEN m.outcome_event || ' without ENTERQUEUE: time = end - talk - wait' END,
               CASE WHEN m.outcome_status IS NOT NULL AND m.wait_reported IS NULL
                         AND NOT (m.enter_time IS NULL AND m.outcome_event = 'LEAVEEMPTY')
                    THEN 'waittime ' || coalesce(quote_literal(m.wait_text), 'NULL')
                         || ' is not an integer: taken from event times' END,
               CASE WHEN m.outcome_status = 'answered' AND m.talk_reported IS NULL
                    THEN 'talktime ' || coalesce(quote_literal(m.talk_text), 'NULL')
                         || ' is not an integer: taken from event times' END
           ), '') AS note
    FROM measured m
),
simple_calls AS (
    -- Wazo's dialplan writes these instead of an ENTERQUEUE: the call never queued.
    SELECT q.callid, q.queuename, q."time" AS call_time, NULL::timestamptz AS enter_time,
           q."time" AS end_time,
           CASE q.event
               WHEN 'FULL' THEN 'full' WHEN 'CLOSED' THEN 'closed'
               WHEN 'JOINEMPTY' THEN 'joinempty' WHEN 'DIVERT_CA_RATIO' THEN 'divert_ca_ratio'
               WHEN 'DIVERT_HOLDTIME' THEN 'divert_waittime'
           END AS status,
           0 AS waittime, 0 AS talktime, NULL::integer AS waittime_by_events,
           NULL::integer AS talktime_by_events, 0 AS ringtime, NULL::text AS agent, false AS partial,
           NULL::bigint AS enter_row_id, q.source_id AS outcome_row_id, NULL::text AS note
    FROM queue_log q
    WHERE q."time" >= CAST(:start AS timestamptz) AND q."time" < CAST(:end AS timestamptz)
      AND q.event IN ('FULL', 'CLOSED', 'JOINEMPTY', 'DIVERT_CA_RATIO', 'DIVERT_HOLDTIME')
      AND q.callid IS NOT NULL AND q.queuename IS NOT NULL
)
INSERT INTO classified_calls (callid, queuename, call_time, enter_time, end_time, status,
                              waittime, talktime, waittime_by_events, talktime_by_events,
                              ringtime, agent, partial, enter_row_id, outcome_row_id, note)
SELECT callid, queuename, call_time, enter_time, end_time, status, waittime, talktime,
       waittime_by_events, talktime_by_events, ringtime, agent, partial, enter_row_id,
       outcome_row_id, note
FROM (SELECT * FROM calls UNION ALL SELECT * FROM simple_calls) c
WHERE c.call_time >= CAST(:start AS timestamptz) AND c.call_time < CAST(:end AS timestamptz)
