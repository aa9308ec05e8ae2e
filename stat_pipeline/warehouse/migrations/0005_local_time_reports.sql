-- Statistics are stored per UTC hour, as Wazo does. A supervisor reads them per local hour,
-- day, week or month: this function regroups them in any IANA zone at query time (as
-- wazo-call-logd does), DST included (a local day of 23 or 25 hours takes exactly its own
-- UTC hours). Zones with a non-whole-hour offset (Asia/Kolkata) cannot regroup UTC hours
-- into local hours; days and longer are fine.
--   SELECT * FROM stat_queue_report('Europe/Paris', 'day');
CREATE FUNCTION stat_queue_report(p_timezone text, p_grain text DEFAULT 'day')
RETURNS TABLE (period_start timestamptz, period_local timestamp, queue text,
               total bigint, answered bigint, abandoned bigint, timeout bigint,
               leaveempty bigint, not_queued bigint, answered_rate numeric)
LANGUAGE sql STABLE AS $$
    SELECT date_trunc(p_grain, p."time" AT TIME ZONE p_timezone) AT TIME ZONE p_timezone,
           date_trunc(p_grain, p."time" AT TIME ZONE p_timezone),
           q.name,
           sum(p.total), sum(p.answered), sum(p.abandoned), sum(p.timeout), sum(p.leaveempty),
           sum(p."full" + p.closed + p.joinempty + p.divert_ca_ratio + p.divert_waittime),
           round(sum(p.answered)::numeric / nullif(sum(p.total), 0), 4)
    FROM stat_queue_periodic p
    LEFT JOIN stat_queue q ON q.id = p.stat_queue_id
    GROUP BY 1, 2, 3
    ORDER BY 1, 3
$$;
