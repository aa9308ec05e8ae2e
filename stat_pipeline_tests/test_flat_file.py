"""Asterisk's own queue_log flat file as a source: same statistics as the same rows in CSV,
and messy files (NUL bytes, cut lines, CRLF, rotated and gzip'ed files) never stop a run."""
import csv
import datetime as dt
import gzip

from sqlalchemy import create_engine, text

from stat_pipeline.compute import compute_into
from stat_pipeline.sources import detect_format, rotated_files

T0 = int(dt.datetime(2024, 3, 1, 9, tzinfo=dt.timezone.utc).timestamp())
ROWS = [  # seconds after 09:00, callid, queue, agent, event, data...
    (0, "c1", "q1", "NONE", "ENTERQUEUE", "", "0601", "1"),
    (10, "c1", "q1", "Agent/1001", "CONNECT", "10", "c1.1", "3"),
    (310, "c1", "q1", "Agent/1001", "COMPLETEAGENT", "10", "300", "1"),
    (60, "c2", "q1", "NONE", "ENTERQUEUE", "", "0602", "1"),
    (68, "c2", "q1", "Agent/1002", "CONNECT", "8", "c2.1", "2"),
    (188, "c2", "q1", "Agent/1002", "ATTENDEDTRANSFER", "LINK", "chan1", "chan2", "8", "120", "1"),
    (200, "c3", "q2", "NONE", "ENTERQUEUE", "", "0603", "1"),
    (245, "c3", "q2", "NONE", "ABANDON", "1", "1", "45"),
    (3700, "c4", "q2", "NONE", "FULL"),
    (3800, "NONE", "q1", "NONE", "SOMECUSTOMVERB", "x|y|z"),
]


def _flat_line(row) -> str:
    return "|".join([str(T0 + row[0]), *row[1:]]) + ("|" if len(row) == 5 else "")


def _csv(path, rows) -> None:
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["time", "callid", "queuename", "agent", "event",
                      "data1", "data2", "data3", "data4", "data5"])
        for r in rows:
            data = list(r[5:]) + [""] * (5 - len(r[5:]))
            if len(r[5:]) > 5:  # the realtime rule: data5 keeps the remainder
                data = list(r[5:9]) + ["|".join(r[9:])]
            when = dt.datetime.fromtimestamp(T0 + r[0], dt.timezone.utc).isoformat()
            out.writerow([when, *r[1:5], *data])


def _outputs(url, path, tmp_path, name):
    out = tmp_path / name
    result = compute_into(url, path, out)
    return ({f: sorted((out / f).read_text().splitlines()) for f in ("calls.csv",
                                                                      "queue_periodic.csv")},
            result)


def test_flat_file_gives_the_same_statistics_as_csv(tmp_path, pg_server):
    flat = tmp_path / "queue_log"
    flat.write_text("".join(_flat_line(r) + "\n" for r in ROWS))
    as_csv = tmp_path / "queue_log.csv"
    _csv(as_csv, ROWS)
    assert detect_format(str(flat)) == "asterisk" and detect_format(str(as_csv)) == "csv"
    results = []
    for name, path in (("flat", flat), ("csv", as_csv)):
        pg_server.create_database(f"flat_{name}")
        results.append(_outputs(pg_server.url(f"flat_{name}"), path, tmp_path, name)[0])
    assert results[0] == results[1]
    calls = results[0]["calls.csv"]
    assert any(",answered," in c and ",8,120," in c for c in calls)  # LINK: data4, data5 part 1
    assert len(calls) == 5


def test_messy_flat_files_are_read_around_their_bad_lines(tmp_path, pg_server):
    lines = [_flat_line(r) for r in ROWS]
    old = tmp_path / "queue_log-20240229.gz"          # rotated, compressed: read first
    with gzip.open(old, "wt") as fh:
        fh.write(lines[0] + "\n" + lines[1] + "\n")
    live = tmp_path / "queue_log"
    live.write_bytes(
        (lines[2] + "\r\n").encode()                   # CRLF
        + b"\x00\x00\x00" + (lines[3] + "\n").encode()  # NUL bytes left by a crash
        + (lines[4] + "\n").encode()
        + b"1709283900|c9|q1|NO\n"                      # a line cut in half
        + b"yesterday|c8|q1|NONE|FULL|\n"               # no epoch
        + b"\n"                                         # empty line: nothing
        + "\n".join(lines[5:]).encode() + b"\n"
        + (lines[7] + "\n").encode()                   # a row loaded twice
        + b"\xff\xfe|broken utf-8\n")
    assert rotated_files(str(tmp_path / "queue_log*")) == [str(old), str(live)]
    pg_server.create_database("flat_messy")
    url = pg_server.url("flat_messy")
    outputs, result = _outputs(url, str(tmp_path / "queue_log*"), tmp_path, "out")
    assert len(outputs["calls.csv"]) == 5            # every call of the good lines
    engine = create_engine(url)
    with engine.connect() as conn:
        rejects = conn.execute(text(
            "SELECT source_id, reason FROM queue_log_rejects ORDER BY source_id")).all()
        custom = conn.execute(text(
            "SELECT data1, data2, data3 FROM queue_log WHERE event = 'SOMECUSTOMVERB'")).one()
    engine.dispose()
    assert [r.source_id for r in rejects] == [6, 7, 14, 15]  # line numbers across both files
    assert "malformed line" in rejects[0].reason and "not a Unix time" in rejects[1].reason
    assert rejects[2].reason == "exact duplicate of source row 11"
    assert tuple(custom) == ("x", "y", "z")                # unknown verbs are kept
    assert result.rejects == {"ignored": 4}


def test_realtime_table_exports_are_read_by_their_header(tmp_path, pg_server):
    """Exports of an Asterisk/Wazo realtime queue_log table: the source's own `id`, a
    tab-separated file, an old single `data` column with pipes; all give the same calls."""
    t = [dt.datetime.fromtimestamp(T0 + r[0], dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
         for r in ROWS]
    split = [(list(r[5:]) + [""] * 5)[:4] + ["|".join(r[9:])] for r in ROWS]
    with_ids = tmp_path / "export.csv"
    with open(with_ids, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "time", "callid", "queuename", "agent", "event",
                      "data1", "data2", "data3", "data4", "data5"])
        for i, (r, when) in enumerate(zip(ROWS, t)):
            out.writerow([1000 + i, when, *r[1:5], *split[i]])
    legacy = tmp_path / "legacy.tsv"
    with open(legacy, "w", newline="") as fh:
        out = csv.writer(fh, delimiter="\t")
        out.writerow(["time", "callid", "queuename", "agent", "event", "data"])
        for r, when in zip(ROWS, t):
            out.writerow([when, *r[1:5], "|".join(r[5:])])
    golden = tmp_path / "golden.csv"
    _csv(golden, ROWS)
    results = {}
    for name, path in (("ids", with_ids), ("legacy", legacy), ("golden", golden)):
        assert detect_format(str(path)) == "csv"
        pg_server.create_database(f"export_{name}")
        results[name] = _outputs(pg_server.url(f"export_{name}"), path, tmp_path, name)[0]
    assert results["ids"] == results["legacy"] == results["golden"]
    engine = create_engine(pg_server.url("export_ids"))
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT min(source_id), max(source_id) FROM queue_log")).one()
    engine.dispose()
    assert tuple(ids) == (1000, 1000 + len(ROWS) - 1)   # the source's own row ids
