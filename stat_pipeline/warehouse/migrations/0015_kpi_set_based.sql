-- The KPI reports (issue 14 items 1-2), set-based, each formula written once:
--   stat_queue_kpi_by_interval, stat_agent_kpi_by_interval, stat_queue_qos_by_interval give
--   one row per kept interval of stat_kpi_intervals (is_period false), then one row for the
--   whole [p_from, p_until) (is_period true), for every queue (agent) unless p_queue_id
--   (p_agent_id) is given; p_interval NULL = the period only;
--   stat_queue_kpi, stat_agent_kpi, stat_queue_qos (the list routes, BI tools) are that
--   period row alone: thin wrappers with p_interval NULL, so a period and its intervals
--   cannot be computed two ways.
-- (Before, the by-interval reports called the per-period functions once per interval, CROSS
-- JOIN LATERAL: 745 scans of the tables for a month by hour, 20 s for one queue of the 30-day
-- benchmark set; 0.3 s now, see docs/performance.md.) Each table's rows of [from, until) are
-- read ONCE:
--   * every step of the interval list (kept or dropped, see 0013's stat_kpi_steps) is
--     numbered in time order, and each row finds its step with width_bucket(time, sorted
--     step starts), a binary search (the steps cut [from, until) into consecutive half-open
--     pieces, so a row of [from, until) is in exactly one of them);
--   * GROUPING SETS sum each (entity, step) and the whole period (entity) in the same pass;
--     for the calls (the largest table) the rows are summed per (entity, step) first and the
--     GROUPING SETS run over those sums, so a per-period call does not aggregate every call
--     twice; steps that were dropped (working hours, week days) get sums that no window
--     asks for, and still count in the period.
-- Window number 0 is the period, 1..n the steps. The tests compare these reports with an
-- independent computation in Python per interval (stat_pipeline_tests/test_kpi_set_based.py)
-- and with call-logd's examples (test_kpi.py). PostgreSQL 13: width_bucket on an array and
-- GROUPING SETS exist since 9.5, AS MATERIALIZED since 12 (run on 15 and 18 by the tests).
--
-- The by-interval functions run with SET enable_mergejoin = off: the planner cannot
-- estimate the number of windows (it took 17 for 745) and then joined the per-window sums
-- by a merge join on the entity alone, 4.5 M rows re-read for a month by hour of every
-- queue; hash joins on (entity, window) are what this shape wants.

-- Queue statistics over each window ([p_from, p_until) NULL = unbounded for the period), one
-- row per non-deleted stat_queue of the visible tenants (or only those with confd id p_queue_id).
--
-- call-logd's fields (same names, same values as its JSON):
--   received = Σ total, answered, abandoned, closed, not_answered = Σ timeout,
--   saturated = Σ full + Σ divert_waittime + Σ divert_ca_ratio, blocked = Σ joinempty + Σ leaveempty,
--   average_waiting_time = trunc(round(W / N, 2)), W = Σ stat_call_on_queue.waittime (all
--       statuses), N = answered + abandoned + leaveempty + timeout (periodic); NULL when N = 0,
--   answered_rate = round(100 * answered / (answered + abandoned + full + leaveempty
--       + joinempty + timeout), 2) (closed and divert_* left out); NULL when 0,
--   quality_of_service = round(100 * answered calls with waittime <= p_qos_threshold
--       / answered, 2); NULL without threshold or when answered = 0.
-- Ratios round like call-logd's Python floats (stat_kpi_py_round2). Like call-logd, the
-- call-based parts (W, the QoS count) read the calls of every stat_queue row with the same
-- confd queue_id (deleted rows too) and the hour rows only the non-deleted one; a queue
-- without confd id (no configuration) reads the calls of its own row.
--
-- Our extra KPIs (peers.md), all from stat_call_on_queue rows matching the filter:
--   offered = calls that entered the queue and waited (answered, abandoned, timeout, leaveempty),
--   short_abandoned = abandoned calls with waittime < p_short_abandon_threshold (0 without),
--   abandon_rate = round(100 * (abandoned - short) / (offered - short), 2),
--   service_level = round(100 * answered with waittime <= p_qos_threshold / (offered - short), 2),
--   average_speed_of_answer = round(Σ waittime / count, 2) of answered calls (ASA),
--   average_handling_time = round((Σ talktime of answered calls + Σ wrap-up time of the
--       queue's per-queue agent rows) / answered calls, 2) (AHT, talk + wrap-up),
--   longest_waiting_time = max waittime of the offered calls.
--   SELECT * FROM stat_queue_kpi_by_interval('2024-03-01 00:00+01', '2024-04-01 00:00+02',
--                                            'day', 'Europe/Paris', 8, 17, '{1,2,3,4,5}');
CREATE OR REPLACE FUNCTION stat_queue_kpi_by_interval(
    p_from timestamptz, p_until timestamptz, p_interval text DEFAULT NULL,
    p_timezone text DEFAULT 'UTC',
    p_day_start_hour integer DEFAULT NULL, p_day_end_hour integer DEFAULT NULL,
    p_week_days integer[] DEFAULT '{1,2,3,4,5,6,7}',
    p_tenant_uuids text[] DEFAULT NULL,
    p_queue_id integer DEFAULT NULL,
    p_qos_threshold integer DEFAULT NULL,
    p_short_abandon_threshold integer DEFAULT NULL)
RETURNS TABLE (
    interval_start timestamptz, interval_end timestamptz, is_period boolean,
    stat_queue_id integer, queue_id integer, queue_name text, tenant_uuid text,
    first_stat_time timestamptz,
    received bigint, answered bigint, abandoned bigint, closed bigint, not_answered bigint,
    saturated bigint, blocked bigint,
    average_waiting_time integer, answered_rate numeric, quality_of_service numeric,
    offered bigint, short_abandoned bigint, abandon_rate numeric, service_level numeric,
    average_speed_of_answer numeric, average_handling_time numeric, longest_waiting_time integer)
LANGUAGE sql STABLE
-- (hash joins on (entity, window): see the header)
SET enable_mergejoin = off
AS $$
    WITH windows AS MATERIALIZED (
        SELECT * FROM stat_kpi_numbered_windows(p_from, p_until, p_interval, p_timezone,
                                                p_day_start_hour, p_day_end_hour, p_week_days)
    ),
    step_starts AS (SELECT step_starts FROM windows LIMIT 1),
    visible AS (
        SELECT q.id, q.queue_id, q.name, q.tenant_uuid
        FROM stat_queue q
        WHERE NOT q.deleted
          AND (p_tenant_uuids IS NULL OR q.tenant_uuid = ANY (p_tenant_uuids))
          AND (p_queue_id IS NULL OR q.queue_id = p_queue_id)
    ),
    periodic_rows AS (
        SELECT p.*, stat_kpi_step_of(p."time", s.step_starts) AS step_no
        FROM stat_queue_periodic p CROSS JOIN step_starts s
        WHERE p.stat_queue_id IN (SELECT id FROM visible)
          AND stat_kpi_time_matches(p."time", p_from, p_until, p_timezone,
                                    p_day_start_hour, p_day_end_hour, p_week_days)
    ),
    periodic AS MATERIALIZED (
        SELECT p.stat_queue_id,
               CASE WHEN GROUPING(p.step_no) = 1 THEN 0 ELSE p.step_no END AS window_no,
               sum(p.total) AS total, sum(p.answered) AS answered, sum(p.abandoned) AS abandoned,
               sum(p.closed) AS closed, sum(p.timeout) AS timeout, sum(p."full") AS full_,
               sum(p.joinempty) AS joinempty, sum(p.leaveempty) AS leaveempty,
               sum(p.divert_ca_ratio) AS divert_ca_ratio, sum(p.divert_waittime) AS divert_waittime
        FROM periodic_rows p
        GROUP BY GROUPING SETS ((p.stat_queue_id, p.step_no), (p.stat_queue_id))
    ),
    -- the stat_queue rows whose calls count for each visible queue (see above)
    call_rows AS (
        SELECT v.id AS visible_id, q.id AS call_stat_queue_id
        FROM visible v
        JOIN stat_queue q ON (q.queue_id = v.queue_id OR q.id = v.id)
        WHERE p_tenant_uuids IS NULL OR q.tenant_uuid = ANY (p_tenant_uuids)
    ),
    call_matches AS (
        SELECT r.visible_id, c.status, c.waittime, c.talktime,
               stat_kpi_step_of(c."time", s.step_starts) AS step_no
        FROM call_rows r
        JOIN stat_call_on_queue c ON c.stat_queue_id = r.call_stat_queue_id
        CROSS JOIN step_starts s
        WHERE stat_kpi_time_matches(c."time", p_from, p_until, p_timezone,
                                    p_day_start_hour, p_day_end_hour, p_week_days)
    ),
    -- (the calls are summed per step first, then per window: one pass over the rows)
    call_steps AS (
        SELECT c.visible_id, c.step_no,
               sum(c.waittime) AS total_waittime,
               count(*) FILTER (WHERE c.status = 'answered' AND c.waittime <= p_qos_threshold)
                   AS answered_within_threshold,
               count(*) FILTER (WHERE c.status IN ('answered', 'abandoned', 'timeout', 'leaveempty'))
                   AS offered,
               count(*) FILTER (WHERE c.status = 'abandoned') AS abandoned,
               count(*) FILTER (WHERE c.status = 'abandoned' AND c.waittime < p_short_abandon_threshold)
                   AS short_abandoned,
               count(*) FILTER (WHERE c.status = 'answered') AS answered,
               sum(c.waittime) FILTER (WHERE c.status = 'answered') AS answered_waittime,
               sum(c.talktime) FILTER (WHERE c.status = 'answered') AS answered_talktime,
               max(c.waittime) FILTER (WHERE c.status IN ('answered', 'abandoned', 'timeout', 'leaveempty'))
                   AS longest_waittime
        FROM call_matches c
        GROUP BY c.visible_id, c.step_no
    ),
    calls AS MATERIALIZED (
        SELECT c.visible_id,
               CASE WHEN GROUPING(c.step_no) = 1 THEN 0 ELSE c.step_no END AS window_no,
               coalesce(sum(c.total_waittime), 0) AS total_waittime,
               sum(c.answered_within_threshold)::bigint AS answered_within_threshold,
               sum(c.offered)::bigint AS offered, sum(c.abandoned)::bigint AS abandoned,
               sum(c.short_abandoned)::bigint AS short_abandoned, sum(c.answered)::bigint AS answered,
               sum(c.answered_waittime)::bigint AS answered_waittime,
               sum(c.answered_talktime)::bigint AS answered_talktime,
               max(c.longest_waittime) AS longest_waittime
        FROM call_steps c
        GROUP BY GROUPING SETS ((c.visible_id, c.step_no), (c.visible_id))
    ),
    wrapup_rows AS (
        SELECT r.visible_id, a.wrapup_time, stat_kpi_step_of(a."time", s.step_starts) AS step_no
        FROM call_rows r
        JOIN stat_agent_periodic a ON a.stat_queue_id = r.call_stat_queue_id
        CROSS JOIN step_starts s
        WHERE stat_kpi_time_matches(a."time", p_from, p_until, p_timezone,
                                    p_day_start_hour, p_day_end_hour, p_week_days)
    ),
    wrapup AS MATERIALIZED (
        SELECT w.visible_id,
               CASE WHEN GROUPING(w.step_no) = 1 THEN 0 ELSE w.step_no END AS window_no,
               extract(epoch FROM sum(w.wrapup_time))::numeric AS wrapup_seconds
        FROM wrapup_rows w
        GROUP BY GROUPING SETS ((w.visible_id, w.step_no), (w.visible_id))
    ),
    -- (MATERIALIZED: once per entity, not once per window row)
    oldest AS MATERIALIZED (
        SELECT v.id, (SELECT min(p."time") FROM stat_queue_periodic p
                      JOIN stat_queue q ON q.id = p.stat_queue_id
                      WHERE NOT q.deleted AND (q.queue_id = v.queue_id OR q.id = v.id)) AS first_time
        FROM visible v
    ),
    sums AS (
        SELECT w.interval_start, w.interval_end, w.is_period,
               v.id, v.queue_id, v.name, v.tenant_uuid, o.first_time,
               coalesce(p.total, 0) AS total, coalesce(p.answered, 0) AS answered,
               coalesce(p.abandoned, 0) AS abandoned, coalesce(p.closed, 0) AS closed,
               coalesce(p.timeout, 0) AS timeout, coalesce(p.full_, 0) AS full_,
               coalesce(p.joinempty, 0) AS joinempty, coalesce(p.leaveempty, 0) AS leaveempty,
               coalesce(p.divert_ca_ratio, 0) AS divert_ca_ratio,
               coalesce(p.divert_waittime, 0) AS divert_waittime,
               coalesce(c.total_waittime, 0) AS total_waittime,
               coalesce(c.answered_within_threshold, 0) AS answered_within_threshold,
               coalesce(c.offered, 0) AS calls_offered,
               coalesce(c.abandoned, 0) AS calls_abandoned,
               coalesce(c.short_abandoned, 0) AS calls_short_abandoned,
               coalesce(c.answered, 0) AS calls_answered,
               c.answered_waittime, c.answered_talktime, c.longest_waittime,
               coalesce(wr.wrapup_seconds, 0) AS wrapup_seconds
        FROM windows w
        CROSS JOIN visible v
        JOIN oldest o ON o.id = v.id
        LEFT JOIN periodic p ON p.stat_queue_id = v.id AND p.window_no = w.window_no
        LEFT JOIN calls c ON c.visible_id = v.id AND c.window_no = w.window_no
        LEFT JOIN wrapup wr ON wr.visible_id = v.id AND wr.window_no = w.window_no
    )
    SELECT s.interval_start, s.interval_end, s.is_period,
           s.id, s.queue_id, s.name::text, s.tenant_uuid::text, s.first_time,
           s.total, s.answered, s.abandoned, s.closed, s.timeout,
           s.full_ + s.divert_waittime + s.divert_ca_ratio,
           s.joinempty + s.leaveempty,
           CASE WHEN s.answered + s.abandoned + s.leaveempty + s.timeout > 0
                THEN trunc(stat_kpi_py_round2(s.total_waittime,
                                              s.answered + s.abandoned + s.leaveempty + s.timeout))::integer
           END,
           CASE WHEN s.answered + s.abandoned + s.full_ + s.leaveempty + s.joinempty + s.timeout > 0
                THEN stat_kpi_py_round2(100 * s.answered,
                                        s.answered + s.abandoned + s.full_ + s.leaveempty + s.joinempty + s.timeout)
           END,
           CASE WHEN p_qos_threshold IS NOT NULL AND s.answered > 0
                THEN stat_kpi_py_round2(100 * s.answered_within_threshold, s.answered)
           END,
           s.calls_offered, s.calls_short_abandoned,
           CASE WHEN s.calls_offered - s.calls_short_abandoned > 0
                THEN round(100.0 * (s.calls_abandoned - s.calls_short_abandoned)
                           / (s.calls_offered - s.calls_short_abandoned), 2)
           END,
           CASE WHEN p_qos_threshold IS NOT NULL AND s.calls_offered - s.calls_short_abandoned > 0
                THEN round(100.0 * s.answered_within_threshold
                           / (s.calls_offered - s.calls_short_abandoned), 2)
           END,
           CASE WHEN s.calls_answered > 0
                THEN round(s.answered_waittime::numeric / s.calls_answered, 2) END,
           CASE WHEN s.calls_answered > 0
                THEN round((s.answered_talktime + s.wrapup_seconds) / s.calls_answered, 2) END,
           s.longest_waittime
    FROM sums s
    ORDER BY s.id, s.is_period, s.interval_start
$$;

-- call-logd's /queues/{id}/statistics/qos counts: per wait bucket [min, max) built from
-- the sorted thresholds ([0, t1), [t1, t2), ..., [tn, NULL); no threshold = [0, NULL)),
-- the answered and abandoned calls of the queue (every stat_queue row with that confd id)
-- matching the filter. One row per bucket, in order.
CREATE OR REPLACE FUNCTION stat_queue_qos_by_interval(
    p_queue_id integer,
    p_from timestamptz, p_until timestamptz, p_interval text DEFAULT NULL,
    p_timezone text DEFAULT 'UTC',
    p_day_start_hour integer DEFAULT NULL, p_day_end_hour integer DEFAULT NULL,
    p_week_days integer[] DEFAULT '{1,2,3,4,5,6,7}',
    p_tenant_uuids text[] DEFAULT NULL,
    p_qos_thresholds integer[] DEFAULT '{}')
RETURNS TABLE (interval_start timestamptz, interval_end timestamptz, is_period boolean,
               min integer, max integer, answered bigint, abandoned bigint)
LANGUAGE sql STABLE
-- (hash joins on (entity, window): see the header)
SET enable_mergejoin = off
AS $$
    WITH windows AS MATERIALIZED (
        SELECT * FROM stat_kpi_numbered_windows(p_from, p_until, p_interval, p_timezone,
                                                p_day_start_hour, p_day_end_hour, p_week_days)
    ),
    step_starts AS (SELECT step_starts FROM windows LIMIT 1),
    thresholds AS (
        SELECT DISTINCT t FROM unnest(p_qos_thresholds) AS t WHERE t IS NOT NULL
    ),
    -- the buckets, numbered
    bounds AS (
        SELECT row_number() OVER (ORDER BY b.bucket_min, b.bucket_max NULLS LAST) AS bucket_no, b.*
        FROM (SELECT 0 AS bucket_min, (SELECT min(t) FROM thresholds) AS bucket_max
              UNION ALL
              SELECT t, lead(t) OVER (ORDER BY t) FROM thresholds) AS b
    ),
    calls AS MATERIALIZED (
        SELECT c.status, c.waittime, stat_kpi_step_of(c."time", s.step_starts) AS step_no
        FROM stat_call_on_queue c
        JOIN stat_queue q ON q.id = c.stat_queue_id
        CROSS JOIN step_starts s
        WHERE q.queue_id = p_queue_id
          AND c.status IN ('answered', 'abandoned')
          AND (p_tenant_uuids IS NULL OR q.tenant_uuid = ANY (p_tenant_uuids))
          AND stat_kpi_time_matches(c."time", p_from, p_until, p_timezone,
                                    p_day_start_hour, p_day_end_hour, p_week_days)
    ),
    counts AS MATERIALIZED (
        SELECT b.bucket_no,
               CASE WHEN GROUPING(c.step_no) = 1 THEN 0 ELSE c.step_no END AS window_no,
               count(c.status) FILTER (WHERE c.status = 'answered') AS answered,
               count(c.status) FILTER (WHERE c.status = 'abandoned') AS abandoned
        FROM bounds b
        JOIN calls c ON c.waittime >= b.bucket_min
                    AND (b.bucket_max IS NULL OR c.waittime < b.bucket_max)
        GROUP BY GROUPING SETS ((b.bucket_no, c.step_no), (b.bucket_no))
    )
    SELECT w.interval_start, w.interval_end, w.is_period, b.bucket_min, b.bucket_max,
           coalesce(n.answered, 0), coalesce(n.abandoned, 0)
    FROM windows w
    CROSS JOIN bounds b
    LEFT JOIN counts n ON n.bucket_no = b.bucket_no AND n.window_no = w.window_no
    ORDER BY w.is_period, w.interval_start, b.bucket_min, b.bucket_max NULLS LAST
$$;

-- Agent statistics over each window, one row per non-deleted stat_agent of the
-- visible tenants (or only those with confd id p_agent_id), call-logd's fields:
--   login_time, pause_time, wrapup_time = Σ of the agent's GLOBAL hour rows
--       (stat_queue_id IS NULL; the per-queue rows would double count) in whole seconds
--       (truncated, like call-logd's Integer of total_seconds()),
--   answered, conversation_time = count and Σ talktime of the answered calls of the agent
--       (every stat_agent row with that confd id),
--   queues = per confd queue id (deleted queues too): login/pause/wrapup of the agent's
--       per-queue hour rows, answered/conversation_time of its calls in that queue; queues
--       with only answered calls get zero times;
-- and, like call-logd, an agent none of whose global hour rows match the filter has only
-- zeros (its calls are not counted) and an empty queue list.
-- Extras: average_handling_time = round((conversation_time + wrapup_time) / answered, 2),
--   pause_by_reason = [{reason, pause_time}] from stat_agent_pause_reason's global rows
--   (reason '' = paused without a reason), which sum to pause_time.
CREATE OR REPLACE FUNCTION stat_agent_kpi_by_interval(
    p_from timestamptz, p_until timestamptz, p_interval text DEFAULT NULL,
    p_timezone text DEFAULT 'UTC',
    p_day_start_hour integer DEFAULT NULL, p_day_end_hour integer DEFAULT NULL,
    p_week_days integer[] DEFAULT '{1,2,3,4,5,6,7}',
    p_tenant_uuids text[] DEFAULT NULL,
    p_agent_id integer DEFAULT NULL)
RETURNS TABLE (
    interval_start timestamptz, interval_end timestamptz, is_period boolean,
    stat_agent_id integer, agent_id integer, agent_number text, tenant_uuid text,
    first_stat_time timestamptz,
    answered bigint, conversation_time bigint,
    login_time bigint, pause_time bigint, wrapup_time bigint,
    queues jsonb,
    average_handling_time numeric, pause_by_reason jsonb)
LANGUAGE sql STABLE
-- (hash joins on (entity, window): see the header)
SET enable_mergejoin = off
AS $$
    WITH windows AS MATERIALIZED (
        SELECT * FROM stat_kpi_numbered_windows(p_from, p_until, p_interval, p_timezone,
                                                p_day_start_hour, p_day_end_hour, p_week_days)
    ),
    step_starts AS (SELECT step_starts FROM windows LIMIT 1),
    visible AS (
        SELECT a.id, a.agent_id, a.name, a.tenant_uuid
        FROM stat_agent a
        WHERE NOT a.deleted
          AND (p_tenant_uuids IS NULL OR a.tenant_uuid = ANY (p_tenant_uuids))
          AND (p_agent_id IS NULL OR a.agent_id = p_agent_id)
    ),
    -- an agent's hour rows of [from, until), global (stat_queue_id NULL) and per queue
    agent_rows AS (
        SELECT p.stat_agent_id, p.stat_queue_id, p.login_time, p.pause_time, p.wrapup_time,
               stat_kpi_step_of(p."time", s.step_starts) AS step_no
        FROM stat_agent_periodic p CROSS JOIN step_starts s
        WHERE p.stat_agent_id IN (SELECT id FROM visible)
          AND stat_kpi_time_matches(p."time", p_from, p_until, p_timezone,
                                    p_day_start_hour, p_day_end_hour, p_week_days)
    ),
    -- per (agent, window): an agent without a global row in a window has only zeros there
    global_rows AS (
        SELECT p.stat_agent_id,
               CASE WHEN GROUPING(p.step_no) = 1 THEN 0 ELSE p.step_no END AS window_no,
               sum(p.login_time) AS login_time, sum(p.pause_time) AS pause_time,
               sum(p.wrapup_time) AS wrapup_time
        FROM agent_rows p
        WHERE p.stat_queue_id IS NULL
        GROUP BY GROUPING SETS ((p.stat_agent_id, p.step_no), (p.stat_agent_id))
    ),
    queue_rows AS MATERIALIZED (
        SELECT t.* FROM (
            SELECT p.stat_agent_id, q.queue_id,
                   CASE WHEN GROUPING(p.step_no) = 1 THEN 0 ELSE p.step_no END AS window_no,
                   trunc(extract(epoch FROM sum(p.login_time))::numeric)::bigint AS login_time,
                   trunc(extract(epoch FROM sum(p.pause_time))::numeric)::bigint AS pause_time,
                   trunc(extract(epoch FROM sum(p.wrapup_time))::numeric)::bigint AS wrapup_time
            FROM agent_rows p
            JOIN stat_queue q ON q.id = p.stat_queue_id
            GROUP BY GROUPING SETS ((p.stat_agent_id, q.queue_id, p.step_no), (p.stat_agent_id, q.queue_id))
        ) t
        WHERE (t.stat_agent_id, t.window_no) IN (SELECT stat_agent_id, window_no FROM global_rows)
    ),
    -- the stat_agent rows whose calls count for each visible agent
    call_rows AS (
        SELECT v.id AS visible_id, a.id AS call_stat_agent_id
        FROM visible v
        JOIN stat_agent a ON (a.agent_id = v.agent_id OR a.id = v.id)
        WHERE p_tenant_uuids IS NULL OR a.tenant_uuid = ANY (p_tenant_uuids)
    ),
    -- (summed per step first, then per window: one pass over the calls)
    answered_steps AS (
        SELECT r.visible_id, q.queue_id, stat_kpi_step_of(c."time", s.step_starts) AS step_no,
               count(*) AS answered, sum(c.talktime) AS talktime
        FROM call_rows r
        JOIN stat_call_on_queue c ON c.stat_agent_id = r.call_stat_agent_id
        LEFT JOIN stat_queue q ON q.id = c.stat_queue_id
        CROSS JOIN step_starts s
        WHERE c.status = 'answered'
          AND stat_kpi_time_matches(c."time", p_from, p_until, p_timezone,
                                    p_day_start_hour, p_day_end_hour, p_week_days)
        GROUP BY 1, 2, 3
    ),
    answered_calls AS MATERIALIZED (
        SELECT t.* FROM (
            SELECT c.visible_id, c.queue_id,
                   CASE WHEN GROUPING(c.step_no) = 1 THEN 0 ELSE c.step_no END AS window_no,
                   sum(c.answered)::bigint AS answered, sum(c.talktime)::bigint AS talktime
            FROM answered_steps c
            GROUP BY GROUPING SETS ((c.visible_id, c.queue_id, c.step_no), (c.visible_id, c.queue_id))
        ) t
        WHERE (t.visible_id, t.window_no) IN (SELECT stat_agent_id, window_no FROM global_rows)
    ),
    per_queue AS (
        SELECT coalesce(t.stat_agent_id, c.visible_id) AS stat_agent_id,
               coalesce(t.window_no, c.window_no) AS window_no,
               coalesce(t.queue_id, c.queue_id) AS queue_id,
               coalesce(c.answered, 0) AS answered, coalesce(c.talktime, 0) AS conversation_time,
               coalesce(t.login_time, 0) AS login_time, coalesce(t.pause_time, 0) AS pause_time,
               coalesce(t.wrapup_time, 0) AS wrapup_time,
               t.stat_agent_id IS NULL AS only_calls
        FROM queue_rows t
        -- (a queue without confd id is one entry with queue_id null; -1 is no confd id)
        FULL JOIN answered_calls c
               ON c.visible_id = t.stat_agent_id AND c.window_no = t.window_no
              AND coalesce(c.queue_id, -1) = coalesce(t.queue_id, -1)
    ),
    queue_lists AS MATERIALIZED (
        SELECT stat_agent_id, window_no,
               jsonb_agg(jsonb_build_object(
                   'queue_id', queue_id, 'answered', answered,
                   'conversation_time', conversation_time, 'login_time', login_time,
                   'pause_time', pause_time, 'wrapup_time', wrapup_time)
                   ORDER BY only_calls, queue_id) AS queues
        FROM per_queue
        GROUP BY stat_agent_id, window_no
    ),
    call_totals AS MATERIALIZED (
        SELECT visible_id, window_no, sum(answered) AS answered, sum(talktime) AS talktime
        FROM answered_calls GROUP BY visible_id, window_no
    ),
    reasons AS MATERIALIZED (
        SELECT stat_agent_id, window_no,
               jsonb_agg(jsonb_build_object('reason', reason, 'pause_time', seconds)
                         ORDER BY seconds DESC, reason) AS pause_by_reason
        FROM (SELECT r.stat_agent_id, r.reason,
                     CASE WHEN GROUPING(r.step_no) = 1 THEN 0 ELSE r.step_no END AS window_no,
                     trunc(extract(epoch FROM sum(r.pause_time))::numeric)::bigint AS seconds
              FROM (SELECT r.stat_agent_id, r.reason, r.pause_time,
                           stat_kpi_step_of(r."time", s.step_starts) AS step_no
                    FROM stat_agent_pause_reason r CROSS JOIN step_starts s
                    WHERE r.stat_agent_id IN (SELECT id FROM visible)
                      AND r.stat_queue_id IS NULL
                      AND stat_kpi_time_matches(r."time", p_from, p_until, p_timezone,
                                                p_day_start_hour, p_day_end_hour, p_week_days)) AS r
              GROUP BY GROUPING SETS ((r.stat_agent_id, r.reason, r.step_no), (r.stat_agent_id, r.reason))
             ) AS by_reason
        WHERE (stat_agent_id, window_no) IN (SELECT stat_agent_id, window_no FROM global_rows)
        GROUP BY stat_agent_id, window_no
    ),
    -- (MATERIALIZED: once per entity, not once per window row)
    oldest AS MATERIALIZED (
        SELECT v.id, (SELECT min(p."time") FROM stat_agent_periodic p
                      JOIN stat_agent a ON a.id = p.stat_agent_id
                      WHERE NOT a.deleted AND (a.agent_id = v.agent_id OR a.id = v.id)) AS first_time
        FROM visible v
    ),
    sums AS (
        SELECT w.interval_start, w.interval_end, w.is_period,
               v.id, v.agent_id, v.name, v.tenant_uuid, o.first_time,
               coalesce(t.answered, 0)::bigint AS answered,
               coalesce(t.talktime, 0)::bigint AS conversation_time,
               coalesce(trunc(extract(epoch FROM g.login_time)::numeric), 0)::bigint AS login_time,
               coalesce(trunc(extract(epoch FROM g.pause_time)::numeric), 0)::bigint AS pause_time,
               coalesce(trunc(extract(epoch FROM g.wrapup_time)::numeric), 0)::bigint AS wrapup_time,
               coalesce(l.queues, '[]'::jsonb) AS queues,
               coalesce(r.pause_by_reason, '[]'::jsonb) AS pause_by_reason
        FROM windows w
        CROSS JOIN visible v
        JOIN oldest o ON o.id = v.id
        LEFT JOIN global_rows g ON g.stat_agent_id = v.id AND g.window_no = w.window_no
        LEFT JOIN call_totals t ON t.visible_id = v.id AND t.window_no = w.window_no
        LEFT JOIN queue_lists l ON l.stat_agent_id = v.id AND l.window_no = w.window_no
        LEFT JOIN reasons r ON r.stat_agent_id = v.id AND r.window_no = w.window_no
    )
    SELECT s.interval_start, s.interval_end, s.is_period,
           s.id, s.agent_id, regexp_replace(s.name, '^Agent/', ''), s.tenant_uuid::text, s.first_time,
           s.answered, s.conversation_time, s.login_time, s.pause_time, s.wrapup_time, s.queues,
           CASE WHEN s.answered > 0
                THEN round((s.conversation_time + s.wrapup_time)::numeric / s.answered, 2) END,
           s.pause_by_reason
    FROM sums s
    ORDER BY s.id, s.is_period, s.interval_start
$$;

-- The per-period reports: the period row of the reports above (p_interval NULL: no step,
-- window 0 only), without its window columns. p_from/p_until NULL = unbounded.
--   SELECT * FROM stat_queue_kpi('2024-03-04 00:00+01', '2024-03-05 00:00+01', 'Europe/Paris',
--                                p_qos_threshold => 20, p_short_abandon_threshold => 5);
CREATE OR REPLACE FUNCTION stat_queue_kpi(
    p_from timestamptz DEFAULT NULL, p_until timestamptz DEFAULT NULL,
    p_timezone text DEFAULT 'UTC',
    p_day_start_hour integer DEFAULT NULL, p_day_end_hour integer DEFAULT NULL,
    p_week_days integer[] DEFAULT '{1,2,3,4,5,6,7}',
    p_tenant_uuids text[] DEFAULT NULL,
    p_queue_id integer DEFAULT NULL,
    p_qos_threshold integer DEFAULT NULL,
    p_short_abandon_threshold integer DEFAULT NULL)
RETURNS TABLE (
    stat_queue_id integer, queue_id integer, queue_name text, tenant_uuid text,
    first_stat_time timestamptz,       -- oldest hour row of the queue (call-logd's default from)
    received bigint, answered bigint, abandoned bigint, closed bigint, not_answered bigint,
    saturated bigint, blocked bigint,
    average_waiting_time integer, answered_rate numeric, quality_of_service numeric,
    offered bigint, short_abandoned bigint, abandon_rate numeric, service_level numeric,
    average_speed_of_answer numeric, average_handling_time numeric, longest_waiting_time integer)
LANGUAGE sql STABLE AS $$
    SELECT k.stat_queue_id, k.queue_id, k.queue_name, k.tenant_uuid, k.first_stat_time,
           k.received, k.answered, k.abandoned, k.closed, k.not_answered, k.saturated, k.blocked,
           k.average_waiting_time, k.answered_rate, k.quality_of_service,
           k.offered, k.short_abandoned, k.abandon_rate, k.service_level,
           k.average_speed_of_answer, k.average_handling_time, k.longest_waiting_time
    FROM stat_queue_kpi_by_interval(p_from, p_until, NULL, p_timezone,
                                    p_day_start_hour, p_day_end_hour, p_week_days,
                                    p_tenant_uuids, p_queue_id, p_qos_threshold,
                                    p_short_abandon_threshold) k
    ORDER BY k.stat_queue_id
$$;

CREATE OR REPLACE FUNCTION stat_queue_qos(
    p_queue_id integer,
    p_from timestamptz DEFAULT NULL, p_until timestamptz DEFAULT NULL,
    p_timezone text DEFAULT 'UTC',
    p_day_start_hour integer DEFAULT NULL, p_day_end_hour integer DEFAULT NULL,
    p_week_days integer[] DEFAULT '{1,2,3,4,5,6,7}',
    p_tenant_uuids text[] DEFAULT NULL,
    p_qos_thresholds integer[] DEFAULT '{}')
RETURNS TABLE (min integer, max integer, answered bigint, abandoned bigint)
LANGUAGE sql STABLE AS $$
    SELECT k.min, k.max, k.answered, k.abandoned
    FROM stat_queue_qos_by_interval(p_queue_id, p_from, p_until, NULL, p_timezone,
                                    p_day_start_hour, p_day_end_hour, p_week_days,
                                    p_tenant_uuids, p_qos_thresholds) k
    ORDER BY k.min, k.max NULLS LAST
$$;

CREATE OR REPLACE FUNCTION stat_agent_kpi(
    p_from timestamptz DEFAULT NULL, p_until timestamptz DEFAULT NULL,
    p_timezone text DEFAULT 'UTC',
    p_day_start_hour integer DEFAULT NULL, p_day_end_hour integer DEFAULT NULL,
    p_week_days integer[] DEFAULT '{1,2,3,4,5,6,7}',
    p_tenant_uuids text[] DEFAULT NULL,
    p_agent_id integer DEFAULT NULL)
RETURNS TABLE (
    stat_agent_id integer, agent_id integer, agent_number text, tenant_uuid text,
    first_stat_time timestamptz,       -- oldest hour row of the agent (call-logd's default from)
    answered bigint, conversation_time bigint,
    login_time bigint, pause_time bigint, wrapup_time bigint,
    queues jsonb,
    average_handling_time numeric, pause_by_reason jsonb)
LANGUAGE sql STABLE AS $$
    SELECT k.stat_agent_id, k.agent_id, k.agent_number, k.tenant_uuid, k.first_stat_time,
           k.answered, k.conversation_time, k.login_time, k.pause_time, k.wrapup_time,
           k.queues, k.average_handling_time, k.pause_by_reason
    FROM stat_agent_kpi_by_interval(p_from, p_until, NULL, p_timezone,
                                    p_day_start_hour, p_day_end_hour, p_week_days,
                                    p_tenant_uuids, p_agent_id) k
    ORDER BY k.stat_agent_id
$$;
