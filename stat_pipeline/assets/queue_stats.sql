-- name: clear_periodic
DELETE FROM stat_queue_periodic WHERE "time" >= :start AND "time" < :end

-- name: per_queue
SELECT coalesce(q.name, '(unknown)') AS queue, sum(p.total) AS total, sum(p.answered) AS answered,
       sum(p.abandoned) AS abandoned, sum(p.timeout) AS timeout, sum(p.leaveempty) AS leaveempty,
       sum(p."full" + p.closed + p.joinempty + p.divert_ca_ratio + p.divert_waittime) AS not_queued,
       count(*) AS hours
FROM stat_queue_periodic p LEFT JOIN stat_queue q ON q.id = p.stat_queue_id
WHERE p."time" >= :start AND p."time" < :end
GROUP BY 1 ORDER BY 1

-- name: wait_of_answered
SELECT avg(waittime) AS avg_wait FROM stat_call_on_queue
WHERE "time" >= :start AND "time" < :end AND status = 'answered'
