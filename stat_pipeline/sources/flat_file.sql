-- name: parse
-- raw_lines (lines.sql: one row per physical line, its number the row id) -> incoming_queue_log.
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
                    THEN 'malformed line ' || l.source_id || ': ' || cardinality(l.f)
                         || ' fields, at least epoch|callid|queue|agent|event: ' || left(l.line, 300)
                WHEN t.t IS NULL
                    THEN 'epoch ' || quote_literal(left(l.f[1], 40)) || ' is not a Unix time'
           END AS reason
    FROM (SELECT r.source_id, r.line, string_to_array(rtrim(r.line, E'\r'), '|') AS f
          FROM raw_lines r WHERE btrim(r.line, E' \r\t') <> ''
          OFFSET 0) l  -- split each line once, not once for every field taken from it
    CROSS JOIN LATERAL (
        SELECT CASE WHEN l.f[1] ~ '^[0-9]{1,11}(\.[0-9]{1,6})?$'
                    THEN to_timestamp(CAST(l.f[1] AS numeric)) END AS t
    ) t
    OFFSET 0  -- each line's time and reason computed once, not once per use below
) p
-- rows outside the plausible window too: set aside afterwards (lines.sql), never lost
WHERE p.reason IS NOT NULL OR p.t < :earliest OR p.t >= :latest
   OR (p.t >= :start AND p.t < :end
      AND (CAST(:until AS timestamptz) IS NULL OR p.t <= CAST(:until AS timestamptz)))
