-- name: clear_periodic
DELETE FROM stat_queue_periodic WHERE "time" >= :start AND "time" < :end

-- name: per_queue
-- Per hour of [start, end) and (grouping() = 1) the whole range, in one scan
-- (run_metadata.py): every hour's materialization gets its own figures.
SELECT p."time" AS hour, grouping(p."time") = 1 AS whole_range,
       coalesce(q.name, '(unknown)') AS queue, sum(p.total) AS total, sum(p.answered) AS answered,
       sum(p.abandoned) AS abandoned, sum(p.timeout) AS timeout, sum(p.leaveempty) AS leaveempty,
       sum(p."full" + p.closed + p.joinempty + p.divert_ca_ratio + p.divert_waittime) AS not_queued,
       -- wazo-call-logd's answered_rate denominator (closed and divert_* left out)
       sum(p.answered + p.abandoned + p."full" + p.leaveempty + p.joinempty + p.timeout)
           AS answerable,
       count(*) AS hours
FROM stat_queue_periodic p LEFT JOIN stat_queue q ON q.id = p.stat_queue_id
WHERE p."time" >= :start AND p."time" < :end
GROUP BY GROUPING SETS ((p."time", coalesce(q.name, '(unknown)')), (coalesce(q.name, '(unknown)')))
ORDER BY queue

-- name: wait_of_answered
-- Per hour of [start, end) and (grouping() = 1) the whole range, in one scan
-- (run_metadata.py): every hour's materialization gets its own figures.
SELECT hour, grouping(hour) = 1 AS whole_range, avg(waittime) AS avg_wait
FROM (SELECT utc_hour("time") AS hour, waittime FROM stat_call_on_queue
      WHERE "time" >= :start AND "time" < :end AND status = 'answered') c
GROUP BY GROUPING SETS ((hour), ())

-- name: check_totals
-- total = sum of the status columns = number of stat_call_on_queue rows of that hour and queue
WITH calls AS (
    SELECT utc_hour("time") AS hour, stat_queue_id, count(*) AS n
    FROM stat_call_on_queue WHERE "time" >= :start AND "time" < :end GROUP BY 1, 2
), periodic AS (
    SELECT "time" AS hour, stat_queue_id, total,
           answered + abandoned + "full" + closed + joinempty + leaveempty + divert_ca_ratio
           + divert_waittime + timeout AS status_sum
    FROM stat_queue_periodic WHERE "time" >= :start AND "time" < :end
)
SELECT count(*) FILTER (WHERE p.total <> p.status_sum) AS bad_sums,
       count(*) FILTER (WHERE c.n IS DISTINCT FROM p.total) AS bad_totals
FROM periodic p
FULL JOIN calls c ON c.hour = p.hour AND c.stat_queue_id IS NOT DISTINCT FROM p.stat_queue_id
