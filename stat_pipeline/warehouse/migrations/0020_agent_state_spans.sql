-- agent_state_span: per source, agent name and state event (and queue, for the per-queue
-- events), the first and last "time" of its queue_log rows. assets/agents.sql looks up
-- each agent's last state row before an hour (and the first login row after it) with
-- `ORDER BY "time" DESC LIMIT 1` per name; on monthly partitions (0018) a name without such
-- a row probed every month kept (issue 17: 11 ms -> 46 ms for a year). With this table the
-- look-ups skip the names that have no such row at all and read only the months between
-- the name's first and last rows: an hour's cost no longer depends on the months kept.
--
-- What the look-ups rely on: every queue_log row of these events is inside its key's
-- [first_time, last_time] (the spans may be wider than the rows: a re-run that deletes
-- rows, or a retention drop, leaves them as they were; a wider span only costs a probe,
-- never a row). So the spans only grow, and they grow in the statement that inserts the
-- rows, whatever inserts them (an hour's copy, a re-copy, the demo, a bulk load): a
-- statement trigger on queue_log, in the same transaction, set-based over the statement's
-- new rows. Rows moved between partitions by 0018's functions are inserted into a
-- partition, not queue_log: they were covered before they moved.
--
-- Agent-wide events (logins, logoffs, PAUSEALL/UNPAUSEALL) are kept with queuename '', the
-- per-queue ones (ADDMEMBER, REMOVEMEMBER, PAUSE, UNPAUSE) per queue (a row without a queue
-- is never looked up per queue). The table has a source column: the source scope
-- (warehouse/scope.py) shows a run the spans of its source only.
CREATE TABLE agent_state_span (
    source      text        NOT NULL,
    agent       text        NOT NULL,
    event       text        NOT NULL,
    queuename   text        NOT NULL,
    first_time  timestamptz NOT NULL,
    last_time   timestamptz NOT NULL,
    PRIMARY KEY (source, agent, event, queuename)
);

CREATE FUNCTION stat_agent_state_span_rows() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    -- the real table of the trigger's schema: inside a source scope the unqualified name is
    -- the scope's view (no format(): the migration runner's driver reads percent signs) (pg_temp comes first); the rows carry their own source. Keys in
    -- primary-key order, so that two writers upserting the same keys never deadlock.
    EXECUTE 'INSERT INTO ' || quote_ident(TG_TABLE_SCHEMA) || $sql$.agent_state_span AS s
            (source, agent, event, queuename, first_time, last_time)
        SELECT n.source, n.agent, n.event,
               CASE WHEN n.event IN ('ADDMEMBER', 'REMOVEMEMBER', 'PAUSE', 'UNPAUSE')
                    THEN n.queuename ELSE '' END,
               min(n."time"), max(n."time")
        FROM new_rows n
        WHERE n.agent IS NOT NULL AND n."time" IS NOT NULL
          AND (n.event IN ('AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF', 'PAUSEALL', 'UNPAUSEALL')
               OR (n.event IN ('ADDMEMBER', 'REMOVEMEMBER', 'PAUSE', 'UNPAUSE')
                   AND n.queuename IS NOT NULL))
        GROUP BY 1, 2, 3, 4
        ORDER BY 1, 2, 3, 4
        ON CONFLICT (source, agent, event, queuename) DO UPDATE
        SET first_time = least(s.first_time, excluded.first_time),
            last_time = greatest(s.last_time, excluded.last_time)
        WHERE excluded.first_time < s.first_time OR excluded.last_time > s.last_time
    $sql$;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER queue_log__agent_state_span AFTER INSERT ON queue_log
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stat_agent_state_span_rows();

-- the rows already copied
INSERT INTO agent_state_span (source, agent, event, queuename, first_time, last_time)
SELECT source, agent, event,
       CASE WHEN event IN ('ADDMEMBER', 'REMOVEMEMBER', 'PAUSE', 'UNPAUSE')
            THEN queuename ELSE '' END,
       min("time"), max("time")
FROM queue_log
WHERE agent IS NOT NULL AND "time" IS NOT NULL
  AND (event IN ('AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF', 'PAUSEALL', 'UNPAUSEALL')
       OR (event IN ('ADDMEMBER', 'REMOVEMEMBER', 'PAUSE', 'UNPAUSE') AND queuename IS NOT NULL))
GROUP BY 1, 2, 3, 4;
