-- classified_calls' index on callid had one reader, the unused_outcome_rows check, and cost
-- every classification one more index insertion per call (30 days: about an eighth of its CPU). The
-- check now finds the calls with an ENTERQUEUE by time (every row such a call reads lies
-- within the look-ahead of its call_time: calls.sql check_unused_outcomes) and only the
-- partial calls (no ENTERQUEUE: their time is the outcome's minus the reported durations,
-- anywhere) by callid, and those are few: the index keeps them only.
DROP INDEX classified_calls__callid;
CREATE INDEX classified_calls__partial_callid ON classified_calls (callid) WHERE partial;
