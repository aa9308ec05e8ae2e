"""Where queue_log rows come from. Every source fills the same temporary table
``incoming_queue_log`` inside the caller's warehouse transaction; the ``queue_log`` asset
takes it from there, so assets downstream never know which source was used.

* ``PostgresQueueLogSource``: Wazo's ``asterisk.queue_log`` through a read-only account.
* ``FlatFileQueueLogSource``: Asterisk's own ``/var/log/asterisk/queue_log`` file(s)
  (``epoch|callid|queue|agent|event|data...``), rotated and gzip'ed ones included.
* ``CsvQueueLogSource``: a CSV in the golden-set layout
  (``time,callid,queuename,agent,event,data1..data5``, ``\\N`` = NULL), optionally gzip'ed.
* ``MysqlDumpQueueLogSource``: a MySQL dump (INSERT statements) of a realtime queue_log table.
"""
from stat_pipeline.sources.base import NewRows, QueueLogSource, SourceUnavailable
from stat_pipeline.sources.csv import CsvQueueLogSource
from stat_pipeline.sources.files import detect_format, file_source
from stat_pipeline.sources.flat_file import FlatFileQueueLogSource
from stat_pipeline.sources.mysql_dump import MysqlDumpQueueLogSource
from stat_pipeline.sources.postgres import PostgresQueueLogSource
from stat_pipeline.sources.tailing import rotated_files

__all__ = ["CsvQueueLogSource", "FlatFileQueueLogSource", "MysqlDumpQueueLogSource", "NewRows",
           "PostgresQueueLogSource", "QueueLogSource", "SourceUnavailable", "detect_format",
           "file_source", "rotated_files"]
