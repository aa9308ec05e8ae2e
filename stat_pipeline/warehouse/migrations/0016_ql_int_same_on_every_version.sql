-- Integer fields of queue_log are text; this is how every rule reads them: decimal digits,
-- optional sign, blanks around (what integer input reads on every PostgreSQL; 16 also reads
-- 0x1F and 1_000, which no queue_log field means: the same log gives the same statistics on
-- every version), NULL for anything else or out of range. No pg_input_is_valid (16+): the
-- shape is checked by a regular expression, the range by the length (9 characters cannot
-- overflow) before the cast. Warehouses created on PostgreSQL 16+ before this migration have
-- 0002's former definition with pg_input_is_valid (reading '0x1F' as 31): replaced here.
-- plpgsql, not sql: an inlined SQL function lets the planner fold the cast of a constant ''
-- and fail even inside the CASE that guards it.
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
