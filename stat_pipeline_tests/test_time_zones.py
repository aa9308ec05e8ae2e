"""Times written without an offset, read in a configured zone, across real DST changes:
the repeated autumn hour and the skipped spring hour lose and double no call."""
import csv

import pytest
from sqlalchemy import create_engine, text

from stat_pipeline.compute import compute_into

HEADER = ["time", "callid", "queuename", "agent", "event", "data1", "data2", "data3", "data4",
          "data5"]


def _write(path, rows):
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for r in rows:
            out.writerow(list(r) + [""] * (10 - len(r)))


def _calls(url):
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT callid, CAST(status AS text), \"time\", waittime FROM stat_call_on_queue "
            "ORDER BY \"time\", callid")).all()
        times = conn.execute(text("SELECT source_id, \"time\" FROM queue_log ORDER BY source_id")).all()
    engine.dispose()
    return [tuple(r) for r in rows], [r.time for r in times]


@pytest.mark.parametrize("zone, day, first_pass_offset", [
    ("Europe/Paris", "2024-10-27", "+02:00"),        # 02:00-03:00 happens twice
    ("America/New_York", "2024-11-03", "-04:00"),    # 01:00-02:00 happens twice
])
def test_repeated_autumn_hour(tmp_path, pg_server, zone, day, first_pass_offset):
    hh = "02" if zone == "Europe/Paris" else "01"
    rows = [
        (f"{day} {hh}:50:00", "c1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),  # first pass
        (f"{day} {hh}:55:00", "c2", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
        (f"{day} {hh}:56:00", "c2", "q1", "NONE", "ABANDON", "1", "1", "60"),
        (f"{day} {hh}:05:00", "c1", "q1", "NONE", "ABANDON", "1", "1", "900"),   # second pass
        (f"{day} {hh}:10:00", "c3", "q1", "NONE", "FULL"),
    ]
    path = tmp_path / "local.csv"
    _write(path, rows)
    db = "tz_" + zone.split("/")[1].lower()
    pg_server.create_database(db)
    compute_into(pg_server.url(db), path, tmp_path / "out", timezone=zone)
    calls, times = _calls(pg_server.url(db))
    import datetime as dt
    first = dt.datetime.fromisoformat(f"{day}T{hh}:50:00{first_pass_offset}")
    assert times[0] == first                       # the first pass is the earlier instant
    assert times[3] == first + dt.timedelta(minutes=15)   # 15 min later, in the second pass
    assert times == sorted(times[:3]) + times[3:] and times[3] > times[2]
    statuses = {c[0]: c[1] for c in calls}
    assert statuses == {"c1": "abandoned", "c2": "abandoned", "c3": "full"}
    assert [c[3] for c in calls if c[0] == "c1"] == [900]


def test_skipped_spring_hour_loses_nothing(tmp_path, pg_server):
    rows = [
        ("2024-03-31 01:59:30", "s1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
        ("2024-03-31 03:00:30", "s1", "q1", "NONE", "ABANDON", "1", "1", "60"),   # 1 min later
        ("2024-03-31 02:30:00", "s2", "q1", "NONE", "FULL"),   # does not exist: after the gap
    ]
    path = tmp_path / "spring.csv"
    _write(path, rows)
    pg_server.create_database("tz_spring")
    compute_into(pg_server.url("tz_spring"), path, tmp_path / "out", timezone="Europe/Paris")
    calls, times = _calls(pg_server.url("tz_spring"))
    assert [(c[0], c[1]) for c in calls] == [("s1", "abandoned"), ("s2", "full")]
    assert (times[1] - times[0]).total_seconds() == 60


def test_offsets_in_the_file_win_over_the_zone(tmp_path, pg_server):
    path = tmp_path / "offsets.csv"
    _write(path, [("2024-10-27T02:30:00+02:00", "o1", "q1", "NONE", "FULL"),
                  ("2024-10-27T02:30:00+01:00", "o2", "q1", "NONE", "FULL")])
    pg_server.create_database("tz_offsets")
    compute_into(pg_server.url("tz_offsets"), path, tmp_path / "out", timezone="America/New_York")
    _, times = _calls(pg_server.url("tz_offsets"))
    assert [t.isoformat() for t in times] == ["2024-10-27T00:30:00+00:00",
                                              "2024-10-27T01:30:00+00:00"]


def test_durations_from_asterisk_or_from_event_times(warehouse_url):
    """A writer whose clock or counter disagrees: Asterisk says 10 s of wait, the
    timestamps say 20 s. Wazo's tables get Asterisk's seconds by default (parity), the
    timestamps' with durations_from=events; classified_calls keeps both side by side."""
    from stat_pipeline.definitions import HOURLY_JOB, QUIET
    from stat_pipeline_tests.harness import CallCentre, at

    centre = CallCentre(warehouse_url)
    centre.log((at("10:00:00"), "k1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("10:00:20"), "k1", "q1", "Agent/1", "CONNECT", "10", "k1.1", "2"),
               (at("10:05:20"), "k1", "q1", "Agent/1", "COMPLETEAGENT", "10", "290", "1"))
    result = centre.run("10:00")
    skew = {c.check_name: c for c in result.get_asset_check_evaluations()}["clock_skew"]
    assert not skew.passed and skew.metadata["wait_skew_max_s"].value == 10.0
    row = centre.classified()[0]
    assert (row.waittime, row.talktime, row.waittime_by_events, row.talktime_by_events) == (
        10, 290, 20, 300)
    assert [(c[5], c[6]) for c in centre.calls()] == [(10, 290)]
    job = centre.defs.resolve_job_def(HOURLY_JOB)
    assert job.execute_in_process(
        instance=centre.instance, partition_key="2024-03-01-10:00",
        run_config={**QUIET, "ops": {"classified_calls": {"config": {
            "durations_from": "events"}}}}).success
    assert [(c[5], c[6]) for c in centre.calls()] == [(20, 300)]
    centre.close()


def test_local_day_report_across_the_autumn_change(warehouse_url):
    """The local day of the fall-back has 25 hours: every one of them lands in it."""
    import datetime as dt

    from stat_pipeline_tests.harness import CallCentre

    day = dt.datetime(2024, 10, 26, 22, tzinfo=dt.timezone.utc)   # 00:00 Paris (CEST)
    centre = CallCentre(warehouse_url, day=day)
    hours = [day + dt.timedelta(hours=h) for h in range(26)]      # up to 00:00 next day, CET
    centre.log(*[(h + dt.timedelta(minutes=30), f"f{i}", "q1", "NONE", "FULL")
                 for i, h in enumerate(hours)])
    centre.run(hours[0].strftime("%Y-%m-%d-%H:00"), hours[-1].strftime("%Y-%m-%d-%H:00"))
    rows = centre.query("SELECT period_local, total FROM stat_queue_report('Europe/Paris', 'day')")
    assert [(r.period_local.date().isoformat(), r.total) for r in rows] == [
        ("2024-10-27", 25), ("2024-10-28", 1)]
    utc = centre.query("SELECT period_local, total FROM stat_queue_report('UTC', 'day')")
    assert [(r.period_local.date().isoformat(), r.total) for r in utc] == [
        ("2024-10-26", 2), ("2024-10-27", 24)]
    centre.close()


def test_naive_time_column_of_a_database_source(warehouse_url):
    """An Asterisk realtime table without queue_log_realtime_use_gmt: `time` is a naive
    local timestamp. The source's zone makes it an instant; the sensor sees the same."""
    import datetime as dt

    import dagster as dg

    from stat_pipeline.definitions import HOURLY_JOB, QUIET, build_definitions
    from stat_pipeline.partitions import hourly_partitions
    from stat_pipeline.resources import Warehouse, WazoConfig
    from stat_pipeline.sources import PostgresQueueLogSource

    engine = create_engine(warehouse_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE SCHEMA realtime; CREATE TABLE realtime.queue_log (\"time\" timestamp, "
            "callid text, queuename text, agent text, event text, data1 text, data2 text, "
            "data3 text, data4 text, data5 text, id serial PRIMARY KEY);"
            "INSERT INTO realtime.queue_log (\"time\", callid, queuename, agent, event, data1, "
            "data2, data3) VALUES ('2024-07-01 10:00:00', 'n1', 'q1', 'NONE', 'ENTERQUEUE', '', "
            "'06', '1'), ('2024-07-01 10:00:40', 'n1', 'q1', 'NONE', 'ABANDON', '1', '1', '40')")
    source = PostgresQueueLogSource(url=warehouse_url, table="realtime.queue_log",
                                    timezone="Europe/Paris")
    day = dt.datetime(2024, 7, 1, tzinfo=dt.timezone.utc)
    defs = build_definitions(partitions=hourly_partitions(start=day, end=day + dt.timedelta(days=1)),
                             source=source, warehouse=Warehouse(url=warehouse_url),
                             wazo_config=WazoConfig())
    # 10:00 in Paris in summer is 08:00 UTC
    assert source.touched_hours(0, 100, 24)[0] == (1, day + dt.timedelta(hours=8), True)
    assert defs.resolve_job_def(HOURLY_JOB).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), run_config=QUIET,
        partition_key="2024-07-01-08:00").success
    with engine.connect() as conn:
        calls = conn.execute(text('SELECT callid, "time" FROM stat_call_on_queue')).all()
    engine.dispose()
    assert [tuple(c) for c in calls] == [("n1", day + dt.timedelta(hours=8))]
