-- The by-interval reports of 0013 (stat_queue_kpi_by_interval, stat_agent_kpi_by_interval,
-- stat_queue_qos_by_interval), set-based: they called the per-period function once per
-- interval (CROSS JOIN LATERAL), i.e. 169 scans of the tables for a week by hour and 745
-- for a month by hour (20 s for one queue of the 30-day benchmark set; 0.3 s now, see
-- docs/performance.md). Now each table's rows of [from, until) are read ONCE:
--   * every step of the interval list (kept or dropped, see stat_kpi_steps) is numbered in
--     time order, and each row finds its step with width_bucket(time, sorted step starts),
--     a binary search (the steps cut [from, until) into consecutive half-open pieces, so a
--     row of [from, until) is in exactly one of them);
--   * GROUPING SETS sum each (entity, step) and the whole period (entity) in the same pass;
--     steps that were dropped (working hours, week days) get sums that no window asks for,
--     and still count in the period, as before.
-- Window number 0 is the period, 1..n the steps. The formulas, roundings, nulls, filters,
-- row set and order are exactly those of 0013's per-period functions, which stay as they are
-- (the list routes use them) and are the reference the set-based forms are tested against
-- (stat_pipeline_tests/test_kpi_set_based.py). PostgreSQL 13: width_bucket on an array and
-- GROUPING SETS exist since 9.5, AS MATERIALIZED since 12 (run on 15 and 18 by the tests).

-- Every step of a by-interval report, in order, with whether call-logd keeps it (the rules
-- of 0013's stat_kpi_intervals, which now reads its kept steps from here: one definition).
CREATE OR REPLACE FUNCTION stat_kpi_steps(
    p_from timestamptz, p_until timestamptz, p_interval text,
    p_timezone text DEFAULT 'UTC',
    p_day_start_hour integer DEFAULT NULL, p_day_end_hour integer DEFAULT NULL,
    p_week_days integer[] DEFAULT '{1,2,3,4,5,6,7}')
RETURNS TABLE (step_start timestamptz, step_end timestamptz, kept boolean)
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE steps (step_start, step_end) AS (
        SELECT p_from, least(stat_kpi_next_step(p_from, p_interval, p_timezone), p_until)
        WHERE p_from < p_until
        UNION ALL
        SELECT s.step_end, least(stat_kpi_next_step(s.step_end, p_interval, p_timezone), p_until)
        FROM steps s
        WHERE s.step_end < p_until
    )
    SELECT s.step_start, s.step_end,
           -- (coalesce: a NULL test drops the step, as a WHERE does)
           coalesce(
               NOT (p_interval = 'hour' AND p_day_start_hour IS NOT NULL AND p_day_end_hour IS NOT NULL
                    AND NOT (extract(hour FROM s.step_start AT TIME ZONE p_timezone)::integer
                                 BETWEEN p_day_start_hour AND p_day_end_hour
                             AND extract(hour FROM s.step_end AT TIME ZONE p_timezone)::integer
                                 BETWEEN p_day_start_hour AND p_day_end_hour))
               AND NOT (p_interval IN ('hour', 'day') AND coalesce(cardinality(p_week_days), 0) > 0
                        AND NOT extract(isodow FROM s.step_start AT TIME ZONE p_timezone)::integer
                                = ANY (p_week_days)),
               false)
    FROM steps s
    ORDER BY s.step_start
$$;

CREATE OR REPLACE FUNCTION stat_kpi_intervals(
    p_from timestamptz, p_until timestamptz, p_interval text,
    p_timezone text DEFAULT 'UTC',
    p_day_start_hour integer DEFAULT NULL, p_day_end_hour integer DEFAULT NULL,
    p_week_days integer[] DEFAULT '{1,2,3,4,5,6,7}')
RETURNS TABLE (interval_start timestamptz, interval_end timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT s.step_start, s.step_end
    FROM stat_kpi_steps(p_from, p_until, p_interval, p_timezone,
                        p_day_start_hour, p_day_end_hour, p_week_days) s
    WHERE s.kept
    ORDER BY s.step_start
$$;

-- The windows of a set-based report: window_no 1..n = the steps in order (kept ones only,
-- is_period false), then window_no 0 = the whole [p_from, p_until) (is_period true); and,
-- in step_starts, the sorted starts of ALL steps (NULL without steps) for width_bucket.
-- p_interval NULL = the period only.
CREATE OR REPLACE FUNCTION stat_kpi_numbered_windows(
    p_from timestamptz, p_until timestamptz, p_interval text,
    p_timezone text, p_day_start_hour integer, p_day_end_hour integer, p_week_days integer[])
RETURNS TABLE (window_no integer, interval_start timestamptz, interval_end timestamptz,
               is_period boolean, step_starts timestamptz[])
LANGUAGE sql STABLE AS $$
    WITH steps AS MATERIALIZED (
        SELECT (row_number() OVER (ORDER BY s.step_start))::integer AS step_no,
               s.step_start, s.step_end, s.kept
        -- (no interval: an empty step list without ever asking stat_kpi_next_step, which
        --  refuses a NULL interval)
        FROM stat_kpi_steps(p_from, CASE WHEN p_interval IS NOT NULL THEN p_until END, p_interval,
                            p_timezone, p_day_start_hour, p_day_end_hour, p_week_days) s
    ),
    starts AS (SELECT array_agg(step_start ORDER BY step_no) AS step_starts FROM steps)
    SELECT w.window_no, w.interval_start, w.interval_end, w.is_period, starts.step_starts
    FROM (SELECT step_no AS window_no, step_start AS interval_start, step_end AS interval_end,
                 false AS is_period
          FROM steps WHERE kept
          UNION ALL
          SELECT 0, p_from, p_until, true) AS w
    CROSS JOIN starts
$$;

-- The step number (1..n) of a row's time among the sorted step starts; NULL without steps.
-- (Rows are already limited to [from, until), so no row falls before the first step.)
CREATE OR REPLACE FUNCTION stat_kpi_step_of(p_time timestamptz, p_step_starts timestamptz[])
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT width_bucket(p_time, p_step_starts)
$$;

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
-- (the planner cannot estimate the number of windows and took 17 for 745: it then joined the
--  per-window sums by a merge join on the entity alone, 4.5 M rows re-read for a month by
--  hour of every queue; hash joins on (entity, window) are what this shape wants)
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
    -- the stat_queue rows whose calls count for each visible queue (0013's stat_queue_kpi)
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
    calls AS MATERIALIZED (
        SELECT c.visible_id,
               CASE WHEN GROUPING(c.step_no) = 1 THEN 0 ELSE c.step_no END AS window_no,
               coalesce(sum(c.waittime), 0) AS total_waittime,
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
    -- from here on, 0013's stat_queue_kpi formulas, word for word
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
-- (the planner cannot estimate the number of windows and took 17 for 745: it then joined the
--  per-window sums by a merge join on the entity alone, 4.5 M rows re-read for a month by
--  hour of every queue; hash joins on (entity, window) are what this shape wants)
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
    answered_calls AS MATERIALIZED (
        SELECT t.* FROM (
            SELECT c.visible_id, c.queue_id,
                   CASE WHEN GROUPING(c.step_no) = 1 THEN 0 ELSE c.step_no END AS window_no,
                   count(*) AS answered, sum(c.talktime) AS talktime
            FROM (SELECT r.visible_id, q.queue_id, c.talktime,
                         stat_kpi_step_of(c."time", s.step_starts) AS step_no
                  FROM call_rows r
                  JOIN stat_call_on_queue c ON c.stat_agent_id = r.call_stat_agent_id
                  LEFT JOIN stat_queue q ON q.id = c.stat_queue_id
                  CROSS JOIN step_starts s
                  WHERE c.status = 'answered'
                    AND stat_kpi_time_matches(c."time", p_from, p_until, p_timezone,
                                              p_day_start_hour, p_day_end_hour, p_week_days)) AS c
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
-- (the planner cannot estimate the number of windows and took 17 for 745: it then joined the
--  per-window sums by a merge join on the entity alone, 4.5 M rows re-read for a month by
--  hour of every queue; hash joins on (entity, window) are what this shape wants)
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
    -- 0013's stat_queue_qos buckets, numbered
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
