"""`compute` plans only the hours that hold plausible rows or carry agent state (issue 12 #3):
one row in 1970 or 2200 made it plan every hour in between (hundreds of thousands of hours,
9.4 GB); a file without a usable row said "0 hours computed" and exited 0."""
from __future__ import annotations

import datetime as dt
import subprocess

import dagster as dg
import pytest

from stat_pipeline.compute import compute_into
from stat_pipeline_tests.test_cli import BIN, _run

HEADER = "time,callid,queuename,agent,event,data1,data2,data3,data4,data5\n"
CALLS = [  # a call on 2024-03-04 at 10:xx, an agent logged in 09:30-11:10, a call 3 days later
    "2024-03-04T09:30:00+00:00,NONE,NONE,Agent/1001,AGENTCALLBACKLOGIN,1001@default,,,,",
    "2024-03-04T10:10:00+00:00,c1,q1,NONE,ENTERQUEUE,,0601,1,,",
    "2024-03-04T10:10:30+00:00,c1,q1,Agent/1001,CONNECT,30,c1.1,2,,",
    "2024-03-04T10:15:30+00:00,c1,q1,Agent/1001,COMPLETEAGENT,30,300,1,,",
    "2024-03-04T11:10:00+00:00,NONE,NONE,Agent/1001,AGENTCALLBACKLOGOFF,1001@default,6000,,,",
    "2024-03-07T15:00:00+00:00,c2,q1,NONE,ENTERQUEUE,,0602,1,,",
    "2024-03-07T15:01:00+00:00,c2,q1,NONE,ABANDON,1,1,60,,",
    # an outcome without its ENTERQUEUE after the gap: a call dated 2 h earlier (13:29)
    "2024-03-07T15:30:00+00:00,c3,q1,Agent/1001,COMPLETECALLER,60,7200,1,,",
]
ABSURD = ["1970-01-02T00:00:00+00:00,x1,q1,NONE,FULL,,,,,",
          "2200-01-01T00:00:00+00:00,x2,q1,NONE,FULL,,,,,"]


def test_rows_in_1970_and_2200_plan_no_hour(warehouse_url, tmp_path):
    path = tmp_path / "q.csv"
    path.write_text(HEADER + "\n".join([ABSURD[0], *CALLS, ABSURD[1]]) + "\n")
    instance = dg.DagsterInstance.ephemeral()
    result = compute_into(warehouse_url, path, tmp_path / "out", instance=instance)
    # 09:00 .. 11:00 (the login, the call), then three days later, in its own run, 15:00
    # and the hours back to the partial call's 13:00
    hours = ({f"2024-03-04-{h:02d}:00" for h in (9, 10, 11)}
             | {f"2024-03-07-{h:02d}:00" for h in (13, 14, 15)})
    assert result.hours == 6 and result.runs == 2
    assert result.first_hour == dt.datetime(2024, 3, 4, 9, tzinfo=dt.timezone.utc)
    assert instance.get_materialized_partitions(dg.AssetKey("stat_queue_periodic")) == hours
    # the config is synced in the first run, before the hourly assets that read it
    first = min(instance.get_runs(), key=lambda r: instance.get_run_record_by_id(r.run_id).create_timestamp)
    synced = {key: instance.get_latest_materialization_event(dg.AssetKey(key))
              for key in ("stat_queue", "stat_agent")}
    assert all(event.run_id == first.run_id for event in synced.values())
    readers = [record.event_log_entry for record in instance.get_records_for_run(
        first.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
        if record.event_log_entry.dagster_event.asset_key.path[-1] in ("stat_call_on_queue", "stat_agent_periodic")]
    assert readers and all(event.timestamp > max(e.timestamp for e in synced.values())
                           for event in readers)
    calls = (tmp_path / "out" / "calls.csv").read_text().splitlines()
    assert len(calls) == 4                               # header + the three real calls


@pytest.mark.parametrize("rows", [[], ABSURD, [",c,q,NONE,FULL,,,,,", ABSURD[1]]])
def test_a_file_without_a_usable_row_says_why_and_fails(tmp_path, rows):
    path = tmp_path / "q.csv"
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    done = _run("compute", str(path), "--out", str(tmp_path / "out"))
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()              # one line, no traceback
    assert "nothing to compute" in line
    if rows:
        assert f"{len(rows)} row(s) read" in line
