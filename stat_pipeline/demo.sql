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
