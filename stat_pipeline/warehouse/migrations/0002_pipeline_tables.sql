-- Our own tables: the warehouse copy of queue_log, rows kept aside, the classified calls
-- and the configuration snapshot the dimension rules read.

-- Copy of the source's queue_log. source + source_id identify the row at the source
-- (Wazo's queue_log.id, or the data line number of a file); ingested_at is when we first
-- copied it, kept across re-materializations so lateness stays measurable.
CREATE TABLE queue_log (
    id          bigserial PRIMARY KEY,
    source      text        NOT NULL,
    source_id   bigint      NOT NULL,
    "time"      timestamptz NOT NULL,
    callid      text,
    queuename   text,
    agent       text,
    event       text,
    data1       text,
    data2       text,
    data3       text,
    data4       text,
    data5       text,
    ingested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX queue_log__time        ON queue_log ("time");
CREATE INDEX queue_log__call        ON queue_log (callid, queuename, "time");
CREATE INDEX queue_log__source_id   ON queue_log (source, source_id);

-- Rows (or fields) we could not use as they are. Nothing is dropped silently: every row
-- lands here with the reason and what we did with it.
--   disposition: 'ignored'  = the row was not used at all
--                'repaired' = the row was used with a value derived another way (see reason)
--                'not exported' = used in classified_calls but cannot go to a Wazo table
CREATE TABLE queue_log_rejects (
    id          bigserial PRIMARY KEY,
    source      text        NOT NULL,
    source_id   bigint,
    hour        timestamptz,           -- the partition the row belongs to (NULL: no usable time)
    stage       text        NOT NULL,  -- 'ingest' or 'classify'
    reason      text        NOT NULL,
    disposition text        NOT NULL,
    raw         jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX queue_log_rejects__hour ON queue_log_rejects (hour);

-- One row per call passage in a queue (or per FULL/CLOSED/JOINEMPTY/DIVERT_* event).
-- status is one of Wazo's nine call_exit_type labels, or a state Wazo does not store:
--   pending      ENTERQUEUE seen, no outcome yet (within the look-ahead)
--   no_outcome   ENTERQUEUE never followed by an outcome (look-ahead passed, or re-entered)
--   exitwithkey / exitempty / withdraw   ended in a way Wazo does not count
CREATE TABLE classified_calls (
    callid          text        NOT NULL,
    queuename       text        NOT NULL,
    call_time       timestamptz NOT NULL,  -- Wazo's stat_call_on_queue.time for this call
    enter_time      timestamptz,
    end_time        timestamptz,
    status          text        NOT NULL,
    waittime        integer     NOT NULL DEFAULT 0,
    talktime        integer     NOT NULL DEFAULT 0,
    ringtime        integer     NOT NULL DEFAULT 0,
    agent           text,
    partial         boolean     NOT NULL DEFAULT false,  -- outcome seen without its ENTERQUEUE
    enter_row_id    bigint,                              -- queue_log.source_id of ENTERQUEUE
    outcome_row_id  bigint,                              -- queue_log.source_id of the deciding row
    note            text
);
CREATE INDEX classified_calls__call_time ON classified_calls (call_time);
CREATE INDEX classified_calls__callid    ON classified_calls (callid);

-- The configuration (wazo-confd's view: queues, agents, contexts, master tenant) that the
-- dimension rules of wazo-stat need. One row; replaced when the config is re-read.
CREATE TABLE confd_snapshot (
    singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    document    jsonb       NOT NULL,
    loaded_at   timestamptz NOT NULL DEFAULT now()
);

-- ql_int(value text), how every rule reads the integer fields of queue_log (text), is
-- created by 0016: it was created here with pg_input_is_valid (PostgreSQL 16+ only), and
-- warehouses migrated then get the version-independent one there too.

-- A source time we accept: it starts with a digit (a date) and PostgreSQL parses it.
-- PostgreSQL also reads 'now', 'yesterday', 'epoch', 'infinity'..., garbage in a log line.
-- (A full-format regex was tried: 7 us a row, 2 s for a month of rows; this is 1 us.)
-- "PostgreSQL parses it" is asked without an error from 16 on (pg_input_is_valid: an SQL
-- function the planner inlines, STABLE like it: it reads TimeZone); before 16 only an
-- exception block can ask, one subtransaction a row (about 5 us more a row, measured), and
-- PostgreSQL 13 to 15 refuse subtransactions while a query runs in parallel, in its leader
-- too (tested): PARALLEL UNSAFE, the query stays serial (its INSERT ... SELECTs are anyway).
-- Each version gets its fastest exact form; both say the same (NULL for NULL).
DO $version$
BEGIN
    IF current_setting('server_version_num')::integer >= 160000 THEN
        EXECUTE $create$
            CREATE FUNCTION is_event_time(value text) RETURNS boolean
            LANGUAGE sql STABLE PARALLEL SAFE AS $$
                SELECT substr(ltrim(value), 1, 1) BETWEEN '0' AND '9'
                   AND pg_input_is_valid(value, 'timestamptz')
            $$
        $create$;
    ELSE
        EXECUTE $create$
            CREATE FUNCTION is_event_time(value text) RETURNS boolean
            LANGUAGE plpgsql STABLE STRICT PARALLEL UNSAFE AS $$
            BEGIN
                IF NOT substr(ltrim(value), 1, 1) BETWEEN '0' AND '9' THEN
                    RETURN false;
                END IF;
                PERFORM CAST(value AS timestamptz);
                RETURN true;
            EXCEPTION WHEN data_exception THEN  -- class 22: every way a time fails to parse
                RETURN false;
            END
            $$
        $create$;
    END IF;
END
$version$;
