-- Wazo's configuration in its `asterisk` database (xivo-manage-db's schema, the tables
-- wazo-confd serves /queues, /agents and /contexts from). Plain SELECTs: the server may be
-- an old PostgreSQL, the session is read-only, and nothing may be installed there.
-- :schema is the schema of the source's queue_log table, NULL = the session's current one.

-- name: columns
-- information_schema lists only what the account may read: a table the read-only account
-- cannot SELECT is reported as missing, which is what it is to us.
SELECT table_name, column_name FROM information_schema.columns
WHERE table_schema = COALESCE(CAST(:schema AS text), current_schema())
  AND table_name IN ('queuefeatures', 'agentfeatures', 'context', 'tenant')

-- name: queues
SELECT id, name, tenant_uuid FROM {schema}queuefeatures ORDER BY id

-- name: agents
SELECT id, number, tenant_uuid FROM {schema}agentfeatures ORDER BY id

-- name: contexts
SELECT name, tenant_uuid FROM {schema}context ORDER BY id

-- name: tenants
-- a tenant owning no queue, agent or context: Wazo's master tenant holds none of them once
-- sub-tenants hold the call centre (the fallback when STAT_MASTER_TENANT is not set)
SELECT t.uuid,
       NOT EXISTS (SELECT 1 FROM {schema}queuefeatures q WHERE q.tenant_uuid = t.uuid)
       AND NOT EXISTS (SELECT 1 FROM {schema}agentfeatures a WHERE a.tenant_uuid = t.uuid)
       AND NOT EXISTS (SELECT 1 FROM {schema}context c WHERE c.tenant_uuid = t.uuid) AS empty
FROM {schema}tenant t ORDER BY t.uuid
