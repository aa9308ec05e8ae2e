-- Agent statistics (stat_agent_periodic and our pause-reason breakdown).
--
-- An hour's agent times depend on state set earlier: a login days ago, a pause or a queue
-- membership begun before the hour. The asset finds, per agent (and queue), the last state
-- row before its range with an index probe (ORDER BY time DESC LIMIT 1) instead of reading
-- all history. Partial indexes: the predicate is exactly the event set the probe asks for,
-- so each index holds only the few rows of its kind.

-- AGENTCALLBACKLOGIN / LOGOFF: the login state of an agent (and the first logoff after the
-- range, whose logged seconds may reach back into it).
CREATE INDEX queue_log__login_state ON queue_log (agent, "time")
    WHERE event IN ('AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF');

-- PAUSEALL / UNPAUSEALL, and the logoff that ends a pause never unpaused.
CREATE INDEX queue_log__pause_state ON queue_log (agent, "time")
    WHERE event IN ('PAUSEALL', 'UNPAUSEALL', 'AGENTCALLBACKLOGOFF');

-- Queue membership of an agent.
CREATE INDEX queue_log__member_state ON queue_log (agent, queuename, "time")
    WHERE event IN ('ADDMEMBER', 'REMOVEMEMBER');

-- Per-queue pause; removing the member from the queue ends its pause there, adding it
-- starts one when the member is added paused (ADDMEMBER data1 'PAUSED').
CREATE INDEX queue_log__queue_pause_state ON queue_log (agent, queuename, "time")
    WHERE event IN ('PAUSE', 'UNPAUSE', 'ADDMEMBER', 'REMOVEMEMBER');

-- Pause time per reason (data1 of PAUSEALL / PAUSE), which wazo-stat drops. Same grain as
-- stat_agent_periodic: per hour and agent, stat_queue_id NULL = the agent's global pause
-- (PAUSEALL), else per queue. The global rows of an hour sum to its stat_agent_periodic
-- pause_time; reason '' = paused without a reason.
CREATE TABLE stat_agent_pause_reason (
    id            bigserial PRIMARY KEY,
    "time"        timestamptz NOT NULL,
    stat_agent_id integer     NOT NULL REFERENCES stat_agent (id),
    stat_queue_id integer     REFERENCES stat_queue (id),
    reason        text        NOT NULL,
    pause_time    interval    NOT NULL
);
CREATE INDEX stat_agent_pause_reason__time ON stat_agent_pause_reason ("time");
CREATE INDEX stat_agent_pause_reason__agent ON stat_agent_pause_reason (stat_agent_id);
