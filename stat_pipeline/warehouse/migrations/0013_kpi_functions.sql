-- Call-centre KPIs as SQL functions next to the tables (issue 14 item 1), for BI tools
-- (psql, Grafana, Metabase, Superset) and for our wazo-call-logd-compatible API
-- (stat_pipeline/serving/kpi.py calls exactly these functions, so both cannot disagree).
--
-- The formulas and filters are wazo-call-logd's (wazo_call_logd/database/queries/queue_stat.py,
-- agent_stat.py, plugins/support_center/services.py; ../shared/docs/wazo_call_logd_stats.md):
--   * every aggregate reads rows with  from <= time < until, the local hour (in p_timezone)
--     BETWEEN p_day_start_hour AND p_day_end_hour (end hour INCLUSIVE; only when both are
--     given), the local ISO week day IN p_week_days (NULL = no filter, '{}' = nothing),
--     and the tenant of the queue/agent IN p_tenant_uuids (NULL = every tenant, '{}' = none);
--   * a periodic row is taken or dropped whole by its hour start, a call by its own time
--     (ENTERQUEUE time).
-- Only PostgreSQL 13 features are used (no generate_series with a time zone, no any_value;
-- extract() gives double precision before 14, so its results are cast to numeric).

-- The row filter above, one expression: an inlinable SQL function, so the planner still
-- uses the "time" indexes of the tables for the from/until bounds.
CREATE OR REPLACE FUNCTION stat_kpi_time_matches(
    p_time timestamptz, p_from timestamptz, p_until timestamptz, p_timezone text,
    p_day_start_hour integer, p_day_end_hour integer, p_week_days integer[])
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (p_from IS NULL OR p_time >= p_from)
       AND (p_until IS NULL OR p_time < p_until)
       AND (p_day_start_hour IS NULL OR p_day_end_hour IS NULL
            OR extract(hour FROM p_time AT TIME ZONE p_timezone)::integer
               BETWEEN p_day_start_hour AND p_day_end_hour)
       AND (p_week_days IS NULL
            OR extract(isodow FROM p_time AT TIME ZONE p_timezone)::integer = ANY (p_week_days))
$$;

-- Python's round(P / Q, 2) on floats, exactly, for integers P, Q (Q > 0, P < 2^53).
-- call-logd computes its rates in Python floats: x = P / Q is rounded to the nearest
-- binary double, then round(x, 2) rounds the EXACT binary value of x half-to-even. So
-- round(100 * 1 / 32) = round(3.125) gives 3.12 (3.125 is exact in binary: tie, even),
-- and round(999.5 / 100) = round(9.995) gives 9.99 (the double is 9.99499...), where
-- PostgreSQL's numeric round() gives 3.13 and 10.00. We take the double's bits
-- (float8send) and round its exact value M * 2^-n with integer arithmetic.
CREATE OR REPLACE FUNCTION stat_kpi_py_round2(p_numerator numeric, p_denominator numeric)
RETURNS numeric LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    x        double precision := p_numerator::double precision / p_denominator::double precision;
    bits     bigint;
    exponent integer;
    mantissa numeric;
    scale    numeric := 1;  -- 2^n, built from exact bigint shifts (no power(): its precision
    remaining integer;      --  for large exponents differs between PostgreSQL versions)
    scaled   numeric;       -- M * 100
    floored  numeric;
    twice_remainder numeric;
BEGIN
    IF x = 0 THEN
        RETURN 0;
    END IF;
    IF x < 0 THEN  -- not reached by our counts; mirror the sign for completeness
        RETURN -stat_kpi_py_round2(-p_numerator, p_denominator);
    END IF;
    bits := ('x' || encode(float8send(x), 'hex'))::bit(64)::bigint;
    exponent := ((bits >> 52) & 2047)::integer;
    mantissa := (bits & 4503599627370495)::numeric;           -- low 52 bits
    IF exponent = 0 THEN                                      -- subnormal
        exponent := 1;
    ELSE
        mantissa := mantissa + 4503599627370496;              -- implicit leading 1 (2^52)
    END IF;
    -- x = mantissa * 2^(exponent - 1075)
    remaining := abs(exponent - 1075);
    WHILE remaining > 0 LOOP
        scale := scale * (1::bigint << least(remaining, 62))::numeric;
        remaining := remaining - least(remaining, 62);
    END LOOP;
    IF exponent >= 1075 THEN                                  -- an integer: nothing to round
        RETURN mantissa * scale;
    END IF;
    scaled := mantissa * 100;
    floored := div(scaled, scale);
    twice_remainder := 2 * (scaled - floored * scale);
    IF twice_remainder > scale OR (twice_remainder = scale AND mod(floored, 2) = 1) THEN
        floored := floored + 1;
    END IF;
    RETURN round(floored / 100, 2);
END
$$;

-- A wall-clock time of p_timezone as an instant, the way Python's zoneinfo does it (fold=0):
-- an ambiguous time (the repeated hour of a fall-back) is its FIRST occurrence, a time
-- that does not exist (the skipped hour of a spring-forward) takes the offset in force
-- before the change (02:30 in Montreal on 2020-03-08 is 07:30 UTC = 03:30-04:00).
-- PostgreSQL's own "timestamp AT TIME ZONE" picks the later offset for ambiguous times.
CREATE OR REPLACE FUNCTION stat_kpi_local_instant(p_local timestamp, p_timezone text)
RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH guess AS (SELECT p_local AT TIME ZONE p_timezone AS instant),
    offsets AS (  -- UTC offsets in force a day before, at, and a day after the guess
        SELECT o.at_instant AT TIME ZONE p_timezone - o.at_instant AT TIME ZONE 'UTC' AS utc_offset,
               o.n
        FROM guess g,
             LATERAL (VALUES (g.instant - interval '1 day', 0), (g.instant, 1),
                             (g.instant + interval '1 day', 2)) AS o(at_instant, n)
    ),
    candidates AS (
        SELECT (p_local - utc_offset) AT TIME ZONE 'UTC' AS instant, n FROM offsets
    )
    SELECT coalesce(
        (SELECT min(instant) FROM candidates WHERE instant AT TIME ZONE p_timezone = p_local),
        (SELECT instant FROM candidates WHERE n = 0))
$$;

-- One step of an interval: 'hour' steps in absolute time (an hour interval is always one
-- real hour: 00:00-04 -> 01:00-04 -> 01:00-05 on a fall-back day), 'day' and 'month' in
-- the wall-clock time of p_timezone (a day is 23, 24 or 25 hours), like call-logd; 'week'
-- (7 wall-clock days from p_from) is ours, for BI tools, and drops no interval.
CREATE OR REPLACE FUNCTION stat_kpi_next_step(p_start timestamptz, p_interval text, p_timezone text)
RETURNS timestamptz LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    CASE p_interval
        WHEN 'hour' THEN
            RETURN p_start + interval '1 hour';
        WHEN 'day' THEN
            RETURN stat_kpi_local_instant((p_start AT TIME ZONE p_timezone) + interval '1 day', p_timezone);
        WHEN 'week' THEN  -- ours, for BI tools (call-logd has hour, day and month)
            RETURN stat_kpi_local_instant((p_start AT TIME ZONE p_timezone) + interval '7 days', p_timezone);
        WHEN 'month' THEN
            RETURN stat_kpi_local_instant((p_start AT TIME ZONE p_timezone) + interval '1 month', p_timezone);
        ELSE
            -- (no percent sign in migrations: they go through the driver's parameter syntax)
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = 'interval must be hour, day, week or month, not ' || coalesce(p_interval, 'NULL');
    END CASE;
END
$$;

-- The sub-intervals call-logd reports for [p_from, p_until) (the last one cut at p_until),
-- with its dropping rules: for 'hour' with both day hours, an interval is kept only when
-- its start hour AND its end hour are within [start, end] (08:00-17:00 keeps 08..16);
-- for 'hour' and 'day', an interval whose start week day is not in p_week_days is
-- dropped (an empty list drops nothing); 'month' drops nothing. Each kept interval is
-- then aggregated WITH the same hour/week-day filters (stat_queue_kpi & co).
--   SELECT * FROM stat_kpi_intervals('2020-11-01 00:00-04', '2020-11-01 03:00-05', 'hour', 'America/Montreal');
CREATE OR REPLACE FUNCTION stat_kpi_intervals(
    p_from timestamptz, p_until timestamptz, p_interval text,
    p_timezone text DEFAULT 'UTC',
    p_day_start_hour integer DEFAULT NULL, p_day_end_hour integer DEFAULT NULL,
    p_week_days integer[] DEFAULT '{1,2,3,4,5,6,7}')
RETURNS TABLE (interval_start timestamptz, interval_end timestamptz)
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE steps (interval_start, interval_end) AS (
        SELECT p_from, least(stat_kpi_next_step(p_from, p_interval, p_timezone), p_until)
        WHERE p_from < p_until
        UNION ALL
        SELECT s.interval_end, least(stat_kpi_next_step(s.interval_end, p_interval, p_timezone), p_until)
        FROM steps s
        WHERE s.interval_end < p_until
    )
    SELECT s.interval_start, s.interval_end
    FROM steps s
    WHERE NOT (p_interval = 'hour' AND p_day_start_hour IS NOT NULL AND p_day_end_hour IS NOT NULL
               AND NOT (extract(hour FROM s.interval_start AT TIME ZONE p_timezone)::integer
                            BETWEEN p_day_start_hour AND p_day_end_hour
                        AND extract(hour FROM s.interval_end AT TIME ZONE p_timezone)::integer
                            BETWEEN p_day_start_hour AND p_day_end_hour))
      AND NOT (p_interval IN ('hour', 'day') AND coalesce(cardinality(p_week_days), 0) > 0
               AND NOT extract(isodow FROM s.interval_start AT TIME ZONE p_timezone)::integer
                       = ANY (p_week_days))
    ORDER BY s.interval_start
$$;

-- Queue statistics over [p_from, p_until) (NULL = unbounded), one row per non-deleted
-- stat_queue of the visible tenants (or only those with confd id p_queue_id).
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
    WITH visible AS (
        SELECT q.id, q.queue_id, q.name, q.tenant_uuid
        FROM stat_queue q
        WHERE NOT q.deleted
          AND (p_tenant_uuids IS NULL OR q.tenant_uuid = ANY (p_tenant_uuids))
          AND (p_queue_id IS NULL OR q.queue_id = p_queue_id)
    ),
    periodic AS (
        SELECT p.stat_queue_id,
               sum(p.total) AS total, sum(p.answered) AS answered, sum(p.abandoned) AS abandoned,
               sum(p.closed) AS closed, sum(p.timeout) AS timeout, sum(p."full") AS full_,
               sum(p.joinempty) AS joinempty, sum(p.leaveempty) AS leaveempty,
               sum(p.divert_ca_ratio) AS divert_ca_ratio, sum(p.divert_waittime) AS divert_waittime
        FROM stat_queue_periodic p
        WHERE p.stat_queue_id IN (SELECT id FROM visible)
          AND stat_kpi_time_matches(p."time", p_from, p_until, p_timezone,
                                    p_day_start_hour, p_day_end_hour, p_week_days)
        GROUP BY p.stat_queue_id
    ),
    -- the stat_queue rows whose calls count for each visible queue (see above)
    call_rows AS (
        SELECT v.id AS visible_id, q.id AS call_stat_queue_id
        FROM visible v
        JOIN stat_queue q ON (q.queue_id = v.queue_id OR q.id = v.id)
        WHERE p_tenant_uuids IS NULL OR q.tenant_uuid = ANY (p_tenant_uuids)
    ),
    calls AS (
        SELECT r.visible_id,
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
        FROM call_rows r
        JOIN stat_call_on_queue c ON c.stat_queue_id = r.call_stat_queue_id
        WHERE stat_kpi_time_matches(c."time", p_from, p_until, p_timezone,
                                    p_day_start_hour, p_day_end_hour, p_week_days)
        GROUP BY r.visible_id
    ),
    wrapup AS (
        SELECT r.visible_id, extract(epoch FROM sum(a.wrapup_time))::numeric AS wrapup_seconds
        FROM call_rows r
        JOIN stat_agent_periodic a ON a.stat_queue_id = r.call_stat_queue_id
        WHERE stat_kpi_time_matches(a."time", p_from, p_until, p_timezone,
                                    p_day_start_hour, p_day_end_hour, p_week_days)
        GROUP BY r.visible_id
    ),
    oldest AS (
        SELECT v.id, (SELECT min(p."time") FROM stat_queue_periodic p
                      JOIN stat_queue q ON q.id = p.stat_queue_id
                      WHERE NOT q.deleted AND (q.queue_id = v.queue_id OR q.id = v.id)) AS first_time
        FROM visible v
    ),
    sums AS (
        SELECT v.id, v.queue_id, v.name, v.tenant_uuid, o.first_time,
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
               coalesce(w.wrapup_seconds, 0) AS wrapup_seconds
        FROM visible v
        JOIN oldest o ON o.id = v.id
        LEFT JOIN periodic p ON p.stat_queue_id = v.id
        LEFT JOIN calls c ON c.visible_id = v.id
        LEFT JOIN wrapup w ON w.visible_id = v.id
    )
    SELECT s.id, s.queue_id, s.name::text, s.tenant_uuid::text, s.first_time,
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
    ORDER BY s.id
$$;

-- call-logd's /queues/{id}/statistics/qos counts: per wait bucket [min, max) built from
-- the sorted thresholds ([0, t1), [t1, t2), ..., [tn, NULL); no threshold = [0, NULL)),
-- the answered and abandoned calls of the queue (every stat_queue row with that confd id)
-- matching the filter. One row per bucket, in order.
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
    WITH thresholds AS (
        SELECT DISTINCT t FROM unnest(p_qos_thresholds) AS t WHERE t IS NOT NULL
    ),
    bounds AS (
        SELECT 0 AS bucket_min, (SELECT min(t) FROM thresholds) AS bucket_max
        UNION ALL
        SELECT t, lead(t) OVER (ORDER BY t) FROM thresholds
    ),
    calls AS (
        SELECT c.status, c.waittime
        FROM stat_call_on_queue c
        JOIN stat_queue q ON q.id = c.stat_queue_id
        WHERE q.queue_id = p_queue_id
          AND c.status IN ('answered', 'abandoned')
          AND (p_tenant_uuids IS NULL OR q.tenant_uuid = ANY (p_tenant_uuids))
          AND stat_kpi_time_matches(c."time", p_from, p_until, p_timezone,
                                    p_day_start_hour, p_day_end_hour, p_week_days)
    )
    SELECT b.bucket_min, b.bucket_max,
           count(c.status) FILTER (WHERE c.status = 'answered'),
           count(c.status) FILTER (WHERE c.status = 'abandoned')
    FROM bounds b
    LEFT JOIN calls c ON c.waittime >= b.bucket_min
                     AND (b.bucket_max IS NULL OR c.waittime < b.bucket_max)
    GROUP BY b.bucket_min, b.bucket_max
    ORDER BY b.bucket_min, b.bucket_max NULLS LAST
$$;

-- Agent statistics over [p_from, p_until), one row per non-deleted stat_agent of the
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
    WITH visible AS (
        SELECT a.id, a.agent_id, a.name, a.tenant_uuid
        FROM stat_agent a
        WHERE NOT a.deleted
          AND (p_tenant_uuids IS NULL OR a.tenant_uuid = ANY (p_tenant_uuids))
          AND (p_agent_id IS NULL OR a.agent_id = p_agent_id)
    ),
    global_rows AS (
        SELECT p.stat_agent_id,
               sum(p.login_time) AS login_time, sum(p.pause_time) AS pause_time,
               sum(p.wrapup_time) AS wrapup_time
        FROM stat_agent_periodic p
        WHERE p.stat_agent_id IN (SELECT id FROM visible)
          AND p.stat_queue_id IS NULL
          AND stat_kpi_time_matches(p."time", p_from, p_until, p_timezone,
                                    p_day_start_hour, p_day_end_hour, p_week_days)
        GROUP BY p.stat_agent_id
    ),
    queue_rows AS (
        SELECT p.stat_agent_id, q.queue_id,
               trunc(extract(epoch FROM sum(p.login_time))::numeric)::bigint AS login_time,
               trunc(extract(epoch FROM sum(p.pause_time))::numeric)::bigint AS pause_time,
               trunc(extract(epoch FROM sum(p.wrapup_time))::numeric)::bigint AS wrapup_time
        FROM stat_agent_periodic p
        JOIN stat_queue q ON q.id = p.stat_queue_id
        WHERE p.stat_agent_id IN (SELECT stat_agent_id FROM global_rows)
          AND stat_kpi_time_matches(p."time", p_from, p_until, p_timezone,
                                    p_day_start_hour, p_day_end_hour, p_week_days)
        GROUP BY p.stat_agent_id, q.queue_id
    ),
    -- the stat_agent rows whose calls count for each visible agent
    call_rows AS (
        SELECT v.id AS visible_id, a.id AS call_stat_agent_id
        FROM visible v
        JOIN stat_agent a ON (a.agent_id = v.agent_id OR a.id = v.id)
        WHERE p_tenant_uuids IS NULL OR a.tenant_uuid = ANY (p_tenant_uuids)
    ),
    answered_calls AS (
        SELECT r.visible_id, q.queue_id, count(*) AS answered, sum(c.talktime) AS talktime
        FROM call_rows r
        JOIN stat_call_on_queue c ON c.stat_agent_id = r.call_stat_agent_id
        LEFT JOIN stat_queue q ON q.id = c.stat_queue_id
        WHERE c.status = 'answered'
          AND r.visible_id IN (SELECT stat_agent_id FROM global_rows)
          AND stat_kpi_time_matches(c."time", p_from, p_until, p_timezone,
                                    p_day_start_hour, p_day_end_hour, p_week_days)
        GROUP BY r.visible_id, q.queue_id
    ),
    per_queue AS (
        SELECT coalesce(t.stat_agent_id, c.visible_id) AS stat_agent_id,
               coalesce(t.queue_id, c.queue_id) AS queue_id,
               coalesce(c.answered, 0) AS answered, coalesce(c.talktime, 0) AS conversation_time,
               coalesce(t.login_time, 0) AS login_time, coalesce(t.pause_time, 0) AS pause_time,
               coalesce(t.wrapup_time, 0) AS wrapup_time,
               t.stat_agent_id IS NULL AS only_calls
        FROM queue_rows t
        -- (a queue without confd id is one entry with queue_id null; -1 is no confd id)
        FULL JOIN answered_calls c
               ON c.visible_id = t.stat_agent_id AND coalesce(c.queue_id, -1) = coalesce(t.queue_id, -1)
    ),
    queue_lists AS (
        SELECT stat_agent_id,
               jsonb_agg(jsonb_build_object(
                   'queue_id', queue_id, 'answered', answered,
                   'conversation_time', conversation_time, 'login_time', login_time,
                   'pause_time', pause_time, 'wrapup_time', wrapup_time)
                   ORDER BY only_calls, queue_id) AS queues
        FROM per_queue
        GROUP BY stat_agent_id
    ),
    call_totals AS (
        SELECT visible_id, sum(answered) AS answered, sum(talktime) AS talktime
        FROM answered_calls GROUP BY visible_id
    ),
    reasons AS (
        SELECT stat_agent_id,
               jsonb_agg(jsonb_build_object('reason', reason, 'pause_time', seconds)
                         ORDER BY seconds DESC, reason) AS pause_by_reason
        FROM (SELECT r.stat_agent_id, r.reason,
                     trunc(extract(epoch FROM sum(r.pause_time))::numeric)::bigint AS seconds
              FROM stat_agent_pause_reason r
              WHERE r.stat_agent_id IN (SELECT stat_agent_id FROM global_rows)
                AND r.stat_queue_id IS NULL
                AND stat_kpi_time_matches(r."time", p_from, p_until, p_timezone,
                                          p_day_start_hour, p_day_end_hour, p_week_days)
              GROUP BY r.stat_agent_id, r.reason) AS by_reason
        GROUP BY stat_agent_id
    ),
    oldest AS (
        SELECT v.id, (SELECT min(p."time") FROM stat_agent_periodic p
                      JOIN stat_agent a ON a.id = p.stat_agent_id
                      WHERE NOT a.deleted AND (a.agent_id = v.agent_id OR a.id = v.id)) AS first_time
        FROM visible v
    ),
    sums AS (
        SELECT v.id, v.agent_id, v.name, v.tenant_uuid, o.first_time,
               coalesce(t.answered, 0)::bigint AS answered,
               coalesce(t.talktime, 0)::bigint AS conversation_time,
               coalesce(trunc(extract(epoch FROM g.login_time)::numeric), 0)::bigint AS login_time,
               coalesce(trunc(extract(epoch FROM g.pause_time)::numeric), 0)::bigint AS pause_time,
               coalesce(trunc(extract(epoch FROM g.wrapup_time)::numeric), 0)::bigint AS wrapup_time,
               coalesce(l.queues, '[]'::jsonb) AS queues,
               coalesce(r.pause_by_reason, '[]'::jsonb) AS pause_by_reason
        FROM visible v
        JOIN oldest o ON o.id = v.id
        LEFT JOIN global_rows g ON g.stat_agent_id = v.id
        LEFT JOIN call_totals t ON t.visible_id = v.id
        LEFT JOIN queue_lists l ON l.stat_agent_id = v.id
        LEFT JOIN reasons r ON r.stat_agent_id = v.id
    )
    SELECT s.id, s.agent_id, regexp_replace(s.name, '^Agent/', ''), s.tenant_uuid::text, s.first_time,
           s.answered, s.conversation_time, s.login_time, s.pause_time, s.wrapup_time, s.queues,
           CASE WHEN s.answered > 0
                THEN round((s.conversation_time + s.wrapup_time)::numeric / s.answered, 2) END,
           s.pause_by_reason
    FROM sums s
    ORDER BY s.id
$$;

-- The windows of a by-interval report: the kept intervals (is_period false), then the whole
-- [p_from, p_until) (is_period true); p_interval NULL = the period only.
CREATE OR REPLACE FUNCTION stat_kpi_windows(
    p_from timestamptz, p_until timestamptz, p_interval text,
    p_timezone text, p_day_start_hour integer, p_day_end_hour integer, p_week_days integer[])
RETURNS TABLE (interval_start timestamptz, interval_end timestamptz, is_period boolean)
LANGUAGE sql STABLE AS $$
    SELECT i.interval_start, i.interval_end, false
    FROM stat_kpi_intervals(p_from, p_until, p_interval, p_timezone,
                            p_day_start_hour, p_day_end_hour, p_week_days) i
    WHERE p_interval IS NOT NULL
    UNION ALL
    SELECT p_from, p_until, true
$$;

-- The by-interval reports of call-logd's /queues/{id}/statistics and /agents/{id}/statistics:
-- one row per kept interval of stat_kpi_intervals (is_period false), then one row for the
-- whole [p_from, p_until) (is_period true), each aggregated with the same filters; for every
-- queue (agent) unless p_queue_id (p_agent_id) is given. p_interval NULL = the period only.
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
LANGUAGE sql STABLE AS $$
    SELECT w.interval_start, w.interval_end, w.is_period, k.*
    FROM stat_kpi_windows(p_from, p_until, p_interval, p_timezone,
                          p_day_start_hour, p_day_end_hour, p_week_days) w
    CROSS JOIN LATERAL stat_queue_kpi(w.interval_start, w.interval_end, p_timezone,
                                      p_day_start_hour, p_day_end_hour, p_week_days,
                                      p_tenant_uuids, p_queue_id, p_qos_threshold,
                                      p_short_abandon_threshold) k
    ORDER BY k.stat_queue_id, w.is_period, w.interval_start
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
LANGUAGE sql STABLE AS $$
    SELECT w.interval_start, w.interval_end, w.is_period, k.*
    FROM stat_kpi_windows(p_from, p_until, p_interval, p_timezone,
                          p_day_start_hour, p_day_end_hour, p_week_days) w
    CROSS JOIN LATERAL stat_agent_kpi(w.interval_start, w.interval_end, p_timezone,
                                      p_day_start_hour, p_day_end_hour, p_week_days,
                                      p_tenant_uuids, p_agent_id) k
    ORDER BY k.stat_agent_id, w.is_period, w.interval_start
$$;

-- The QoS route's by-interval report: one row per (interval, bucket), same interval rules.
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
LANGUAGE sql STABLE AS $$
    SELECT w.interval_start, w.interval_end, w.is_period, k.*
    FROM stat_kpi_windows(p_from, p_until, p_interval, p_timezone,
                          p_day_start_hour, p_day_end_hour, p_week_days) w
    CROSS JOIN LATERAL stat_queue_qos(p_queue_id, w.interval_start, w.interval_end, p_timezone,
                                      p_day_start_hour, p_day_end_hour, p_week_days,
                                      p_tenant_uuids, p_qos_thresholds) k
    ORDER BY w.is_period, w.interval_start, k.min, k.max NULLS LAST
$$;
