-- Time done right (issue 7): the source's own time text next to the UTC instant, and call
-- durations from the events' timestamps next to the seconds Asterisk reported.
ALTER TABLE queue_log ADD COLUMN source_time text;  -- the time as the source wrote it
ALTER TABLE classified_calls
    ADD COLUMN waittime_by_events integer,           -- CONNECT/outcome - ENTERQUEUE
    ADD COLUMN talktime_by_events integer;           -- outcome - CONNECT
