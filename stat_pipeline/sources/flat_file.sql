-- name: create_raw
-- One row per line of the file(s), in file order: the line number is the row id.
CREATE TEMP TABLE raw_lines (
    source_id bigint GENERATED ALWAYS AS IDENTITY, line text
) ON COMMIT DROP

-- name: copy_raw
-- csv with delimiter/quote characters that never occur: each line arrives whole, and
-- backslashes stay as they are (the text format would read them as escapes).
COPY raw_lines (line) FROM STDIN WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02', NULL E'\x03')

-- name: parse
-- <epoch>|<callid>|<queuename>|<agent>|<event>|<data1>|...|<dataN> (queue_log_format.md 1.1).
-- Pipes inside data are not escaped: as in Asterisk's realtime tables, data5 keeps the
-- remainder (so ATTENDEDTRANSFER LINK's data5 is "calltime|origpos" in both forms).
INSERT INTO incoming_queue_log (source_id, time_text, "time", reject_reason, callid, queuename,
                                agent, event, data1, data2, data3, data4, data5)
SELECT p.source_id, p.f[1], CASE WHEN p.reason IS NULL THEN p.t END, p.reason,
       p.f[2], p.f[3], p.f[4], p.f[5],
       coalesce(p.f[6], ''), coalesce(p.f[7], ''), coalesce(p.f[8], ''), coalesce(p.f[9], ''),
       array_to_string(p.f[10:], '|')
FROM (
    SELECT l.source_id, l.f, t.t,
           CASE WHEN cardinality(l.f) < 5
                    THEN 'malformed line: ' || cardinality(l.f)
                         || ' fields, at least epoch|callid|queue|agent|event: ' || left(l.line, 300)
                WHEN t.t IS NULL
                    THEN 'epoch ' || quote_literal(left(l.f[1], 40)) || ' is not a Unix time'
           END AS reason
    FROM (SELECT r.source_id, r.line, string_to_array(rtrim(r.line, E'\r'), '|') AS f
          FROM raw_lines r WHERE btrim(r.line, E' \r\t') <> '') l
    CROSS JOIN LATERAL (
        SELECT CASE WHEN l.f[1] ~ '^[0-9]{1,11}(\.[0-9]{1,6})?$'
                    THEN to_timestamp(CAST(l.f[1] AS numeric)) END AS t
    ) t
) p
WHERE p.reason IS NOT NULL OR (p.t >= :start AND p.t < :end
      AND (CAST(:until AS timestamptz) IS NULL OR p.t <= CAST(:until AS timestamptz)))
