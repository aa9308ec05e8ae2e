"""Parity with wazo-stat fill_db on every golden set of ../shared/golden.

``stat-pipeline compute`` runs each set up to its last run's end (through the real Dagster
definitions and a real PostgreSQL) and its calls.csv / queue_periodic.csv are compared with
the reference's (``expected/single`` if present, else the last run) the way acceptance does.
Clean sets must be identical. Where the reference is known wrong, the exact difference is
written below, with the quirk it comes from (docs/differences-from-wazo.md explains each):
the test fails if we differ in any other way, or stop differing there.
"""
from __future__ import annotations

import csv
import io
from collections import Counter

import pytest
from sqlalchemy import create_engine, text

from stat_pipeline.compute import compute_into
from stat_pipeline_tests.golden import compare_module, golden_sets

SETS = golden_sets()
FILES = ("calls.csv", "queue_periodic.csv")
CALLS = "callid,queue,agent,status,time,waittime,talktime,ringtime"
PERIODIC = ("time,queue,answered,abandoned,total,full,closed,joinempty,leaveempty,"
            "divert_ca_ratio,divert_waittime,timeout")

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
def test_golden_set(golden, warehouse_url, tmp_path, cmp):
    out = tmp_path / "out"
    compute_into(warehouse_url, golden.queue_log, out, golden.confd, golden.until)
    known = KNOWN_DIFFERENCES.get(golden.name, {})
    problems = []
    for filename, header in zip(FILES, (CALLS, PERIODIC)):
        exp_header, expected = cmp.load(str(golden.expected_dir / filename))
        act_header, actual = cmp.load(str(out / filename))
        assert act_header == exp_header == header.split(",")
        missing, extra = expected - actual, actual - expected
        n_exp = sum(expected.values())
        SUMMARY.append(f"{golden.name:18} {filename:19} expected {n_exp:6}  matched "
                       f"{n_exp - sum(missing.values()):6}  missing {sum(missing.values()):3}  "
                       f"extra {sum(extra.values()):3}")
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
