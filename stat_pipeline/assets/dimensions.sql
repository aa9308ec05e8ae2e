-- The dimension rules of wazo-stat (wazo_stat_algorithm.md section 4), set-based.
-- Statements run in this order inside the caller's transaction, after store_config.

-- The statements run in a source's scope (warehouse/scope.py): confd_snapshot, stat_queue,
-- stat_agent, queue_log and classified_calls are that source's rows; an INSERT writes its
-- name. So the rules apply per source: `sales` of two PBXs are two rows, each renamed,
-- deleted and re-created by its own PBX's config only.

-- name: store_config
-- one stored config per source (migration 0017)
INSERT INTO confd_snapshot (document) VALUES (CAST(:document AS jsonb))
ON CONFLICT (source) DO UPDATE SET document = EXCLUDED.document, loaded_at = now()

-- name: current_schema
SELECT current_schema()

-- name: clear_config
DELETE FROM confd_snapshot

-- name: stored_config
SELECT document FROM confd_snapshot

-- name: unknown_names
-- Names of queue_log's rows of [:start, :end) that the stored config does not know: a queue
-- or an agent created in Wazo since it was read (or one only ever known from the log). A
-- live config (confd, Wazo's tables) is re-read before these hours are computed, so a new
-- queue gets its confd id and tenant at once instead of a log-only row that would keep its
-- first calls. Agents: Agent/<number> and Wazo's Local/id-<confd id>@agentcallback only
-- (other interfaces are static members, never in the config). Distinct names first: the
-- time index does the window, the config lists are small.
WITH seen AS (
    SELECT DISTINCT q.queuename, q.agent FROM queue_log q
    WHERE q."time" >= :start AND q."time" < :end
), known AS (
    SELECT 'queue' AS kind, e.item->>'name' AS name
    FROM confd_snapshot s, jsonb_array_elements(s.document->'queues') e(item)
    UNION ALL
    SELECT 'agent', 'Agent/' || (e.item->>'number')
    FROM confd_snapshot s, jsonb_array_elements(s.document->'agents') e(item)
    UNION ALL
    SELECT 'agent', 'Local/id-' || (e.item->>'id') || '@agentcallback'
    FROM confd_snapshot s, jsonb_array_elements(s.document->'agents') e(item)
), candidates AS (
    SELECT DISTINCT 'queue' AS kind, queuename AS name FROM seen
    WHERE queuename IS NOT NULL AND queuename <> 'NONE'
    UNION
    SELECT DISTINCT 'agent', agent FROM seen
    WHERE agent LIKE 'Agent/%' OR agent LIKE 'Local/id-%@agentcallback'
)
SELECT c.kind, c.name FROM candidates c
WHERE NOT EXISTS (SELECT 1 FROM known k WHERE k.kind = c.kind AND k.name = c.name)
ORDER BY c.kind DESC, c.name
LIMIT 10

-- name: confd_tables
-- "if two confd queues share a name the last one wins"
CREATE TEMP TABLE confd_queues ON COMMIT DROP AS
SELECT DISTINCT ON (e.item->>'name')
       CAST(e.item->>'id' AS integer) AS id, e.item->>'name' AS name,
       e.item->>'tenant_uuid' AS tenant_uuid
FROM confd_snapshot s, jsonb_array_elements(s.document->'queues') WITH ORDINALITY AS e(item, n)
ORDER BY e.item->>'name', e.n DESC;
CREATE TEMP TABLE confd_agents ON COMMIT DROP AS
SELECT DISTINCT ON (name, tenant_uuid) id, name, tenant_uuid
FROM (SELECT CAST(e.item->>'id' AS integer) AS id, 'Agent/' || (e.item->>'number') AS name,
             e.item->>'tenant_uuid' AS tenant_uuid, e.n
      FROM confd_snapshot s,
           jsonb_array_elements(s.document->'agents') WITH ORDINALITY AS e(item, n)) a
ORDER BY name, tenant_uuid, n DESC

-- name: drop_confd_tables
DROP TABLE confd_queues; DROP TABLE confd_agents

-- name: queues_recreated
-- 1. a live row whose confd queue of the same name has another id: that queue was re-created
UPDATE stat_queue s SET deleted = true
FROM confd_queues c
WHERE NOT s.deleted AND s.name = c.name AND s.queue_id IS DISTINCT FROM c.id

-- name: queues_gone
-- 2. rows whose confd queue no longer exists (or never did)
UPDATE stat_queue SET deleted = true
WHERE NOT deleted AND (queue_id IS NULL OR queue_id NOT IN (SELECT id FROM confd_queues))

-- name: queues_from_confd
-- 3. every confd queue has a live row
INSERT INTO stat_queue (name, tenant_uuid, queue_id, deleted)
SELECT c.name, c.tenant_uuid, c.id, false FROM confd_queues c
WHERE NOT EXISTS (SELECT 1 FROM stat_queue s WHERE s.name = c.name AND NOT s.deleted)
ORDER BY c.id

-- name: queues_from_log
-- 4. queue names of the rows and calls of [:start, :end) that no row has. Without a confd
-- config they are the only queues we know, so they are live; with one, they are deleted
-- (Wazo's rule). 'NONE' is what agent and system rows carry: not a queue. The names are
-- made distinct by a hash aggregate over both tables' rows (a call centre has tens of
-- names) before they are looked up: UNION sorted all the rows by name, spilling to disk
-- (issue 16).
INSERT INTO stat_queue (name, tenant_uuid, queue_id, deleted)
SELECT n.name, :master_tenant, CAST(NULL AS integer), CAST(:has_config AS boolean)
FROM (SELECT name
      FROM (SELECT q.queuename AS name FROM queue_log q
            WHERE q."time" >= :start AND q."time" < :end
            UNION ALL
            SELECT c.queuename FROM classified_calls c
            WHERE c.call_time >= :start AND c.call_time < :end) used
      WHERE name IS NOT NULL AND name <> 'NONE' AND length(name) <= 128
      GROUP BY name) n
WHERE NOT EXISTS (SELECT 1 FROM stat_queue s WHERE s.name = n.name)
  AND NOT EXISTS (SELECT 1 FROM confd_queues c WHERE c.name = n.name)
ORDER BY n.name

-- name: queues_to_rename
-- 5. deleted rows that carry the name of a confd queue
SELECT s.id, s.name FROM stat_queue s
WHERE s.deleted AND s.name IN (SELECT name FROM confd_queues) ORDER BY s.id

-- name: rename_queue
UPDATE stat_queue SET name = :name WHERE id = :id

-- name: queue_name_taken
SELECT EXISTS (SELECT 1 FROM stat_queue WHERE name = :name)

-- name: agents_recreated
UPDATE stat_agent s SET deleted = true
FROM confd_agents c
WHERE NOT s.deleted AND s.name = c.name AND s.tenant_uuid = c.tenant_uuid
  AND s.agent_id IS DISTINCT FROM c.id

-- name: agents_gone
UPDATE stat_agent SET deleted = true
WHERE NOT deleted AND (agent_id IS NULL OR agent_id NOT IN (SELECT id FROM confd_agents))

-- name: agents_from_confd
INSERT INTO stat_agent (name, tenant_uuid, agent_id, deleted)
SELECT c.name, c.tenant_uuid, c.id, false FROM confd_agents c
WHERE NOT EXISTS (SELECT 1 FROM stat_agent s
                  WHERE s.name = c.name AND s.tenant_uuid = c.tenant_uuid AND NOT s.deleted)
ORDER BY c.id

-- name: agents_to_rename
SELECT s.id, s.name, s.tenant_uuid FROM stat_agent s
JOIN confd_agents c ON c.name = s.name AND c.tenant_uuid = s.tenant_uuid
WHERE s.deleted ORDER BY s.id

-- name: rename_agent
UPDATE stat_agent SET name = :name WHERE id = :id

-- name: agent_name_taken
SELECT EXISTS (SELECT 1 FROM stat_agent WHERE name = :name AND tenant_uuid = :tenant_uuid)

-- name: agents_from_log
-- keep_unknown_agents only: agent names of the rows and answered calls of [:start, :end)
-- that no stat_agent row has (wazo-stat drops them, quirk Q8) become rows of the master
-- tenant without confd id, deleted when a config exists (like a queue only known from the
-- log). A Local/id-<n>@agentcallback interface of a known agent is that agent, not another.
INSERT INTO stat_agent (name, tenant_uuid, agent_id, deleted)
SELECT n.name, :master_tenant, CAST(NULL AS integer), CAST(:has_config AS boolean)
FROM (SELECT q.agent AS name FROM queue_log q
      WHERE q."time" >= :start AND q."time" < :end
        AND q.event IN ('AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF', 'PAUSEALL', 'UNPAUSEALL',
                        'PAUSE', 'UNPAUSE', 'ADDMEMBER', 'REMOVEMEMBER', 'WRAPUPSTART',
                        'CONNECT', 'COMPLETEAGENT', 'COMPLETECALLER', 'TRANSFER',
                        'BLINDTRANSFER', 'ATTENDEDTRANSFER')
      UNION
      SELECT c.agent FROM classified_calls c
      WHERE c.call_time >= :start AND c.call_time < :end AND c.status = 'answered') n
WHERE n.name IS NOT NULL AND n.name NOT IN ('NONE', '') AND length(n.name) <= 128
  AND NOT EXISTS (SELECT 1 FROM stat_agent s WHERE s.name = n.name)
  AND NOT EXISTS (SELECT 1 FROM stat_agent s
                  WHERE 'Local/id-' || s.agent_id || '@agentcallback' = n.name)
ORDER BY n.name

-- name: queue_summary
SELECT name, tenant_uuid, queue_id, deleted FROM stat_queue ORDER BY deleted, name

-- name: agent_summary
SELECT name, tenant_uuid, agent_id, deleted FROM stat_agent ORDER BY deleted, name

-- name: names_shared_across_sources
-- Live queues / agents of the same name in the same tenant on several sources (run outside
-- any source scope): two PBXs configured into one tenant. They stay apart (two rows, never
-- merged: each PBX's `sales` is its own queue), but Wazo's readers list the tenant's queues
-- by name, and see the name twice: said on the dimension's materialization.
SELECT kind, tenant_uuid, name, array_agg(DISTINCT source ORDER BY source) AS sources
FROM (SELECT 'stat_queue' AS kind, tenant_uuid, name, source FROM stat_queue
      WHERE NOT deleted AND source IS NOT NULL
      UNION ALL
      SELECT 'stat_agent', tenant_uuid, name, source FROM stat_agent
      WHERE NOT deleted AND source IS NOT NULL) live
GROUP BY kind, tenant_uuid, name
HAVING count(DISTINCT source) > 1
ORDER BY kind, tenant_uuid, name
