-- name: parse_utc
-- Times with an offset are instants; times without one are UTC.
INSERT INTO incoming_queue_log (source_id, time_text, "time", reject_reason, callid, queuename,
                                agent, event, data1, data2, data3, data4, data5)
SELECT source_id, time_text, t, reject_reason, callid, queuename, agent, event,
       data1, data2, data3, data4, data5
FROM (SELECT r.*,
             CASE WHEN reject_reason IS NULL AND is_event_time(time_text)
                  THEN CAST(time_text AS timestamptz) END AS t
      FROM csv_raw r) parsed
WHERE t IS NULL
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
WHERE t IS NULL
   OR (t >= :start AND t < :end
       AND (CAST(:until AS timestamptz) IS NULL OR t <= CAST(:until AS timestamptz)))
