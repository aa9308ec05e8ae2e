"""The new-rows sensor and the hourly schedule, evaluated with Dagster's build contexts
against a real source table, and their run requests executed through the real job."""
import datetime as dt
import json

import dagster as dg
import pytest

from stat_pipeline.automation import hour_ranges, plan_new_rows, requests_for
from stat_pipeline.definitions import HOURLY_JOB, QUIET
from stat_pipeline.resources import Warehouse
from stat_pipeline_tests.harness import DAY, CallCentre, at

UTC = dt.timezone.utc
H = dt.timedelta(hours=1)


@pytest.fixture
def centre(warehouse_url):
    c = CallCentre(warehouse_url)
    yield c
    c.close()


def tick(centre: CallCentre, cursor):
    sensor = centre.defs.resolve_sensor_def("queue_log_new_rows")
    with dg.build_sensor_context(cursor=cursor, resources={
            "source": centre.source, "warehouse": Warehouse(url=centre.url)},
            instance=centre.instance) as context:
        return sensor(context)


def execute(centre: CallCentre, result) -> list[tuple[str, str]]:
    """Run what the sensor asked for, as the daemon would; return the requested ranges."""
    ranges = []
    for request in result.run_requests:
        ranges.append((request.tags["dagster/asset_partition_range_start"],
                       request.tags["dagster/asset_partition_range_end"]))
        job = centre.defs.resolve_job_def(HOURLY_JOB)
        if request.asset_selection:       # as the daemon does: only the selected assets
            job = job.get_subset(asset_selection=set(request.asset_selection))
        assert job.execute_in_process(
            instance=centre.instance, run_config=QUIET, tags=request.tags).success
    return ranges


def test_outcome_reopens_the_hour_the_call_started_in(centre):
    centre.log((at("13:55:00"), "c1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"))
    first = tick(centre, None)
    assert execute(centre, first) == [("2024-03-01-13:00", "2024-03-01-13:00")]
    assert json.loads(first.cursor)["row_id"] == 1
    assert centre.calls() == []                     # ENTERQUEUE only: the call is open

    centre.log((at("14:00:00"), "c1", "q1", "Agent/1", "CONNECT", "300", "c1.1", "2"),
               (at("14:10:00"), "c1", "q1", "Agent/1", "COMPLETECALLER", "300", "600", "1"))
    second = tick(centre, first.cursor)
    # one run over 13..14: the 14:00 rows are copied before the 13:55 call is classified
    assert execute(centre, second) == [("2024-03-01-13:00", "2024-03-01-14:00")]
    assert json.loads(second.cursor)["row_id"] == 3
    assert [(c[0], c[3], c[4], c[5], c[6]) for c in centre.calls()] == [
        ("c1", "answered", at("13:55:00"), 300, 600)]

    third = tick(centre, second.cursor)             # nothing new: cursor resumption
    assert not third.run_requests and third.cursor == second.cursor


def test_late_rows_for_an_old_hour(centre):
    centre.log((at("10:00:00"), "a1", "q1", "NONE", "FULL"),
               (at("15:00:00"), "a2", "q1", "NONE", "FULL"))
    result = tick(centre, None)
    execute(centre, result)
    assert [(p[0], p[4]) for p in centre.periodic()] == [(at("10:00:00"), 1), (at("15:00:00"), 1)]
    # a row for 10:00 arrives late (after 15:00 was done), and an out-of-order pair
    centre.log((at("10:20:00"), "a3", "q1", "NONE", "CLOSED"))
    centre.log((at("12:30:00"), "a5", "q2", "NONE", "FULL"), (at("11:30:00"), "a4", "q2", "NONE", "FULL"))
    late = tick(centre, result.cursor)
    assert execute(centre, late) == [("2024-03-01-10:00", "2024-03-01-12:00")]
    assert [(p[0], p[1], p[4]) for p in centre.periodic()] == [
        (at("10:00:00"), "q1", 2), (at("11:00:00"), "q2", 1), (at("12:00:00"), "q2", 1),
        (at("15:00:00"), "q1", 1)]
    assert json.loads(late.cursor)["row_id"] == 5


def test_rows_of_the_open_hour_hold_the_cursor():
    now = DAY + dt.timedelta(hours=15, minutes=20)
    touched = [(7, DAY + 13 * H, True), (8, DAY + 15 * H, True), (9, DAY + 14 * H, True),
               (9, DAY + 13 * H, False), (10, DAY + 15 * H, True), (11, DAY + 14 * H, True),
               (11, DAY + 15 * H, False)]       # a login at 14:xx, open into the hour in progress
    hours, cursor, closed, counts = plan_new_rows(touched, 6, None, now, DAY)
    assert hours == [DAY + 13 * H, DAY + 14 * H]        # 15:00 is still open
    assert cursor == 7                                  # row 8 (15:00) will be seen again
    assert closed == DAY + 14 * H and counts["rows_in_open_hour"] == 2
    # once 15:00 has closed, the same rows request it, and it is requested as closed anyway
    hours, cursor, closed, _ = plan_new_rows(touched, 7, closed, now + H, DAY)
    assert hours == [DAY + 13 * H, DAY + 14 * H, DAY + 15 * H] and cursor == 11
    assert closed == DAY + 15 * H


def test_every_closed_hour_is_requested_once_rows_or_not():
    hours, cursor, closed, _ = plan_new_rows([], 42, DAY + 10 * H, DAY + 13 * H + H / 2, DAY)
    assert hours == [DAY + 11 * H, DAY + 12 * H] and cursor == 42 and closed == DAY + 12 * H


def test_far_apart_hours_are_separate_clusters():
    hours = [DAY, DAY + H, DAY + 3 * H, DAY + 30 * H]
    assert hour_ranges(hours, dt.timedelta(hours=24)) == [(DAY, DAY + 3 * H), (DAY + 30 * H,) * 2]


def test_hour_by_hour_runs_would_double_count(centre):
    """Why the sensor asks for range runs: classify 12:00 before 11:00 is copied, and the
    13:00 outcome of the 11:59 call looks like a call without ENTERQUEUE, dated 12:59."""
    centre.log((at("11:59:00"), "c4", "q2", "NONE", "ENTERQUEUE", "", "06", "1"),
               (at("13:00:10"), "c4", "q2", "Agent/1", "COMPLETECALLER", "30", "40", "1"))
    for hour in ("13:00", "12:00", "11:00"):
        centre.run(hour)
    assert len(centre.calls()) == 2                   # the failure mode, reproduced
    requests = requests_for([at("11:00:00"), at("12:00:00"), at("13:00:00")], 2,
                            dt.timedelta(hours=24))
    assert len(requests) == 1
    execute(centre, type("R", (), {"run_requests": requests})())
    assert [(c[0], c[4]) for c in centre.calls()] == [("c4", at("11:59:00"))]


def test_schedule_recomputes_the_last_closed_hours(centre):
    schedule = centre.defs.resolve_schedule_def("hourly_safety_net")
    assert schedule.cron_schedule == "5 * * * *"
    context = dg.build_schedule_context(scheduled_execution_time=DAY + dt.timedelta(hours=12, minutes=5))
    request = schedule.evaluate_tick(context).run_requests[0]
    assert (request.tags["dagster/asset_partition_range_start"],
            request.tags["dagster/asset_partition_range_end"]) == ("2024-03-01-09:00", "2024-03-01-11:00")


def test_a_file_source_is_skipped_with_a_reason(tmp_path):
    from stat_pipeline.definitions import build_definitions
    from stat_pipeline.sources import CsvQueueLogSource

    path = tmp_path / "q.csv"
    path.write_text("time,callid,queuename,agent,event,data1,data2,data3,data4,data5\n")
    defs = build_definitions(source=CsvQueueLogSource(path=str(path)))
    sensor = defs.resolve_sensor_def("queue_log_new_rows")
    unused = Warehouse(url="postgresql+psycopg2://nobody@nowhere/none")  # never connected
    with dg.build_sensor_context(resources={"source": CsvQueueLogSource(path=str(path)),
                                            "warehouse": unused}) as ctx:
        result = sensor(ctx)
    assert isinstance(result, dg.SkipReason) and "hourly_safety_net" in result.skip_message


def test_late_agent_state_row_reopens_the_hours_it_changes(centre):
    centre.log((at("09:00:00"), "NONE", "NONE", "Agent/1001", "AGENTCALLBACKLOGIN", "1001@default"),
               (at("12:30:00"), "NONE", "NONE", "Agent/1001", "AGENTCALLBACKLOGOFF", "1001@default",
                "12600", "CommandLogoff"),
               (at("10:00:00"), "w1", "q1", "Agent/1001", "WRAPUPSTART", "7200"))
    first = tick(centre, None)
    # the login holds until the logoff, and the logoff until the agent's next state row:
    # none yet, so every later hour (here up to the last partition of the test)
    assert execute(centre, first) == [("2024-03-01-09:00", "2024-03-02-23:00")]
    # a PAUSEALL for 10:15 arrives late: every hour until the agent's next state row
    centre.log((at("10:15:00"), "NONE", "NONE", "Agent/1001", "PAUSEALL"))
    late = tick(centre, first.cursor)
    assert execute(centre, late) == [("2024-03-01-10:00", "2024-03-01-12:00")]


def test_a_row_in_2200_neither_pins_the_cursor_nor_hides_late_rows(centre, monkeypatch):
    """Issue 12 #3: one row dated 2200 held the cursor; every tick re-read it and everything
    after it, and once a batch of rows had come after it, new rows were not read at all."""
    from stat_pipeline import automation

    monkeypatch.setattr(automation, "BATCH_ROWS", 3)
    centre.log((at("10:00:00"), "a1", "q1", "NONE", "FULL"),
               (dt.datetime(2200, 1, 1, tzinfo=UTC), "x", "q1", "NONE", "FULL"),
               (at("11:00:00"), "a2", "q1", "NONE", "FULL"))
    first = tick(centre, None)
    assert execute(centre, first) == [("2024-03-01-10:00", "2024-03-01-11:00")]
    assert json.loads(first.cursor)["row_id"] == 3      # past the 2200 row
    centre.log(*[(at(f"{h}:00:00"), f"l{h}", "q1", "NONE", "FULL") for h in (13, 14, 15, 16)])
    second = tick(centre, first.cursor)
    third = tick(centre, second.cursor)
    late = [r for result in (second, third) for r in execute(centre, result)]
    # the late rows' hours, and nothing again: 10:00 and 11:00 are not re-requested
    assert late == [("2024-03-01-13:00", "2024-03-01-15:00"), ("2024-03-01-16:00",) * 2]
    assert json.loads(third.cursor)["row_id"] == 7
    assert [p[0].hour for p in centre.periodic()] == [10, 11, 13, 14, 15, 16]


def test_an_agent_state_row_in_2200_does_not_stretch_the_state(centre):
    centre.log((at("09:00:00"), "NONE", "NONE", "Agent/1", "AGENTCALLBACKLOGIN", "1@default"),
               (at("09:30:00"), "NONE", "NONE", "Agent/1", "AGENTCALLBACKLOGOFF", "1@default"),
               (dt.datetime(2200, 1, 1, tzinfo=UTC), "NONE", "NONE", "Agent/1", "PAUSEALL"))
    result = tick(centre, None)
    ranges = [(r.tags["dagster/asset_partition_range_start"],
               r.tags["dagster/asset_partition_range_end"]) for r in result.run_requests]
    # the logoff lasts until the agent's next plausible state row: none, so up to now, which
    # is past the test's partitions (2024-03-02-23:00); never up to 2200
    assert ranges == [("2024-03-01-09:00", "2024-03-02-23:00")]


def _text_time_source(centre: CallCentre):
    """Wazo <= 20.13: a text "time" column whose default is ''."""
    from stat_pipeline.sources import PostgresQueueLogSource

    with centre.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE asterisk.queue_log_text (\"time\" varchar(26) DEFAULT '', "
            "callid varchar(32), queuename varchar(32), agent varchar(32), event varchar(32), "
            "data1 text, data2 text, data3 text, data4 text, data5 text, id SERIAL PRIMARY KEY)")
    centre.source = PostgresQueueLogSource(url=centre.url, table="asterisk.queue_log_text")


def test_empty_or_unreadable_text_times_never_stop_a_tick(centre):
    """Issue 12 #6: one '' in old Wazo's text column failed the CAST, so every tick failed."""
    _text_time_source(centre)
    with centre.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO asterisk.queue_log_text (\"time\", callid, queuename, agent, event, "
            "data1, data2, data3) VALUES "
            "('2024-03-01 10:05:00.123456', 'c1', 'q1', 'NONE', 'ENTERQUEUE', '', '06', '1'), "
            "('', 'c1', 'q1', 'Agent/1', 'CONNECT', '5', 'c1.1', '1'), "
            "('2024-02-31 10:00:00', 'c1', 'q1', 'Agent/1', 'CONNECT', '5', 'c1.1', '1'), "
            "('not a time', 'c1', 'q1', 'Agent/1', 'PAUSEALL', '', '', ''), "
            "('2024-03-01 25:00:00', 'c1', 'q1', 'Agent/1', 'CONNECT', '5', 'c1.1', '1'), "
            "('0000-01-01 00:00:00', 'c1', 'q1', 'Agent/1', 'CONNECT', '5', 'c1.1', '1'), "
            "('2024-03-01 12:20:00', 'c1', 'q1', 'Agent/1', 'COMPLETECALLER', '5', '60', '1')")
        conn.exec_driver_sql("INSERT INTO asterisk.queue_log_text (callid, event) "
                             "VALUES ('c2', 'ENTERQUEUE')")             # the column default
    result = tick(centre, None)
    ranges = [(r.tags["dagster/asset_partition_range_start"],
               r.tags["dagster/asset_partition_range_end"]) for r in result.run_requests]
    # the readable rows bring their hours (12:20's outcome re-opens 10:00, its ENTERQUEUE)
    assert ranges == [("2024-03-01-10:00", "2024-03-01-12:00")]
    assert json.loads(result.cursor)["row_id"] == 8     # the unreadable rows do not hold it


def _in_two_ways(warehouse_url: str, start: dt.datetime, rows: list, by_sensor, by_one_run,
                 read, **centre_options) -> list:
    """The same source rows computed twice in the same (emptied) warehouse: through the sensor's
    requests (``by_sensor(centre)``, which asserts what it was asked) and as one range run
    (``by_one_run(centre)``); ``read(centre)`` of each, to compare."""
    from stat_pipeline.definitions import build_definitions
    from stat_pipeline.partitions import hourly_partitions

    results = []
    for compute in (by_sensor, by_one_run):
        centre = CallCentre(warehouse_url, **centre_options)
        centre.defs = build_definitions(
            partitions=hourly_partitions(start=start, end=DAY + dt.timedelta(days=1)),
            source=centre.source, warehouse=Warehouse(url=warehouse_url),
            wazo_config=centre.config)
        if compute is by_sensor:
            centre.log(*rows)                    # the same source rows (and ids) for both
        compute(centre)
        results.append(read(centre))
        centre.close()
        with centre.engine.begin() as conn:      # the second history in a clean warehouse
            conn.exec_driver_sql("TRUNCATE queue_log, classified_calls, stat_call_on_queue, "
                                 "stat_queue_periodic, stat_agent_periodic, queue_log_rejects")
    return results


def _keys(spans: list[tuple[str, str]]) -> list[tuple[dt.datetime, dt.datetime]]:
    return [(dt.datetime.strptime(a, "%Y-%m-%d-%H:%M"), dt.datetime.strptime(b, "%Y-%m-%d-%H:%M"))
            for a, b in spans]


def test_first_tick_over_a_long_history_comes_in_bounded_chunks(warehouse_url, monkeypatch):
    """Issue 13 #2: a first tick over weeks of rows and a login left open made one run of
    every hour. Now: bounded chunks, oldest first, overlapping by the look-ahead, that
    together cover every hour and leave the tables of one run over the whole history."""
    from stat_pipeline import automation

    monkeypatch.setattr(automation, "CHUNK_HOURS", 80)
    start = DAY - dt.timedelta(days=8)
    rows = [(start + dt.timedelta(hours=1), "NONE", "NONE", "Agent/1", "AGENTCALLBACKLOGIN",
             "1@default")]
    for n in range(0, 7 * 24, 5):   # a call every 5 h for 7 days, some across midnight
        t = start + dt.timedelta(hours=n, minutes=50)
        rows += [(t, f"c{n}", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
                 (t + dt.timedelta(minutes=15), f"c{n}", "q1", "Agent/1", "CONNECT", "900",
                  f"c{n}.1", "1"),
                 (t + dt.timedelta(minutes=20 + n % 3 * 10 * 60), f"c{n}", "q1", "Agent/1",
                  "COMPLETEAGENT", "900", str(300 + n % 3 * 36000), "1")]
    def by_sensor(centre):
        result = tick(centre, None)
        keys = _keys(execute(centre, result))
        assert len(keys) > 3
        assert all((b - a) / H + 1 <= 80 for a, b in keys)        # bounded
        assert keys == sorted(keys) and keys[0][0] == start.replace(tzinfo=None)
        for (_, b), (a2, _) in zip(keys, keys[1:]):
            assert (b - a2) / H + 1 == 25                          # overlap: look-ahead + 1
        assert keys[-1][1] == (DAY + dt.timedelta(hours=23)).replace(tzinfo=None)
        assert [r.tags["stat_pipeline/chunk"] for r in result.run_requests] == [
            f"{k}/{len(keys)}" for k in range(1, len(keys) + 1)]

    def read(centre):
        found = (centre.calls(), centre.periodic(), centre.classified(),
                 centre.query("SELECT * FROM stat_agent_periodic ORDER BY 1, 2, 3"))
        assert len(found[0]) == len(range(0, 7 * 24, 5))
        return found

    chunked, whole = _in_two_ways(
        warehouse_url, start, rows, by_sensor,
        lambda centre: centre.run(start.strftime("%Y-%m-%d-%H:%M"), "2024-03-01-23:00"), read)
    assert chunked == whole


def test_first_partition_is_the_day_of_the_earliest_plausible_source_row(centre, monkeypatch):
    """Issue 13 #2: with STAT_PARTITIONS_START unset, partitions started on 2024-01-01
    whatever the source held. Now from the source's earliest plausible row; with the source
    unreachable at load, from the warehouse's ledger, else 2024-01-01."""
    from stat_pipeline.definitions import build_definitions

    centre.log((dt.datetime(1970, 1, 2, tzinfo=UTC), "x", "q1", "NONE", "FULL"),
               (dt.datetime(2023, 11, 5, 17, 42, tzinfo=UTC), "a", "q1", "NONE", "FULL"),
               (dt.datetime(2200, 1, 1, tzinfo=UTC), "y", "q1", "NONE", "FULL"))
    monkeypatch.delenv("STAT_PARTITIONS_START", raising=False)
    monkeypatch.setenv("STAT_SOURCE_URL", centre.url)
    monkeypatch.setenv("STAT_SOURCE_TABLE", "asterisk.queue_log")
    monkeypatch.setenv("STAT_WAREHOUSE_URL", centre.url)

    def start() -> str:
        partitions = build_definitions().resolve_job_def(HOURLY_JOB).partitions_def
        return partitions.get_first_partition_key()

    assert start() == "2023-11-05-00:00"
    monkeypatch.setenv("STAT_SOURCE_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    assert start() == "2024-01-01-00:00"              # nothing written yet: the default
    centre.run("10:00")                               # the ledger now holds 2024-03-01
    assert start() == "2024-03-01-00:00"


def test_a_login_left_open_long_ago_is_caught_up_for_agent_times_alone(warehouse_url, monkeypatch):
    """Issue 13: an agent never logged off touches every hour up to now (wazo-stat counts the
    login up to the end of its run). Those hours, far from any new row, are requested for
    stat_agent_periodic alone, in bounded runs after the full ones; the tables equal one
    full run over every hour."""
    from stat_pipeline import automation

    monkeypatch.setattr(automation, "AGENT_CHUNK_HOURS", 40)
    monkeypatch.setattr(automation, "AGENT_ONLY_MIN_HOURS", 30)
    start = DAY - dt.timedelta(days=5)
    rows = [(start + dt.timedelta(hours=2, minutes=10), "NONE", "NONE", "Agent/1",
             "AGENTCALLBACKLOGIN", "1@default"),
            (start + dt.timedelta(hours=3), "c1", "q1", "NONE", "ENTERQUEUE", "", "06", "1"),
            (start + dt.timedelta(hours=3, seconds=20), "c1", "q1", "Agent/1", "CONNECT", "20",
             "c1.1", "1"),
            (start + dt.timedelta(hours=3, minutes=5), "c1", "q1", "Agent/1", "COMPLETEAGENT",
             "20", "280", "1"),
            (start + dt.timedelta(hours=5), "NONE", "NONE", "Agent/1", "PAUSEALL", "", "", ""),
            (start + dt.timedelta(hours=5, minutes=30), "NONE", "NONE", "Agent/1", "UNPAUSEALL")]
    def by_sensor(centre):
        result = tick(centre, None)
        selections = [r.asset_selection for r in result.run_requests]
        keys = _keys(execute(centre, result))
        full = [k for k, sel in zip(keys, selections) if not sel]
        agent = [k for k, sel in zip(keys, selections) if sel]
        assert all(sel == [dg.AssetKey("stat_agent_periodic")] for sel in selections if sel)
        # the full chain: the rows' hours and the look-ahead after the last of them
        assert full == [((start + 2 * H).replace(tzinfo=None),
                         (start + 5 * H + 24 * H).replace(tzinfo=None))]
        # then agent times alone, oldest first, bounded, no gap, no overlap, up to the end
        assert len(agent) > 1 and all((b - a) / H + 1 <= 40 for a, b in agent)
        assert agent[0][0] == full[-1][1] + H
        assert all(b + H == a2 for (_, b), (a2, _) in zip(agent, agent[1:]))
        assert agent[-1][1] == (DAY + 23 * H).replace(tzinfo=None)
        assert [r.tags["stat_pipeline/chunk"] for r, sel in zip(result.run_requests, selections)
                if sel] == [f"agent {k}/{len(agent)}" for k in range(1, len(agent) + 1)]

    def read(centre):
        found = (centre.calls(), centre.periodic(), centre.query(
            "SELECT p.time, a.name, q.name, p.login_time, p.pause_time, p.wrapup_time "
            "FROM stat_agent_periodic p JOIN stat_agent a ON a.id = p.stat_agent_id "
            "LEFT JOIN stat_queue q ON q.id = p.stat_queue_id ORDER BY 1, 2, 3"))
        # the open login counts every hour up to the end
        assert len([r for r in found[2] if r[3] == dt.timedelta(hours=1)]) > 100
        return found

    chunked, whole = _in_two_ways(
        warehouse_url, start, rows, by_sensor,
        lambda centre: centre.run((start + 2 * H).strftime("%Y-%m-%d-%H:%M"), "2024-03-01-23:00"),
        read, keep_unknown_agents=True)   # no confd config: agents kept as they appear
    assert chunked == whole


def test_a_source_query_over_its_time_limit_is_stopped_and_named(centre, monkeypatch):
    """The sensor's source query stops itself (a query Dagster's tick timeout abandons would
    go on running on the PBX's database) and says so, so that the tick can retry smaller."""
    from stat_pipeline.touched_hours import TouchedHoursTimeout, touched

    centre.log(*[(at("10:00:00") + dt.timedelta(seconds=n), f"c{n}", "q1", "NONE", "FULL")
                 for n in range(3000)])
    monkeypatch.setenv("STAT_SENSOR_QUERY_TIMEOUT_SECONDS", "0.001")
    with centre.engine.connect() as conn:
        with pytest.raises(TouchedHoursTimeout, match="STAT_SENSOR_QUERY_TIMEOUT_SECONDS"):
            touched(conn.connection.dbapi_connection, "asterisk.queue_log", 0, 3000, 24)
    monkeypatch.setenv("STAT_SENSOR_QUERY_TIMEOUT_SECONDS", "60")
    with centre.engine.connect() as conn:
        assert len(touched(conn.connection.dbapi_connection, "asterisk.queue_log", 0, 3000,
                           24)) == 3000
