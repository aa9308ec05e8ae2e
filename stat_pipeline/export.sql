-- name: calls
-- calls.csv of the golden sets: one line per stat_call_on_queue row, names instead of ids.
SELECT c.callid, coalesce(q.name, '') AS queue, coalesce(a.name, '') AS agent,
       CAST(c.status AS text) AS status,
       to_char(c."time" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') AS "time",
       c.waittime, c.talktime, c.ringtime
FROM stat_call_on_queue c
LEFT JOIN stat_queue q ON q.id = c.stat_queue_id
LEFT JOIN stat_agent a ON a.id = c.stat_agent_id
ORDER BY c."time", c.callid, c.id

-- name: queue_periodic
SELECT to_char(p."time" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"') AS "time",
       coalesce(q.name, '') AS queue, p.answered, p.abandoned, p.total, p."full", p.closed,
       p.joinempty, p.leaveempty, p.divert_ca_ratio, p.divert_waittime, p.timeout
FROM stat_queue_periodic p
LEFT JOIN stat_queue q ON q.id = p.stat_queue_id
ORDER BY p."time", q.name

-- name: agent_periodic
-- agent_periodic.csv: durations in seconds, with a fraction only when there is one
-- (3600, 3599.999999), queue '' for the agent's global row.
-- extract() is double precision before PostgreSQL 14, numeric from 14: cast, so that every
-- version writes the same digits (and trim_scale takes numeric only).
SELECT to_char(p."time" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"') AS "time",
       a.name AS agent, coalesce(q.name, '') AS queue,
       trim_scale(CAST(extract(epoch FROM p.login_time) AS numeric)) AS login_time,
       trim_scale(CAST(extract(epoch FROM p.pause_time) AS numeric)) AS pause_time,
       trim_scale(CAST(extract(epoch FROM p.wrapup_time) AS numeric)) AS wrapup_time
FROM stat_agent_periodic p
JOIN stat_agent a ON a.id = p.stat_agent_id
LEFT JOIN stat_queue q ON q.id = p.stat_queue_id
ORDER BY p."time", a.name, q.name NULLS FIRST
