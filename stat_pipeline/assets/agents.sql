-- stat_agent_periodic for the hours of [:start, :end), the way wazo-stat's section 9
-- (wazo_stat_algorithm.md) computes it, but on whole UTC hours and with the state carried
-- from before the range looked up in the rows (so the result for an hour does not depend on
-- the run that computed it). Statements run in this order in one transaction:
--   prepare -> collect -> [register_unknown_agents] -> aliases -> resolve -> segments
--   -> merge / intersect (several times, see agents.py) -> clear -> insert_hours.
--
-- Intervals live in agent_iv as (kind, agent, queue, reason, s, e): every open state is a
-- *segment* from its opening row to the next row of the same state machine (or :horizon,
-- the instant up to which the source is known), then merged into islands per key.
-- Wrap-ups, which are never merged, stay rows of agent_ev, read where they are summed.

-- name: prepare
CREATE TEMP TABLE agent_ev (
    fam           text,        -- login | pause | member | qpause | wrapup
    agent         text,        -- as written in queue_log
    queuename     text,
    "time"        timestamptz,
    row_id        bigint,
    event         text,
    data1         text,
    hint          text,        -- the tenant the row implies (resolve), NULL: none
    seconds       integer,     -- a wrap-up's planned seconds, a logoff's logged seconds
    stat_agent_id integer      -- set by resolve for the rows of by_last_login keys only
) ON COMMIT DROP;
CREATE TEMP TABLE agent_iv (
    kind          text,
    stat_agent_id integer,
    queuename     text,        -- NULL: the agent's global row
    reason        text,
    s             timestamptz,
    e             timestamptz
) ON COMMIT DROP;
-- Contexts give the tenant of a login (data1 is exten@context); without a "contexts" list,
-- context 'default' is in the agents' tenant.
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
--
-- The range's rows and the wrap-ups begun up to :wrapup_lookback before it are read in one
-- scan (two scans of queue_log before). Each row also gets here, from joins to two small
-- tables rather than look-ups per row, the tenant it implies (resolve) and its seconds as
-- an integer (segments) when it has some.
--
-- Each (fam, row_id) comes out once, which segments relies on: the range's rows and the
-- probes' rows are disjoint in time, each probe returns one row per name (and queue), the
-- names are distinct (UNION), and fams holds an (event, fam) pair once.
INSERT INTO agent_ev (fam, agent, queuename, "time", row_id, event, data1, hint, seconds)
WITH fams(event, fam) AS (VALUES
        ('AGENTCALLBACKLOGIN', 'login'), ('AGENTCALLBACKLOGOFF', 'login'),
        -- a logoff also ends a pause never unpaused: the agent left the queues
        ('PAUSEALL', 'pause'), ('UNPAUSEALL', 'pause'), ('AGENTCALLBACKLOGOFF', 'pause'),
        ('ADDMEMBER', 'member'), ('REMOVEMEMBER', 'member'),
        -- a member removed from a queue is no longer paused in it; one added again is
        -- paused only when added paused (ADDMEMBER 'PAUSED', Asterisk 11+)
        ('PAUSE', 'qpause'), ('UNPAUSE', 'qpause'), ('ADDMEMBER', 'qpause'),
        ('REMOVEMEMBER', 'qpause'),
        -- wrap-ups are not a state but a planned duration: those begun up to
        -- :wrapup_lookback before the range may still run into it
        ('WRAPUPSTART', 'wrapup')),
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
queues AS (SELECT DISTINCT name FROM stat_queue WHERE NOT deleted),
found AS (
    SELECT f.fam, q.agent, q.queuename, q."time", q.id, q.event, q.data1, q.data2
    FROM queue_log q JOIN fams f ON f.event = q.event
    WHERE q."time" >= CAST(:start AS timestamptz) - CAST(:wrapup_lookback AS interval)
      AND q."time" < :end AND q.agent IS NOT NULL
      AND (q."time" >= :start OR f.fam = 'wrapup')
      AND (f.fam IN ('login', 'pause', 'wrapup') OR q.queuename IS NOT NULL)
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
),
-- the tenant a login's context names, when it names exactly one
context_tenant AS (
    SELECT name, min(tenant_uuid) AS tenant_uuid FROM agent_context
    GROUP BY name HAVING count(DISTINCT tenant_uuid) = 1
),
queue_tenant AS (SELECT name, min(tenant_uuid) AS tenant_uuid FROM stat_queue
                 WHERE NOT deleted GROUP BY name)
SELECT r.fam, r.agent, r.queuename, r."time", r.id, r.event, r.data1, r.hint,
       -- ql_int (0016) for all but the plain 1-9 digit numbers, which it reads as this cast
       -- does (ql_int is PL/pgSQL: 0.1 s for the 48,000 wrap-ups of 30 days)
       CASE WHEN length(r.seconds) BETWEEN 1 AND 9 AND ltrim(r.seconds, '0123456789') = ''
            THEN CAST(r.seconds AS integer) ELSE ql_int(r.seconds) END
FROM (
    SELECT r.*,
           coalesce(ct.tenant_uuid, qt.tenant_uuid) AS hint,
           CASE WHEN r.fam = 'wrapup' THEN r.data1
                -- the logged seconds of a logoff (used only with its context set)
                WHEN r.fam = 'login' AND r.event = 'AGENTCALLBACKLOGOFF'
                     AND coalesce(r.data1, '') <> '' THEN r.data2 END AS seconds
    FROM found r
    LEFT JOIN context_tenant ct
           ON ct.name = CASE WHEN r.event IN ('AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF')
                             THEN split_part(r.data1, '@', 2) END
    LEFT JOIN queue_tenant qt ON qt.name = r.queuename
) r

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
-- Wazo adds it to a queue by interface.
CREATE TEMP TABLE agent_alias ON COMMIT DROP AS
SELECT a.name AS alias, a.id AS stat_agent_id, a.tenant_uuid, a.deleted FROM stat_agent a
UNION ALL
SELECT 'Local/id-' || a.agent_id || '@agentcallback', a.id, a.tenant_uuid, a.deleted
FROM stat_agent a WHERE a.agent_id IS NOT NULL;
CREATE INDEX ON agent_alias (alias)

-- name: resolve
-- Which stat_agent row a queue_log row is about. wazo-stat joins pauses, ongoing logins,
-- wrap-ups and memberships by name only, so one number in two tenants shares their times
-- (quirk Q9). We take the tenant the row implies (its hint, set by collect): a login's
-- context, else the queue's tenant, else the tenant of the agent's last login before the
-- row; an agent number that exists in one tenant only is that agent. Deleted rows only
-- when no live row matches.
--
-- Decided once per (agent name, hint), in agent_key, when the hint matches a row or the
-- name has one tenant (then the last login cannot change the answer); segments joins it.
-- Only the rows of the other keys (a number in several tenants, no usable hint:
-- by_last_login) look up their last login, one by one, and get their own stat_agent_id
-- (none, usually). Not an UPDATE of every row of agent_ev (0.57 s of 30 days).
CREATE TEMP TABLE agent_key ON COMMIT DROP AS
SELECT k.agent, k.hint,
       NOT (t.tenants <= 1 OR EXISTS (SELECT 1 FROM agent_alias x
                                      WHERE x.alias = k.agent AND x.tenant_uuid = k.hint))
           AS by_last_login,
       (SELECT x.stat_agent_id FROM agent_alias x
        WHERE x.alias = k.agent AND (x.tenant_uuid = k.hint OR t.tenants = 1)
        ORDER BY (x.tenant_uuid = k.hint) IS TRUE DESC, x.deleted, x.stat_agent_id DESC
        LIMIT 1) AS stat_agent_id
FROM (SELECT DISTINCT agent, hint FROM agent_ev) k
CROSS JOIN LATERAL (SELECT count(DISTINCT y.tenant_uuid) AS tenants FROM agent_alias y
                    WHERE y.alias = k.agent) t;
-- (temporary tables are never analyzed by autovacuum: without the counts the planner sorted
-- all of agent_ev to merge-join these few keys in segments, and nested-looped the wrap-ups
-- over them in insert_hours. agent_ev coarsely, as sql.analyze(coarse=True): a few ms)
ANALYZE agent_key;
SET LOCAL default_statistics_target = 10;
ANALYZE agent_ev;
RESET default_statistics_target;
-- agent_ev's rows with their stat_agent_id (NULL: none), for segments and insert_hours
CREATE TEMP VIEW agent_row AS
SELECT e.fam, e.queuename, e."time", e.row_id, e.event, e.data1, e.seconds,
       CASE WHEN k.by_last_login THEN e.stat_agent_id ELSE k.stat_agent_id END AS stat_agent_id
FROM agent_ev e
-- (agent, hint) with a NULL hint as a key of its own, in hashable equalities
JOIN agent_key k ON k.agent = e.agent AND (k.hint IS NULL) = (e.hint IS NULL)
                AND coalesce(k.hint, '') = coalesce(e.hint, '');
UPDATE agent_ev e SET stat_agent_id = (
        SELECT x.stat_agent_id FROM agent_alias x
        WHERE x.alias = e.agent
          AND x.tenant_uuid = (
                   SELECT min(c.tenant_uuid) FROM agent_context c
                   WHERE c.name = split_part((
                       SELECT l.data1 FROM queue_log l
                       WHERE l.agent = e.agent
                         AND l.event IN ('AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF')
                         AND l."time" <= e."time"
                       ORDER BY l."time" DESC LIMIT 1), '@', 2)
                   HAVING count(DISTINCT c.tenant_uuid) = 1)
        ORDER BY x.deleted, x.stat_agent_id DESC
        LIMIT 1)
FROM agent_key k
-- (uncorrelated: a one-time test, so that without such a key agent_ev is not read at all)
WHERE EXISTS (SELECT 1 FROM agent_key WHERE by_last_login)
  AND k.by_last_login AND k.agent = e.agent AND (k.hint IS NULL) = (e.hint IS NULL)
  AND coalesce(k.hint, '') = coalesce(e.hint, '')

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
--   wrapup    WRAPUPSTART -> + data1 seconds, globally and in the row's queue: not here
--             (insert_hours reads them from agent_row: never merged, no next row needed)
-- One pass over the state rows of agent_row (agent_ev, each row's agent resolved by a hash
-- join to agent_key): one sort for the next row of the same state machine, and each row
-- gives at most one interval, its kind and bounds computed by CASE for that row only.
WITH x AS (
    SELECT ev.*,
           lead(ev."time") OVER w AS next_time,
           lead(ev.event) OVER w AS next_event,
           lead(ev.seconds) OVER w AS next_logged
    FROM agent_row ev
    WHERE ev.fam <> 'wrapup' AND ev.stat_agent_id IS NOT NULL
    WINDOW w AS (PARTITION BY ev.fam, ev.stat_agent_id,
                              CASE WHEN ev.fam IN ('member', 'qpause') THEN ev.queuename END
                 ORDER BY ev."time", ev.row_id)
)
INSERT INTO agent_iv (kind, stat_agent_id, queuename, reason, s, e)
SELECT v.kind, v.stat_agent_id, v.queuename, v.reason, v.s, v.e
FROM (
    SELECT CASE
               WHEN x.fam = 'login' AND x.event = 'AGENTCALLBACKLOGOFF' THEN
                   CASE WHEN x.seconds > 0 THEN 'login_raw' END
               WHEN x.fam = 'login' AND x.event = 'AGENTCALLBACKLOGIN' THEN
                   CASE WHEN x.next_event IS DISTINCT FROM 'AGENTCALLBACKLOGOFF'
                             OR coalesce(x.next_logged, 0) <= 0 THEN 'login_raw' END
               WHEN x.fam = 'pause' AND x.event = 'PAUSEALL' THEN 'pause_seg'
               WHEN x.fam = 'member' AND x.event = 'ADDMEMBER' THEN 'member_raw'
               WHEN x.fam = 'qpause' AND (x.event = 'PAUSE' OR (x.event = 'ADDMEMBER'
                                                               AND btrim(x.data1) = 'PAUSED'))
                   THEN 'qpause_seg'
           END AS kind,
           x.stat_agent_id,
           CASE WHEN x.fam IN ('member', 'qpause') THEN x.queuename END AS queuename,
           CASE WHEN x.fam IN ('pause', 'qpause') THEN coalesce(x.data1, '') END AS reason,
           -- a logoff's session ends at the logoff; every other interval at the next row
           CASE WHEN x.event = 'AGENTCALLBACKLOGOFF'
                THEN x."time" - make_interval(secs => x.seconds) ELSE x."time" END AS s,
           CASE WHEN x.event = 'AGENTCALLBACKLOGOFF' THEN x."time"
                ELSE coalesce(x.next_time, CAST(:horizon AS timestamptz)) END AS e
    FROM x
) v
WHERE v.kind IS NOT NULL AND v.e > v.s

-- name: merge
-- For each i, the union of the intervals of kind :sources[i] per agent and queue (and
-- reason when :by_reason[i]) into disjoint islands of kind :targets[i] (wazo-stat's
-- _filter_overlap; for sums, touching intervals may as well be one). A target may have
-- several source kinds (one i each); several targets in one pass over agent_iv (one sort),
-- each target its own partitions.
INSERT INTO agent_iv (kind, stat_agent_id, queuename, reason, s, e)
SELECT target, stat_agent_id, queuename, reason_key, min(s), max(e)
FROM (
    SELECT y.*, count(*) FILTER (WHERE y.starts) OVER (
               PARTITION BY y.target, y.stat_agent_id, y.queuename, y.reason_key
               ORDER BY y.s, y.e ROWS UNBOUNDED PRECEDING) AS island
    FROM (
        SELECT z.*, z.s > coalesce(max(z.e) OVER (
                   PARTITION BY z.target, z.stat_agent_id, z.queuename, z.reason_key
                   ORDER BY z.s, z.e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                   '-infinity') AS starts
        FROM (SELECT m.target, i.stat_agent_id, i.queuename, i.s, i.e,
                     CASE WHEN m.by_reason THEN i.reason END AS reason_key
              FROM agent_iv i
              JOIN unnest(CAST(:targets AS text[]), CAST(:sources AS text[]),
                          CAST(:by_reason AS boolean[])) AS m(target, source, by_reason)
                ON m.source = i.kind) z
    ) y
) islands
GROUP BY target, stat_agent_id, queuename, reason_key, island

-- name: intersect
-- For each i, :targets[i] = the agent's global :sources[i] intervals within each of its
-- queue memberships (per-queue login = login within membership; a PAUSEALL pauses the
-- agent in the queues he is a member of); all targets in one statement.
INSERT INTO agent_iv (kind, stat_agent_id, queuename, reason, s, e)
SELECT t.target, g.stat_agent_id, m.queuename, g.reason, greatest(g.s, m.s), least(g.e, m.e)
FROM agent_iv g
JOIN unnest(CAST(:targets AS text[]), CAST(:sources AS text[])) AS t(target, source)
  ON t.source = g.kind
JOIN agent_iv m ON m.kind = 'member' AND m.stat_agent_id = g.stat_agent_id
               AND g.s < m.e AND m.s < g.e

-- name: clear
DELETE FROM stat_agent_periodic WHERE "time" >= :start AND "time" < :end;
DELETE FROM stat_agent_pause_reason WHERE "time" >= :start AND "time" < :end

-- name: insert_hours
-- One row per hour and agent (global, stat_queue_id NULL) and per hour, agent and live
-- queue, when any of the three times is not zero; and the pause time per reason. Each
-- interval's share of every UTC hour of the range it touches is
-- min(e, hour end) - max(s, hour start), on the rows' own timestamps. A queue unknown to the
-- config (a deleted stat_queue row) gets no per-queue row, as in wazo-stat.
--
-- Both tables in one statement, from the intervals as they are (no table of hourly shares
-- written and read twice), in the order of their ids. A wrap-up is split into hours once
-- and summed per hour, agent and queue, then per hour and agent (GROUPING SETS), instead
-- of being split twice (global and per queue); queue names become ids after the sums (a
-- live queue's name is one id). Then what the foreign keys of both tables check per row,
-- once for all the rows written: every stat_agent_id / stat_queue_id exists, and the
-- referenced rows are locked FOR KEY SHARE until the commit (as the per-row checks lock
-- them), so that no concurrent transaction can remove them (agents.py runs this with the
-- per-row checks off where it may). Returns the referenced ids that do not exist.
WITH live_queue AS (  -- the live stat_queue row of a name (the newest, should there be two)
    SELECT DISTINCT ON (name) name, id FROM stat_queue WHERE NOT deleted ORDER BY name, id DESC
),
shares AS (  -- (kind, agent, queue or NULL, hour, time): login, pause and wrap-up
    SELECT i.kind, i.stat_agent_id, i.queuename, h.hour,
           least(i.e, h.hour + interval '1 hour') - greatest(i.s, h.hour) AS d
    FROM agent_iv i
    CROSS JOIN LATERAL generate_series(
        utc_hour(greatest(i.s, CAST(:start AS timestamptz))),
        least(i.e, CAST(:end AS timestamptz)) - interval '1 microsecond',
        interval '1 hour') AS h(hour)
    WHERE i.kind IN ('login', 'qlogin', 'pause', 'qpause') AND i.s < :end AND i.e > :start
    UNION ALL
    SELECT 'wrapup', w.stat_agent_id, CASE WHEN grouping(w.queuename) = 0 THEN w.queuename END,
           h.hour, sum(least(w.e, h.hour + interval '1 hour') - greatest(w.s, h.hour))
    FROM (SELECT r.stat_agent_id, r.queuename, r."time" AS s,
                 r."time" + make_interval(secs => r.seconds) AS e
          FROM agent_row r
          WHERE r.fam = 'wrapup' AND r.seconds > 0 AND r.stat_agent_id IS NOT NULL) w
    CROSS JOIN LATERAL generate_series(
        utc_hour(greatest(w.s, CAST(:start AS timestamptz))),
        least(w.e, CAST(:end AS timestamptz)) - interval '1 microsecond',
        interval '1 hour') AS h(hour)
    WHERE w.s < :end AND w.e > :start
    GROUP BY GROUPING SETS ((h.hour, w.stat_agent_id), (h.hour, w.stat_agent_id, w.queuename))
    HAVING grouping(w.queuename) = 1 OR w.queuename IS NOT NULL  -- no queue: global only
),
per_name AS (
    SELECT t.hour, t.stat_agent_id, t.queuename,
           coalesce(sum(t.d) FILTER (WHERE t.kind IN ('login', 'qlogin')), interval '0') AS login,
           coalesce(sum(t.d) FILTER (WHERE t.kind IN ('pause', 'qpause')), interval '0') AS pause,
           coalesce(sum(t.d) FILTER (WHERE t.kind = 'wrapup'), interval '0') AS wrapup
    FROM shares t
    GROUP BY t.hour, t.stat_agent_id, t.queuename
    HAVING sum(t.d) > interval '0'
),
periodic AS (
    INSERT INTO stat_agent_periodic ("time", login_time, pause_time, wrapup_time,
                                     stat_agent_id, stat_queue_id)
    SELECT p.hour, p.login, p.pause, p.wrapup, p.stat_agent_id, sq.id
    FROM per_name p
    LEFT JOIN live_queue sq ON sq.name = p.queuename
    WHERE p.queuename IS NULL OR sq.id IS NOT NULL
    ORDER BY p.hour, p.stat_agent_id, sq.id NULLS FIRST
    RETURNING stat_agent_id, stat_queue_id
),
reasons AS (
    INSERT INTO stat_agent_pause_reason ("time", stat_agent_id, stat_queue_id, reason,
                                         pause_time)
    SELECT r.hour, r.stat_agent_id, sq.id, r.reason, r.pause
    FROM (
        SELECT h.hour, i.stat_agent_id, i.queuename, i.reason,
               sum(least(i.e, h.hour + interval '1 hour') - greatest(i.s, h.hour)) AS pause
        FROM agent_iv i
        CROSS JOIN LATERAL generate_series(
            utc_hour(greatest(i.s, CAST(:start AS timestamptz))),
            least(i.e, CAST(:end AS timestamptz)) - interval '1 microsecond',
            interval '1 hour') AS h(hour)
        WHERE i.kind IN ('pause_reason', 'qpause_reason') AND i.s < :end AND i.e > :start
        GROUP BY h.hour, i.stat_agent_id, i.queuename, i.reason
    ) r
    LEFT JOIN live_queue sq ON sq.name = r.queuename
    WHERE r.pause > interval '0' AND (r.queuename IS NULL OR sq.id IS NOT NULL)
    ORDER BY r.hour, r.stat_agent_id, sq.id NULLS FIRST, r.reason
    RETURNING stat_agent_id, stat_queue_id
),
referenced AS (
    SELECT stat_agent_id, stat_queue_id FROM periodic
    UNION
    SELECT stat_agent_id, stat_queue_id FROM reasons
),
locked_agents AS (
    SELECT a.id FROM stat_agent a WHERE a.id IN (SELECT stat_agent_id FROM referenced)
    FOR KEY SHARE OF a
),
locked_queues AS (
    SELECT q.id FROM stat_queue q WHERE q.id IN (SELECT stat_queue_id FROM referenced)
    FOR KEY SHARE OF q
)
SELECT (SELECT array_agg(DISTINCT r.stat_queue_id ORDER BY r.stat_queue_id) FROM referenced r
        WHERE r.stat_queue_id IS NOT NULL
          AND r.stat_queue_id NOT IN (SELECT id FROM locked_queues)) AS missing_queue_ids,
       (SELECT array_agg(DISTINCT r.stat_agent_id ORDER BY r.stat_agent_id) FROM referenced r
        WHERE r.stat_agent_id IS NOT NULL
          AND r.stat_agent_id NOT IN (SELECT id FROM locked_agents)) AS missing_agent_ids

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
