"""Monthly partitions of the raw tables (migration 0018) and the retention that drops old
months while the statistics stay (stat_pipeline/retention.py), on a real PostgreSQL (18 and,
where installed, Debian's 15) and through the real Dagster jobs."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from stat_pipeline.retention import (RETENTION_JOB, RetentionConfigError, drop_raw_months,
                                     monthly_partitions, retention_cutoff, retention_months)
from stat_pipeline.warehouse import migrate as migrations
from stat_pipeline_tests.harness import CallCentre, at

UTC = dt.timezone.utc
FEB = dt.datetime(2024, 2, 29, tzinfo=UTC)  # the harness's day is 2024-03-01
HOURS = ("2024-02-29-22:00", "2024-03-01-11:00")


def _two_months_of_calls(centre: CallCentre) -> None:
    """A call on 29 February 22:00 and one on 1 March 10:00."""
    centre.log((at("22:00:00", FEB), "feb1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("22:00:30", FEB), "feb1", "q1", "Agent/1", "CONNECT", "30"),
               (at("22:05:00", FEB), "feb1", "q1", "Agent/1", "COMPLETECALLER", "30", "270"),
               (at("10:00:00"), "mar1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("10:00:20"), "mar1", "q1", "Agent/1", "CONNECT", "20"),
               (at("10:03:00"), "mar1", "q1", "Agent/1", "COMPLETECALLER", "20", "160"))


def _rows_by_partition(centre: CallCentre, table: str) -> dict[str, int]:
    return dict(centre.query(f"SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1"))


def _stat_calls(centre: CallCentre) -> list[tuple]:
    return centre.query('SELECT callid, CAST(status AS text), "time", waittime, talktime '
                        'FROM stat_call_on_queue ORDER BY "time"')


@pytest.fixture
def centre(warehouse_url):
    c = CallCentre(warehouse_url)
    _two_months_of_calls(c)
    c.run(*HOURS)
    yield c
    c.close()


def test_hours_are_written_into_monthly_partitions(centre):
    assert _rows_by_partition(centre, "queue_log") == {"queue_log_p2024_02": 3,
                                                       "queue_log_p2024_03": 3}
    assert _rows_by_partition(centre, "classified_calls") == {
        "classified_calls_p2024_02": 1, "classified_calls_p2024_03": 1}
    with centre.engine.connect() as conn:
        months = {(table, month.isoformat()) for table, _part, month in monthly_partitions(conn)}
    for table in ("queue_log", "classified_calls", "queue_log_rejects"):
        assert {(table, "2024-02-01"), (table, "2024-03-01")} <= months
    assert [c for c, *_ in _stat_calls(centre)] == ["feb1", "mar1"]


def test_retention_drops_raw_months_and_keeps_statistics(centre):
    statistics = _stat_calls(centre)
    periodic = centre.periodic()
    with centre.engine.begin() as conn:
        dropped = drop_raw_months(conn, 1, now=dt.datetime(2024, 4, 15, tzinfo=UTC))
    assert dropped == [dt.date(2024, 2, 1)]
    assert _rows_by_partition(centre, "queue_log") == {"queue_log_p2024_03": 3}
    assert _rows_by_partition(centre, "classified_calls") == {"classified_calls_p2024_03": 1}
    assert centre.query("SELECT to_regclass('queue_log_p2024_02')") == [(None,)]
    # the statistics of February stay
    assert _stat_calls(centre) == statistics
    assert centre.periodic() == periodic
    assert centre.query("SELECT month, retention_months FROM raw_months_dropped") == [
        (dt.date(2024, 2, 1), 1)]
    # run again: nothing more to drop, nothing recorded twice
    with centre.engine.begin() as conn:
        assert drop_raw_months(conn, 1, now=dt.datetime(2024, 4, 15, tzinfo=UTC)) == []


def test_rematerializing_a_dropped_month_is_refused_and_changes_nothing(centre):
    statistics = _stat_calls(centre)
    with centre.engine.begin() as conn:
        drop_raw_months(conn, 1, now=dt.datetime(2024, 4, 15, tzinfo=UTC))
    with pytest.raises(Exception, match="raw rows of 2024-02 were dropped by retention"):
        centre.run(HOURS[0])
    assert _stat_calls(centre) == statistics
    assert centre.query("SELECT to_regclass('queue_log_p2024_02')") == [(None,)]
    # a range reaching into the dropped month is refused whole (one transaction per write)
    with pytest.raises(Exception, match="dropped by retention"):
        centre.run(*HOURS)
    # the months kept are re-materialized as before
    centre.run(HOURS[1])
    assert _stat_calls(centre) == statistics


def test_retention_job_through_dagster(centre, monkeypatch):
    """The job the daily schedule runs: with 1 month kept today, both test months go; the
    coming month's partitions are created ahead."""
    monkeypatch.setenv("STAT_RETENTION_RAW_MONTHS", "1")
    job = centre.defs.resolve_job_def(RETENTION_JOB)
    assert job.execute_in_process(instance=centre.instance).success
    assert centre.query("SELECT count(*) FROM queue_log") == [(0,)]
    assert [m for (m,) in centre.query("SELECT month FROM raw_months_dropped ORDER BY 1")] == [
        dt.date(2024, 2, 1), dt.date(2024, 3, 1)]
    assert len(_stat_calls(centre)) == 2
    next_month = (dt.datetime.now(UTC).replace(day=1) + dt.timedelta(days=32)).strftime("%Y_%m")
    assert centre.query(f"SELECT to_regclass('queue_log_p{next_month}') IS NOT NULL") == [(True,)]


def test_retention_setting():
    assert retention_months({}) is None
    assert retention_months({"STAT_RETENTION_RAW_MONTHS": "0"}) is None
    assert retention_months({"STAT_RETENTION_RAW_MONTHS": " 13 "}) == 13
    for bad in ("-1", "1.5", "a year"):
        with pytest.raises(RetentionConfigError, match="whole number of months") as err:
            retention_months({"STAT_RETENTION_RAW_MONTHS": bad})
        assert "\n" not in str(err.value)
    assert retention_cutoff(3, dt.datetime(2024, 1, 10, 5, tzinfo=UTC)) == \
        dt.datetime(2023, 10, 1, tzinfo=UTC)
    assert retention_cutoff(12, dt.datetime(2024, 12, 31, 23, tzinfo=UTC)) == \
        dt.datetime(2023, 12, 1, tzinfo=UTC)


@pytest.fixture
def engine(versioned_warehouse_url):
    engine = sa.create_engine(versioned_warehouse_url)
    yield engine
    engine.dispose()


def test_migration_carries_rows_columns_and_indexes(engine, monkeypatch):
    """A warehouse with rows, migrated to monthly partitions: the same rows, columns (0017's
    source scope included) and index names, each row in its month, a NULL hour in the
    default partition."""
    every = migrations.migration_files()
    monkeypatch.setattr(migrations, "migration_files",
                        lambda: [m for m in every if m[0] < "0018"])
    migrations.migrate(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("""
            INSERT INTO queue_log (source, source_id, "time", callid, queuename, event)
            SELECT 's', g, timestamptz '2024-01-20 00:00+00' + g * interval '1 day', 'c', 'q',
                   'ENTERQUEUE' FROM generate_series(1, 60) g;
            INSERT INTO queue_log_rejects (source, source_id, hour, stage, reason, disposition,
                                           raw)
            VALUES ('s', 1, NULL, 'ingest', 'no usable time', 'ignored', '{}'),
                   ('s', 2, '2024-02-10 10:00+00', 'ingest', 'r', 'ignored', '{}');
            INSERT INTO classified_calls (source, callid, queuename, call_time, status)
            VALUES ('s', 'c', 'q', '2024-03-05 10:00+00', 'abandoned')""")

    def shape(conn):
        columns = conn.exec_driver_sql("""
            SELECT table_name, column_name, data_type, is_nullable, column_default,
                   is_generated
            FROM information_schema.columns
            WHERE table_name IN ('queue_log', 'classified_calls', 'queue_log_rejects')
            ORDER BY 1, ordinal_position""").all()
        indexes = conn.exec_driver_sql("""
            SELECT tablename, indexname FROM pg_indexes
            WHERE tablename IN ('queue_log', 'classified_calls', 'queue_log_rejects')
            ORDER BY 1, 2""").all()
        rows = conn.exec_driver_sql(
            'SELECT source_id, "time", row_hash FROM queue_log ORDER BY 1').all()
        return columns, indexes, rows

    with engine.connect() as conn:
        before = shape(conn)
    # 0018 alone: later migrations change indexes on purpose (0022: classified_calls' callid)
    monkeypatch.setattr(migrations, "migration_files",
                        lambda: [m for m in every if m[0] < "0019"])
    assert "0018_monthly_partitions" in migrations.migrate(engine)
    with engine.begin() as conn:
        after = shape(conn)
        assert after == before
        by_partition = dict(conn.exec_driver_sql(
            "SELECT tableoid::regclass::text, count(*) FROM queue_log GROUP BY 1").all())
        assert by_partition == {"queue_log_p2024_01": 11, "queue_log_p2024_02": 29,
                                "queue_log_p2024_03": 20}
        assert conn.exec_driver_sql(
            "SELECT tableoid::regclass::text FROM queue_log_rejects WHERE hour IS NULL"
        ).scalar_one() == "queue_log_rejects_default"
        # the unique index of 0009 still refuses a row twice, across the partitioned table
        with pytest.raises(sa.exc.IntegrityError):
            with conn.begin_nested():
                conn.exec_driver_sql("""
                    INSERT INTO queue_log (source, source_id, "time", callid, queuename, event)
                    VALUES ('s', 99, timestamptz '2024-01-21 00:00+00', 'c', 'q',
                            'ENTERQUEUE')""")
        # a row written for a month without its table lands in the catch-all partition
        # (queue_log_after, from the last month to MAXVALUE), and moves into the month's own
        # table when that month is prepared; the months in between are created too
        conn.exec_driver_sql("""
            INSERT INTO queue_log (source, source_id, "time", callid, queuename, event)
            VALUES ('s', 100, timestamptz '2031-07-04 10:00+00', 'x', 'q', 'ENTERQUEUE'),
                   ('s', 101, timestamptz '2019-02-03 10:00+00', 'x', 'q', 'ENTERQUEUE')""")
        assert conn.exec_driver_sql("SELECT count(*) FROM queue_log_after").scalar() == 1
        assert conn.exec_driver_sql("SELECT count(*) FROM queue_log_before").scalar() == 1
        assert conn.exec_driver_sql(
            "SELECT stat_prepare_hours('2031-07-04 10:00+00', '2031-07-04 11:00+00')"
        ).scalar() == 3
        assert conn.exec_driver_sql(
            "SELECT tableoid::regclass::text FROM queue_log WHERE source_id = 100"
        ).scalar_one() == "queue_log_p2031_07"
        assert conn.exec_driver_sql("SELECT count(*) FROM queue_log_after").scalar() == 0
        # the same backwards: a month before the first one
        conn.exec_driver_sql("SELECT stat_prepare_hours('2019-02-03 10:00+00', "
                             "'2019-02-03 11:00+00')")
        assert conn.exec_driver_sql(
            "SELECT tableoid::regclass::text FROM queue_log WHERE source_id = 101"
        ).scalar_one() == "queue_log_p2019_02"
        # preparing again creates nothing
        assert conn.exec_driver_sql(
            "SELECT stat_prepare_hours('2031-07-01 00:00+00', '2031-08-01 00:00+00')"
        ).scalar() == 0
        # the months stay contiguous between the two catch-alls: no gap a row could miss
        months = conn.exec_driver_sql("""
            SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'queue_log'::regclass AND c.relname LIKE 'queue_log!_p%' ESCAPE '!'
        """.replace("%", "%%")).scalar()
        assert months == (2031 - 2019) * 12 + (7 - 2) + 1
        # an agent's last login before an hour is read newest month first and stops there
        # (no default partition: PostgreSQL scans range partitions in order), so one probe,
        # not one per month of history
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("""
            EXPLAIN SELECT "time" FROM queue_log WHERE agent = 'Agent/1'
              AND event IN ('AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF')
              AND "time" < '2024-03-10 00:00+00' ORDER BY "time" DESC LIMIT 1"""))
        assert "Merge Append" not in plan and "Append" in plan, plan
