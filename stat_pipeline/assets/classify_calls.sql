-- Classify every call passage whose Wazo time falls in [:start, :end).
--
-- A passage is one stay of a callid in a queue: its ENTERQUEUE and the rows of the same
-- (callid, queuename) up to the next ENTERQUEUE. Its outcome is the first row that Wazo turns
-- into a status (COMPLETE*/TRANSFER forms, ABANDON, EXITWITHTIMEOUT, LEAVEEMPTY), else the
-- first exit Wazo does not count (EXITWITHKEY, EXITEMPTY, WITHDRAW), else none yet.
-- Pairing inside the passage (not a join on callid+queue) is what keeps a callid that enters
-- the same queue twice at two calls (wazo-stat's join gives 2x2, quirk Q5).
--
-- Outcome logged before its ENTERQUEUE (writers whose clocks disagree, sub-second ties): a
-- passage that finds no outcome after its ENTERQUEUE takes one from the rows up to
-- :lookahead before it that no other passage claims (rows after the previous passage's own
-- outcome, or rows without ENTERQUEUE); its CONNECT likewise when it has none after it. The
-- call keeps its ENTERQUEUE time (wazo-stat's answered join has no time order, §7.2, and its
-- tied ABANDON is bucketed at the ENTERQUEUE, A9.3). Such rows are never a "partial call":
-- a row :lookahead or less before an ENTERQUEUE of its call is that passage's or unused
-- (the unused_outcome_rows check counts it). The wait and talk stay Asterisk's own seconds
-- (its counters, not the writers' clocks); the durations measured on timestamps are clamped
-- at 0, and a LEAVEEMPTY before its ENTERQUEUE takes the EXITEMPTY's wait.
--
-- Rows are read from [:start - :lookahead, :end + :lookahead): an outcome is looked for up
-- to :lookahead after its ENTERQUEUE (wazo-stat looks 1 day ahead) and :lookahead before it.
-- For the calls of those rows, also [:start - 2 :lookahead, :start - :lookahead): whether an
-- early row is claimed by the passage before depends on that passage's ENTERQUEUE, up to
-- another :lookahead back; and the ENTERQUEUEs of [:end + :lookahead, :end + 2 :lookahead):
-- whether a row without ENTERQUEUE has one within :lookahead after it. These bounds make the
-- result for a given hour independent of the range that computed it, which is why any set of
-- hours can be re-materialized in any order.
WITH near_rows AS (
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
far_rows AS (
    -- The second look-ahead on each side only for the calls of the rows above (an hourly
    -- run would sort twice the rows otherwise): before, what tells whether an early row is
    -- claimed by its passage; after, only the ENTERQUEUEs that make a row "early".
    SELECT q.source_id AS row_id, q."time", q.callid, q.queuename, q.agent, q.event,
           q.data1, q.data2, q.data3, q.data4, q.data5
    FROM queue_log q
    WHERE q."time" >= CAST(:start AS timestamptz) - 2 * CAST(:lookahead AS interval)
      AND q."time" <  CAST(:start AS timestamptz) - CAST(:lookahead AS interval)
      AND q.event IN ('ENTERQUEUE', 'CONNECT', 'COMPLETEAGENT', 'COMPLETECALLER', 'TRANSFER',
                      'BLINDTRANSFER', 'ATTENDEDTRANSFER', 'ABANDON', 'EXITWITHTIMEOUT',
                      'LEAVEEMPTY', 'EXITWITHKEY', 'EXITEMPTY', 'WITHDRAW')
    UNION ALL
    SELECT q.source_id, q."time", q.callid, q.queuename, q.agent, q.event,
           q.data1, q.data2, q.data3, q.data4, q.data5
    FROM queue_log q
    WHERE q."time" >= CAST(:end AS timestamptz) + CAST(:lookahead AS interval)
      AND q."time" <  CAST(:end AS timestamptz) + 2 * CAST(:lookahead AS interval)
      AND q.event = 'ENTERQUEUE'
),
call_rows AS (
    SELECT * FROM near_rows
    UNION ALL
    SELECT f.* FROM far_rows f
    WHERE EXISTS (SELECT 1 FROM near_rows n
                  WHERE n.callid = f.callid AND n.queuename = f.queuename)
),
numbered AS (
    -- At equal timestamps ENTERQUEUE sorts first: with second-precision clocks an immediate
    -- ABANDON has the ENTERQUEUE's time, and must still belong to it (quirk Q6).
    SELECT r.*,
           count(*) FILTER (WHERE r.event = 'ENTERQUEUE') OVER w AS passage,
           max(r."time") FILTER (WHERE r.event = 'ENTERQUEUE') OVER w AS passage_enter_time,
           -- the same order read backwards: the next ENTERQUEUE after the row
           min(r."time") FILTER (WHERE r.event = 'ENTERQUEUE') OVER (
               PARTITION BY r.callid, r.queuename
               ORDER BY r."time" DESC, (r.event <> 'ENTERQUEUE') DESC, r.row_id DESC
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS next_enter_time,
           count(*) FILTER (WHERE r.event = 'ENTERQUEUE')
               OVER (PARTITION BY r.callid, r.queuename) AS passages_of_call
    FROM call_rows r
    WINDOW w AS (PARTITION BY r.callid, r.queuename
                 ORDER BY r."time", (r.event <> 'ENTERQUEUE'), r.row_id
                 ROWS UNBOUNDED PRECEDING)
),
grouped AS (
    -- orphan: more than :lookahead after its ENTERQUEUE (or with none before it), the row
    -- cannot be that passage's outcome. early: :lookahead or less before the next ENTERQUEUE.
    SELECT n.*,
           (n.passage_enter_time IS NULL
            OR n."time" - n.passage_enter_time > CAST(:lookahead AS interval)) AS orphan,
           (n.event <> 'ENTERQUEUE'
            AND n.next_enter_time - n."time" <= CAST(:lookahead AS interval)) IS TRUE AS early,
           (n.event NOT IN ('ENTERQUEUE', 'CONNECT')) AS outcome_event,
           (n.event IN ('EXITWITHKEY', 'EXITEMPTY', 'WITHDRAW')) AS uncounted_exit
    FROM numbered n
),
claimed AS (
    -- The outcome each passage finds after its ENTERQUEUE, seen from every row of the passage.
    SELECT g.*,
           first_value(g.outcome_event AND NOT g.orphan) OVER p AS has_own_outcome,
           first_value(g."time") OVER p AS own_outcome_time,
           first_value(g.row_id) OVER p AS own_outcome_row_id
    FROM grouped g
    WINDOW p AS (PARTITION BY g.callid, g.queuename, g.passage
                 ORDER BY (g.outcome_event AND NOT g.orphan) DESC, g.uncounted_exit,
                          g."time", g.row_id)
),
assigned AS (
    -- A row before the next ENTERQUEUE that its passage does not claim (one after the
    -- passage's own outcome, or one without ENTERQUEUE) is offered to the next passage; the
    -- others stay with their passage, and rows without ENTERQUEUE form a "partial call".
    SELECT o.*,
           CASE WHEN o.before_enter THEN o.passage + 1 ELSE o.passage END AS call_passage,
           (o.orphan AND NOT o.before_enter) AS partial_group
    FROM (SELECT c.*,
                 c.early AND (c.orphan OR (c.has_own_outcome
                                           AND (c."time", c.row_id)
                                               > (c.own_outcome_time, c.own_outcome_row_id)))
                     AS before_enter
          FROM claimed c) o
),
ranked_outcomes AS (
    -- the passage's own outcome first; one logged before its ENTERQUEUE only without one
    SELECT a.*,
           row_number() OVER (
               PARTITION BY a.callid, a.queuename, a.call_passage, a.partial_group
               ORDER BY a.before_enter, a.uncounted_exit, a."time", a.row_id
           ) AS outcome_rank
    FROM assigned a
    WHERE a.outcome_event
),
passages AS (
    SELECT a.callid, a.queuename, a.call_passage AS passage, a.partial_group AS orphan,
           a.passages_of_call,
           min(a."time") FILTER (WHERE a.event = 'ENTERQUEUE') AS enter_time,
           min(a.row_id) FILTER (WHERE a.event = 'ENTERQUEUE') AS enter_row_id,
           -- its own CONNECT first (after the ENTERQUEUE), else one logged before it
           (array_agg(a."time" ORDER BY a.before_enter, a."time", a.row_id)
                FILTER (WHERE a.event = 'CONNECT'))[1] AS connect_time,
           (array_agg(a.row_id ORDER BY a.before_enter, a."time", a.row_id)
                FILTER (WHERE a.event = 'CONNECT'))[1] AS connect_row_id,
           (array_agg(ql_int(a.data3) ORDER BY a.before_enter, a."time", a.row_id)
                FILTER (WHERE a.event = 'CONNECT'))[1] AS connect_ringtime,
           (array_agg(a.row_id ORDER BY a.before_enter, a."time", a.row_id)
                FILTER (WHERE a.event = 'EXITEMPTY'))[1] AS exitempty_row_id,
           (array_agg(ql_int(a.data3) ORDER BY a.before_enter, a."time", a.row_id)
                FILTER (WHERE a.event = 'EXITEMPTY'))[1] AS exitempty_waittime
    FROM assigned a
    GROUP BY a.callid, a.queuename, a.call_passage, a.partial_group, a.passages_of_call
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
          AND o.call_passage = p.passage AND o.partial_group = p.orphan
          AND o.outcome_rank = 1
    -- an orphan group is a call only if it holds an outcome
    WHERE NOT p.orphan OR o.row_id IS NOT NULL
),
-- round(CAST(extract(...) AS numeric)): extract() is double precision before PostgreSQL 14,
-- whose round() goes half to even; numeric rounds half away from zero on every version.
timed AS (
    SELECT d.*,
           CASE
               WHEN d.outcome_event = 'LEAVEEMPTY' AND d.end_time >= d.enter_time
                   -- Wazo: LEAVEEMPTY time - ENTERQUEUE time, rounded to the second
                   THEN round(CAST(extract(epoch FROM d.end_time - d.enter_time) AS numeric))::integer
               WHEN d.outcome_event = 'LEAVEEMPTY' AND d.enter_time IS NOT NULL
                   -- logged before its ENTERQUEUE: the times say nothing, Asterisk's
                   -- EXITEMPTY does (none: 0)
                   THEN coalesce(d.exitempty_waittime, 0)
               WHEN d.outcome_event = 'LEAVEEMPTY' THEN d.exitempty_waittime
               ELSE ql_int(d.wait_text)
           END AS wait_reported,
           CASE WHEN d.outcome_status = 'answered' THEN ql_int(d.talk_text) ELSE 0 END AS talk_reported
    FROM decided d
),
by_events AS (
    -- The same durations from the events' own timestamps (Genesys' "source timestamps"):
    -- wait = CONNECT (or the outcome) - ENTERQUEUE, talk = outcome - CONNECT. Never below
    -- 0: a row logged before its ENTERQUEUE (or an outcome before its CONNECT) has a clock
    -- behind the other writer's, not a negative duration.
    SELECT t.*,
           CASE WHEN t.enter_time IS NOT NULL THEN
               greatest(0, round(CAST(extract(epoch FROM coalesce(
                   CASE WHEN t.outcome_status = 'answered' THEN t.connect_time END,
                   t.end_time) - t.enter_time) AS numeric)))::integer
           END AS wait_events,
           CASE WHEN t.outcome_status = 'answered' THEN
               -- without a CONNECT: from the ENTERQUEUE plus the reported wait
               greatest(0, round(CAST(extract(epoch FROM t.end_time - coalesce(
                   t.connect_time,
                   t.enter_time + make_interval(secs => coalesce(t.wait_reported, 0)))) AS numeric)))::integer
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
           m.enter_row_id, m.outcome_row_id, m.connect_row_id,
           CASE WHEN m.outcome_event IN ('LEAVEEMPTY', 'EXITEMPTY') THEN m.exitempty_row_id
           END AS exitempty_row_id,
           nullif(concat_ws('; ',
               CASE WHEN m.enter_time IS NULL
                    THEN m.outcome_event || ' without ENTERQUEUE: time = end - talk - wait' END,
               CASE WHEN least(m.end_time, m.connect_time) < m.enter_time
                    THEN coalesce(CASE WHEN m.end_time < m.enter_time THEN m.outcome_event END,
                                  'CONNECT')
                         || ' logged ' || trim_scale(round(CAST(extract(epoch FROM m.enter_time
                                               - least(m.end_time, m.connect_time)) AS numeric), 3))
                         || ' s before its ENTERQUEUE (writers'' clocks): paired with it' END,
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
           NULL::bigint AS enter_row_id, q.source_id AS outcome_row_id,
           NULL::bigint AS connect_row_id, NULL::bigint AS exitempty_row_id, NULL::text AS note
    FROM queue_log q
    WHERE q."time" >= CAST(:start AS timestamptz) AND q."time" < CAST(:end AS timestamptz)
      AND q.event IN ('FULL', 'CLOSED', 'JOINEMPTY', 'DIVERT_CA_RATIO', 'DIVERT_HOLDTIME')
      AND q.callid IS NOT NULL AND q.queuename IS NOT NULL
)
INSERT INTO classified_calls (callid, queuename, call_time, enter_time, end_time, status,
                              waittime, talktime, waittime_by_events, talktime_by_events,
                              ringtime, agent, partial, enter_row_id, outcome_row_id,
                              connect_row_id, exitempty_row_id, note)
SELECT callid, queuename, call_time, enter_time, end_time, status, waittime, talktime,
       waittime_by_events, talktime_by_events, ringtime, agent, partial, enter_row_id,
       outcome_row_id, connect_row_id, exitempty_row_id, note
FROM (SELECT * FROM calls UNION ALL SELECT * FROM simple_calls) c
WHERE c.call_time >= CAST(:start AS timestamptz) AND c.call_time < CAST(:end AS timestamptz)
  -- a partial call is found from its outcome row up to :lookahead after the hour, as before
  -- the look-around was widened (reported wait + talk beyond that: the plausible_durations
  -- check's "beyond_lookahead")
  AND (NOT c.partial OR c.end_time < CAST(:end AS timestamptz) + CAST(:lookahead AS interval))
