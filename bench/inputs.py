#!/usr/bin/env python3
"""Benchmark of the file sources alone: how long ``stage`` takes to bring a file's rows into
``incoming_queue_log`` (bytes -> lines -> fields -> times), per format.

    .venv/bin/python bench/inputs.py [--size 30d] [--repeat 3]

The rows are bench/run.py's generated queue_log (cached under bench/.data/), written as the
golden-layout CSV, an Asterisk flat file and a mysqldump with its CREATE TABLE (one extended
INSERT per 2,000 rows, as mysqldump's 1 MB lines hold). Each is staged into a fresh database
of a throwaway embedded PostgreSQL; the best of ``--repeat`` wall times is printed.
Figures, not assertions (a loaded machine gives larger ones: compare runs made side by side).
"""
import argparse
import csv
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

EVER = (dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc),
        dt.datetime(9999, 12, 31, tzinfo=dt.timezone.utc))
COLUMNS = ["time", "callid", "queuename", "agent", "event",
           "data1", "data2", "data3", "data4", "data5"]


def _mysql(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def write_forms(csv_path: Path, out: Path) -> dict[str, Path]:
    rows = list(csv.DictReader(open(csv_path, newline="")))
    flat, dump = out / "queue_log", out / "dump.sql"
    with open(flat, "w") as fh:
        for r in rows:
            epoch = dt.datetime.fromisoformat(r["time"]).timestamp()
            fh.write("|".join([f"{epoch:.6f}".rstrip("0").rstrip("."), *(r[c] for c in COLUMNS[1:])]) + "\n")
    tuples = ["(" + ",".join([str(i + 1), _mysql(r["time"][:26].replace("T", " "))]
                             + [_mysql(r[c]) for c in COLUMNS[1:]]) + ")"
              for i, r in enumerate(rows)]
    with open(dump, "w") as fh:
        fh.write("-- MySQL dump 10.13\nCREATE TABLE `queue_log` (\n  `id` bigint NOT NULL,\n"
                 + "".join(f"  `{c}` varchar(100) DEFAULT '',\n" for c in COLUMNS)
                 + "  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n")
        for i in range(0, len(tuples), 2000):
            fh.write("INSERT INTO `queue_log` VALUES " + ",".join(tuples[i:i + 2000]) + ";\n")
    return {"csv": csv_path, "asterisk": flat, "mysql": dump}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="30d")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", default="csv,asterisk,mysql")
    args = parser.parse_args()
    import run  # bench/run.py: the generated data sets
    from sqlalchemy import create_engine, text

    from stat_pipeline.sources import file_source
    from stat_pipeline.warehouse.embedded import EmbeddedPostgres
    from stat_pipeline.warehouse.migrate import migrate

    data = run.generate(args.size)
    with tempfile.TemporaryDirectory(prefix="bench-inputs-") as tmp:
        forms = write_forms(data / "queue_log.csv", Path(tmp))
        with EmbeddedPostgres(Path(tmp) / "pg", fast=True, port=55438) as pg:
            pg.create_database("stage")
            engine = create_engine(pg.url("stage"))
            migrate(engine)
            for fmt in args.formats.split(","):
                source = file_source(str(forms[fmt]), fmt)
                best, rows = None, 0
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    with engine.begin() as conn:
                        source.stage(conn, *EVER)
                        rows = conn.execute(text("SELECT count(*) FROM incoming_queue_log")).scalar()
                    took = time.perf_counter() - start
                    best = took if best is None else min(best, took)
                size = forms[fmt].stat().st_size / 1e6
                print(f"{args.size} {fmt:9s} {rows:8d} rows  {size:6.1f} MB  stage {best:6.2f} s")
            engine.dispose()


if __name__ == "__main__":
    main()
