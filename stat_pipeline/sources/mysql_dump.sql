-- A MySQL/MariaDB dump of an Asterisk realtime queue_log table (mysqldump, phpMyAdmin):
-- the dump's lines are in raw_lines (flat_file.sql); its INSERT statements into :table become
-- rows of csv_raw, which csv_file.sql then reads like a CSV export (time zone included).

-- name: tuples
-- mysqldump writes one INSERT per line, with many tuples ("extended insert"); other tools
-- put the tuples on the lines after "INSERT ... VALUES": a line starting with "(" continues
-- the statement above it. The columns are the INSERT's list, else those of the dump's
-- CREATE TABLE, else Asterisk's realtime layouts. A tuple that cannot be read (wrong number
-- of values, a line cut short) is kept with its reason and where it is in the dump; so is
-- any text of an INSERT that is not inside a tuple (row id: its line), so that nothing
-- disappears unseen.
-- ("\\:" is SQLAlchemy's escape for a colon.) Regexes: a MySQL string is '...' with \x escapes and '' for a quote.
INSERT INTO csv_raw (source_id, time_text, callid, queuename, agent, event,
                     data1, data2, data3, data4, data5, reject_reason)
WITH lines AS (
    SELECT r.source_id AS line_no, r.line, r.line ~ '^\s*\(' AS continued,
           sum(CASE WHEN r.line ~ '^\s*\(' THEN 0 ELSE 1 END) OVER (ORDER BY r.source_id) AS stmt
    FROM raw_lines r
),
heads AS (
    SELECT l.stmt, l.line_no, l.line,
           regexp_match(l.line, '^\s*INSERT\s+(?\:IGNORE\s+)?INTO\s+[`"]?' || :table
                        || '[`"]?\s*(?:\(([^)]*)\))?\s*VALUES\s*(.*)$', 'i') AS m
    FROM lines l
    WHERE NOT l.continued
      AND l.line ~* ('^\s*INSERT\s+(IGNORE\s+)?INTO\s+[`"]?' || :table || '[`"]?[\s(]')
),
creates AS (
    SELECT l.line_no FROM lines l
    WHERE l.line ~* ('^\s*CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?[`"]?' || :table || '[`"]?\s*\(')
),
create_columns AS (
    SELECT c.line_no, array_agg(lower(d[1]) ORDER BY l.line_no) AS cols
    FROM creates c
    JOIN lines l ON l.line_no > c.line_no
                AND l.line_no < coalesce((SELECT min(e.line_no) FROM lines e
                                          WHERE e.line_no > c.line_no AND e.line ~ '^\s*\)'),
                                         c.line_no)
    CROSS JOIN LATERAL regexp_match(l.line, '^\s*[`"]?(\w+)[`"]?\s+\w') d
    WHERE d IS NOT NULL
      AND l.line !~* '^\s*(PRIMARY|UNIQUE|KEY|INDEX|CONSTRAINT|FULLTEXT|SPATIAL|CHECK)\M'
    GROUP BY c.line_no
),
bodies AS (
    SELECT h.line_no AS stmt_line, h.line_no, h.m[1] AS column_list, h.m[2] AS body
    FROM heads h WHERE h.m IS NOT NULL
    UNION ALL
    SELECT h.line_no, l.line_no, h.m[1], l.line
    FROM heads h JOIN lines l ON l.stmt = h.stmt AND l.continued
    WHERE h.m IS NOT NULL
),
tuples AS (
    SELECT b.line_no, t.n, t.m[1] AS inner_text,
           coalesce(string_to_array(regexp_replace(lower(b.column_list), '[`"\s]', '', 'g'), ','),
                    (SELECT cc.cols FROM create_columns cc WHERE cc.line_no < b.stmt_line
                     ORDER BY cc.line_no DESC LIMIT 1)) AS cols
    FROM bodies b
    CROSS JOIN LATERAL regexp_matches(
        b.body, '\(((?:''(?:[^''\\]|\\.|'''')*''|[^''()])*)\)', 'g') WITH ORDINALITY t(m, n)
),
fields AS (
    -- each value: NULL, a bare number, or a string with MySQL's escapes undone (\\ and \'
    -- through placeholders so that "\\n" stays backslash + n; \% and \_ keep their backslash)
    SELECT t.line_no, t.n, t.inner_text, t.cols,
           array_agg(CASE
               WHEN upper(f.v[1]) = 'NULL' THEN NULL
               WHEN f.v[1] LIKE '''%' THEN
                   replace(replace(replace(
                       regexp_replace(
                           replace(replace(replace(replace(replace(replace(
                               replace(replace(substr(f.v[1], 2, length(f.v[1]) - 2),
                                               '\\', E'\x01'), '\''', E'\x02'),
                               '\n', E'\n'), '\r', E'\r'), '\t', E'\t'), '\b', E'\b'),
                               '\Z', E'\x1a'), '\0', ''),
                           '\\([^%_])', '\1', 'g'),
                       '''''', ''''), E'\x02', ''''), E'\x01', '\')
               ELSE f.v[1] END ORDER BY f.k) FILTER (WHERE f.k IS NOT NULL) AS vals
    FROM tuples t
    LEFT JOIN LATERAL regexp_matches(t.inner_text, '''(?:[^''\\]|\\.|'''')*''|[^,''\s]+', 'g')
        WITH ORDINALITY f(v, k) ON true
    GROUP BY t.line_no, t.n, t.inner_text, t.cols
),
laid_out AS (
    SELECT f.line_no, f.n, f.inner_text, f.vals,
           coalesce(f.cols, CASE cardinality(f.vals)
               WHEN 7 THEN ARRAY['id', 'time', 'callid', 'queuename', 'agent', 'event', 'data']
               WHEN 10 THEN ARRAY['time', 'callid', 'queuename', 'agent', 'event',
                                  'data1', 'data2', 'data3', 'data4', 'data5']
               ELSE ARRAY['id', 'time', 'callid', 'queuename', 'agent', 'event',
                          'data1', 'data2', 'data3', 'data4', 'data5'] END) AS cols
    FROM fields f
),
rows AS (
    SELECT o.*,
           coalesce(cardinality(o.vals), 0) = cardinality(o.cols)
               AND 'time' = ANY (o.cols) AND 'event' = ANY (o.cols) AS ok,
           o.vals[array_position(o.cols, 'data')] AS data,
           'data' = ANY (o.cols) AND NOT o.cols && ARRAY['data1', 'data2', 'data3', 'data4', 'data5']
               AS legacy
    FROM laid_out o
)
-- row id: the table's id, else the tuple's rank in the dump (as a CSV's line number)
SELECT CASE WHEN r.ok AND r.vals[array_position(r.cols, 'id')] ~ '^[0-9]{1,18}$'
                THEN CAST(r.vals[array_position(r.cols, 'id')] AS bigint)
            ELSE row_number() OVER (ORDER BY r.line_no, r.n) END,
       r.vals[array_position(r.cols, 'time')], r.vals[array_position(r.cols, 'callid')],
       r.vals[array_position(r.cols, 'queuename')], r.vals[array_position(r.cols, 'agent')],
       r.vals[array_position(r.cols, 'event')],
       -- an old single "data" column "a|b|c" is split as Asterisk does: data5 keeps the rest
       CASE WHEN r.legacy THEN coalesce(split_part(r.data, '|', 1), '') ELSE r.vals[array_position(r.cols, 'data1')] END,
       CASE WHEN r.legacy THEN coalesce((string_to_array(r.data, '|'))[2], '') ELSE r.vals[array_position(r.cols, 'data2')] END,
       CASE WHEN r.legacy THEN coalesce((string_to_array(r.data, '|'))[3], '') ELSE r.vals[array_position(r.cols, 'data3')] END,
       CASE WHEN r.legacy THEN coalesce((string_to_array(r.data, '|'))[4], '') ELSE r.vals[array_position(r.cols, 'data4')] END,
       CASE WHEN r.legacy THEN array_to_string((string_to_array(r.data, '|'))[5:], '|') ELSE r.vals[array_position(r.cols, 'data5')] END,
       CASE WHEN NOT r.ok THEN format('unreadable tuple %s of dump line %s: %s values for %s columns (%s): (%s)',
                                      r.n, r.line_no, coalesce(cardinality(r.vals), 0),
                                      cardinality(r.cols), array_to_string(r.cols, ','),
                                      left(r.inner_text, 300)) END
FROM rows r
UNION ALL
SELECT h.line_no, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       format('INSERT into %s not understood, dump line %s: %s', :table, h.line_no, left(h.line, 300))
FROM heads h WHERE h.m IS NULL
UNION ALL
SELECT x.line_no, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       format('text outside any tuple, dump line %s: %s', x.line_no, left(x.rest, 300))
FROM (SELECT b.line_no,
             regexp_replace(b.body, '\(((?:''(?:[^''\\]|\\.|'''')*''|[^''()])*)\)\s*[,;]?', '', 'g')
                 AS rest
      FROM bodies b) x
WHERE x.rest !~ '^[\s,;]*$'
