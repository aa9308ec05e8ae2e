-- utc_hour(t): the UTC hour that contains t, as date_trunc('hour', t, 'UTC') gives it, for the
-- statements that put every row or call in its hour. date_trunc with a zone converts each
-- value to broken-down time in that zone and back (~0.4 us a value on our 2-core machine:
-- 0.12-0.15 s per scan of the 30-day set's 320,255 rows); binning by whole hours from the
-- Unix epoch (date_bin, PostgreSQL 14+) is integer arithmetic (~0.03 us) and gives the same
-- instant: UTC hours are whole hours from the epoch (timestamptz has no leap seconds), before
-- 1970 too. PostgreSQL 13 has no date_bin and keeps date_trunc. Either way a SQL function of
-- one expression, as volatile as the expression (date_bin IMMUTABLE, date_trunc with a zone
-- STABLE: the zone's rules may change): the planner inlines it, so it costs no call.
DO $version$
BEGIN
    IF current_setting('server_version_num')::integer >= 140000 THEN
        EXECUTE $create$
            CREATE FUNCTION utc_hour(t timestamptz) RETURNS timestamptz
            LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
                SELECT date_bin(interval '1 hour', t, TIMESTAMPTZ '1970-01-01 00:00:00+00')
            $$
        $create$;
    ELSE
        EXECUTE $create$
            CREATE FUNCTION utc_hour(t timestamptz) RETURNS timestamptz
            LANGUAGE sql STABLE PARALLEL SAFE AS $$
                SELECT date_trunc('hour', t, 'UTC')
            $$
        $create$;
    END IF;
END
$version$;
