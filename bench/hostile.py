#!/usr/bin/env python3
"""Figures: `stat-pipeline compute` on ~10 MB hostile inputs, wall time and peak RSS.

    .venv/bin/python bench/hostile.py [--mb 10] [--only mixed-csv,noise-flat] [--timeout 180]

Target (issue 12): any input up to 10 MB ends within 60 s and 1 GB. Inputs, generated
under bench/.data/hostile/ (seeded, so every run measures the same bytes):

  clean-<fmt>   the baseline: the golden day day1_s1 repeated day after day to ~10 MB
                (~80 days, ~1,900 hours), undamaged
  mixed-<fmt>   the golden day day1_s1 repeated day after day to ~10 MB, in each format we
                read (csv golden layout, csv export with id, Asterisk flat file, MySQL dump),
                damaged the way test_fuzz.py does it, densely: random bytes, stray quotes,
                control bytes and invalid UTF-8 in ~1 % of the rows, a few fields over
                128 KiB, and every absurd time (epoch 86400, 2200, 9999, before 1970, '',
                garbage) a few times
  times-<fmt>   the same days with only the absurd times (30 rows)
  oneline-<fmt> a valid first row, then one 10 MB line (no separator, no line end)
  noise-<fmt>   a valid first row, then 10 MB of random bytes

Each input runs in its own `stat-pipeline compute` process (its own embedded PostgreSQL),
watched from here: killed past --timeout or when the process tree's RSS passes --max-rss-mb
(a run that plans hundreds of thousands of hours must not take the machine down). Printed:
wall time, the compute process's own peak RSS (VmHWM, not its PostgreSQL's), the peak RSS of
its whole tree (sampled; PostgreSQL included), the exit code and compute's last line.
Not a test: figures, not assertions.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
sys.path.insert(0, str(PROJECT))

from stat_pipeline_tests.golden import GOLDEN  # noqa: E402
from stat_pipeline_tests.hostile_inputs import (  # noqa: E402
    DAMAGE, FORMATS, Row, footer, golden_rows, header, render, render_row)

DAY = GOLDEN / "day1_s1"
DATA = HERE / ".data" / "hostile"

# VmHWM, not getrusage: ru_maxrss survives fork and exec (bench/run.py, same trick)
COMPUTE_WITH_RSS = """
import re, sys
from stat_pipeline.cli import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read()
print("PEAK_RSS_KB=" + re.search(r"VmHWM:\\s*(\\d+)", status).group(1), file=sys.stderr)
sys.exit(code)
"""


def _days(rows: list[Row], n: int) -> list[Row]:
    """The day's rows repeated on n consecutive days; callids (epoch.seq) moved with them so
    that every day's calls are calls of their own."""
    out = []
    for day in range(n):
        shift = dt.timedelta(days=day)

        def moved(value: str) -> str:
            m = re.fullmatch(r"(\d{10})\.(\d+)", value)
            return f"{int(m.group(1)) + day * 86400}.{m.group(2)}" if m else value

        out += [Row(r.time + shift, tuple(moved(v) for v in r.fields)) for r in rows]
    return out


def _damaged_days(fmt: str, mb: float, damage: tuple) -> bytes:
    rows = golden_rows(DAY / "queue_log.csv")
    per_day = len(render(fmt, rows).data())
    f = render(fmt, _days(rows, max(1, round(mb * 1e6 / per_day * 0.87))))
    rng = random.Random(f"bench/{fmt}")
    n = len(f.chunks)
    for kind, times in damage:
        for _ in range(max(1, times(n))):
            DAMAGE[kind](rng, f)
    return f.data()


def mixed(fmt: str, mb: float) -> bytes:
    # each damage function damages a handful of rows; repeated to reach ~1 % of the rows
    # (the huge fields add ~2 MB: fewer of them)
    return _damaged_days(fmt, mb, (("bytes", lambda n: n // 600), ("quotes", lambda n: n // 400),
                                   ("control", lambda n: n // 600), ("times", lambda n: 5),
                                   ("huge", lambda n: 4)))


def clean(fmt: str, mb: float) -> bytes:
    """The baseline: the same days, undamaged."""
    return _damaged_days(fmt, mb, ())


def times(fmt: str, mb: float) -> bytes:
    """Only absurd times (30 rows): what the planning of hours makes of them, even where
    the bytes of mixed-* stop the run earlier."""
    return _damaged_days(fmt, mb, (("times", lambda n: 5),))


def _first_row(fmt: str) -> bytes:
    row = golden_rows(DAY / "queue_log.csv", {9})[0]
    line = render_row(fmt, row, 1, last=False)
    return header(fmt) + line.body + line.tail


def oneline(fmt: str, mb: float) -> bytes:
    return _first_row(fmt) + b"x" * int(mb * 1e6) + footer(fmt)


def noise(fmt: str, mb: float) -> bytes:
    return _first_row(fmt) + random.Random(f"noise/{fmt}").randbytes(int(mb * 1e6)) + footer(fmt)


INPUTS = {f"{name}-{fmt}": (make, fmt) for name, make in
          (("clean", clean), ("mixed", mixed), ("times", times), ("oneline", oneline), ("noise", noise)) for fmt in FORMATS}


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return pids


def _rss_kb(pid: int) -> int:
    try:
        m = re.search(r"^VmRSS:\s*(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M)
        return int(m.group(1)) if m else 0
    except OSError:
        return 0


def measure(path: Path, fmt: str, timeout: float, max_rss_mb: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="hostile-out-") as out:
        fmt_arg = {"csv": "csv", "export": "csv", "flat": "asterisk", "mysql": "mysql"}[fmt]
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", COMPUTE_WITH_RSS, "compute", str(path),
                                 "--config", str(DAY / "confd.json"), "--format", fmt_arg,
                                 "--out", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=PROJECT)
        tree_peak, killed = 0, None
        while proc.poll() is None:
            tree_peak = max(tree_peak, sum(_rss_kb(p) for p in _tree(proc.pid)))
            elapsed = time.perf_counter() - started
            if elapsed > timeout or tree_peak > max_rss_mb * 1024:
                killed = f"killed after {elapsed:.0f} s" if elapsed > timeout else \
                    f"killed at {tree_peak // 1024} MB"
                # Ctrl-C first: compute then stops its PostgreSQL and removes its folder
                tree = _tree(proc.pid)
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    for p in reversed(tree):
                        try:
                            os.kill(p, signal.SIGKILL)
                        except OSError:
                            pass
                break
            time.sleep(0.2)
        stdout, stderr = proc.communicate()
        wall = time.perf_counter() - started
    own = re.search(r"PEAK_RSS_KB=(\d+)", stderr)
    # compute's own lines (its summary, its one-line error), else the exception a traceback
    # ends with; not Dagster's log lines
    lines = [ln for ln in (stdout + stderr).splitlines()
             if re.match(r"(\d+ hours computed|rows kept aside|stat-pipeline:)", ln)] or \
        [ln for ln in stderr.splitlines() if re.match(r"^[\w.]+(Error|Exception|Format)\b", ln)][-1:]
    return {"wall_s": round(wall, 1), "rss_mb": round(int(own.group(1)) / 1024) if own else None,
            "tree_rss_mb": round(tree_peak / 1024), "exit": killed or proc.returncode,
            "said": " | ".join(lines[-2:])[:160]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0)
    parser.add_argument("--only", help="comma-separated inputs: " + ", ".join(INPUTS))
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--max-rss-mb", type=float, default=3000.0)
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    names = args.only.split(",") if args.only else list(INPUTS)
    print("input | MB | wall s | compute RSS MB | tree RSS MB | exit | within 60 s & 1 GB | last words")
    for name in names:
        make, fmt = INPUTS[name]
        path = DATA / f"{name}-{args.mb:g}mb"
        if not path.exists():
            path.write_bytes(make(fmt, args.mb))
        r = measure(path, fmt, args.timeout, args.max_rss_mb)
        ok = r["exit"] == 0 and r["wall_s"] <= 60 and (r["rss_mb"] or 1e9) <= 1024
        print(f"{name} | {path.stat().st_size / 1e6:.1f} | {r['wall_s']} | {r['rss_mb']} | "
              f"{r['tree_rss_mb']} | {r['exit']} | {'yes' if ok else 'NO'} | {r['said']}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
