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
-- One sort of the rows by (callid, queue, time) does the pairing: the passage numbers, their
-- ENTERQUEUE times and the next passage's ENTERQUEUE are running windows over it (issue 16);
-- each passage's outcome is then picked within the passage (a sort of a few rows each), and
-- every field of a call is one aggregate over its rows in a single order.
--
-- queue_log is read in two places only, both below: window_rows (the rows around the hours)
-- and far_rows (the second look-ahead, only for the calls of window_rows).
WITH near_rows AS NOT MATERIALIZED (
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
far_rows AS NOT MATERIALIZED (
    -- The second look-ahead on each side only for the calls of the rows above (an hourly
    -- run would sort twice the rows otherwise): before, what tells whether an early row is
    -- claimed by its passage; after, only the ENTERQUEUEs that make a row "early". One scan
    -- of both ranges (the months between them are pruned).
    SELECT q.source_id AS row_id, q."time", q.callid, q.queuename, q.agent, q.event,
           q.data1, q.data2, q.data3, q.data4, q.data5
    FROM queue_log q
    WHERE (q."time" >= CAST(:start AS timestamptz) - 2 * CAST(:lookahead AS interval)
           AND q."time" <  CAST(:start AS timestamptz) - CAST(:lookahead AS interval)
           AND q.event IN ('ENTERQUEUE', 'CONNECT', 'COMPLETEAGENT', 'COMPLETECALLER',
                           'TRANSFER', 'BLINDTRANSFER', 'ATTENDEDTRANSFER', 'ABANDON',
                           'EXITWITHTIMEOUT', 'LEAVEEMPTY', 'EXITWITHKEY', 'EXITEMPTY',
                           'WITHDRAW'))
       OR (q."time" >= CAST(:end AS timestamptz) + CAST(:lookahead AS interval)
           AND q."time" <  CAST(:end AS timestamptz) + 2 * CAST(:lookahead AS interval)
           AND q.event = 'ENTERQUEUE')
),
call_rows AS NOT MATERIALIZED (
    -- Only what the pairing needs goes through the sorts: the outcome's seconds fields
    -- (what Asterisk reported, per event form: queue_log_format.md section 3.1) and data3
    -- (a CONNECT's ring time, an EXITEMPTY's wait) instead of the five data columns, and the
    -- agent of the outcome rows (the answering agent) only.
    SELECT r.row_id, r."time", r.callid, r.queuename,
           CASE WHEN r.event NOT IN ('ENTERQUEUE', 'CONNECT') THEN r.agent END AS agent,
           r.event,
           CASE WHEN r.event IN ('CONNECT', 'EXITEMPTY') THEN r.data3 END AS data3,
           -- ENTERQUEUE and CONNECT first: most rows, and neither has these fields
           CASE
               WHEN r.event IN ('ENTERQUEUE', 'CONNECT') THEN NULL
               WHEN r.event IN ('COMPLETEAGENT', 'COMPLETECALLER') THEN r.data1
               WHEN r.event IN ('TRANSFER', 'BLINDTRANSFER') THEN r.data3
               WHEN r.event = 'ATTENDEDTRANSFER' AND r.data1 IN ('BRIDGE', 'APP') THEN r.data3
               WHEN r.event = 'ATTENDEDTRANSFER' AND r.data1 = 'LINK' THEN r.data4
               WHEN r.event IN ('ABANDON', 'EXITWITHTIMEOUT', 'EXITEMPTY', 'WITHDRAW') THEN r.data3
               WHEN r.event = 'EXITWITHKEY' THEN r.data4
           END AS wait_text,
           CASE
               WHEN r.event IN ('ENTERQUEUE', 'CONNECT') THEN NULL
               WHEN r.event IN ('COMPLETEAGENT', 'COMPLETECALLER') THEN r.data2
               WHEN r.event IN ('TRANSFER', 'BLINDTRANSFER') THEN r.data4
               WHEN r.event = 'ATTENDEDTRANSFER' AND r.data1 IN ('BRIDGE', 'APP') THEN r.data4
               WHEN r.event = 'ATTENDEDTRANSFER' AND r.data1 = 'LINK' THEN split_part(r.data5, '|', 1)
           END AS talk_text
    FROM (SELECT * FROM near_rows
          UNION ALL
          SELECT f.* FROM far_rows f
          WHERE EXISTS (SELECT 1 FROM near_rows n
                        WHERE n.callid = f.callid AND n.queuename = f.queuename)) r
),
seen AS (
    -- The one full sort for every call: each (callid, queue)'s rows with the exits Wazo does
    -- not count last, each kind in time order; running counts mark the first row of each
    -- kind. So the first outcome row is the first counted outcome, else the first uncounted
    -- exit (the order the pairing below gives a passage's rows), and the first CONNECT and
    -- EXITEMPTY are the earliest. ROWS: the first is one row, even among rows alike in the
    -- sort.
    SELECT r.*,
           count(*) FILTER (WHERE r.event NOT IN ('ENTERQUEUE', 'CONNECT')) OVER w
               AS outcomes_seen,
           count(*) FILTER (WHERE r.event = 'CONNECT') OVER w AS connects_seen,
           count(*) FILTER (WHERE r.event = 'EXITEMPTY') OVER w AS exitempties_seen
    FROM call_rows r
    WINDOW w AS (PARTITION BY r.callid, r.queuename
                 ORDER BY (r.event IN ('EXITWITHKEY', 'EXITEMPTY', 'WITHDRAW')), r."time",
                          (r.event <> 'ENTERQUEUE'), r.row_id
                 ROWS UNBOUNDED PRECEDING)
),
firsts AS (
    SELECT s.*,
           s.outcomes_seen = 1 AND s.event NOT IN ('ENTERQUEUE', 'CONNECT') AS first_outcome,
           s.connects_seen = 1 AND s.event = 'CONNECT' AS first_connect,
           s.exitempties_seen = 1 AND s.event = 'EXITEMPTY' AS first_exitempty
    FROM seen s
),
keyed AS MATERIALIZED (
    -- One row per (callid, queue), over the rows in the order above (no sort of its own).
    -- simple: one ENTERQUEUE, no row before it, none more than :lookahead after it (at
    -- equal times ENTERQUEUE sorts first in the pairing: a row at its time is after it).
    -- Such a key is one passage, one call, with no early or orphan row, and its fields are
    -- its first rows above: what the general pairing below finds for it, without its two
    -- further sorts and windows. (Nearly every key is simple: all of the 30-day set's.)
    SELECT f.callid, f.queuename,
           count(*) FILTER (WHERE f.event = 'ENTERQUEUE') = 1
           AND coalesce(min(f."time") FILTER (WHERE f.event <> 'ENTERQUEUE')
                        >= min(f."time") FILTER (WHERE f.event = 'ENTERQUEUE'), true)
           AND NOT (max(f."time") - min(f."time") FILTER (WHERE f.event = 'ENTERQUEUE')
                    > CAST(:lookahead AS interval)) AS simple,
           -- the fields of `passages` below, from the same kind of flags (kept side by side
           -- on purpose: the two paths group different rows, and one aggregate for both
           -- would need them merged and sorted again)
           min(f."time") FILTER (WHERE f.event = 'ENTERQUEUE') AS enter_time,
           min(f.row_id) FILTER (WHERE f.event = 'ENTERQUEUE') AS enter_row_id,
           max(f."time") FILTER (WHERE f.first_connect) AS connect_time,
           max(f.row_id) FILTER (WHERE f.first_connect) AS connect_row_id,
           max(f.data3) FILTER (WHERE f.first_connect) AS connect_ring_text,
           max(f.row_id) FILTER (WHERE f.first_exitempty) AS exitempty_row_id,
           max(f.data3) FILTER (WHERE f.first_exitempty) AS exitempty_wait_text,
           max(f.row_id) FILTER (WHERE f.first_outcome) AS outcome_row_id,
           max(f."time") FILTER (WHERE f.first_outcome) AS end_time,
           max(f.event) FILTER (WHERE f.first_outcome) AS outcome_event,
           max(f.agent) FILTER (WHERE f.first_outcome) AS outcome_agent,
           max(f.wait_text) FILTER (WHERE f.first_outcome) AS wait_text,
           max(f.talk_text) FILTER (WHERE f.first_outcome) AS talk_text
    FROM firsts f
    GROUP BY f.callid, f.queuename
),
simple_passages AS (
    SELECT k.callid, k.queuename, false AS orphan, false AS later_passage, k.enter_time,
           k.enter_row_id, k.connect_time, k.connect_row_id, k.connect_ring_text,
           k.exitempty_row_id, k.exitempty_wait_text, k.outcome_row_id, k.end_time,
           k.outcome_event, k.outcome_agent, k.wait_text, k.talk_text
    FROM keyed k
    WHERE k.simple
),
complex_rows AS (
    -- The rows of the other keys go through the general pairing (read again from
    -- queue_log: a plain scan, skipped when every key is simple).
    SELECT r.* FROM call_rows r
    WHERE EXISTS (SELECT 1 FROM keyed k WHERE NOT k.simple)
      AND (r.callid, r.queuename) IN (SELECT k.callid, k.queuename FROM keyed k
                                       WHERE NOT k.simple)
),
numbered AS (
    -- The one full sort. At equal timestamps ENTERQUEUE sorts first: with second-precision
    -- clocks an immediate ABANDON has the ENTERQUEUE's time, and must still belong to it
    -- (quirk Q6). Every ENTERQUEUE starts a passage, so the row after a passage's last row
    -- is the next passage's ENTERQUEUE: lead() on that last row gives the next ENTERQUEUE's
    -- time (passed to the whole passage below), without a second sort in reverse order.
    SELECT r.*,
           count(*) FILTER (WHERE r.event = 'ENTERQUEUE') OVER w AS passage,
           max(r."time") FILTER (WHERE r.event = 'ENTERQUEUE') OVER w AS passage_enter_time,
           CASE WHEN lead(r.event) OVER w = 'ENTERQUEUE' THEN lead(r."time") OVER w END
               AS next_enter_at_end
    FROM complex_rows r
    WINDOW w AS (PARTITION BY r.callid, r.queuename
                 ORDER BY r."time", (r.event <> 'ENTERQUEUE'), r.row_id)
),
grouped AS (
    -- orphan: more than :lookahead after its ENTERQUEUE (or with none before it), the row
    -- cannot be that passage's outcome.
    SELECT n.*,
           (n.passage_enter_time IS NULL
            OR n."time" - n.passage_enter_time > CAST(:lookahead AS interval)) AS orphan,
           (n.event NOT IN ('ENTERQUEUE', 'CONNECT')) AS outcome_event,
           (n.event IN ('EXITWITHKEY', 'EXITEMPTY', 'WITHDRAW')) AS uncounted_exit
    FROM numbered n
),
claimed AS (
    -- The outcome each passage finds after its ENTERQUEUE, seen from every row of the
    -- passage, and the passage's next ENTERQUEUE (early: :lookahead or less before it).
    SELECT g.*,
           first_value(g.outcome_event AND NOT g.orphan) OVER p AS has_own_outcome,
           first_value(g."time") OVER p AS own_outcome_time,
           first_value(g.row_id) OVER p AS own_outcome_row_id,
           max(g.next_enter_at_end) OVER p AS next_enter_time
    FROM grouped g
    -- the whole passage as frame: first_value is its first row all the same, and the
    -- maximum is over the passage (one window for both)
    WINDOW p AS (PARTITION BY g.callid, g.queuename, g.passage
                 ORDER BY (g.outcome_event AND NOT g.orphan) DESC, g.uncounted_exit,
                          g."time", g.row_id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
assigned AS (
    -- A row before the next ENTERQUEUE that its passage does not claim (one after the
    -- passage's own outcome, or one without ENTERQUEUE) is offered to the next passage; the
    -- others stay with their passage, and rows without ENTERQUEUE form a "partial call".
    SELECT o.*,
           CASE WHEN o.before_enter THEN o.passage + 1 ELSE o.passage END AS call_passage,
           (o.orphan AND NOT o.before_enter) AS partial_group
    FROM (SELECT c.*,
                 (c.event <> 'ENTERQUEUE'
                  AND c.next_enter_time - c."time" <= CAST(:lookahead AS interval)) IS TRUE
                 AND (c.orphan OR (c.has_own_outcome
                                           AND (c."time", c.row_id)
                                               > (c.own_outcome_time, c.own_outcome_row_id)))
                     AS before_enter
          FROM claimed c) o
),
ranked AS (
    -- The rows of each call in one order (their own rows first, then the rows logged
    -- before the ENTERQUEUE; counted outcomes before the exits Wazo does not count): the
    -- outcome is the call's first outcome row, its CONNECT and EXITEMPTY the first of theirs
    -- (neither kind is an uncounted exit and an EXITEMPTY always is, so the order is theirs).
    SELECT a.*,
           count(*) FILTER (WHERE a.outcome_event) OVER c = 1 AND a.outcome_event AS first_outcome,
           count(*) FILTER (WHERE a.event = 'CONNECT') OVER c = 1 AND a.event = 'CONNECT'
               AS first_connect,
           count(*) FILTER (WHERE a.event = 'EXITEMPTY') OVER c = 1 AND a.event = 'EXITEMPTY'
               AS first_exitempty
    FROM assigned a
    WINDOW c AS (PARTITION BY a.callid, a.queuename, a.call_passage, a.partial_group
                 ORDER BY a.before_enter, a.uncounted_exit, a."time", a.row_id
                 ROWS UNBOUNDED PRECEDING)
),
passages AS (
    -- over the rows in the order above (no sort of its own): one row holds each value
    SELECT a.callid, a.queuename, a.call_passage AS passage, a.partial_group AS orphan,
           -- a later ENTERQUEUE of the call in the queue: a call without outcome is final
           max(a.next_enter_time) FILTER (WHERE a.event = 'ENTERQUEUE') IS NOT NULL
               AS later_passage,
           min(a."time") FILTER (WHERE a.event = 'ENTERQUEUE') AS enter_time,
           min(a.row_id) FILTER (WHERE a.event = 'ENTERQUEUE') AS enter_row_id,
           max(a."time") FILTER (WHERE a.first_connect) AS connect_time,
           max(a.row_id) FILTER (WHERE a.first_connect) AS connect_row_id,
           max(a.data3) FILTER (WHERE a.first_connect) AS connect_ring_text,
           max(a.row_id) FILTER (WHERE a.first_exitempty) AS exitempty_row_id,
           max(a.data3) FILTER (WHERE a.first_exitempty) AS exitempty_wait_text,
           max(a.row_id) FILTER (WHERE a.first_outcome) AS outcome_row_id,
           max(a."time") FILTER (WHERE a.first_outcome) AS end_time,
           max(a.event) FILTER (WHERE a.first_outcome) AS outcome_event,
           max(a.agent) FILTER (WHERE a.first_outcome) AS outcome_agent,
           max(a.wait_text) FILTER (WHERE a.first_outcome) AS wait_text,
           max(a.talk_text) FILTER (WHERE a.first_outcome) AS talk_text
    FROM ranked a
    GROUP BY a.callid, a.queuename, a.call_passage, a.partial_group
),
all_passages AS (
    SELECT * FROM simple_passages
    UNION ALL
    SELECT p.callid, p.queuename, p.orphan, p.later_passage, p.enter_time, p.enter_row_id,
           p.connect_time, p.connect_row_id, p.connect_ring_text, p.exitempty_row_id,
           p.exitempty_wait_text, p.outcome_row_id, p.end_time, p.outcome_event,
           p.outcome_agent, p.wait_text, p.talk_text
    FROM passages p
),
decided AS (
    SELECT p.*,
           CASE p.outcome_event
               WHEN 'COMPLETEAGENT' THEN 'answered' WHEN 'COMPLETECALLER' THEN 'answered'
               WHEN 'TRANSFER' THEN 'answered' WHEN 'BLINDTRANSFER' THEN 'answered'
               WHEN 'ATTENDEDTRANSFER' THEN 'answered'
               WHEN 'ABANDON' THEN 'abandoned' WHEN 'EXITWITHTIMEOUT' THEN 'timeout'
               WHEN 'LEAVEEMPTY' THEN 'leaveempty'
               WHEN 'EXITWITHKEY' THEN 'exitwithkey' WHEN 'EXITEMPTY' THEN 'exitempty'
               WHEN 'WITHDRAW' THEN 'withdraw'
           END AS outcome_status,
           -- ql_int's value: 1 to 9 digits are an integer as they are (the usual case,
           -- without a PL/pgSQL call and its regular expression: ~1 us a value), anything
           -- else is ql_int's to read
           CASE WHEN length(p.connect_ring_text) BETWEEN 1 AND 9 AND ltrim(p.connect_ring_text, '0123456789') = ''
                THEN CAST(p.connect_ring_text AS integer) ELSE ql_int(p.connect_ring_text) END AS connect_ringtime,
           CASE WHEN length(p.exitempty_wait_text) BETWEEN 1 AND 9 AND ltrim(p.exitempty_wait_text, '0123456789') = ''
                THEN CAST(p.exitempty_wait_text AS integer) ELSE ql_int(p.exitempty_wait_text) END AS exitempty_waittime
    FROM all_passages p
    -- an orphan group is a call only if it holds an outcome
    WHERE NOT p.orphan OR p.outcome_row_id IS NOT NULL
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
               ELSE CASE WHEN length(d.wait_text) BETWEEN 1 AND 9 AND ltrim(d.wait_text, '0123456789') = ''
                         THEN CAST(d.wait_text AS integer) ELSE ql_int(d.wait_text) END
           END AS wait_reported,
           CASE WHEN d.outcome_status = 'answered'
                THEN CASE WHEN length(d.talk_text) BETWEEN 1 AND 9 AND ltrim(d.talk_text, '0123456789') = ''
                          THEN CAST(d.talk_text AS integer) ELSE ql_int(d.talk_text) END
                ELSE 0 END AS talk_reported
    -- OFFSET 0: computed once per call (inlined, each later use of wait_reported and
    -- talk_reported would call ql_int again)
    FROM decided d OFFSET 0
),
by_events AS (
    -- The same durations from the events' own timestamps (Genesys' "source timestamps"):
    -- wait = CONNECT (or the outcome) - ENTERQUEUE, talk = outcome - CONNECT. Never below
    -- 0: a row logged before its ENTERQUEUE (or an outcome before its CONNECT) has a clock
    -- behind the other writer's, not a negative duration.
    -- Rounded half up as floor(seconds + 0.5) in double precision: the same integer as
    -- numeric's round() here (a difference of timestamps is whole microseconds, exact to
    -- far below 1e-6 in a double, and x.5 exactly; negatives are clamped to 0 either way),
    -- at a fraction of numeric's cost.
    SELECT t.*,
           CASE WHEN t.enter_time IS NOT NULL THEN
               greatest(0, floor(date_part('epoch', coalesce(
                   CASE WHEN t.outcome_status = 'answered' THEN t.connect_time END,
                   t.end_time) - t.enter_time) + 0.5))::integer
           END AS wait_events,
           CASE WHEN t.outcome_status = 'answered' THEN
               -- without a CONNECT: from the ENTERQUEUE plus the reported wait
               greatest(0, floor(date_part('epoch', t.end_time - coalesce(
                   t.connect_time,
                   t.enter_time + make_interval(secs => coalesce(t.wait_reported, 0))))
                   + 0.5))::integer
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
               WHEN m.later_passage THEN 'no_outcome'
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
    -- OFFSET 0: the call's fields once (the final filter on call_time would compute them again)
    FROM measured m OFFSET 0
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
