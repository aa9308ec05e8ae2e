-- name: split_lines
-- raw_lines (line 1: the header) -> csv_raw, one row per data line, split into fields within
-- the line only, so that nothing in a line can change how the others are split. Lines
-- without a quote are split at the delimiter (the common case, fast); the others field by
-- field (:pattern): "..." with "" for a quote is unquoted, any other text is taken as it
-- is, stray quotes included. Unquoted \N is NULL (our exports' NULL). A line with the
-- wrong number of fields, or text glued after a closing quote, is kept aside with its line
-- number. Blank lines are no rows. Its rows are csv_raw's columns: parse_utc/parse_local
-- read them directly (csv.py), without writing csv_raw and reading it back (issue 16).
SELECT /* columns */
FROM (
    SELECT s.line_no, s.f,
           CASE WHEN NOT s.whole
                    THEN format('malformed line %s: text after a closing quote: %s',
                                s.line_no, left(s.line, 300))
                WHEN cardinality(s.f) <> :width
                    THEN format('malformed line %s: %s fields instead of %s: %s', s.line_no,
                                cardinality(s.f), :width, left(s.line, 300))
           END AS reason
    FROM (
        SELECT l.source_id AS line_no, l.line,
               CASE WHEN strpos(l.line, '"') = 0
                    THEN string_to_array(l.line, :delimiter, '\N')
                    ELSE (SELECT array_agg(CASE WHEN x.m[1] = '\N' THEN NULL
                                                WHEN x.m[1] ~ '^"([^"]|"")*"$'
                                                    THEN replace(substr(x.m[1], 2, length(x.m[1]) - 2),
                                                                 '""', '"')
                                                ELSE x.m[1] END ORDER BY x.k)
                          FROM regexp_matches(:delimiter || l.line, :pattern, 'g')
                               WITH ORDINALITY x(m, k)) END AS f,
               -- the fields and their delimiters cover the whole line
               CASE WHEN strpos(l.line, '"') = 0 THEN true
                    ELSE (SELECT sum(length(x.m[1]) + 1)
                          FROM regexp_matches(:delimiter || l.line, :pattern, 'g') x(m))
                         = length(l.line) + 1 END AS whole
        FROM raw_lines l
        WHERE l.source_id > 1 AND btrim(l.line, E' \t') <> ''
        OFFSET 0  -- split each line once, not once for every field taken from it
    ) s
) p

-- name: parse_utc
-- Times with an offset are instants; times without one are UTC.
INSERT INTO incoming_queue_log (source_id, time_text, "time", reject_reason, callid, queuename,
                                agent, event, data1, data2, data3, data4, data5)
SELECT source_id, time_text, t, reject_reason, callid, queuename, agent, event,
       data1, data2, data3, data4, data5
FROM (SELECT r.*,
             CASE WHEN reject_reason IS NULL AND is_event_time(time_text)
                  THEN CAST(time_text AS timestamptz) END AS t
      FROM csv_raw r
      OFFSET 0) parsed  -- each time parsed once, not once per use below
WHERE t IS NULL OR t < :earliest OR t >= :latest  -- set aside afterwards (lines.sql)
   OR (t >= :start AND t < :end
       AND (CAST(:until AS timestamptz) IS NULL OR t <= CAST(:until AS timestamptz)))

-- name: parse_local
-- Times without an offset are wall-clock times of :tz (an Asterisk realtime table without
-- queue_log_realtime_use_gmt, wazo-agentd's naive now()). In the repeated hour of a DST
-- change (autumn) a wall-clock time names two instants: the file's row order tells which.
-- Rows are written in time order, so once the wall clock has gone back by more than 30
-- minutes inside that hour, the following rows of that night are the second pass.
-- A time inside the hour skipped in spring does not exist; PostgreSQL moves it after the
-- gap, so nothing is lost either.
INSERT INTO incoming_queue_log (source_id, time_text, "time", reject_reason, callid, queuename,
                                agent, event, data1, data2, data3, data4, data5)
SELECT source_id, time_text, t, reject_reason, callid, queuename, agent, event,
       data1, data2, data3, data4, data5
FROM (
    SELECT d.*,
           CASE WHEN NOT d.valid THEN NULL
                WHEN d.has_offset THEN CAST(d.time_text AS timestamptz)
                WHEN d.ambiguous AND NOT d.second_pass THEN d.t_late - interval '1 hour'
                ELSE d.t_late
           END AS t
    FROM (
        SELECT c.*,
               coalesce(bool_or(c.went_back) OVER (
                   PARTITION BY c.ambiguous, CAST(c.wall AS date)
                   ORDER BY c.source_id ROWS UNBOUNDED PRECEDING), false) AS second_pass
        FROM (
            SELECT b.*,
                   b.ambiguous AND b.wall < max(b.wall) OVER (
                       PARTITION BY b.ambiguous, CAST(b.wall AS date) ORDER BY b.source_id
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - interval '30 minutes'
                   AS went_back
            FROM (
                SELECT a.*,
                       -- PostgreSQL reads an ambiguous wall time as the later instant;
                       -- the earlier one exists if it shows the same wall time
                       coalesce(a.valid AND NOT a.has_offset
                                AND ((a.t_late - interval '1 hour') AT TIME ZONE :tz) = a.wall,
                                false) AS ambiguous
                FROM (
                    SELECT r.*, v.valid, v.has_offset,
                           CASE WHEN v.valid AND NOT v.has_offset
                                THEN CAST(r.time_text AS timestamp) END AS wall,
                           CASE WHEN v.valid AND NOT v.has_offset
                                THEN CAST(r.time_text AS timestamp) AT TIME ZONE :tz END AS t_late
                    FROM csv_raw r
                    CROSS JOIN LATERAL (
                        SELECT r.reject_reason IS NULL AND is_event_time(r.time_text) AS valid,
                               r.time_text ~ '\d:\d\d(:\d\d(\.\d+)?)?\s*(Z|[+-]\d\d(:?\d\d)?)\s*$'
                                   AS has_offset) v
                ) a
            ) b
        ) c
    ) d
) parsed
WHERE t IS NULL OR t < :earliest OR t >= :latest  -- set aside afterwards (lines.sql)
   OR (t >= :start AND t < :end
       AND (CAST(:until AS timestamptz) IS NULL OR t <= CAST(:until AS timestamptz)))
