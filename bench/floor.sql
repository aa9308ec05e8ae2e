-- The floor of issue 16: the least work any engine must do on a queue_log, against which
-- bench/run.py and bench/sql_steps.py print our SQL time as a multiple.
--
-- A rough set-based pairing (every ENTERQUEUE with the first outcome row of its callid and
-- queue, no passages, no partial calls, no look-ahead bounds) and an hourly aggregation per
-- queue (calls, answered, abandoned, wait and talk sums). Run on the Wazo-like source table
-- of the benchmark, after its rows were copied there (the COPY is the other half of the floor).
WITH enters AS (
    SELECT callid, queuename, "time" FROM queue_log WHERE event = 'ENTERQUEUE'
), outcomes AS (
    SELECT DISTINCT ON (callid, queuename) callid, queuename, event, data1, data2, data3
    FROM queue_log
    WHERE event IN ('COMPLETEAGENT', 'COMPLETECALLER', 'TRANSFER', 'ABANDON',
                    'EXITWITHTIMEOUT', 'LEAVEEMPTY', 'EXITWITHKEY')
    ORDER BY callid, queuename, "time"
)
SELECT date_trunc('hour', e."time") AS hour, e.queuename, count(*) AS calls,
       count(*) FILTER (WHERE o.event LIKE 'COMPLETE%' OR o.event = 'TRANSFER') AS answered,
       count(*) FILTER (WHERE o.event = 'ABANDON') AS abandoned,
       sum(nullif(CASE WHEN o.event LIKE 'COMPLETE%' THEN o.data1 ELSE o.data3 END, '')::int) AS wait,
       sum(CASE WHEN o.event LIKE 'COMPLETE%' THEN nullif(o.data2, '')::int END) AS talk
FROM enters e LEFT JOIN outcomes o USING (callid, queuename)
GROUP BY 1, 2
