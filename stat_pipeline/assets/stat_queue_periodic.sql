-- Hourly counters per queue from stat_call_on_queue, as wazo-stat's insert_periodic_stat:
-- one row per (hour, queue) with at least one call; total counts every status.
INSERT INTO stat_queue_periodic ("time", stat_queue_id, answered, abandoned, total, "full",
                                 closed, joinempty, leaveempty, divert_ca_ratio,
                                 divert_waittime, timeout)
SELECT utc_hour(c."time") AS hour, c.stat_queue_id,
       count(*) FILTER (WHERE c.status = 'answered'),
       count(*) FILTER (WHERE c.status = 'abandoned'),
       count(*),
       count(*) FILTER (WHERE c.status = 'full'),
       count(*) FILTER (WHERE c.status = 'closed'),
       count(*) FILTER (WHERE c.status = 'joinempty'),
       count(*) FILTER (WHERE c.status = 'leaveempty'),
       count(*) FILTER (WHERE c.status = 'divert_ca_ratio'),
       count(*) FILTER (WHERE c.status = 'divert_waittime'),
       count(*) FILTER (WHERE c.status = 'timeout')
FROM stat_call_on_queue c
WHERE c."time" >= CAST(:start AS timestamptz) AND c."time" < CAST(:end AS timestamptz)
GROUP BY 1, 2
