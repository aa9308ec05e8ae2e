-- Call-centre KPIs in the warehouse (issue 14 item 1), for BI tools (psql, Grafana, Metabase,
-- Superset) and for our wazo-call-logd-compatible API: this file holds the building blocks
-- (the row filter, call-logd's rounding, its wall-clock stepping and interval list); the
-- reports themselves (stat_queue_kpi, stat_queue_qos, stat_agent_kpi and their
-- *_by_interval forms, which stat_pipeline/serving/kpi.py calls, so both cannot disagree) are
-- in 0015_kpi_set_based.sql, each formula written once.
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
-- extract() gives double precision before 14, so its results are cast to numeric;
-- width_bucket on an array since 9.5).

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

-- Every step of a by-interval report over [p_from, p_until) (the last one cut at p_until),
-- in order, with whether call-logd keeps it, by its dropping rules: for 'hour' with both day
-- hours, a step is kept only when its start hour AND its end hour are within [start, end]
-- (08:00-17:00 keeps 08..16); for 'hour' and 'day', a step whose start week day is not in
-- p_week_days is dropped (an empty list drops nothing); 'month' drops nothing. Each kept
-- interval is then aggregated WITH the same hour/week-day filters; the dropped ones are
-- still part of the period.
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

-- The intervals call-logd reports: the kept steps.
--   SELECT * FROM stat_kpi_intervals('2020-11-01 00:00-04', '2020-11-01 03:00-05', 'hour', 'America/Montreal');
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
