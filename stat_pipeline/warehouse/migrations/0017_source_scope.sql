-- Several PBXs, one warehouse (issue 15): every table a run replaces gets the scope of the
-- source its rows are of. queue_log and queue_log_rejects have it since 0002.
--
-- * classified_calls.source: callids and row ids of two PBXs never meet (a call is keyed by
--   source, callid, queue);
-- * stat_queue / stat_agent.source: the queue `sales` of PBX A and of PBX B are two rows,
--   each in its source's tenant; the dimension rules run per source (dimensions.sql);
-- * stat_call_on_queue / stat_queue_periodic / stat_agent_periodic / stat_agent_pause_reason
--   .source: a run of one source replaces that source's rows of its hours and no other's.
--   A column rather than a side table or a join through stat_queue_id: the delete of a
--   source's hours stays one predicate, and rows without a queue (stat_queue_id NULL) have
--   a scope too. Nullable and last: Wazo's readers (call-logd, reports) name their columns
--   and see Wazo's tables unchanged; rows written by anything else than us have none;
-- * confd_snapshot: one stored config per source (was one row, `singleton`);
-- * partition_writes: the ledger is per source (healing.py heals a source's hours alone).
--
-- Existing rows are of the warehouse's one source so far: the name queue_log holds (one
-- index probe each way, not a scan). ADD COLUMN with a constant default is instant on
-- PostgreSQL 11+ (no rewrite of a large classified_calls); the default is dropped at once,
-- it only labels the rows already there. An empty warehouse gets '' (no rows to label).
DO $scope$
DECLARE
    first_source text := (SELECT min(source) FROM queue_log);
    last_source  text := (SELECT max(source) FROM queue_log);
    label        text;
    t            text;
BEGIN
    IF first_source IS DISTINCT FROM last_source THEN
        RAISE EXCEPTION USING MESSAGE = 'queue_log holds several sources (' || first_source
            || ' .. ' || last_source || ') before migration 0017';
    END IF;
    label := coalesce(first_source, '');
    FOREACH t IN ARRAY ARRAY['classified_calls', 'stat_queue', 'stat_agent',
                             'stat_call_on_queue', 'stat_queue_periodic',
                             'stat_agent_periodic', 'stat_agent_pause_reason',
                             'confd_snapshot', 'partition_writes'] LOOP
        -- (no format(): the runner's driver reads percent signs)
        EXECUTE 'ALTER TABLE ' || quote_ident(t) || ' ADD COLUMN source text DEFAULT '
                || quote_literal(label);
        EXECUTE 'ALTER TABLE ' || quote_ident(t) || ' ALTER COLUMN source DROP DEFAULT';
    END LOOP;
END
$scope$;

-- ours: always written with their source
ALTER TABLE classified_calls ALTER COLUMN source SET NOT NULL;
ALTER TABLE confd_snapshot ALTER COLUMN source SET NOT NULL;
ALTER TABLE partition_writes ALTER COLUMN source SET NOT NULL;

ALTER TABLE confd_snapshot DROP CONSTRAINT confd_snapshot_pkey;
ALTER TABLE confd_snapshot ALTER COLUMN singleton DROP DEFAULT;
ALTER TABLE confd_snapshot DROP COLUMN singleton;
ALTER TABLE confd_snapshot ADD PRIMARY KEY (source);

ALTER TABLE partition_writes DROP CONSTRAINT partition_writes_pkey;
ALTER TABLE partition_writes ADD PRIMARY KEY (asset, source, hour);

-- the dimension rules look names up within a source
CREATE INDEX stat_queue__source_name ON stat_queue (source, name);
CREATE INDEX stat_agent__source_name ON stat_agent (source, name);
