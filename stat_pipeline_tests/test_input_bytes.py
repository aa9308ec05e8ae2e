"""Every input byte is data (issue 12, items 4, 6, 7 and the input side of 9): no byte, quote
or field length in one line may change how the other lines are split; every line is copied
or kept aside with its line number; rows of absurd times are kept aside, never lost.

Each test stages a source into a real warehouse (the queue_log asset's first step) and looks
at ``incoming_queue_log``, or runs the whole asset, or ``compute``, where the path matters.
"""
from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest
from sqlalchemy import text

from stat_pipeline.resources import warehouse_engine
from stat_pipeline.sources import (CsvQueueLogSource, FlatFileQueueLogSource,
                                   MysqlDumpQueueLogSource, detect_format, file_source)

GOLDEN_DAY = Path(__file__).resolve().parents[2] / "shared" / "golden" / "day1_s1" / "queue_log.csv"
EVER = (dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc),
        dt.datetime(9999, 12, 31, tzinfo=dt.timezone.utc))
HEADER = "time,callid,queuename,agent,event,data1,data2,data3,data4,data5\n"


def _stage(url: str, source, start=EVER[0], end=EVER[1]) -> list:
    """What the source stages: (source_id, time, time_text, callid, event, data1..5, reason)."""
    with warehouse_engine(url).begin() as conn:
        source.stage(conn, start, end)
        return conn.execute(text(
            'SELECT source_id, "time", time_text, callid, queuename, agent, event, data1, '
            'data2, data3, data4, data5, reject_reason FROM incoming_queue_log '
            'ORDER BY source_id')).all()


def _csv_line(second: int, callid: str, event: str, *data: str) -> str:
    when = dt.datetime(2024, 3, 4, 9, 0, second, tzinfo=dt.timezone.utc).isoformat()
    return ",".join([when, callid, "q1", "NONE", event, *(list(data) + [""] * 5)[:5]]) + "\n"


def test_a_stray_quote_in_two_csv_rows_changes_only_those_rows(tmp_path, warehouse_url):
    lines = [_csv_line(i, f"c{i}", "ENTERQUEUE", "", "0601", "1") for i in range(6)]
    lines[1] = _csv_line(1, 'c1"', "ENTERQUEUE", "", "0601", "1")      # unquoted quote
    lines[4] = _csv_line(4, "c4", "ENTERQUEUE", 'say "hi', "0601", "1")
    path = tmp_path / "quotes.csv"
    path.write_text(HEADER + "".join(lines) + '2024-03-04T09:00:09+00:00,"c,9","q1",N,X,"a""b",,,,\n')
    rows = _stage(warehouse_url, CsvQueueLogSource(path=str(path)))
    assert [r.source_id for r in rows] == [1, 2, 3, 4, 5, 6, 7]         # 7 lines, 7 rows
    assert all(r.reject_reason is None and r.time is not None for r in rows)
    assert rows[1].callid == 'c1"' and rows[4].data1 == 'say "hi'       # stray quotes are data
    assert (rows[6].callid, rows[6].data1) == ("c,9", 'a"b')            # real quoting still read


def test_a_stray_quote_on_a_golden_day_loses_no_row(tmp_path, warehouse_url):
    lines = GOLDEN_DAY.read_text().splitlines(keepends=True)
    for n in (100, 111):  # two rows with an unquoted " : on main, the 10 rows between merge
        fields = lines[n].split(",")
        fields[3] = fields[3] + '"'
        lines[n] = ",".join(fields)
    path = tmp_path / "day.csv"
    path.write_text("".join(lines))
    rows = _stage(warehouse_url, CsvQueueLogSource(path=str(path)))
    assert len(rows) == len(lines) - 1
    assert sum(r.time is not None for r in rows) == len(lines) - 1
    assert rows[99].agent.endswith('"') and rows[110].agent.endswith('"')


def test_a_huge_field_and_a_malformed_line_keep_every_other_row(tmp_path, warehouse_url):
    path = tmp_path / "big.csv"
    path.write_text(HEADER + _csv_line(0, "c0", "ENTERQUEUE", "x" * 200_000)
                    + "2024-03-04T09:00:01+00:00,c1,q1\n"                 # 3 fields: malformed
                    + _csv_line(2, "c2", "ENTERQUEUE") + "\n"             # a blank line: no row
                    + _csv_line(4, "c4", "ABANDON", "1", "1", "4"))
    rows = _stage(warehouse_url, CsvQueueLogSource(path=str(path)))
    # row ids are data line numbers, on every path: the header is line 1 of the file
    assert [r.source_id for r in rows] == [1, 2, 3, 5]
    assert len(rows[0].data1) == 200_000
    assert rows[1].time is None and rows[1].reject_reason.startswith(
        "malformed line 3: 3 fields instead of 10")
    assert [r.callid for r in rows if r.time is not None] == ["c0", "c2", "c4"]


def _flat(second: int, callid: str, event: str, *data: str) -> bytes:
    epoch = int(dt.datetime(2024, 3, 4, 9, tzinfo=dt.timezone.utc).timestamp()) + second
    return "|".join([str(epoch), callid, "q1", "NONE", event, *data]).encode() + b"\n"


CONTROL_BYTES = [b"\x01", b"\x02", b"\x03", b"\\", b"\\.", b"\t", b'"']


def test_control_bytes_in_a_flat_file_are_data_of_their_own_line(tmp_path, warehouse_url):
    body = b""
    for i, byte in enumerate(CONTROL_BYTES):
        body += _flat(i, "c" + byte.decode(), "ENTERQUEUE", "", "06" + byte.decode(), "1")
    body += b"\x03\n" + b"\\.\n" + _flat(60, "last", "FULL")  # lines of only our old markers
    path = tmp_path / "queue_log"
    path.write_bytes(body)
    rows = _stage(warehouse_url, FlatFileQueueLogSource(path=str(path)))
    n = len(CONTROL_BYTES)
    assert [r.source_id for r in rows] == list(range(1, n + 4))
    assert [r.callid for r in rows[:n]] == ["c" + b.decode() for b in CONTROL_BYTES]
    assert [r.data2 for r in rows[:n]] == ["06" + b.decode() for b in CONTROL_BYTES]
    # the lines holding only 0x03 (COPY's NULL marker before) and "\." are kept aside
    assert rows[n].time is None and "malformed line" in rows[n].reject_reason
    assert rows[n + 1].time is None and "malformed line" in rows[n + 1].reject_reason
    assert rows[n + 2].callid == "last" and rows[n + 2].time is not None


def test_the_sensor_tails_a_flat_file_with_control_bytes(tmp_path, warehouse_url):
    from stat_pipeline.resources import Warehouse

    path = tmp_path / "queue_log"
    path.write_bytes(_flat(0, "c\x01", "ENTERQUEUE", "", "0601", "1") + b"\x02\x03\n"
                     + _flat(5, "c2", "FULL"))
    source = FlatFileQueueLogSource(path=str(path))
    found = source.new_rows(0, None, 100, 2, Warehouse(url=warehouse_url))
    assert sorted({row_id for row_id, _, _ in found.touched}) == [1, 2, 3]
    assert [hour for row_id, hour, own in found.touched if row_id == 2 and own] == [None]


def test_control_bytes_in_a_mysql_dump_stay_in_their_value(tmp_path, warehouse_url):
    path = tmp_path / "dump.sql"
    path.write_bytes(
        b"-- MySQL dump 10.13\n"
        b"INSERT INTO `queue_log` VALUES (1,'2024-03-04 09:00:00','c\x01','q1','NONE','ENTERQUEUE','','0601','1','',''),"
        b"(2,'2024-03-04 09:00:01','c\x02\\\\','q1','NONE','ENTERQUEUE','','0601','1','','');\n"
        b"\x03\n"
        b"INSERT INTO `queue_log` VALUES (3,'2024-03-04 09:00:02','c3','q1','NONE','FULL','','','','','');\n")
    rows = _stage(warehouse_url, MysqlDumpQueueLogSource(path=str(path)))
    assert [(r.source_id, r.callid) for r in rows] == [(1, "c\x01"), (2, "c\x02\\"), (3, "c3")]
    assert all(r.time is not None for r in rows)


# --- item 4 of the brief: absurd times are kept aside at the source, never lost ----------

def test_rows_outside_the_plausible_window_are_kept_aside_not_lost(tmp_path, warehouse_url):
    epochs = {"early": 86_400, "y2200": 7_258_118_400, "fine": 1_709_542_800}
    flat = tmp_path / "queue_log"
    flat.write_bytes(b"".join(f"{e}|{k}|q1|NONE|FULL|\n".encode() for k, e in epochs.items()))
    csv_path = tmp_path / "times.csv"
    csv_path.write_text(HEADER + "1969-07-20T20:17:40+00:00,moon,q1,NONE,FULL,,,,,\n"
                        "9999-06-01T00:00:00+00:00,y9999,q1,NONE,FULL,,,,,\n"
                        "2024-03-04T09:00:00+00:00,fine,q1,NONE,FULL,,,,,\n")
    for source, absurd in ((FlatFileQueueLogSource(path=str(flat)), ["early", "y2200"]),
                           (CsvQueueLogSource(path=str(csv_path)), ["moon", "y9999"])):
        # staged for the one hour of the good row: the absurd ones come along, kept aside
        rows = _stage(warehouse_url, source, dt.datetime(2024, 3, 4, 9, tzinfo=dt.timezone.utc),
                      dt.datetime(2024, 3, 4, 10, tzinfo=dt.timezone.utc))
        assert [r.callid for r in rows] == [*absurd, "fine"]
        assert [r.time is None for r in rows] == [True, True, False]
        assert rows[0].reject_reason.endswith("is before 2000-01-01T00:00:00+00:00")
        assert rows[1].reject_reason.endswith("is more than 1 day, 0:00:00 after it was read")
        assert rows[0].time_text and rows[1].time_text


def test_the_window_reason_is_worded_as_time_window_words_it(tmp_path, warehouse_url):
    from stat_pipeline.time_window import time_window_from_env

    path = tmp_path / "t.csv"
    path.write_text(HEADER + "1999-12-31T23:59:59.25+00:00,a,q1,NONE,FULL,,,,,\n"
                    "2200-01-01T00:00:00+00:00,b,q1,NONE,FULL,,,,,\n")
    now = dt.datetime(2024, 3, 4, 12, tzinfo=dt.timezone.utc)
    rows = _stage(warehouse_url, CsvQueueLogSource(path=str(path), until=now.isoformat()))
    window = time_window_from_env()
    assert [r.reject_reason for r in rows] == [
        window.reason(dt.datetime(1999, 12, 31, 23, 59, 59, 250000, tzinfo=dt.timezone.utc), now),
        window.reason(dt.datetime(2200, 1, 1, tzinfo=dt.timezone.utc), now)]


def test_a_directory_or_an_unreadable_file_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        file_source(str(tmp_path))
    with pytest.raises(ValueError, match="is a directory"):
        detect_format(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no file matches"):
        file_source(str(tmp_path / "nothing*"))
    gz = tmp_path / "broken.csv.gz"
    gz.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="cannot be read"):
        file_source(str(gz))


# --- item 6: old Wazo's text time column -------------------------------------------------

OLD_WAZO_DDL = """
CREATE TABLE old_queue_log (
    id serial PRIMARY KEY, "time" varchar(26) NOT NULL DEFAULT '', callid varchar(32),
    queuename varchar(32), agent varchar(32), event varchar(32), data1 varchar(100),
    data2 varchar(100), data3 varchar(100), data4 varchar(100), data5 varchar(100))
"""


def test_old_wazo_text_times_that_are_no_time_are_rows_without_time(warehouse_url):
    from sqlalchemy import create_engine

    from stat_pipeline.sources import PostgresQueueLogSource

    times = {"c1": "2024-03-04 09:00:01.5", "empty": "", "junk": "now-ish",
             "feb30": "2024-02-30 10:00:00", "c5": "2024-03-04 10:00:00",
             "y1969": "1969-07-20 20:17:40", "c7": "2024-03-04 09:59:59+00",
             "hour25": "2024-03-04 25:00:00"}
    engine = create_engine(warehouse_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(OLD_WAZO_DDL)
        for callid, when in times.items():
            conn.execute(text("INSERT INTO old_queue_log (\"time\", callid, queuename, agent, "
                              "event, data1, data2, data3, data4, data5) VALUES "
                              "(:t, :c, 'q1', 'NONE', 'FULL', '', '', '', '', '')"),
                         {"t": when, "c": callid})
    engine.dispose()
    source = PostgresQueueLogSource(url=warehouse_url, table="old_queue_log")
    rows = _stage(warehouse_url, source, dt.datetime(2024, 3, 4, 9, tzinfo=dt.timezone.utc),
                  dt.datetime(2024, 3, 4, 10, tzinfo=dt.timezone.utc))
    by_call = {r.callid: r for r in rows}
    assert set(by_call) == set(times) - {"c5"}                     # c5: another hour
    assert by_call["c1"].time == dt.datetime(2024, 3, 4, 9, 0, 1, 500000, tzinfo=dt.timezone.utc)
    assert by_call["c7"].time is not None
    for callid in ("empty", "junk", "feb30", "hour25"):
        assert by_call[callid].time is None and by_call[callid].time_text == times[callid]
        assert by_call[callid].reject_reason is None   # record_rejects: "... is not a timestamp"
    assert by_call["y1969"].time is None and "is before 2000" in by_call["y1969"].reject_reason


def test_the_user_options_of_the_source_url_are_kept_with_ours(warehouse_url):
    from stat_pipeline.sources import PostgresQueueLogSource

    url = warehouse_url + "&options=-c%20application_name%3Dmine%20-c%20default_transaction_read_only%3Doff"
    engine = PostgresQueueLogSource(url=url, timezone="Europe/Paris")._engine()
    with engine.connect() as conn:
        settings = conn.exec_driver_sql(
            "SELECT current_setting('application_name'), "
            "current_setting('default_transaction_read_only'), current_setting('TimeZone')").one()
    engine.dispose()
    assert tuple(settings) == ("mine", "on", "Europe/Paris")   # read-only cannot be undone


# --- the asset: rows kept aside reach queue_log_rejects, conservation in its metadata ------

def test_absurd_and_timeless_rows_reach_the_rejects_and_the_figures_add_up(warehouse_url):
    from stat_pipeline_tests.harness import CallCentre, at

    centre = CallCentre(warehouse_url)
    centre.log((at("10:00:00"), "c1", "q1", "NONE", "ENTERQUEUE", "", "0601", "1"),
               (at("10:00:30"), "c1", "q1", "NONE", "ABANDON", "1", "1", "30"),
               (at("10:00:30"), "c1", "q1", "NONE", "ABANDON", "1", "1", "30"),  # duplicate
               (dt.datetime(1960, 1, 1, tzinfo=dt.timezone.utc), "old", "q1", "NONE", "FULL"),
               (dt.datetime(2200, 1, 1, tzinfo=dt.timezone.utc), "far", "q1", "NONE", "FULL"),
               (None, "notime", "q1", "NONE", "FULL"))
    result = centre.run("10:00")
    assert result.success
    rejects = centre.query("SELECT raw->>'callid' AS callid, hour, reason FROM queue_log_rejects "
                           "WHERE stage = 'ingest' ORDER BY source_id")
    assert [(r.callid, r.hour is None) for r in rejects] == [
        ("c1", False), ("old", True), ("far", True), ("notime", True)]
    assert "is before 2000" in rejects[1].reason and "after it was read" in rejects[2].reason
    meta = [m for m in result.get_asset_materialization_events()
            if m.asset_key.path[-1] == "queue_log"][0].materialization.metadata
    assert (meta["rows_read"].value, meta["rows_copied"].value, meta["rows_kept_aside"].value) \
        == (6, 2, 4)
    centre.close()


def test_compute_on_a_damaged_golden_day_conserves_every_row(tmp_path, pg_server):
    """The golden day with stray quotes in two rows (on main: 10 rows and 3 calls lost), a
    malformed line and two absurd times: every call is still there, and the summary's
    conservation law holds: rows read = copied + kept aside, by reason."""
    from stat_pipeline.compute import compute_into

    lines = GOLDEN_DAY.read_text().splitlines(keepends=True)
    for n in (100, 111):
        fields = lines[n].split(",")
        fields[3] = fields[3] + '"'
        lines[n] = ",".join(fields)
    lines += ["2024-03-04T12:00:00+00:00,cut,short\n",
              "1960-01-01T00:00:00+00:00,old,q1,NONE,FULL,,,,,\n",
              "2200-01-01T00:00:00+00:00,far,q1,NONE,FULL,,,,,\n"]
    path = tmp_path / "damaged.csv"
    path.write_text("".join(lines))
    pg_server.create_database("damaged_day")
    result = compute_into(pg_server.url("damaged_day"), path, tmp_path / "out")
    expected_calls = (GOLDEN_DAY.parent / "expected" / "run1" / "calls.csv").read_text()
    got_calls = (tmp_path / "out" / "calls.csv").read_text()
    assert len(got_calls.splitlines()) == len(expected_calls.splitlines())
    assert (result.rows_read, result.rows_copied) == (len(lines) - 1, len(lines) - 4)
    assert result.kept_aside == {"malformed line": 1, "implausible time": 2}
    assert result.conservation_line().startswith(
        f"{len(lines) - 1} rows read = {len(lines) - 4} copied + 3 kept aside (")
