-- stat_queue_report() (0005) computed its answered_rate as answered / total (a 0..1 share of
-- every call, closed and diverted ones included), which is not Wazo's answered rate. It now
-- gives call-logd's figures (see stat_queue_kpi, 0015), so a BI chart and the API agree:
--   answered_rate        = round(100 * answered / (answered + abandoned + full + leaveempty
--                          + joinempty + timeout), 2), a percentage, NULL when that is 0;
--   average_waiting_time = trunc(round(Σ waittime of the calls / (answered + abandoned
--                          + leaveempty + timeout), 2)), NULL when that is 0;
-- and keeps the old share of all calls under its own name, answered_share (0..1, 4 decimals).
-- Its periods are calendar periods of the zone (date_trunc: 'hour', 'day', 'week' from
-- Monday, 'month'), not call-logd's intervals that start at the request's from: for those,
-- use stat_queue_kpi_by_interval().
DROP FUNCTION stat_queue_report(text, text);
CREATE FUNCTION stat_queue_report(p_timezone text, p_grain text DEFAULT 'day')
RETURNS TABLE (period_start timestamptz, period_local timestamp, queue text,
               total bigint, answered bigint, abandoned bigint, timeout bigint,
               leaveempty bigint, not_queued bigint, answered_rate numeric,
               average_waiting_time integer, answered_share numeric)
LANGUAGE sql STABLE AS $$
    WITH periods AS (
        SELECT date_trunc(p_grain, p."time" AT TIME ZONE p_timezone) AS period_local,
               p.stat_queue_id, q.name AS queue,
               sum(p.total) AS total, sum(p.answered) AS answered, sum(p.abandoned) AS abandoned,
               sum(p.timeout) AS timeout, sum(p.leaveempty) AS leaveempty,
               sum(p."full" + p.closed + p.joinempty + p.divert_ca_ratio + p.divert_waittime) AS not_queued,
               sum(p.answered + p.abandoned + p."full" + p.leaveempty + p.joinempty + p.timeout) AS rate_base,
               sum(p.answered + p.abandoned + p.leaveempty + p.timeout) AS waited
        FROM stat_queue_periodic p
        LEFT JOIN stat_queue q ON q.id = p.stat_queue_id
        GROUP BY 1, 2, 3
    ),
    waits AS (
        SELECT date_trunc(p_grain, c."time" AT TIME ZONE p_timezone) AS period_local,
               c.stat_queue_id, sum(c.waittime) AS waittime
        FROM stat_call_on_queue c
        GROUP BY 1, 2
    ),
    -- one row per period and queue name (a queue's stat_queue rows, deleted ones too, are
    -- one line of the report, as before)
    by_name AS (
        SELECT p.period_local, p.queue,
               sum(p.total) AS total, sum(p.answered) AS answered, sum(p.abandoned) AS abandoned,
               sum(p.timeout) AS timeout, sum(p.leaveempty) AS leaveempty,
               sum(p.not_queued) AS not_queued, sum(p.rate_base) AS rate_base,
               sum(p.waited) AS waited, coalesce(sum(w.waittime), 0) AS waittime
        FROM periods p
        LEFT JOIN waits w ON w.period_local = p.period_local
                         AND w.stat_queue_id IS NOT DISTINCT FROM p.stat_queue_id
        GROUP BY 1, 2
    )
    SELECT stat_kpi_local_instant(b.period_local, p_timezone), b.period_local, b.queue,
           b.total::bigint, b.answered::bigint, b.abandoned::bigint, b.timeout::bigint,
           b.leaveempty::bigint, b.not_queued::bigint,
           CASE WHEN b.rate_base > 0 THEN stat_kpi_py_round2(100 * b.answered, b.rate_base) END,
           CASE WHEN b.waited > 0 THEN trunc(stat_kpi_py_round2(b.waittime, b.waited))::integer END,
           round(b.answered::numeric / nullif(b.total, 0), 4)
    FROM by_name b
    ORDER BY 1, 3
$$;
