-- Wazo rows for the calls whose time is in [:start, :end): the nine Wazo statuses only.
-- ringtime stays 0 as in wazo-stat (quirk Q12; the CONNECT ring time is in classified_calls).
WITH queue_of_name AS (
    -- names are unique among live rows; a renamed (deleted) row only if nothing else matches
    SELECT DISTINCT ON (name) name, id, tenant_uuid FROM stat_queue
    ORDER BY name, deleted, id DESC
),
agent_in_tenant AS (
    -- wazo-stat matches the answering agent in the queue's tenant
    SELECT DISTINCT ON (name, tenant_uuid) name, tenant_uuid, id FROM stat_agent
    ORDER BY name, tenant_uuid, deleted, id DESC
),
agent_of_one_tenant AS (
    -- we also attribute a known agent who answers in a queue only known from the log
    -- (master tenant) when his number exists in one tenant only (quirk Q8, case A9 hg)
    SELECT DISTINCT ON (a.name) a.name, a.id FROM stat_agent a
    WHERE a.name IN (SELECT name FROM stat_agent GROUP BY name
                     HAVING count(DISTINCT tenant_uuid) = 1)
    ORDER BY a.name, a.deleted, a.id DESC
)
INSERT INTO stat_call_on_queue (callid, "time", ringtime, talktime, waittime, status,
                                stat_queue_id, stat_agent_id)
SELECT c.callid, c.call_time, 0, c.talktime, c.waittime, CAST(c.status AS call_exit_type),
       q.id, CASE WHEN c.status = 'answered' THEN coalesce(same.id, single.id) END
FROM classified_calls c
LEFT JOIN queue_of_name q ON q.name = c.queuename
LEFT JOIN agent_in_tenant same ON same.name = c.agent AND same.tenant_uuid = q.tenant_uuid
LEFT JOIN agent_of_one_tenant single ON single.name = c.agent
WHERE c.call_time >= CAST(:start AS timestamptz) AND c.call_time < CAST(:end AS timestamptz)
  AND c.status IN ('full', 'closed', 'joinempty', 'leaveempty', 'divert_ca_ratio',
                   'divert_waittime', 'answered', 'abandoned', 'timeout')
  -- Wazo's column sizes: such calls stay in classified_calls, kept aside as 'not exported'
  -- (classify_rejects.sql); a queue name too long has no stat_queue row to point to
  AND length(c.callid) <= 32 AND length(c.queuename) <= 128
ORDER BY c.call_time
