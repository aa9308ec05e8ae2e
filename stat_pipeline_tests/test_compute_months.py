"""`compute` into an empty warehouse: the month tables of migration 0018 start at the file's
first month (issue 16, second round). A fresh warehouse holds this month's and the next
one's, and the months are contiguous: a file of 2015 made the first write create every
month from then to now (~280 tables, ~2 s). A warehouse that holds rows is never re-based."""
from __future__ import annotations

import dagster as dg
from sqlalchemy import create_engine, text

from stat_pipeline.compute import compute_into
from stat_pipeline_tests.test_compute_planning import CALLS, HEADER


def _months(url: str) -> dict[str, list[str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {table: sorted(conn.execute(text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = to_regclass(:t)"), {"t": table}).scalars())
                for table in ("queue_log", "classified_calls")}
    finally:
        engine.dispose()


def _file(tmp_path, name: str, month: str):
    path = tmp_path / name
    path.write_text(HEADER + "\n".join(c.replace("2024-03-", month + "-") for c in CALLS) + "\n")
    return path


def test_an_empty_warehouse_gets_the_files_months_only(warehouse_url, tmp_path):
    result = compute_into(warehouse_url, _file(tmp_path, "may.csv", "2015-05"),
                          tmp_path / "may", instance=dg.DagsterInstance.ephemeral())
    assert result.hours == 6
    assert len((tmp_path / "may" / "calls.csv").read_text().splitlines()) == 4
    # the catch-alls around the one month the file needs, nothing from 2015 to now
    assert _months(warehouse_url) == {
        t: [f"{t}_after", f"{t}_before", f"{t}_p2015_05"] for t in ("queue_log", "classified_calls")}
    engine = create_engine(warehouse_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM queue_log_p2015_05")).scalar() == len(CALLS)
        assert conn.execute(text("SELECT count(*) FROM queue_log_before")).scalar() == 0
    engine.dispose()

    # a warehouse with rows keeps its months; a later month is added the usual way
    # (contiguous), and the first file's rows stay
    compute_into(warehouse_url, _file(tmp_path, "july.csv", "2015-07"), tmp_path / "july",
                 instance=dg.DagsterInstance.ephemeral())
    assert _months(warehouse_url)["queue_log"] == [
        "queue_log_after", "queue_log_before", "queue_log_p2015_05", "queue_log_p2015_06",
        "queue_log_p2015_07"]
    engine = create_engine(warehouse_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM queue_log_p2015_05")).scalar() == len(CALLS)
    engine.dispose()
