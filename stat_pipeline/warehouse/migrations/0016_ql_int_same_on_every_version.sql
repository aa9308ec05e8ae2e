-- ql_int as 0002 now defines it, for warehouses created before (PostgreSQL 16 or newer,
-- where 0002 used pg_input_is_valid): decimal integers only, so that a field like '0x1F'
-- or '1_000' reads as no number on every version, as it does on PostgreSQL 13 to 15.
CREATE OR REPLACE FUNCTION ql_int(value text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    -- [ \t\n\r\v\f], not \s: the bytes integer input skips, whatever the database's locale
    IF value ~ '^[ \t\n\r\v\f]*[+-]?[0-9]+[ \t\n\r\v\f]*$' THEN
        IF length(value) < 10 OR CAST(value AS numeric) BETWEEN -2147483648 AND 2147483647 THEN
            RETURN CAST(value AS integer);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
