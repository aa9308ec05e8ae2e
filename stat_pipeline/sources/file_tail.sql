-- The new-rows sensor on a flat file: the lines read since its cursor are parsed in the
-- warehouse (raw_lines + flat_file.sql's parse, in a scratch transaction that is rolled back),
-- then touched_hours.sql runs on the view tail_rows.

-- name: first_id
-- Line numbers go on from where the previous read stopped, as stage numbers them.
SELECT setval(pg_get_serial_sequence('raw_lines', 'source_id'), :first, false)

-- name: tail_rows
-- The new lines, plus the rows of this file already copied to the warehouse (id 0: never
-- "new") for touched_hours.sql's look-ups: the ENTERQUEUE of a call whose outcome is new,
-- and an agent's next state row. A row read but not yet copied is missed by these look-ups,
-- which errs on the safe side: without its ENTERQUEUE a call's start hour is derived from
-- the outcome's wait + talk seconds, and without a next state row a state lasts until now
-- (more hours requested, none forgotten).
CREATE TEMP VIEW tail_rows AS
SELECT source_id AS id, "time", callid, queuename, agent, event, data1, data2, data3, data4, data5
FROM incoming_queue_log
UNION ALL
SELECT 0, "time", callid, queuename, agent, event, data1, data2, data3, data4, data5
FROM queue_log
WHERE source = :source
