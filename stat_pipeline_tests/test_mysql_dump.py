"""A mysqldump of an Asterisk realtime queue_log table as a source: the same statistics as
the same rows in CSV, MySQL's escapes and NULLs read right, the INSERT forms of mysqldump and
phpMyAdmin, and an unreadable tuple kept aside while the rest is computed."""
import datetime as dt
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from stat_pipeline.sources import MysqlDumpQueueLogSource, detect_format, file_source
from stat_pipeline_tests.test_flat_file import ROWS, T0, _csv, _outputs

HEADER = """-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)
--
-- Host: localhost    Database: asterisk
-- ------------------------------------------------------
-- Server version\t8.0.36

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET NAMES utf8mb4 */;
/*!40103 SET TIME_ZONE='+00:00' */;

--
-- Table structure for table `queue_log`
--

DROP TABLE IF EXISTS `queue_log`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
CREATE TABLE `queue_log` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `time` varchar(26) NOT NULL DEFAULT '',
  `callid` varchar(40) NOT NULL DEFAULT '',
  `queuename` varchar(20) NOT NULL DEFAULT '',
  `agent` varchar(20) NOT NULL DEFAULT '',
  `event` varchar(20) NOT NULL DEFAULT '',
  `data1` varchar(100) DEFAULT '',
  `data2` varchar(100) DEFAULT '',
  `data3` varchar(100) DEFAULT '',
  `data4` varchar(100) DEFAULT '',
  `data5` varchar(100) DEFAULT '',
  PRIMARY KEY (`id`),
  KEY `queue` (`queuename`)
) ENGINE=InnoDB AUTO_INCREMENT=2000 DEFAULT CHARSET=utf8mb4;
/*!40101 SET character_set_client = @saved_cs_client */;

LOCK TABLES `queue_log` WRITE;
/*!40000 ALTER TABLE `queue_log` DISABLE KEYS */;
"""
FOOTER = """/*!40000 ALTER TABLE `queue_log` ENABLE KEYS */;
UNLOCK TABLES;
INSERT INTO `queue_log_archive` VALUES (1,'not','ours');
-- Dump completed on 2024-03-02 10:00:00
"""


def _quote(value) -> str:
    if value is None:
        return "NULL"
    escaped = (value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
               .replace("\t", "\\t"))
    return f"'{escaped}'"


def _when(row, zone=dt.timezone.utc) -> str:
    return dt.datetime.fromtimestamp(T0 + row[0], zone).strftime("%Y-%m-%d %H:%M:%S")


def _tuple(values) -> str:
    return "(" + ",".join(v if isinstance(v, str) and v.isdigit() else _quote(v) for v in values) + ")"


def _realtime(row) -> list:
    data = (list(row[5:]) + [""] * 5)[:4] + ["|".join(row[9:])]
    return [_when(row), *row[1:5], *data]


# tricky values, in a row of its own: every escape mysqldump writes, a '' quote, NULLs
ESCAPES = ("it's", "back\\slash", "two\nlines", "tab\there", None)
ESCAPED_ROW = (3900, "e1", "q9", "NONE", "CUSTOM")


def _mysqldump(path: Path) -> None:
    tuples = [_tuple([str(1000 + i), *_realtime(r)]) for i, r in enumerate(ROWS)]
    escaped = "(1999,'{}','e1','q9','NONE','CUSTOM',{},'a''b',NULL)".format(
        _when(ESCAPED_ROW), ",".join(_quote(v) for v in ESCAPES[:3]))
    path.write_text(HEADER
                    + "INSERT INTO `queue_log` VALUES " + ",".join(tuples[:6]) + ";\n"
                    + "INSERT INTO `queue_log` VALUES " + ",".join(tuples[6:]) + "," + escaped + ";\n"
                    + FOOTER)


def test_mysqldump_gives_the_same_statistics_as_csv(tmp_path, pg_server):
    dump = tmp_path / "asterisk.sql"
    _mysqldump(dump)
    as_csv = tmp_path / "queue_log.csv"
    _csv(as_csv, ROWS)
    assert detect_format(str(dump)) == "mysql"
    assert isinstance(file_source(str(dump)), MysqlDumpQueueLogSource)
    results = {}
    for name, path in (("dump", dump), ("csv", as_csv)):
        pg_server.create_database(f"mysql_{name}")
        results[name] = _outputs(pg_server.url(f"mysql_{name}"), path, tmp_path, name)
    assert results["dump"][0] == results["csv"][0]
    assert len(results["dump"][0]["calls.csv"]) == 1 + 4  # header, 4 calls
    assert results["dump"][1].rejects == {}
    engine = create_engine(pg_server.url("mysql_dump"))
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT min(source_id), max(source_id), count(*) FROM queue_log")).one()
        escaped = conn.execute(text("SELECT data1, data2, data3, data4, data5 FROM queue_log "
                                    "WHERE callid = 'e1'")).one()
        custom = conn.execute(text("SELECT data1 FROM queue_log WHERE event = 'SOMECUSTOMVERB'")).one()
    engine.dispose()
    assert tuple(ids) == (1000, 1999, len(ROWS) + 1)        # the table's own ids
    assert tuple(escaped) == ("it's", "back\\slash", "two\nlines", "a'b", None)
    assert custom[0] == "x|y|z"


def test_column_list_legacy_data_local_times_and_a_broken_tuple(tmp_path, pg_server):
    """phpMyAdmin's layout (column list, one tuple per line after VALUES), Asterisk's old
    single `data` column, times in Paris, no CREATE TABLE; one tuple lost a value."""
    paris = dt.timezone(dt.timedelta(hours=1))  # 1 March: CET
    lines = [f"('{_when(r, paris)}', {_quote(r[1])}, {_quote(r[2])}, {_quote(r[3])}, "
             f"{_quote(r[4])}, {_quote('|'.join(r[5:]))})" for r in ROWS]
    broken = "('2024-03-01 10:30:00', 'b1', 'q1', 'NONE', 'ENTERQUEUE')"
    dump = tmp_path / "phpmyadmin.sql"
    dump.write_text(
        "-- phpMyAdmin SQL Dump\n\nSET SQL_MODE = \"NO_AUTO_VALUE_ON_ZERO\";\n\n"
        "INSERT INTO `queue_log` (`time`, `callid`, `queuename`, `agent`, `event`, `data`) VALUES\n"
        + ",\n".join(lines[:4] + [broken] + lines[4:]) + ";\n")
    as_csv = tmp_path / "queue_log.csv"
    _csv(as_csv, ROWS)
    assert detect_format(str(dump)) == "mysql"
    pg_server.create_database("mysql_pma")
    pg_server.create_database("mysql_pma_csv")
    from stat_pipeline.compute import compute_into

    got = compute_into(pg_server.url("mysql_pma"), dump, tmp_path / "pma", timezone="Europe/Paris")
    want = _outputs(pg_server.url("mysql_pma_csv"), as_csv, tmp_path, "csv")[0]
    assert {f: sorted((tmp_path / "pma" / f).read_text().splitlines()) for f in want} == want
    assert got.rejects == {"ignored": 1}
    engine = create_engine(pg_server.url("mysql_pma"))
    with engine.connect() as conn:
        reasons = conn.execute(text("SELECT reason FROM queue_log_rejects")).scalars().all()
        attended = conn.execute(text(
            "SELECT data1, data2, data3, data4, data5 FROM queue_log "
            "WHERE event = 'ATTENDEDTRANSFER'")).one()
    engine.dispose()
    assert len(reasons) == 1 and reasons[0].startswith("unreadable tuple 1 of dump line 10: "
                                                       "5 values for 6 columns")
    assert "'b1'" in reasons[0]
    assert tuple(attended) == ("LINK", "chan1", "chan2", "8", "120|1")  # data5 keeps the rest


def test_a_dump_cut_short_keeps_its_last_words_aside(tmp_path, pg_server):
    dump = tmp_path / "cut.sql"
    tuples = [_tuple([str(1 + i), *_realtime(r)]) for i, r in enumerate(ROWS[:3])]
    dump.write_text("INSERT INTO `queue_log` VALUES " + ",".join(tuples)
                    + ",(4,'2024-03-01 09:0")                # the disk filled up here
    assert detect_format(str(dump)) == "mysql"
    pg_server.create_database("mysql_cut")
    outputs, result = _outputs(pg_server.url("mysql_cut"), dump, tmp_path, "cut")
    assert outputs["calls.csv"][0].startswith("c1,q1,") and len(outputs["calls.csv"]) == 2  # + header
    assert result.rejects == {"ignored": 1}
    engine = create_engine(pg_server.url("mysql_cut"))
    with engine.connect() as conn:
        reason = conn.execute(text("SELECT reason FROM queue_log_rejects")).scalar_one()
    engine.dispose()
    assert reason == "text outside any tuple, dump line 1: (4,'2024-03-01 09:0"


def test_compute_command_reads_a_dump(tmp_path):
    dump = tmp_path / "asterisk.sql"
    _mysqldump(dump)
    done = subprocess.run([str(Path(sys.executable).parent / "stat-pipeline"), "compute",
                           str(dump), "--format", "mysql", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "out" / "calls.csv").read_text().splitlines()) == 1 + 4  # header
