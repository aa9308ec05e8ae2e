-- Every outcome row accounted for (issue 12 item 8): besides its ENTERQUEUE and deciding
-- row, a call reads its CONNECT (answer time, ring time) and, for a leave-empty call, the
-- EXITEMPTY Asterisk wrote before Wazo's LEAVEEMPTY (its wait when the times cannot be
-- used). Recording them lets the unused_outcome_rows check name the rows no call used.
ALTER TABLE classified_calls
    ADD COLUMN connect_row_id   bigint,   -- queue_log.source_id of the CONNECT read
    ADD COLUMN exitempty_row_id bigint;   -- queue_log.source_id of the EXITEMPTY read
