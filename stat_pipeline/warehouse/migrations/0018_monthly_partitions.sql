-- Monthly partitions for the three tables that grow with the source (issue 17): queue_log
-- by "time", classified_calls by call_time, queue_log_rejects by hour, each RANGE-partitioned
-- by UTC month. An hour's statements already name their time window; with partitions its
-- reads, deletes and index descents stay within one month's table whatever the history, and
-- a month past the retention (stat_pipeline/retention.py) is dropped as a table instead of
-- deleted row by row, while the stat_* statistics stay.
--
-- Each table is rebuilt generically from what it is at this point: its columns (with their
-- defaults, generated expressions, NOT NULL and CHECK constraints), its indexes (their
-- definitions as PostgreSQL prints them), its comments, whatever earlier migrations (0017
-- included) made of it. One rule changes: PostgreSQL wants the partition key in every unique
-- index of a partitioned table, so a unique index without it gets it appended (the only one
-- today is queue_log_rejects' primary key on id, a sequence: (id, hour) is as unique).
--
-- No write can fail for lack of a partition: queue_log and classified_calls are tiled from
-- MINVALUE to MAXVALUE (<table>_before, the months, <table>_after: range partitions only, so
-- that PostgreSQL reads them in order, see stat_create_month_partition), and
-- queue_log_rejects has a DEFAULT partition, where its rows with NULL hour (lines without a
-- usable time) live. stat_prepare_hours(), called by every hourly write (warehouse/writes.py)
-- under the warehouse's write lock, creates the months of the hours it writes before the
-- write (moving into a new month's table any row a catch-all held for it), and refuses hours
-- of a month whose raw rows retention dropped.
--
-- PostgreSQL 13 to 18: declarative partitioning, LIKE ... INCLUDING GENERATED (12+), ATTACH
-- PARTITION with a default partition (11+), unique indexes on partitioned tables (11+).

-- Months whose raw rows (queue_log, classified_calls, queue_log_rejects) retention dropped.
-- Their statistics (stat_*) are kept; re-materializing any hour of them is refused, since
-- it would rebuild the statistics from rows that are no longer there.
CREATE TABLE raw_months_dropped (
    month             date        PRIMARY KEY,  -- first day of the UTC month
    dropped_at        timestamptz NOT NULL DEFAULT now(),
    retention_months  integer     NOT NULL
);

-- The tables that are partitioned, and by which column.
CREATE TABLE partitioned_tables (
    table_name  text PRIMARY KEY,
    key_column  text NOT NULL
);
INSERT INTO partitioned_tables VALUES
    ('queue_log', 'time'), ('classified_calls', 'call_time'), ('queue_log_rejects', 'hour');

-- format() whose placeholders are written @I, @L, @s: the migration runner hands this file
-- to psycopg2 with parameters, which would read a percent sign as one of its own.
CREATE FUNCTION stat_sql_format(template text, VARIADIC args text[]) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT format(replace(template, '@', chr(37)), VARIADIC args)
$$;

-- The UTC month [lo, hi) that holds ts.
CREATE FUNCTION stat_month_start(ts timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT date_trunc('month', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
$$;

-- The indexes of a partitioned table on one of its partitions, before it is attached (ATTACH
-- then adopts them instead of building its own), named after the table's own indexes with a
-- suffix: a unique violation then names the index the table's readers know
-- (queue_log__time_row_p2024_03, not queue_log_p2024_03_time_row_hash_idx).
CREATE FUNCTION stat_create_partition_indexes(table_name text, part text, suffix text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    ix record;
BEGIN
    FOR ix IN SELECT c.relname, pg_get_indexdef(i.indexrelid) AS def
              FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = to_regclass(table_name) ORDER BY c.relname LOOP
        EXECUTE regexp_replace(
            regexp_replace(ix.def, ' ON (ONLY )?([a-z_]+\.)?' || table_name || ' USING ',
                           ' ON ' || quote_ident(part) || ' USING '),
            '^CREATE (UNIQUE )?INDEX \S+ ',
            'CREATE \1INDEX ' || quote_ident(ix.relname || '_' || suffix) || ' ');
    END LOOP;
END
$$;

-- The table of table_name's UTC month starting at lo: created, filled with the rows of that
-- month that source_table held (the default partition, or a catch-all partition detached for
-- the moment), indexed like table_name, attached.
CREATE FUNCTION stat_attach_month(table_name text, lo timestamptz, source_table text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    key_column text;
    month text := 'p' || to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');
    part text := table_name || '_' || month;
    hi timestamptz := (((lo AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC');
    columns text;
BEGIN
    SELECT p.key_column INTO STRICT key_column FROM partitioned_tables p
    WHERE p.table_name = stat_attach_month.table_name;
    EXECUTE stat_sql_format('CREATE TABLE @I (LIKE @I INCLUDING DEFAULTS INCLUDING GENERATED '
                            'INCLUDING CONSTRAINTS INCLUDING STORAGE)', part, table_name);
    -- generated columns are computed again: they cannot be inserted
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO columns
    FROM pg_attribute a
    WHERE a.attrelid = to_regclass(table_name) AND a.attnum > 0 AND NOT a.attisdropped
      AND a.attgenerated = '';
    EXECUTE stat_sql_format('WITH moved AS (DELETE FROM @I WHERE @I >= @L AND @I < @L '
                            'RETURNING *) INSERT INTO @I (@s) SELECT @s FROM moved',
                            source_table, key_column, CAST(lo AS text), key_column,
                            CAST(hi AS text), part, columns, columns);
    -- the bounds as a constraint first: ATTACH then skips its scan of the new table
    EXECUTE stat_sql_format('ALTER TABLE @I ADD CONSTRAINT @I CHECK (@I >= @L AND @I < @L)',
                            part, part || '_bounds', key_column, CAST(lo AS text), key_column,
                            CAST(hi AS text));
    PERFORM stat_create_partition_indexes(table_name, part, month);
    EXECUTE stat_sql_format('ALTER TABLE @I ATTACH PARTITION @I FOR VALUES FROM (@L) TO (@L)',
                            table_name, part, CAST(lo AS text), CAST(hi AS text));
    EXECUTE stat_sql_format('ALTER TABLE @I DROP CONSTRAINT @I', part, part || '_bounds');
END
$$;

-- A catch-all partition of table_name (<table>_before: MINVALUE up to the first month,
-- <table>_after: the month after the last one up to MAXVALUE) attached again with new
-- bounds, after a check constraint proves its rows fit (ATTACH then skips its own scan).
CREATE FUNCTION stat_attach_catch_all(table_name text, catch_all text, lo timestamptz,
                                      hi timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    key_column text;
BEGIN
    SELECT p.key_column INTO STRICT key_column FROM partitioned_tables p
    WHERE p.table_name = stat_attach_catch_all.table_name;
    EXECUTE stat_sql_format('ALTER TABLE @I ADD CONSTRAINT @I CHECK (@s)', catch_all,
                            catch_all || '_bounds',
                            CASE WHEN lo IS NULL
                                 THEN stat_sql_format('@I < @L', key_column, CAST(hi AS text))
                                 ELSE stat_sql_format('@I >= @L', key_column, CAST(lo AS text))
                            END);
    EXECUTE stat_sql_format('ALTER TABLE @I ATTACH PARTITION @I FOR VALUES FROM (@s) TO (@s)',
                            table_name, catch_all,
                            coalesce(quote_literal(CAST(lo AS text)), 'MINVALUE'),
                            coalesce(quote_literal(CAST(hi AS text)), 'MAXVALUE'));
    EXECUTE stat_sql_format('ALTER TABLE @I DROP CONSTRAINT @I', catch_all,
                            catch_all || '_bounds');
END
$$;

-- The first month with a table of its own, and the month after the last one (NULLs if none).
CREATE FUNCTION stat_month_range(table_name text, OUT first_month timestamptz,
                                 OUT after_last timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT min(m), max(m) + interval '1 month'
    FROM (SELECT CAST(to_date(right(c.relname, 7), 'YYYY_MM') AS timestamp)
                 AT TIME ZONE 'UTC' AS m
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = to_regclass(table_name)
            AND c.relname ~ '_p[0-9]{4}_[0-9]{2}$') months
$$;

-- The partition of table_name for the UTC month starting at lo; true if it was created.
--
-- queue_log and classified_calls have no DEFAULT partition: they are tiled from MINVALUE to
-- MAXVALUE by <table>_before, the months (contiguous) and <table>_after. A default partition
-- would make PostgreSQL merge every month for the look-ups that read backwards in time (an
-- agent's last login before an hour: ORDER BY "time" DESC LIMIT 1), one index probe per
-- month of history; range partitions alone are scanned in order, newest first, and stop at
-- the first row: one probe, whatever the history (docs/scale.md). A month beyond either end
-- is carved out of the catch-all, with every month between, so the months stay contiguous.
-- Detaching the catch-all takes an ACCESS EXCLUSIVE lock on the table until the writing
-- transaction ends: once a month (the daily raw_retention job creates next month ahead).
--
-- queue_log_rejects keeps a DEFAULT partition (its NULL hours can live nowhere else; nothing
-- reads it backwards): a new month takes its rows from there.
CREATE FUNCTION stat_create_month_partition(table_name text, lo timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    part text := table_name || '_p' || to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');
    first_month timestamptz;
    after_last timestamptz;
    month timestamptz;
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    IF to_regclass(table_name || '_default') IS NOT NULL THEN
        PERFORM stat_attach_month(table_name, lo, table_name || '_default');
        RETURN true;
    END IF;
    SELECT r.first_month, r.after_last INTO first_month, after_last
    FROM stat_month_range(table_name) r;
    -- no month yet (the migration's first): <table>_after begins at lo
    first_month := coalesce(first_month, lo);
    after_last := coalesce(after_last, lo);
    IF lo >= after_last THEN
        EXECUTE stat_sql_format('ALTER TABLE @I DETACH PARTITION @I', table_name,
                                table_name || '_after');
        month := after_last;
        WHILE month <= lo LOOP
            PERFORM stat_attach_month(table_name, month, table_name || '_after');
            month := ((month AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
        END LOOP;
        PERFORM stat_attach_catch_all(table_name, table_name || '_after', month, NULL);
    ELSIF lo < first_month THEN
        EXECUTE stat_sql_format('ALTER TABLE @I DETACH PARTITION @I', table_name,
                                table_name || '_before');
        month := first_month;
        WHILE month > lo LOOP
            month := ((month AT TIME ZONE 'UTC') - interval '1 month') AT TIME ZONE 'UTC';
            PERFORM stat_attach_month(table_name, month, table_name || '_before');
        END LOOP;
        PERFORM stat_attach_catch_all(table_name, table_name || '_before', NULL, month);
    ELSE
        RAISE EXCEPTION USING MESSAGE = stat_sql_format(
            '@s has months from @s to @s but no table for @s', table_name,
            CAST(first_month AS text), CAST(after_last AS text), part);
    END IF;
    RETURN true;
END
$$;

-- Called first thing by every hourly write of [start_hour, end_hour) (warehouse/writes.py):
-- refuses the hours of a month whose raw rows were dropped, then creates the months missing.
CREATE FUNCTION stat_prepare_hours(start_hour timestamptz, end_hour timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    dropped date;
    lo timestamptz;
    created integer := 0;
    t record;
BEGIN
    SELECT min(d.month) INTO dropped FROM raw_months_dropped d
    WHERE CAST(d.month AS timestamp) AT TIME ZONE 'UTC' < end_hour
      AND (CAST(d.month AS timestamp) + interval '1 month') AT TIME ZONE 'UTC' > start_hour;
    IF dropped IS NOT NULL THEN
        RAISE EXCEPTION USING
            MESSAGE = stat_sql_format(
                'the raw rows of @s were dropped by retention (STAT_RETENTION_RAW_MONTHS): '
                'its statistics are kept as they are, and re-materializing its hours would '
                'rebuild them from nothing; to redo that month, reload its rows from the '
                'source after DELETE FROM raw_months_dropped WHERE month = @L',
                to_char(dropped, 'YYYY-MM'), CAST(dropped AS text)),
            ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    FOR t IN SELECT table_name FROM partitioned_tables LOOP
        lo := stat_month_start(start_hour);
        WHILE lo < end_hour LOOP
            IF stat_create_month_partition(t.table_name, lo) THEN
                created := created + 1;
            END IF;
            lo := ((lo AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
        END LOOP;
    END LOOP;
    RETURN created;
END
$$;

-- The conversion: each table renamed aside, rebuilt partitioned with the same name, columns
-- and indexes, its rows copied into their months, the old table dropped.
DO $$
DECLARE
    t record;
    ix record;
    old_name text;
    columns text;
    definition text;
    seq record;
    catch_all text;
    first_month timestamptz;
    last_month timestamptz;
BEGIN
    FOR t IN SELECT table_name, key_column FROM partitioned_tables ORDER BY table_name LOOP
        old_name := t.table_name || '_unpartitioned';
        EXECUTE stat_sql_format('ALTER TABLE @I RENAME TO @I', t.table_name, old_name);
        -- keep the index names for the new table: the old ones step aside
        FOR ix IN SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                  WHERE i.indrelid = to_regclass(old_name) LOOP
            EXECUTE stat_sql_format('ALTER INDEX @I RENAME TO @I', ix.relname,
                           left(ix.relname, 50) || '_unpartitioned');
        END LOOP;
        EXECUTE stat_sql_format('CREATE TABLE @I (LIKE @I INCLUDING DEFAULTS INCLUDING GENERATED '
                       'INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS) '
                       'PARTITION BY RANGE (@I)', t.table_name, old_name, t.key_column);
        FOR ix IN SELECT c.relname, i.indisunique,
                         pg_get_indexdef(i.indexrelid) AS def,
                         EXISTS (SELECT 1 FROM pg_attribute a
                                 WHERE a.attrelid = i.indrelid AND a.attname = t.key_column
                                   AND a.attnum = ANY (i.indkey)) AS has_key
                  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                  WHERE i.indrelid = to_regclass(old_name) ORDER BY c.relname LOOP
            -- "CREATE [UNIQUE] INDEX name ON [schema.]old USING method (...) [...]"
            definition := regexp_replace(ix.def, ' ON ([a-z_]+\.)?' || old_name || ' USING ',
                                         ' ON ' || quote_ident(t.table_name) || ' USING ');
            definition := regexp_replace(definition, '^CREATE (UNIQUE )?INDEX \S+ ',
                                         'CREATE \1INDEX '
                                         || quote_ident(regexp_replace(ix.relname,
                                                                       '_unpartitioned$', ''))
                                         || ' ');
            IF ix.indisunique AND NOT ix.has_key THEN
                -- the key column appended to the index's column list (the first ")" that
                -- ends it: followed by INCLUDE, WHERE, NULLS or the end)
                definition := regexp_replace(definition, '\)( INCLUDE | WHERE | NULLS |$)',
                                             ', ' || quote_ident(t.key_column) || ')\1');
            END IF;
            EXECUTE definition;
        END LOOP;
        -- rejects: a DEFAULT partition (NULL hours); the others: the two catch-alls
        FOR catch_all IN SELECT unnest(CASE WHEN t.table_name = 'queue_log_rejects'
                                            THEN ARRAY['default']
                                            ELSE ARRAY['before', 'after'] END) LOOP
            EXECUTE stat_sql_format('CREATE TABLE @I (LIKE @I INCLUDING DEFAULTS '
                                    'INCLUDING GENERATED INCLUDING CONSTRAINTS '
                                    'INCLUDING STORAGE)',
                                    t.table_name || '_' || catch_all, t.table_name);
            PERFORM stat_create_partition_indexes(t.table_name, t.table_name || '_' || catch_all,
                                                  catch_all);
        END LOOP;
        -- a table per month of the rows held, and for this month and the next
        EXECUTE stat_sql_format('SELECT stat_month_start(min(@I)), stat_month_start(max(@I)) FROM @I',
                       t.key_column, t.key_column, old_name) INTO first_month, last_month;
        first_month := least(first_month, stat_month_start(now()));
        last_month := greatest(last_month,
                               stat_month_start(now() + interval '1 month'));
        IF t.table_name = 'queue_log_rejects' THEN
            EXECUTE stat_sql_format('ALTER TABLE @I ATTACH PARTITION @I DEFAULT',
                                    t.table_name, t.table_name || '_default');
        ELSE
            PERFORM stat_attach_catch_all(t.table_name, t.table_name || '_before', NULL,
                                          first_month);
            PERFORM stat_attach_catch_all(t.table_name, t.table_name || '_after', first_month,
                                          NULL);
        END IF;
        WHILE first_month <= last_month LOOP
            PERFORM stat_create_month_partition(t.table_name, first_month);
            first_month := ((first_month AT TIME ZONE 'UTC') + interval '1 month')
                           AT TIME ZONE 'UTC';
        END LOOP;
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO columns
        FROM pg_attribute a
        WHERE a.attrelid = to_regclass(old_name) AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attgenerated = '';
        EXECUTE stat_sql_format('INSERT INTO @I (@s) SELECT @s FROM @I',
                       t.table_name, columns, columns, old_name);
        -- a serial column's sequence belongs to the table that stays
        FOR seq IN SELECT s.oid::regclass::text AS name, a.attname
                   FROM pg_depend d
                   JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
                   JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                   WHERE d.refobjid = to_regclass(old_name) AND d.deptype IN ('a', 'i') LOOP
            EXECUTE stat_sql_format('ALTER SEQUENCE @s OWNED BY @I.@I', seq.name, t.table_name,
                           seq.attname);
        END LOOP;
        EXECUTE stat_sql_format('DROP TABLE @I', old_name);
        EXECUTE stat_sql_format('ANALYZE @I', t.table_name);
    END LOOP;
END
$$;
