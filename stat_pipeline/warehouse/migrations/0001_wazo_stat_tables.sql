-- Wazo's statistics tables, column for column as wazo-platform/xivo-dao defines them
-- (see ../shared/docs/wazo_schema.sql), so that Wazo's own API (wazo-call-logd) can read them.
-- Extra indexes on "time" are ours: every partition write deletes and re-inserts by time range.

CREATE TYPE call_exit_type AS ENUM (
    'full', 'closed', 'joinempty', 'leaveempty', 'divert_ca_ratio',
    'divert_waittime', 'answered', 'abandoned', 'timeout'
);

CREATE TABLE stat_queue (
    id          SERIAL PRIMARY KEY,
    name        varchar(128) NOT NULL,
    tenant_uuid varchar(36)  NOT NULL,
    queue_id    integer,
    deleted     boolean      NOT NULL DEFAULT false
);
CREATE INDEX stat_queue__idx_name        ON stat_queue (name);
CREATE INDEX stat_queue__idx_tenant_uuid ON stat_queue (tenant_uuid);

CREATE TABLE stat_agent (
    id          SERIAL PRIMARY KEY,
    name        varchar(128) NOT NULL,
    tenant_uuid varchar(36)  NOT NULL,
    agent_id    integer,
    deleted     boolean      NOT NULL DEFAULT false
);
CREATE INDEX stat_agent__idx_name        ON stat_agent (name);
CREATE INDEX stat_agent__idx_tenant_uuid ON stat_agent (tenant_uuid);

CREATE TABLE stat_call_on_queue (
    id            SERIAL PRIMARY KEY,
    callid        varchar(32)              NOT NULL,
    "time"        timestamp with time zone NOT NULL,
    ringtime      integer                  NOT NULL DEFAULT 0,
    talktime      integer                  NOT NULL DEFAULT 0,
    waittime      integer                  NOT NULL DEFAULT 0,
    status        call_exit_type           NOT NULL,
    stat_queue_id integer REFERENCES stat_queue (id),
    stat_agent_id integer REFERENCES stat_agent (id)
);
CREATE INDEX stat_call_on_queue__idx_callid         ON stat_call_on_queue (callid);
CREATE INDEX stat_call_on_queue__idx__stat_queue_id ON stat_call_on_queue (stat_queue_id);
CREATE INDEX stat_call_on_queue__idx__stat_agent_id ON stat_call_on_queue (stat_agent_id);
CREATE INDEX stat_call_on_queue__idx_time           ON stat_call_on_queue ("time");

CREATE TABLE stat_queue_periodic (
    id              SERIAL PRIMARY KEY,
    "time"          timestamp with time zone NOT NULL,
    answered        integer NOT NULL DEFAULT 0,
    abandoned       integer NOT NULL DEFAULT 0,
    total           integer NOT NULL DEFAULT 0,
    "full"          integer NOT NULL DEFAULT 0,
    closed          integer NOT NULL DEFAULT 0,
    joinempty       integer NOT NULL DEFAULT 0,
    leaveempty      integer NOT NULL DEFAULT 0,
    divert_ca_ratio integer NOT NULL DEFAULT 0,
    divert_waittime integer NOT NULL DEFAULT 0,
    timeout         integer NOT NULL DEFAULT 0,
    stat_queue_id   integer REFERENCES stat_queue (id)
);
CREATE INDEX stat_queue_periodic__idx__stat_queue_id ON stat_queue_periodic (stat_queue_id);
CREATE INDEX stat_queue_periodic__idx_time           ON stat_queue_periodic ("time");

CREATE TABLE stat_agent_periodic (
    id            SERIAL PRIMARY KEY,
    "time"        timestamp with time zone NOT NULL,
    login_time    interval NOT NULL DEFAULT '0',
    pause_time    interval NOT NULL DEFAULT '0',
    wrapup_time   interval NOT NULL DEFAULT '0',
    stat_agent_id integer REFERENCES stat_agent (id),
    stat_queue_id integer REFERENCES stat_queue (id)
);
CREATE INDEX stat_agent_periodic__idx__stat_agent_id ON stat_agent_periodic (stat_agent_id);
CREATE INDEX stat_agent_periodic__idx__stat_queue_id ON stat_agent_periodic (stat_queue_id);
CREATE INDEX stat_agent_periodic__idx__time          ON stat_agent_periodic ("time");
