-- Rows of [:start, :end) that the call classification cannot use as they are. They stay in
-- queue_log (the copy is faithful); this table says what happened to them and why.
INSERT INTO queue_log_rejects (source, source_id, hour, stage, reason, disposition, raw)
SELECT q.source, q.source_id, utc_hour(q."time"), 'classify', r.reason,
       r.disposition, to_jsonb(q) - 'id' - 'row_hash'
FROM queue_log q
CROSS JOIN LATERAL (
    SELECT q.event IN ('ENTERQUEUE', 'COMPLETEAGENT', 'COMPLETECALLER', 'TRANSFER',
                       'BLINDTRANSFER', 'ATTENDEDTRANSFER', 'ABANDON', 'EXITWITHTIMEOUT',
                       'LEAVEEMPTY', 'EXITWITHKEY', 'EXITEMPTY', 'WITHDRAW', 'CONNECT', 'FULL',
                       'CLOSED', 'JOINEMPTY', 'DIVERT_CA_RATIO', 'DIVERT_HOLDTIME') AS call_event
) e
CROSS JOIN LATERAL (
    SELECT CASE
               WHEN q.queuename IS NULL AND e.call_event
                   THEN 'queuename is NULL: the row cannot belong to a queue call'
               WHEN q.queuename IS NULL
                   THEN 'queuename is NULL (agent/system rows carry ''NONE''): no per-queue use'
               WHEN e.call_event AND q.callid IS NULL
                   THEN 'callid is NULL: the row cannot belong to a call'
               WHEN e.call_event AND length(q.callid) > 32
                   THEN 'callid longer than 32 characters: stat_call_on_queue.callid is varchar(32); the call is in classified_calls only'
               WHEN e.call_event AND length(q.queuename) > 128
                   THEN 'queuename longer than 128 characters: stat_queue.name is varchar(128); the call is in classified_calls only'
               WHEN length(q.queuename) > 128
                   THEN 'queuename longer than 128 characters: stat_queue.name is varchar(128); no per-queue agent row'
           END AS reason,
           CASE WHEN e.call_event AND q.callid IS NOT NULL AND q.queuename IS NOT NULL
                    THEN 'not exported'
                WHEN e.call_event THEN 'ignored'
                ELSE 'used without queue' END AS disposition
) r
WHERE q."time" >= CAST(:start AS timestamptz) AND q."time" < CAST(:end AS timestamptz)
  -- what every reason above needs (a cheap test first: the reasons' CASE tests the event
  -- list up to four times, on every row otherwise)
  AND (q.queuename IS NULL OR q.callid IS NULL OR length(q.callid) > 32
       OR length(q.queuename) > 128)
  AND r.reason IS NOT NULL
UNION ALL
-- Outcome rows whose seconds field was not a number: the call is counted, with the value
-- taken from the event timestamps (the note of the classified call says which field).
SELECT q.source, q.source_id, utc_hour(c.call_time), 'classify', c.note,
       'repaired', to_jsonb(q) - 'id' - 'row_hash'
FROM classified_calls c
-- the outcome row is at the call's end time: the time index finds it
JOIN queue_log q ON q."time" = c.end_time AND q.source_id = c.outcome_row_id
                AND q.callid = c.callid
WHERE c.call_time >= CAST(:start AS timestamptz) AND c.call_time < CAST(:end AS timestamptz)
  AND c.note LIKE '%is not an integer%'
