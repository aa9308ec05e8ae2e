-- A stand-in for a Wazo server's `asterisk` database: its queue_log table as Wazo defines it
-- (wazo_schema.sql) and a read-only account for the pipeline, as in production.

-- name: create_source
CREATE TABLE IF NOT EXISTS queue_log (
    "time"     timestamp with time zone,
    callid     varchar(80),
    queuename  varchar(256),
    agent      text,
    event      varchar(20),
    data1      text, data2 text, data3 text, data4 text, data5 text,
    id         SERIAL PRIMARY KEY
);
CREATE INDEX IF NOT EXISTS queue_log__idx_time ON queue_log ("time");
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'stat_reader') THEN
        CREATE ROLE stat_reader LOGIN;
    END IF;
END $$;
GRANT SELECT ON queue_log TO stat_reader

-- name: staging
CREATE TEMP TABLE sample_rows (
    time_text text, callid text, queuename text, agent text, event text,
    data1 text, data2 text, data3 text, data4 text, data5 text
) ON COMMIT DROP

-- name: insert_shifted
-- The sample day is moved to :day so that the demo's statistics are recent.
INSERT INTO queue_log ("time", callid, queuename, agent, event, data1, data2, data3, data4, data5)
SELECT CAST(time_text AS timestamptz) + (CAST(:day AS timestamptz) - CAST(:sample_day AS timestamptz)),
       callid, queuename, agent, event, data1, data2, data3, data4, data5
FROM sample_rows

-- name: bounds
SELECT min("time") AS first, max("time") AS last, count(*) AS n FROM queue_log

-- name: create_wazo_config
-- Wazo's configuration tables, with the columns and constraints of xivo-manage-db / xivo-dao
-- (alchemy/tenant.py, context.py, queuefeatures.py, agentfeatures.py) that matter here;
-- the real tables have more columns, all with defaults or nullable. The pipeline reads them
-- through the read-only account instead of a confd.json.
CREATE TABLE IF NOT EXISTS tenant (
    uuid varchar(36) PRIMARY KEY,
    sip_templates_generated boolean NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS context (
    id          SERIAL PRIMARY KEY,
    tenant_uuid varchar(36) NOT NULL REFERENCES tenant (uuid) ON DELETE CASCADE,
    name        varchar(79) NOT NULL UNIQUE,
    displayname varchar(128),
    contexttype varchar(40) NOT NULL DEFAULT 'internal',
    commented   integer NOT NULL DEFAULT 0,
    description text
);
CREATE TABLE IF NOT EXISTS queuefeatures (
    id          SERIAL PRIMARY KEY,
    tenant_uuid varchar(36) NOT NULL REFERENCES tenant (uuid) ON DELETE CASCADE,
    name        varchar(128) NOT NULL UNIQUE,
    displayname varchar(128) NOT NULL,
    number      varchar(40),
    context     varchar(79)
);
CREATE TABLE IF NOT EXISTS agentfeatures (
    id          SERIAL PRIMARY KEY,
    tenant_uuid varchar(36) NOT NULL REFERENCES tenant (uuid) ON DELETE CASCADE,
    numgroup    integer NOT NULL,
    firstname   varchar(128),
    lastname    varchar(128),
    number      varchar(40) NOT NULL UNIQUE,
    passwd      varchar(128),
    context     varchar(79),
    language    varchar(20),
    autologoff  integer,
    "group"     varchar(255),
    description text,
    preprocess_subroutine varchar(79)
);
GRANT SELECT ON tenant, context, queuefeatures, agentfeatures TO stat_reader

-- name: fill_wazo_config
-- The rows a Wazo with the configuration :document (a confd.json) would hold: its tenants
-- (the master tenant included), contexts, queues and agents with their confd ids.
INSERT INTO tenant (uuid)
SELECT DISTINCT t FROM (
    SELECT CAST(:document AS jsonb)->>'master_tenant' AS t
    UNION ALL
    SELECT e.item->>'tenant_uuid' FROM jsonb_array_elements(
        COALESCE(CAST(:document AS jsonb)->'queues', '[]') || COALESCE(CAST(:document AS jsonb)->'agents', '[]')
        || COALESCE(CAST(:document AS jsonb)->'contexts', '[]')) e(item)) tenants
WHERE t IS NOT NULL
ON CONFLICT (uuid) DO NOTHING;
INSERT INTO context (tenant_uuid, name, displayname)
SELECT e.item->>'tenant_uuid', e.item->>'name', e.item->>'name'
FROM jsonb_array_elements(COALESCE(CAST(:document AS jsonb)->'contexts', '[]')) e(item)
ON CONFLICT (name) DO NOTHING;
INSERT INTO queuefeatures (id, tenant_uuid, name, displayname)
SELECT CAST(e.item->>'id' AS integer), e.item->>'tenant_uuid', e.item->>'name', e.item->>'name'
FROM jsonb_array_elements(COALESCE(CAST(:document AS jsonb)->'queues', '[]')) e(item)
ON CONFLICT DO NOTHING;
INSERT INTO agentfeatures (id, tenant_uuid, numgroup, number, firstname, lastname)
SELECT CAST(e.item->>'id' AS integer), e.item->>'tenant_uuid', 1, e.item->>'number',
       'Agent', e.item->>'number'
FROM jsonb_array_elements(COALESCE(CAST(:document AS jsonb)->'agents', '[]')) e(item)
ON CONFLICT DO NOTHING
