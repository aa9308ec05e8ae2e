"""Parity with wazo-stat fill_db on every golden set of ../shared/golden.

``stat-pipeline compute`` runs each set up to its last run's end (through the real Dagster
definitions and a real PostgreSQL) and its calls.csv / queue_periodic.csv / agent_periodic.csv
are compared with the reference's (``expected/single`` if present, else the last run) the way
acceptance does. The reference writes agent periods only from its window's start: when a set
was run with an explicit ``--start``, our agent hours before that hour are outside what it
was asked, and are not compared (they are counted in the summary as "before window").
Clean sets must be identical. Where the reference is known wrong, the exact difference is
written below, with the quirk it comes from (docs/differences-from-wazo.md explains each):
the test fails if we differ in any other way, or stop differing there.

Each set runs on the embedded PostgreSQL 18 and on Debian's PostgreSQL 15 (skipped where it
is not installed; conftest.py): the oldest supported server must give the same statistics.
"""
from __future__ import annotations

import csv
import io
from collections import Counter

import pytest
from sqlalchemy import create_engine, text

from stat_pipeline.compute import compute_into
from stat_pipeline.partitions import hour_floor
from stat_pipeline_tests.golden import compare_module, golden_sets

SETS = golden_sets()
FILES = ("calls.csv", "queue_periodic.csv", "agent_periodic.csv")
CALLS = "callid,queue,agent,status,time,waittime,talktime,ringtime"
PERIODIC = ("time,queue,answered,abandoned,total,full,closed,joinempty,leaveempty,"
            "divert_ca_ratio,divert_waittime,timeout")
AGENTS = "time,agent,queue,login_time,pause_time,wrapup_time"
HEADERS = {"calls.csv": CALLS, "queue_periodic.csv": PERIODIC, "agent_periodic.csv": AGENTS}

# set -> file -> ("missing" | "extra") -> rows, in the file's CSV layout.
#   missing: the reference has the row, we do not; extra: we have it, the reference does not.
KNOWN_DIFFERENCES = {
    # Q5: a callid that enters the same queue twice and is answered twice is 2 calls; the
    # reference's join on (callid, queue) makes 2 x 2.
    "ref_A2": {
        "calls.csv": {"missing": [
            "1681302917.231273,queue2,Agent/1002,answered,2023-04-12T12:35:37.060998+00:00,143,416,0",
            "1681302917.231273,queue2,Agent/1001,answered,2023-04-12T12:39:34.163929+00:00,108,97,0",
        ]},
        "queue_periodic.csv": {
            "missing": ["2023-04-12T12:00:00+00:00,queue2,4,0,4,0,0,0,0,0,0,0"],
            "extra": ["2023-04-12T12:00:00+00:00,queue2,2,0,2,0,0,0,0,0,0,0"],
        },
    },
    "ref_A8": {
        "calls.csv": {"missing": [
            "c14,q1,Agent/1002,answered,2024-03-01T10:30:00+00:00,10,50,0",
            "c14,q1,Agent/1001,answered,2024-03-01T10:32:00+00:00,5,55,0",
        ]},
        "queue_periodic.csv": {
            "missing": ["2024-03-01T10:00:00+00:00,q1,5,0,5,0,0,0,0,0,0,0"],
            "extra": ["2024-03-01T10:00:00+00:00,q1,3,0,3,0,0,0,0,0,0,0"],
        },
    },
    # Q13: an ABANDON with an empty waittime is a real abandoned call (wait taken from the
    # event times); "LEAVEEMPTY without ENTERQUEUE": the call is counted, like the reference's
    # partial answered calls, at LEAVEEMPTY time - wait (0 here: no EXITEMPTY either).
    "day1_s4_hazards": {
        "calls.csv": {"extra": [
            "1709548800.7677,sales,,leaveempty,2024-03-04T10:41:40+00:00,0,0,0",
            "1709548800.7679,sales,,abandoned,2024-03-04T10:45:00+00:00,20,0,0",
        ]},
        "queue_periodic.csv": {
            "missing": ["2024-03-04T10:00:00+00:00,sales,11,0,11,0,0,0,0,0,0,0"],
            "extra": ["2024-03-04T10:00:00+00:00,sales,11,1,13,0,0,0,1,0,0,0"],
        },
        "agent_periodic.csv": {
            "missing": [
                # per-queue pause ends when the member is removed from the queue (PAUSE in
                # tech at 11:04:25, removed at 11:16:48, re-added unpaused at 12:09:41; the
                # reference keeps him paused there until the UNPAUSE of 14:27:58)
                "2024-03-04T11:00:00+00:00,Agent/1007,tech,1008.914734,3334.690364,0",
                "2024-03-04T12:00:00+00:00,Agent/1007,tech,3018.916374,3600,20",
                "2024-03-04T13:00:00+00:00,Agent/1007,tech,3600,3600,60",
                "2024-03-04T14:00:00+00:00,Agent/1007,tech,3600,1678.002896,80",
                # Q10: WRAPUPSTART exactly at 15:00 makes an all-zero row in the hour before
                "2024-03-04T14:00:00+00:00,Agent/1001,,0,0,0",
                "2024-03-04T14:00:00+00:00,Agent/1001,support,0,0,0",
                # PAUSEALL without UNPAUSEALL: paused until the run's end in the reference;
                # the pause ends with the agent's logoff at 17:01:01 for us
                "2024-03-04T17:00:00+00:00,Agent/1002,,61.050189,3600,0",
                "2024-03-04T18:00:00+00:00,Agent/1002,,0,3600,0",
                "2024-03-04T19:00:00+00:00,Agent/1002,,0,3600,0",
                "2024-03-04T20:00:00+00:00,Agent/1002,,0,3600,0",
                "2024-03-04T21:00:00+00:00,Agent/1002,,0,3600,0",
                "2024-03-04T22:00:00+00:00,Agent/1002,,0,3600,0",
                "2024-03-04T23:00:00+00:00,Agent/1002,,0,3600,0",
                "2024-03-05T00:00:00+00:00,Agent/1002,,0,3600,0",
            ],
            "extra": [
                "2024-03-04T11:00:00+00:00,Agent/1007,tech,1008.914734,743.605098,0",
                "2024-03-04T12:00:00+00:00,Agent/1007,tech,3018.916374,0,20",
                "2024-03-04T13:00:00+00:00,Agent/1007,tech,3600,0,60",
                "2024-03-04T14:00:00+00:00,Agent/1007,tech,3600,1258.024298,80",
                # Q10: the 2.5 h wrap-up from 15:10 also covers the hour in the middle
                "2024-03-04T16:00:00+00:00,Agent/1001,,0,0,3600",
                "2024-03-04T16:00:00+00:00,Agent/1001,support,0,0,3600",
                "2024-03-04T17:00:00+00:00,Agent/1002,,61.050189,61.050189,0",
            ],
        },
    },
    # Per-queue pause ends when the member is removed from the queue: wazo-stat keeps the
    # agent paused in a queue he has left until his next UNPAUSE there (Agent/1002 leaves
    # tech at 13:27:21 while paused, is added back unpaused at 14:46:34, UNPAUSE at 15:31:56).
    "day1_s1": {
        "agent_periodic.csv": {
            "missing": [
                "2024-03-04T13:00:00+00:00,Agent/1002,tech,1641.173806,2401.237766,20",
                "2024-03-04T14:00:00+00:00,Agent/1002,tech,805.076911,3600,0",
                "2024-03-04T15:00:00+00:00,Agent/1002,tech,3600,1916.848167,0",
            ],
            "extra": [
                "2024-03-04T13:00:00+00:00,Agent/1002,tech,1641.173806,442.411572,20",
                "2024-03-04T14:00:00+00:00,Agent/1002,tech,805.076911,0,0",
                "2024-03-04T15:00:00+00:00,Agent/1002,tech,3600,1211.991165,0",
            ],
        },
    },
    "week_s1": {
        "agent_periodic.csv": {
            "missing": [
                "2024-03-10T14:00:00+00:00,Agent/1029,sales,2524.394311,3600,0",
                "2024-03-10T15:00:00+00:00,Agent/1029,sales,1994.105586,2747.055704,0",
            ],
            "extra": [
                "2024-03-10T14:00:00+00:00,Agent/1029,sales,2524.394311,2524.394311,0",
                "2024-03-10T15:00:00+00:00,Agent/1029,sales,1994.105586,523.906295,0",
            ],
        },
    },
    # Q10: a wrap-up starting exactly at 10:00 gives the reference a zero row at 09:00; the
    # 2 h wrap-up from 11:00 is 1 h at 11:00 and 1 h at 12:00, not only 1 h at 12:00.
    "ref_A9_hd": {
        "agent_periodic.csv": {
            "missing": [
                "2024-03-01T09:00:00+00:00,Agent/1001,q1,0,0,0",
                "2024-03-01T11:00:00+00:00,Agent/1001,,3600,0,0",
            ],
            "extra": [
                "2024-03-01T11:00:00+00:00,Agent/1001,,3600,0,3600",
                "2024-03-01T11:00:00+00:00,Agent/1001,q1,0,0,3600",
            ],
        },
    },
    # Q11: run with --start 08:30, the reference's agent periods are 08:30, 09:30...; ours are
    # whole UTC hours whatever the run (the login at 08:00 counts from 08:00).
    "ref_A9_hc": {
        "agent_periodic.csv": {
            "missing": [
                "2024-03-01T08:30:00+00:00,Agent/1001,,3600,0,0",
                "2024-03-01T09:30:00+00:00,Agent/1001,,3600,0,30",
                "2024-03-01T09:30:00+00:00,Agent/1001,q1,0,0,30",
                "2024-03-01T10:30:00+00:00,Agent/1001,,3600,0,0",
                "2024-03-01T11:30:00+00:00,Agent/1001,,900,0,0",
            ],
            "extra": [
                "2024-03-01T08:00:00+00:00,Agent/1001,,3600,0,0",
                "2024-03-01T09:00:00+00:00,Agent/1001,,3600,0,0",
                "2024-03-01T10:00:00+00:00,Agent/1001,,3600,0,30",
                "2024-03-01T10:00:00+00:00,Agent/1001,q1,0,0,30",
                "2024-03-01T11:00:00+00:00,Agent/1001,,2700,0,0",
            ],
        },
    },
    # Q8: a known agent answering in a queue only known from the log keeps his call.
    "ref_A9_hg": {
        "calls.csv": {
            "missing": ["g1,q_unknown,,answered,2024-03-01T09:00:00+00:00,5,60,0"],
            "extra": ["g1,q_unknown,Agent/1001,answered,2024-03-01T09:00:00+00:00,5,60,0"],
        },
    },
    # Q7: the reference aborts the whole run on these inputs and writes nothing. We count
    # what can be counted and keep the bad row aside (asserted in test_bad_rows_kept_aside).
    "ref_A9_ha": {  # NULL queuename on a WRAPUPSTART: the FULL call is still a call
        "calls.csv": {"extra": ["c1,q1,,full,2024-03-01T09:00:00+00:00,0,0,0"]},
        "queue_periodic.csv": {"extra": ["2024-03-01T09:00:00+00:00,q1,0,0,1,1,0,0,0,0,0,0"]},
        # and the wrap-up is the agent's (global row; no queue to count it in)
        "agent_periodic.csv": {"extra": ["2024-03-01T09:00:00+00:00,Agent/1001,,0,0,10"]},
    },
    "ref_A9_hb": {  # COMPLETEAGENT with an empty talktime: answered, talk = 60 s - 5 s wait
        "calls.csv": {"extra": ["c1,q1,Agent/1001,answered,2024-03-01T09:00:00+00:00,5,55,0"]},
        "queue_periodic.csv": {"extra": ["2024-03-01T09:00:00+00:00,q1,1,0,1,0,0,0,0,0,0,0"]},
    },
    # ref_A9_he: callid over 32 characters: not in stat_call_on_queue (varchar(32)), like the
    # reference's empty output, but kept in classified_calls and in queue_log_rejects.
}

# What the reference choked on, and what we must have kept aside instead.
REJECTED = {
    "ref_A9_ha": ("queuename is NULL", "used without queue"),
    "ref_A9_hb": ("talktime '' is not an integer", "repaired"),
    "ref_A9_he": ("callid longer than 32 characters", "not exported"),
}

SUMMARY: list[str] = []


def _rows(cmp, header: str, lines: list[str]) -> Counter:
    names = header.split(",")
    return Counter(cmp.norm(names, row) for row in csv.reader(io.StringIO("\n".join(lines))))


@pytest.fixture(scope="module")
def cmp():
    return compare_module()


@pytest.mark.skipif(not SETS, reason="../shared/golden is not beside the project")
@pytest.mark.parametrize("golden", SETS, ids=[s.name for s in SETS])
def test_golden_set(golden, versioned_warehouse_url, tmp_path, cmp, request):
    warehouse_url = versioned_warehouse_url
    server = request.node.callspec.params["versioned_server"]
    out = tmp_path / "out"
    compute_into(warehouse_url, golden.queue_log, out, golden.confd, golden.until)
    known = KNOWN_DIFFERENCES.get(golden.name, {})
    problems = []
    for filename in FILES:
        header = HEADERS[filename]
        exp_header, expected = cmp.load(str(golden.expected_dir / filename))
        act_header, actual = cmp.load(str(out / filename))
        assert act_header == exp_header == header.split(",")
        outside = 0
        if filename == "agent_periodic.csv" and golden.window_start:
            first = hour_floor(golden.window_start)
            before = Counter({r: n for r, n in actual.items() if r[0] < first})
            outside = sum(before.values())
            actual -= before
        missing, extra = expected - actual, actual - expected
        n_exp = sum(expected.values())
        SUMMARY.append(f"{server} {golden.name:18} {filename:19} expected {n_exp:6}  matched "
                       f"{n_exp - sum(missing.values()):6}  missing {sum(missing.values()):3}  "
                       f"extra {sum(extra.values()):3}"
                       + (f"  before window {outside}" if outside else ""))
        want_missing = _rows(cmp, header, known.get(filename, {}).get("missing", []))
        want_extra = _rows(cmp, header, known.get(filename, {}).get("extra", []))
        if missing != want_missing or extra != want_extra:
            problems.append(f"{filename}: unexpected differences\n"
                            f"  missing {dict(missing - want_missing)} / not missing {dict(want_missing - missing)}\n"
                            f"  extra {dict(extra - want_extra)} / not extra {dict(want_extra - extra)}")
    assert not problems, "\n".join(problems)

    if golden.name in REJECTED:
        assert golden.reference_error, "the reference aborted on this set"
        reason, disposition = REJECTED[golden.name]
        engine = create_engine(warehouse_url)
        with engine.connect() as conn:
            kept = conn.execute(text(
                "SELECT reason, disposition FROM queue_log_rejects")).all()
        engine.dispose()
        assert any(reason in r.reason and r.disposition == disposition for r in kept), kept


def pytest_golden_summary() -> list[str]:
    return SUMMARY
