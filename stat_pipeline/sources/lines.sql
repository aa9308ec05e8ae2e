-- The lines of a file source, whatever its format, before they are split into fields.

-- name: create_raw
-- One row per physical line of the file(s), in file order: the line number is the row id.
CREATE TEMP TABLE raw_lines (
    source_id bigint GENERATED ALWAYS AS IDENTITY, line text
) ON COMMIT DROP

-- name: first_id
-- Line numbers that go on from where a previous read stopped (the file tailer).
SELECT setval(pg_get_serial_sequence('raw_lines', 'source_id'), :first, false)

-- name: copy_raw
-- Text format, one column: the stream (base.py's _CleanLines) escapes backslashes and tabs,
-- so every line arrives whole and as it was: no quote, delimiter, NULL marker or field
-- length in a line can change how the other lines are split.
COPY raw_lines (line) FROM STDIN

-- name: set_aside_implausible
-- Times outside the plausible window (time_window.py) are kept aside, never put in an hour:
-- "time" NULL, the source's text kept, the reason worded as TimeWindow.reason words it.
UPDATE incoming_queue_log
SET reject_reason = 'time '
        || to_char("time" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN date_trunc('second', "time") <> "time"
                THEN to_char("time" AT TIME ZONE 'UTC', '.US') ELSE '' END
        || '+00:00'
        || CASE WHEN "time" < :earliest THEN ' is before ' || :earliest_text
                ELSE ' is more than ' || :max_future_text || ' after it was read' END,
    "time" = NULL
WHERE "time" < :earliest OR "time" >= :latest

-- name: conservation
-- What became of a source's rows in the warehouse: copied, or kept aside at ingestion by
-- kind of reason (the reasons themselves name the line and value).
SELECT 'copied' AS kind, count(*) AS n FROM queue_log WHERE source = :source
UNION ALL
SELECT CASE WHEN reason LIKE 'exact duplicate%' THEN 'duplicate'
            WHEN reason LIKE 'malformed line%' THEN 'malformed line'
            WHEN reason LIKE '% is before %' OR reason LIKE '% after it was read' THEN 'implausible time'
            WHEN reason LIKE 'unreadable tuple%' OR reason LIKE 'INSERT into%'
                 OR reason LIKE 'text outside any tuple%' THEN 'unreadable dump text'
            ELSE 'no usable time' END,
       count(*)
FROM queue_log_rejects WHERE stage = 'ingest' AND source = :source
GROUP BY 1
