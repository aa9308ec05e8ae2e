-- stat_agent_periodic for the hours of [:start, :end), the way wazo-stat's section 9
-- (wazo_stat_algorithm.md) computes it, but on whole UTC hours and with the state carried
-- from before the range looked up in the rows (so the result for an hour does not depend on
-- the run that computed it). Statements run in this order in one transaction:
--   prepare -> collect -> [register_unknown_agents] -> aliases -> resolve -> segments
--   -> merge / intersect (several times, see agents.py) -> clear -> hourly
--   -> insert_periodic -> insert_reasons.
--
-- Intervals live in agent_iv as (kind, agent, queue, reason, s, e): every open state is a
-- *segment* from its opening row to the next row of the same state machine (or :horizon,
-- the instant up to which the source is known), then merged into islands per key.

-- name: prepare
CREATE TEMP TABLE agent_ev (
    fam           text,        -- login | pause | member | qpause | wrapup
    agent         text,        -- as written in queue_log
    queuename     text,
    "time"        timestamptz,
    row_id        bigint,
    event         text,
    data1         text,
    data2         text,
    stat_agent_id integer
) ON COMMIT DROP;
CREATE TEMP TABLE agent_iv (
    kind          text,
    stat_agent_id integer,
    queuename     text,        -- NULL: the agent's global row
    reason        text,
    s             timestamptz,
    e             timestamptz
) ON COMMIT DROP

-- name: collect
-- The rows of the range, plus per agent (and queue) the last state row before it: a login
-- or a membership begun days ago still counts, a pause begun before the hour is counted
-- from the hour (wazo-stat drops it, quirk Q4). Probes go through the partial indexes of
-- migration 0003, one per agent (and live queue), never through all history: only for
-- the names that have such rows at all, and starting at the month of the name's last such
-- row (agent_state_span, migration 0020: each key's span covers its rows; the months after
-- it are pruned at run time), newest month first, stopping at the first row found. So on
-- monthly partitions an hour does not probe every month kept; a name whose rows retention
-- dropped probes none. (Only one bound per probe: with both span ends, the planner
-- expected few rows and sorted every month's rows instead of reading the newest first.)
INSERT INTO agent_ev (fam, agent, queuename, "time", row_id, event, data1, data2)
WITH fams(event, fam) AS (VALUES
        ('AGENTCALLBACKLOGIN', 'login'), ('AGENTCALLBACKLOGOFF', 'login'),
        -- a logoff also ends a pause never unpaused: the agent left the queues
        ('PAUSEALL', 'pause'), ('UNPAUSEALL', 'pause'), ('AGENTCALLBACKLOGOFF', 'pause'),
        ('ADDMEMBER', 'member'), ('REMOVEMEMBER', 'member'),
        -- a member removed from a queue is no longer paused in it; one added again is
        -- paused only when added paused (ADDMEMBER 'PAUSED', Asterisk 11+)
        ('PAUSE', 'qpause'), ('UNPAUSE', 'qpause'), ('ADDMEMBER', 'qpause'),
        ('REMOVEMEMBER', 'qpause')),
-- per family, the span of each name's (and queue's) rows of the family's events
spans AS MATERIALIZED (
    SELECT f.fam, s.agent, s.queuename, min(s.first_time) AS since, max(s.last_time) AS till
    FROM agent_state_span s JOIN fams f ON f.event = s.event
    GROUP BY f.fam, s.agent, s.queuename
),
global_spans AS MATERIALIZED (  -- agent-wide families: the queue does not matter
    SELECT fam, agent, min(since) AS since, max(till) AS till FROM spans
    WHERE fam IN ('login', 'pause') GROUP BY fam, agent
),
names AS (
    -- who can have state: agents as they log in (Agent/<n>) and as Wazo adds them to queues
    SELECT name AS agent FROM stat_agent
    UNION
    SELECT 'Local/id-' || agent_id || '@agentcallback' FROM stat_agent WHERE agent_id IS NOT NULL
    UNION
    -- and whoever ever logged in (an agent unknown to the config, kept on request), so an
    -- hour does not depend on which hours ran before (a name whose login rows are gone
    -- since finds no row: the same result)
    SELECT agent FROM global_spans WHERE fam = 'login'
),
queues AS (SELECT DISTINCT name FROM stat_queue WHERE NOT deleted)
SELECT f.fam, q.agent, q.queuename, q."time", q.id, q.event, q.data1, q.data2
FROM queue_log q JOIN fams f ON f.event = q.event
WHERE q."time" >= :start AND q."time" < :end AND q.agent IS NOT NULL
  AND (f.fam IN ('login', 'pause') OR q.queuename IS NOT NULL)
UNION ALL
SELECT 'login', b.* FROM names n
JOIN global_spans sp ON sp.fam = 'login' AND sp.agent = n.agent AND sp.since < :start
CROSS JOIN LATERAL (
    SELECT q.agent, q.queuename, q."time", q.id, q.event, q.data1, q.data2 FROM queue_log q
    WHERE q.agent = n.agent AND q.event IN ('AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF')
      AND q."time" < :start AND q."time" <= sp.till
    ORDER BY q."time" DESC LIMIT 1) b
UNION ALL
-- the first login row after the range: a logoff there may say (logged seconds) that the
-- session began inside the range
SELECT 'login', a.* FROM names n
JOIN global_spans sp ON sp.fam = 'login' AND sp.agent = n.agent AND sp.till >= :end
CROSS JOIN LATERAL (
    SELECT q.agent, q.queuename, q."time", q.id, q.event, q.data1, q.data2 FROM queue_log q
    WHERE q.agent = n.agent AND q.event IN ('AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF')
      AND q."time" >= :end AND q."time" >= sp.since
    ORDER BY q."time" LIMIT 1) a
UNION ALL
SELECT 'pause', b.* FROM names n
JOIN global_spans sp ON sp.fam = 'pause' AND sp.agent = n.agent AND sp.since < :start
CROSS JOIN LATERAL (
    SELECT q.agent, q.queuename, q."time", q.id, q.event, q.data1, q.data2 FROM queue_log q
    WHERE q.agent = n.agent AND q.event IN ('PAUSEALL', 'UNPAUSEALL', 'AGENTCALLBACKLOGOFF')
      AND q."time" < :start AND q."time" <= sp.till
    ORDER BY q."time" DESC LIMIT 1) b
UNION ALL
SELECT 'member', b.* FROM names n
JOIN spans sp ON sp.fam = 'member' AND sp.agent = n.agent AND sp.since < :start
JOIN queues qu ON qu.name = sp.queuename
CROSS JOIN LATERAL (
    SELECT q.agent, q.queuename, q."time", q.id, q.event, q.data1, q.data2 FROM queue_log q
    WHERE q.agent = n.agent AND q.queuename = qu.name
      AND q.event IN ('ADDMEMBER', 'REMOVEMEMBER') AND q."time" < :start
      AND q."time" <= sp.till
    ORDER BY q."time" DESC LIMIT 1) b
UNION ALL
SELECT 'qpause', b.* FROM names n
JOIN spans sp ON sp.fam = 'qpause' AND sp.agent = n.agent AND sp.since < :start
JOIN queues qu ON qu.name = sp.queuename
CROSS JOIN LATERAL (
    SELECT q.agent, q.queuename, q."time", q.id, q.event, q.data1, q.data2 FROM queue_log q
    WHERE q.agent = n.agent AND q.queuename = qu.name
      AND q.event IN ('PAUSE', 'UNPAUSE', 'ADDMEMBER', 'REMOVEMEMBER') AND q."time" < :start
      AND q."time" <= sp.till
    ORDER BY q."time" DESC LIMIT 1) b
UNION ALL
-- wrap-ups are not a state but a planned duration: those begun up to :wrapup_lookback
-- before the range may still run into it
SELECT 'wrapup', q.agent, q.queuename, q."time", q.id, q.event, q.data1, q.data2
FROM queue_log q
WHERE q.event = 'WRAPUPSTART' AND q.agent IS NOT NULL
  AND q."time" >= CAST(:start AS timestamptz) - CAST(:wrapup_lookback AS interval)
  AND q."time" < :end

-- name: register_unknown_agents
-- keep_unknown_agents: every agent name with rows here that no stat_agent row has becomes
-- one (master tenant, no confd id, deleted when a config exists, like a queue only known
-- from the log), so its times and calls are kept. Runs under the dimension lock.
INSERT INTO stat_agent (name, tenant_uuid, agent_id, deleted)
SELECT DISTINCT e.agent, :master_tenant, CAST(NULL AS integer), CAST(:has_config AS boolean)
FROM agent_ev e
WHERE e.agent NOT IN ('NONE', '') AND length(e.agent) <= 128
  AND NOT EXISTS (SELECT 1 FROM stat_agent s WHERE s.name = e.agent)
  AND NOT EXISTS (SELECT 1 FROM stat_agent s
                  WHERE 'Local/id-' || s.agent_id || '@agentcallback' = e.agent)

-- name: aliases
-- The names an agent appears under: Agent/<n>, and Local/id-<confd id>@agentcallback when
-- Wazo adds it to a queue by interface. Contexts give the tenant of a login (data1 is
-- exten@context); without a "contexts" list, context 'default' is in the agents' tenant.
CREATE TEMP TABLE agent_alias ON COMMIT DROP AS
SELECT a.name AS alias, a.id AS stat_agent_id, a.tenant_uuid, a.deleted FROM stat_agent a
UNION ALL
SELECT 'Local/id-' || a.agent_id || '@agentcallback', a.id, a.tenant_uuid, a.deleted
FROM stat_agent a WHERE a.agent_id IS NOT NULL;
CREATE INDEX ON agent_alias (alias);
CREATE TEMP TABLE agent_context ON COMMIT DROP AS
SELECT c.item->>'name' AS name, c.item->>'tenant_uuid' AS tenant_uuid
FROM confd_snapshot s,
     jsonb_array_elements(CASE WHEN jsonb_typeof(s.document->'contexts') = 'array'
                               THEN s.document->'contexts' ELSE '[]' END) c(item)
UNION
SELECT 'default', a.item->>'tenant_uuid'
FROM confd_snapshot s,
     jsonb_array_elements(CASE WHEN jsonb_typeof(s.document->'agents') = 'array'
                               THEN s.document->'agents' ELSE '[]' END) a(item)
WHERE jsonb_typeof(s.document->'contexts') IS DISTINCT FROM 'array'

-- name: resolve
-- Which stat_agent row a queue_log row is about. wazo-stat joins pauses, ongoing logins,
-- wrap-ups and memberships by name only, so one number in two tenants shares their times
-- (quirk Q9). We take the tenant the row implies: a login's context, else the queue's
-- tenant, else the tenant of the agent's last login before the row; an agent number that
-- exists in one tenant only is that agent. Deleted rows only when no live row matches.
--
-- Decided once per (agent name, hint) when the hint matches a row or the name has one
-- tenant (then the last login cannot change the answer); only the other rows (a number in
-- several tenants, no usable hint) look up their last login, one by one.
WITH hinted AS MATERIALIZED (
    SELECT ev.ctid AS row_ctid, ev.agent, ev."time", coalesce(
               CASE WHEN ev.event IN ('AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF') THEN (
                   SELECT min(c.tenant_uuid) FROM agent_context c
                   WHERE c.name = split_part(ev.data1, '@', 2)
                   HAVING count(DISTINCT c.tenant_uuid) = 1) END,
               (SELECT min(s.tenant_uuid) FROM stat_queue s
                WHERE s.name = ev.queuename AND NOT s.deleted)) AS hint
    FROM agent_ev ev
),
by_key AS MATERIALIZED (
    SELECT k.agent, k.hint, t.tenants,
           t.tenants = 1 OR EXISTS (SELECT 1 FROM agent_alias x
                                    WHERE x.alias = k.agent AND x.tenant_uuid = k.hint)
               AS decided,
           (SELECT x.stat_agent_id FROM agent_alias x
            WHERE x.alias = k.agent AND (x.tenant_uuid = k.hint OR t.tenants = 1)
            ORDER BY (x.tenant_uuid = k.hint) IS TRUE DESC, x.deleted, x.stat_agent_id DESC
            LIMIT 1) AS stat_agent_id
    FROM (SELECT DISTINCT agent, hint FROM hinted) k
    CROSS JOIN LATERAL (SELECT count(DISTINCT y.tenant_uuid) AS tenants FROM agent_alias y
                        WHERE y.alias = k.agent) t
)
UPDATE agent_ev e SET stat_agent_id = CASE WHEN b.decided OR b.tenants = 0 THEN b.stat_agent_id ELSE (
        SELECT x.stat_agent_id FROM agent_alias x
        WHERE x.alias = h.agent
          AND x.tenant_uuid = (
                   SELECT min(c.tenant_uuid) FROM agent_context c
                   WHERE c.name = split_part((
                       SELECT l.data1 FROM queue_log l
                       WHERE l.agent = h.agent
                         AND l.event IN ('AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF')
                         AND l."time" <= h."time"
                       ORDER BY l."time" DESC LIMIT 1), '@', 2)
                   HAVING count(DISTINCT c.tenant_uuid) = 1)
        ORDER BY x.deleted, x.stat_agent_id DESC
        LIMIT 1) END
FROM hinted h
JOIN by_key b ON b.agent = h.agent AND b.hint IS NOT DISTINCT FROM h.hint
WHERE e.ctid = h.row_ctid

-- name: segments
-- Raw intervals from the rows, per state machine (family) and agent (and queue):
--   login     a logoff with its logged seconds (data2 > 0, data1 set) is the session
--             [logoff - data2, logoff], as wazo-stat computes it; a login not followed by
--             a usable logoff is open until the agent's next login row or :horizon (a new
--             login shows the previous session was over: agentd refuses a double login)
--   pause     PAUSEALL -> next PAUSEALL / UNPAUSEALL / logoff of the agent, or :horizon
--   member    ADDMEMBER -> next ADDMEMBER / REMOVEMEMBER of the agent in the queue
--   qpause    PAUSE (or ADDMEMBER 'PAUSED') -> next PAUSE / UNPAUSE / ADDMEMBER /
--             REMOVEMEMBER of the agent in the queue (wazo-stat: only the next UNPAUSE)
--   wrapup    WRAPUPSTART -> + data1 seconds, globally and in the row's queue
-- One SELECT per kind over the rows (read once): each computes its bounds only for the
-- rows of its kind (a 7-way VALUES per row computed every bound for every row: 3x slower).
INSERT INTO agent_iv (kind, stat_agent_id, queuename, reason, s, e)
WITH x AS MATERIALIZED (
    SELECT ev.*,
           lead(ev."time") OVER w AS next_time,
           lead(ev.event) OVER w AS next_event,
           lead(CASE WHEN coalesce(ev.data1, '') <> '' THEN ql_int(ev.data2) END) OVER w
               AS next_logged,
           CASE WHEN ev.fam = 'wrapup' THEN ql_int(ev.data1) END AS wrapup_seconds
    FROM (SELECT DISTINCT ON (fam, row_id) * FROM agent_ev
          WHERE stat_agent_id IS NOT NULL ORDER BY fam, row_id) ev
    WINDOW w AS (PARTITION BY ev.fam, ev.stat_agent_id,
                              CASE WHEN ev.fam IN ('member', 'qpause') THEN ev.queuename END
                 ORDER BY ev."time", ev.row_id)
)
SELECT v.* FROM (
    SELECT 'login_raw' AS kind, x.stat_agent_id, CAST(NULL AS text) AS queuename,
           CAST(NULL AS text) AS reason, x."time" - make_interval(secs => ql_int(x.data2)) AS s,
           x."time" AS e
    FROM x
    WHERE x.fam = 'login' AND x.event = 'AGENTCALLBACKLOGOFF' AND coalesce(x.data1, '') <> ''
      AND ql_int(x.data2) > 0
    UNION ALL
    SELECT 'login_raw', x.stat_agent_id, NULL, NULL, x."time",
           coalesce(x.next_time, CAST(:horizon AS timestamptz))
    FROM x
    WHERE x.fam = 'login' AND x.event = 'AGENTCALLBACKLOGIN'
      AND (x.next_event IS DISTINCT FROM 'AGENTCALLBACKLOGOFF' OR coalesce(x.next_logged, 0) <= 0)
    UNION ALL
    SELECT 'pause_seg', x.stat_agent_id, NULL, coalesce(x.data1, ''), x."time",
           coalesce(x.next_time, CAST(:horizon AS timestamptz))
    FROM x WHERE x.fam = 'pause' AND x.event = 'PAUSEALL'
    UNION ALL
    SELECT 'member_raw', x.stat_agent_id, x.queuename, NULL, x."time",
           coalesce(x.next_time, CAST(:horizon AS timestamptz))
    FROM x WHERE x.fam = 'member' AND x.event = 'ADDMEMBER'
    UNION ALL
    SELECT 'qpause_seg', x.stat_agent_id, x.queuename, coalesce(x.data1, ''), x."time",
           coalesce(x.next_time, CAST(:horizon AS timestamptz))
    FROM x
    WHERE x.fam = 'qpause'
      AND (x.event = 'PAUSE' OR (x.event = 'ADDMEMBER' AND btrim(x.data1) = 'PAUSED'))
    UNION ALL
    SELECT 'wrapup', x.stat_agent_id, NULL, NULL, x."time",
           x."time" + make_interval(secs => x.wrapup_seconds)
    FROM x WHERE x.fam = 'wrapup' AND x.wrapup_seconds > 0
    UNION ALL
    SELECT 'qwrapup', x.stat_agent_id, x.queuename, NULL, x."time",
           x."time" + make_interval(secs => x.wrapup_seconds)
    FROM x WHERE x.fam = 'wrapup' AND x.wrapup_seconds > 0 AND x.queuename IS NOT NULL
) v
WHERE v.e > v.s

-- name: merge
-- Union of the :sources intervals per agent and queue (and reason when :by_reason) into
-- disjoint islands of kind :target (wazo-stat's _filter_overlap; for sums, touching
-- intervals may as well be one).
INSERT INTO agent_iv (kind, stat_agent_id, queuename, reason, s, e)
SELECT :target, stat_agent_id, queuename, reason_key, min(s), max(e)
FROM (
    SELECT y.*, count(*) FILTER (WHERE y.starts) OVER (
               PARTITION BY y.stat_agent_id, y.queuename, y.reason_key
               ORDER BY y.s, y.e ROWS UNBOUNDED PRECEDING) AS island
    FROM (
        SELECT z.*, z.s > coalesce(max(z.e) OVER (
                   PARTITION BY z.stat_agent_id, z.queuename, z.reason_key
                   ORDER BY z.s, z.e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                   '-infinity') AS starts
        FROM (SELECT i.stat_agent_id, i.queuename, i.s, i.e,
                     CASE WHEN :by_reason THEN i.reason END AS reason_key
              FROM agent_iv i WHERE i.kind = ANY(:sources)) z
    ) y
) islands
GROUP BY stat_agent_id, queuename, reason_key, island

-- name: intersect
-- :target = the agent's global :source intervals within each of its queue memberships
-- (per-queue login = login within membership; a PAUSEALL pauses the agent in the queues
-- he is a member of).
INSERT INTO agent_iv (kind, stat_agent_id, queuename, reason, s, e)
SELECT :target, g.stat_agent_id, m.queuename, g.reason, greatest(g.s, m.s), least(g.e, m.e)
FROM agent_iv g
JOIN agent_iv m ON m.kind = 'member' AND m.stat_agent_id = g.stat_agent_id
               AND g.s < m.e AND m.s < g.e
WHERE g.kind = :source

-- name: clear
DELETE FROM stat_agent_periodic WHERE "time" >= :start AND "time" < :end;
DELETE FROM stat_agent_pause_reason WHERE "time" >= :start AND "time" < :end

-- name: hourly
-- Each interval's share of every UTC hour of the range it touches:
-- min(e, hour end) - max(s, hour start), on the rows' own timestamps.
CREATE TEMP TABLE agent_hourly ON COMMIT DROP AS
SELECT h.hour, i.kind, i.stat_agent_id, i.queuename, i.reason,
       least(i.e, h.hour + interval '1 hour') - greatest(i.s, h.hour) AS d
FROM agent_iv i
CROSS JOIN LATERAL generate_series(
    date_trunc('hour', greatest(i.s, CAST(:start AS timestamptz)), 'UTC'),
    least(i.e, CAST(:end AS timestamptz)) - interval '1 microsecond',
    interval '1 hour') AS h(hour)
WHERE i.kind IN ('login', 'qlogin', 'pause', 'qpause', 'wrapup', 'qwrapup',
                 'pause_reason', 'qpause_reason')
  AND i.s < :end AND i.e > :start

-- name: insert_periodic
-- One row per hour and agent (global, stat_queue_id NULL) and per hour, agent and live
-- queue, when any of the three times is not zero. A queue unknown to the config (a deleted
-- stat_queue row) gets no per-queue row, as in wazo-stat.
INSERT INTO stat_agent_periodic ("time", login_time, pause_time, wrapup_time,
                                 stat_agent_id, stat_queue_id)
WITH live_queue AS (  -- the live stat_queue row of a name (the newest, should there be two)
    SELECT DISTINCT ON (name) name, id FROM stat_queue WHERE NOT deleted ORDER BY name, id DESC
)
SELECT t.hour,
       coalesce(sum(t.d) FILTER (WHERE t.kind IN ('login', 'qlogin')), interval '0'),
       coalesce(sum(t.d) FILTER (WHERE t.kind IN ('pause', 'qpause')), interval '0'),
       coalesce(sum(t.d) FILTER (WHERE t.kind IN ('wrapup', 'qwrapup')), interval '0'),
       t.stat_agent_id, sq.id
FROM agent_hourly t
LEFT JOIN live_queue sq ON sq.name = t.queuename
WHERE t.kind IN ('login', 'qlogin', 'pause', 'qpause', 'wrapup', 'qwrapup')
  AND (t.queuename IS NULL OR sq.id IS NOT NULL)
GROUP BY t.hour, t.stat_agent_id, sq.id
HAVING sum(t.d) > interval '0'
ORDER BY t.hour, t.stat_agent_id, sq.id NULLS FIRST

-- name: insert_reasons
INSERT INTO stat_agent_pause_reason ("time", stat_agent_id, stat_queue_id, reason, pause_time)
WITH live_queue AS (  -- the live stat_queue row of a name (the newest, should there be two)
    SELECT DISTINCT ON (name) name, id FROM stat_queue WHERE NOT deleted ORDER BY name, id DESC
)
SELECT t.hour, t.stat_agent_id, sq.id, t.reason, sum(t.d)
FROM agent_hourly t
LEFT JOIN live_queue sq ON sq.name = t.queuename
WHERE t.kind IN ('pause_reason', 'qpause_reason')
  AND (t.queuename IS NULL OR sq.id IS NOT NULL)
GROUP BY t.hour, t.stat_agent_id, sq.id, t.reason
HAVING sum(t.d) > interval '0'

-- name: summary
-- Per hour of [start, end) and (grouping() = 1) the whole range, in one scan
-- (run_metadata.py): every hour's materialization gets its own figures. stat_agent_periodic."time" is the hour.
-- CAST(extract() AS numeric): exact sums on every version (double precision before 14).
SELECT p."time" AS hour, grouping(p."time") = 1 AS whole_range,
       count(DISTINCT p.stat_agent_id) AS agents,
       count(*) AS n,
       coalesce(sum(CAST(extract(epoch FROM p.login_time) AS numeric)) FILTER (WHERE p.stat_queue_id IS NULL), 0)
           AS login_s,
       coalesce(sum(CAST(extract(epoch FROM p.pause_time) AS numeric)) FILTER (WHERE p.stat_queue_id IS NULL), 0)
           AS pause_s,
       coalesce(sum(CAST(extract(epoch FROM p.wrapup_time) AS numeric)) FILTER (WHERE p.stat_queue_id IS NULL), 0)
           AS wrapup_s
FROM stat_agent_periodic p WHERE p."time" >= :start AND p."time" < :end
GROUP BY GROUPING SETS ((p."time"), ())

-- name: reasons_summary
-- Per hour of [start, end) and (grouping() = 1) the whole range, in one scan
-- (run_metadata.py): every hour's materialization gets its own figures.
SELECT "time" AS hour, grouping("time") = 1 AS whole_range, reason,
       sum(CAST(extract(epoch FROM pause_time) AS numeric)) AS seconds
FROM stat_agent_pause_reason
WHERE "time" >= :start AND "time" < :end AND stat_queue_id IS NULL
GROUP BY GROUPING SETS (("time", reason), (reason)) ORDER BY reason
