-- Wazo rows for the calls whose time is in [:start, :end): the nine Wazo statuses only.
-- ringtime stays 0 as in wazo-stat (quirk Q12; the CONNECT ring time is in classified_calls).
INSERT INTO stat_call_on_queue (callid, "time", ringtime, talktime, waittime, status,
                                stat_queue_id, stat_agent_id)
SELECT c.callid, c.call_time, 0, c.talktime, c.waittime, CAST(c.status AS call_exit_type),
       sq.id, sa.id
FROM classified_calls c
LEFT JOIN LATERAL (
    -- names are unique among live rows; a renamed (deleted) row only if nothing else matches
    SELECT s.id, s.tenant_uuid FROM stat_queue s
    WHERE s.name = c.queuename ORDER BY s.deleted, s.id DESC LIMIT 1
) sq ON true
LEFT JOIN LATERAL (
    -- wazo-stat matches the agent in the queue's tenant. We also attribute a known agent who
    -- answers in a queue only known from the log (master tenant), when his number exists in
    -- one tenant only (quirk Q8, case A9 hg).
    SELECT a.id FROM stat_agent a
    WHERE a.name = c.agent
      AND (a.tenant_uuid = sq.tenant_uuid
           OR (SELECT count(DISTINCT x.tenant_uuid) FROM stat_agent x WHERE x.name = c.agent) = 1)
    ORDER BY (a.tenant_uuid = sq.tenant_uuid) DESC, a.deleted, a.id DESC
    LIMIT 1
) sa ON c.status = 'answered'
WHERE c.call_time >= CAST(:start AS timestamptz) AND c.call_time < CAST(:end AS timestamptz)
  AND c.status IN ('full', 'closed', 'joinempty', 'leaveempty', 'divert_ca_ratio',
                   'divert_waittime', 'answered', 'abandoned', 'timeout')
  AND length(c.callid) <= 32
ORDER BY c.call_time
