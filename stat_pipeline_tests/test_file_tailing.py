"""The new-rows sensor on Asterisk's flat file: each tick reads only the complete lines
written since the last one, follows the file through rotations (renamed, gzip'ed), and
requests the same hours as for a database source; the runs it asks for give the statistics."""
import datetime as dt
import gzip
import json
import os

import pytest

from stat_pipeline.definitions import build_definitions
from stat_pipeline.partitions import hourly_partitions
from stat_pipeline.resources import Warehouse
from stat_pipeline.sources import FlatFileQueueLogSource
from stat_pipeline_tests.harness import DAY, CallCentre, at
from stat_pipeline_tests.test_automation import execute, tick


def line(hhmmss: str, *fields: str) -> str:
    """A queue_log line at DAY + hh:mm:ss."""
    return "|".join([str(int(at(hhmmss).timestamp())), *fields]) + "\n"


CALL_09 = [line("09:10:00", "c1", "q1", "NONE", "ENTERQUEUE", "", "0601", "1"),
           line("09:10:20", "c1", "q1", "Agent/1001", "CONNECT", "20", "c1.1", "3"),
           line("09:15:20", "c1", "q1", "Agent/1001", "COMPLETEAGENT", "20", "300", "1")]
# a call entering at 10:58 and answered at 11:01: its outcome re-opens 10:00
CALL_10_11 = [line("10:58:00", "c2", "q1", "NONE", "ENTERQUEUE", "", "0602", "1"),
              line("11:01:00", "c2", "q1", "Agent/1001", "CONNECT", "180", "c2.1", "2"),
              line("11:05:00", "c2", "q1", "Agent/1001", "COMPLETECALLER", "180", "240", "1")]


class FileCentre(CallCentre):
    """CallCentre whose source is the flat file(s) ``queue_log*`` in ``folder`` (ticked and
    executed by test_automation's helpers)."""

    def __init__(self, warehouse_url: str, folder, partitions_end: dt.datetime = DAY + dt.timedelta(days=2)):
        super().__init__(warehouse_url)
        self.folder = folder
        self.live = folder / "queue_log"
        self.source = FlatFileQueueLogSource(path=str(folder / "queue_log*"))
        self.defs = build_definitions(
            partitions=hourly_partitions(start=DAY - dt.timedelta(days=1), end=partitions_end),
            source=self.source, warehouse=Warehouse(url=warehouse_url), wazo_config=self.config)

    def write(self, *lines: str, path=None) -> None:
        with open(path or self.live, "a") as fh:
            fh.write("".join(lines))

    def source_ids(self) -> list[int]:
        return [r[0] for r in self.query("SELECT source_id FROM queue_log ORDER BY source_id")]


@pytest.fixture
def centre(warehouse_url, tmp_path):
    c = FileCentre(warehouse_url, tmp_path)
    yield c
    c.close()


def position(result) -> dict:
    return json.loads(json.loads(result.cursor)["position"])


def test_growing_file_only_new_hours_are_requested(centre):
    centre.write(*CALL_09)
    first = tick(centre, None)
    assert execute(centre, first) == [("2024-03-01-09:00", "2024-03-01-09:00")]
    assert json.loads(first.cursor)["row_id"] == 3
    assert position(first)["offset"] == os.path.getsize(centre.live)
    assert position(first)["inode"] == os.stat(centre.live).st_ino
    assert [(c[0], c[3], c[5], c[6]) for c in centre.calls()] == [("c1", "answered", 20, 300)]

    centre.write(*CALL_10_11)
    second = tick(centre, first.cursor)
    # only the new lines: 09:00 is not asked again; 10:00 is, by the 11:05 outcome
    assert execute(centre, second) == [("2024-03-01-10:00", "2024-03-01-11:00")]
    assert json.loads(second.cursor)["row_id"] == 6
    assert position(second)["offset"] == os.path.getsize(centre.live)
    assert [(c[0], c[3], c[4], c[5], c[6]) for c in centre.calls()] == [
        ("c1", "answered", at("09:10:00"), 20, 300), ("c2", "answered", at("10:58:00"), 180, 240)]
    assert centre.source_ids() == [1, 2, 3, 4, 5, 6]      # stage numbers lines the same way

    third = tick(centre, second.cursor)                    # nothing new: nothing requested
    assert not third.run_requests and third.cursor == second.cursor


def test_half_written_last_line_waits_for_its_end(centre):
    centre.write(*CALL_09)
    first = tick(centre, None)
    execute(centre, first)
    full = line("12:00:00", "f1", "q1", "NONE", "FULL", "")
    centre.write(full[:20])                               # Asterisk is writing it
    second = tick(centre, first.cursor)
    assert not second.run_requests and second.cursor == first.cursor
    centre.write(full[20:])
    third = tick(centre, second.cursor)
    assert execute(centre, third) == [("2024-03-01-12:00", "2024-03-01-12:00")]
    assert json.loads(third.cursor)["row_id"] == 4
    # read whole, not as a cut line: the FULL is counted and nothing was rejected
    assert [(p[0], p[1], p[5]) for p in centre.periodic()] == [
        (at("09:00:00"), "q1", 0), (at("12:00:00"), "q1", 1)]
    assert centre.query("SELECT count(*) FROM queue_log_rejects")[0][0] == 0


def _rotate(centre, gzip_it: bool) -> None:
    rotated = centre.folder / "queue_log-20240301"
    os.rename(centre.live, rotated)
    if gzip_it:
        with open(rotated, "rb") as raw, gzip.open(str(rotated) + ".gz", "wb") as gz:
            gz.write(raw.read())
        os.unlink(rotated)  # the new live file below may even get the same inode back


@pytest.mark.parametrize("gzip_it", [False, True], ids=["renamed", "renamed_and_gzipped"])
def test_rotation_between_ticks(centre, gzip_it):
    centre.write(*CALL_09)
    first = tick(centre, None)
    execute(centre, first)
    # written after the tick, before the rotation: only in the rotated file
    centre.write(CALL_10_11[0], line("10:59:00", "a1", "q2", "NONE", "FULL", ""))
    _rotate(centre, gzip_it)
    centre.write(*CALL_10_11[1:], line("13:30:00", "a2", "q2", "NONE", "CLOSED", ""))
    second = tick(centre, first.cursor)
    assert execute(centre, second) == [("2024-03-01-10:00", "2024-03-01-13:00")]
    assert json.loads(second.cursor)["row_id"] == 8
    assert position(second) | {"head": None} == {
        "inode": os.stat(centre.live).st_ino, "offset": os.path.getsize(centre.live),
        "line": 8, "head": None, "head_len": os.path.getsize(centre.live)}
    assert [(c[0], c[3], c[4]) for c in centre.calls()] == [
        ("c1", "answered", at("09:10:00")), ("c2", "answered", at("10:58:00")),
        ("a1", "full", at("10:59:00")), ("a2", "closed", at("13:30:00"))]
    # (hour, queue, answered, total, full, closed)
    assert [(p[0], p[1], p[2], p[4], p[5], p[6]) for p in centre.periodic()] == [
        (at("09:00:00"), "q1", 1, 1, 0, 0), (at("10:00:00"), "q1", 1, 1, 0, 0),
        (at("10:00:00"), "q2", 0, 1, 1, 0), (at("13:00:00"), "q2", 0, 1, 0, 1)]
    assert centre.source_ids() == list(range(1, 9))       # the ids stage gives across the glob

    centre.write(line("14:10:00", "a3", "q2", "NONE", "FULL", ""))
    third = tick(centre, second.cursor)                    # and on in the new live file
    assert execute(centre, third) == [("2024-03-01-14:00", "2024-03-01-14:00")]
    assert json.loads(third.cursor)["row_id"] == 9


def test_small_batches_read_every_line_once_across_rotated_and_gzipped_files(centre):
    """A backlog read a few lines per tick, each tick resuming inside a (gzip'ed) file."""
    lines = CALL_09 + CALL_10_11 + [line("12:00:00", "a1", "q2", "NONE", "FULL", ""), "\n",
                                    line("13:00:00", "a2", "q2", "NONE", "CLOSED", "")]
    with gzip.open(centre.folder / "queue_log-20240229.gz", "wt") as gz:
        gz.write("".join(lines[:4]))
    centre.write(*lines[4:7], path=centre.folder / "queue_log-20240301")
    centre.write(*lines[7:])
    one_read = centre.source.new_rows(0, None, 100, 24, Warehouse(url=centre.url))
    seen, after_id, pos = [], 0, None
    for _ in range(10):
        batch = centre.source.new_rows(after_id, pos, 2, 24, Warehouse(url=centre.url))
        if not batch.touched and batch.resume_at(after_id) == pos:
            break
        seen += batch.touched
        after_id = max([after_id] + [r for r, _, _ in batch.touched])
        pos = batch.resume_at(after_id)
    # each row read once, with its own hour; the hours requested are those of one big read
    # (a row's derived hour may come from another row when its ENTERQUEUE is in an earlier
    # batch, the call's start hour never goes missing)
    assert sorted(r for r in seen if r[2]) == sorted(r for r in one_read.touched if r[2])
    assert {h for _, h, _ in seen} == {h for _, h, _ in one_read.touched}
    assert sorted({r for r, _, _ in seen}) == [1, 2, 3, 4, 5, 6, 7, 9]   # line 8 is empty
    assert json.loads(pos)["line"] == 9


def test_a_cursor_without_position_resumes_after_its_row_id(centre):
    centre.write(*CALL_09, *CALL_10_11)
    result = tick(centre, json.dumps({"row_id": 3, "closed_through": "2024-03-02-23:00"}))
    assert execute(centre, result) == [("2024-03-01-10:00", "2024-03-01-11:00")]
    assert position(result)["line"] == 6 and json.loads(result.cursor)["row_id"] == 6


def test_rows_of_the_hour_in_progress_hold_the_position(warehouse_url, tmp_path):
    now = dt.datetime.now(dt.timezone.utc)
    closed = (now - dt.timedelta(hours=2)).replace(minute=30, second=0, microsecond=0)
    centre = FileCentre(warehouse_url, tmp_path, partitions_end=now + dt.timedelta(days=1))
    first_line = f"{int(closed.timestamp())}|a1|q1|NONE|FULL|\n"
    centre.write(first_line, f"{int(now.timestamp())}|a2|q1|NONE|FULL|\n")
    result = tick(centre, None)
    hour = closed.replace(minute=0).strftime("%Y-%m-%d-%H:%M")
    assert execute(centre, result) == [(hour, hour)]
    # the row of the open hour will be read again, once its hour has closed
    assert json.loads(result.cursor)["row_id"] == 1
    assert position(result)["offset"] == len(first_line) and position(result)["line"] == 1
    again = tick(centre, result.cursor)
    assert not again.run_requests and position(again) == position(result)
    centre.close()



def test_the_code_location_reads_a_flat_file_from_the_environment(tmp_path, monkeypatch):
    from stat_pipeline.definitions import source_from_env

    (tmp_path / "queue_log").write_text(CALL_09[0])
    monkeypatch.delenv("STAT_SOURCE_URL", raising=False)
    monkeypatch.setenv("STAT_SOURCE_FILE", str(tmp_path / "queue_log*"))
    source = source_from_env()
    assert isinstance(source, FlatFileQueueLogSource) and source.path.endswith("queue_log*")
