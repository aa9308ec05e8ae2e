"""The supervisor dashboard, opened in Debian's headless Chromium on a golden day.

The warehouse holds the golden set ``day1_s1`` (2024-03-04): the stat tables wazo-stat itself
wrote for that day (``expected/``), loaded as they are. The real API app serves them and the
dashboard (uvicorn on a loopback port); Chromium, driven through its DevTools protocol, signs
in with the token, opens the queue and agent views for that day in Europe/Paris, and the test
reads back what the page shows (table cells, Chart.js's data, downloaded CSV files). Every
expected number is computed here by SQL straight from the stat tables, with call-logd's
formulas as ``../shared/docs/wazo_call_logd_stats.md`` §4-5 states them, not through the
API or the KPI functions. The screenshots are kept (paths in the test summary).
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from stat_pipeline.serving.dashboard import DASHBOARD_DIR, dashboard_mount
from stat_pipeline.warehouse.migrate import migrate
from stat_pipeline_tests.artifacts import keep_artifact
from stat_pipeline_tests.browser import Chromium, chromium_path
from stat_pipeline_tests.golden import GOLDEN

GOLDEN_DAY_SET = GOLDEN / "day1_s1"
DAY = dt.date(2024, 3, 4)            # the golden set's day (a Monday)
ZONE = "Europe/Paris"                # not UTC: the page's hours must be the zone's hours
SERVICE_LEVEL_S = 20

needs_browser = pytest.mark.skipif(chromium_path() is None, reason="needs Debian's chromium")
needs_golden = pytest.mark.skipif(not GOLDEN_DAY_SET.is_dir(), reason="needs ../shared/golden")


# ----------------------------------------------------------------- the golden day's tables

def load_golden_tables(engine: sa.Engine, golden: Path) -> None:
    """wazo-stat's own stat tables of the golden set (``expected/``) into our warehouse."""
    confd = json.loads((golden / "confd.json").read_text())
    expected = sorted((golden / "expected").iterdir())[-1]
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO stat_queue (name, tenant_uuid, queue_id) "
                             "VALUES (:name, :tenant_uuid, :id)"), confd["queues"])
        conn.execute(sa.text("INSERT INTO stat_agent (name, tenant_uuid, agent_id) "
                             "VALUES ('Agent/' || :number, :tenant_uuid, :id)"), confd["agents"])
        cursor = conn.connection.dbapi_connection.cursor()
        for table, columns in (
                ("calls", "callid text, queue text, agent text, status text, time timestamptz, "
                          "waittime int, talktime int, ringtime int"),
                ("queue_periodic", "time timestamptz, queue text, answered int, abandoned int, "
                                   "total int, \"full\" int, closed int, joinempty int, "
                                   "leaveempty int, divert_ca_ratio int, divert_waittime int, "
                                   "timeout int"),
                ("agent_periodic", "time timestamptz, agent text, queue text, login_time numeric, "
                                   "pause_time numeric, wrapup_time numeric")):
            conn.execute(sa.text(f"CREATE TEMP TABLE golden_{table} ({columns})"))
            with (expected / f"{table}.csv").open() as rows:
                cursor.copy_expert(f"COPY golden_{table} FROM STDIN WITH (FORMAT csv, HEADER true)",
                                   rows)
        conn.execute(sa.text("""
            INSERT INTO stat_call_on_queue (callid, time, ringtime, talktime, waittime, status,
                                            stat_queue_id, stat_agent_id)
            SELECT g.callid, g.time, g.ringtime, g.talktime, g.waittime, g.status::call_exit_type,
                   q.id, a.id
            FROM golden_calls g JOIN stat_queue q ON q.name = g.queue
            LEFT JOIN stat_agent a ON a.name = NULLIF(g.agent, '')"""))
        conn.execute(sa.text("""
            INSERT INTO stat_queue_periodic (time, answered, abandoned, total, "full", closed,
                joinempty, leaveempty, divert_ca_ratio, divert_waittime, timeout, stat_queue_id)
            SELECT g.time, g.answered, g.abandoned, g.total, g."full", g.closed, g.joinempty,
                   g.leaveempty, g.divert_ca_ratio, g.divert_waittime, g.timeout, q.id
            FROM golden_queue_periodic g JOIN stat_queue q ON q.name = g.queue"""))
        conn.execute(sa.text("""
            INSERT INTO stat_agent_periodic (time, login_time, pause_time, wrapup_time,
                                             stat_agent_id, stat_queue_id)
            SELECT g.time, make_interval(secs => g.login_time), make_interval(secs => g.pause_time),
                   make_interval(secs => g.wrapup_time), a.id, q.id
            FROM golden_agent_periodic g JOIN stat_agent a ON a.name = g.agent
            LEFT JOIN stat_queue q ON q.name = NULLIF(g.queue, '')"""))


# ----------------------------------------------------------------- expected numbers, by SQL

def _hour_filter(column: str, hours: tuple[int, int] | None) -> str:
    # call-logd: the hour of the row's time in the zone, end hour included
    return "" if hours is None else \
        f"AND EXTRACT(HOUR FROM {column} AT TIME ZONE :zone) BETWEEN {hours[0]} AND {hours[1]}"


def queue_numbers(conn, start, end, *, hours=None, queue_id=None) -> dict[int, dict]:
    """Per confd queue id: call-logd's queue fields over [start, end) (spec §4.2)."""
    only = "" if queue_id is None else "AND q.queue_id = :queue_id"
    sums = conn.execute(sa.text(f"""
        SELECT q.queue_id, q.name,
               COALESCE(SUM(p.total), 0) AS received, COALESCE(SUM(p.answered), 0) AS answered,
               COALESCE(SUM(p.abandoned), 0) AS abandoned, COALESCE(SUM(p.closed), 0) AS closed,
               COALESCE(SUM(p.timeout), 0) AS not_answered,
               COALESCE(SUM(p."full" + p.divert_waittime + p.divert_ca_ratio), 0) AS saturated,
               COALESCE(SUM(p.joinempty + p.leaveempty), 0) AS blocked,
               COALESCE(SUM(p.answered + p.abandoned + p.leaveempty + p.timeout), 0) AS waited,
               COALESCE(SUM(p.answered + p.abandoned + p."full" + p.leaveempty + p.joinempty
                            + p.timeout), 0) AS rate_base
        FROM stat_queue q
        LEFT JOIN stat_queue_periodic p ON p.stat_queue_id = q.id AND p.time >= :start
             AND p.time < :end {_hour_filter('p.time', hours)}
        WHERE NOT q.deleted {only}
        GROUP BY q.queue_id, q.name"""), dict(start=start, end=end, zone=ZONE, queue_id=queue_id))
    calls = dict((row.queue_id, row) for row in conn.execute(sa.text(f"""
        SELECT q.queue_id, COALESCE(SUM(c.waittime), 0) AS wait_sum,
               COUNT(*) FILTER (WHERE c.status = 'answered' AND c.waittime <= :sl) AS within_sl
        FROM stat_queue q
        LEFT JOIN stat_call_on_queue c ON c.stat_queue_id = q.id AND c.time >= :start
             AND c.time < :end {_hour_filter('c.time', hours)}
        WHERE NOT q.deleted {only}
        GROUP BY q.queue_id"""), dict(start=start, end=end, zone=ZONE, sl=SERVICE_LEVEL_S,
                                      queue_id=queue_id)))
    numbers = {}
    for row in sums:
        call = calls[row.queue_id]
        numbers[row.queue_id] = {
            "queue_name": row.name, "received": row.received, "answered": row.answered,
            "abandoned": row.abandoned, "closed": row.closed, "not_answered": row.not_answered,
            "saturated": row.saturated, "blocked": row.blocked,
            "average_waiting_time": int(round(call.wait_sum / row.waited, 2)) if row.waited else None,
            "answered_rate": round(100 * row.answered / row.rate_base, 2) if row.rate_base else None,
            "quality_of_service": round(100 * call.within_sl / row.answered, 2) if row.answered else None,
        }
    return numbers


def agent_numbers(conn, start, end) -> dict[str, dict]:
    """Per agent number: call-logd's agent fields over [start, end) (spec §5)."""
    times = conn.execute(sa.text("""
        SELECT a.agent_id, a.name,
               TRUNC(EXTRACT(EPOCH FROM COALESCE(SUM(p.login_time), '0')))::int AS login_time,
               TRUNC(EXTRACT(EPOCH FROM COALESCE(SUM(p.pause_time), '0')))::int AS pause_time,
               TRUNC(EXTRACT(EPOCH FROM COALESCE(SUM(p.wrapup_time), '0')))::int AS wrapup_time
        FROM stat_agent a
        LEFT JOIN stat_agent_periodic p ON p.stat_agent_id = a.id AND p.stat_queue_id IS NULL
             AND p.time >= :start AND p.time < :end
        WHERE NOT a.deleted GROUP BY a.agent_id, a.name"""), dict(start=start, end=end))
    calls = dict((row.agent_id, row) for row in conn.execute(sa.text("""
        SELECT a.agent_id, COUNT(c.id) AS answered, COALESCE(SUM(c.talktime), 0) AS conversation_time
        FROM stat_agent a
        LEFT JOIN stat_call_on_queue c ON c.stat_agent_id = a.id AND c.status = 'answered'
             AND c.time >= :start AND c.time < :end
        GROUP BY a.agent_id"""), dict(start=start, end=end)))
    return {row.name.removeprefix("Agent/"): {
        "agent_id": row.agent_id, "answered": calls[row.agent_id].answered,
        "conversation_time": calls[row.agent_id].conversation_time, "login_time": row.login_time,
        "pause_time": row.pause_time, "wrapup_time": row.wrapup_time} for row in times}


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    zone = ZoneInfo(ZONE)
    start = dt.datetime.combine(day, dt.time(), zone)
    return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)


def hours_of(day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
    start, end = day_bounds(day)
    hours, at = [], start.astimezone(dt.timezone.utc)
    while at < end:
        hours.append((at, at + dt.timedelta(hours=1)))
        at += dt.timedelta(hours=1)
    return hours


# ----------------------------------------------------------------- what the page shows

def shown(value, kind: str) -> str:
    """A value as the dashboard writes it in a table cell."""
    if value is None:
        return "—"
    if kind == "pct":
        return f"{value:.2f} %"
    if kind == "duration":
        seconds = round(value)
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return str(value)


QUEUE_KINDS = {"received": "int", "answered": "int", "abandoned": "int", "closed": "int",
               "not_answered": "int", "saturated": "int", "blocked": "int",
               "average_waiting_time": "duration", "answered_rate": "pct",
               "quality_of_service": "pct"}
AGENT_KINDS = {"answered": "int", "conversation_time": "duration", "login_time": "duration",
               "pause_time": "duration", "wrapup_time": "duration"}

READ_TABLE = """(id => [...document.querySelectorAll('#' + id + ' tbody tr')].map(tr =>
    Object.fromEntries([...tr.cells].map(td => [td.dataset.key, td.textContent]))))"""
READ_CHART = """(id => { const c = Chart.getChart(id); return c && {labels: c.data.labels,
    datasets: Object.fromEntries(c.data.datasets.map(d => [d.label, d.data]))}; })"""


def table(browser: Chromium, table_id: str) -> list[dict]:
    return browser.evaluate(f"{READ_TABLE}({json.dumps(table_id)})")


def chart(browser: Chromium, canvas_id: str) -> dict:
    return browser.evaluate(f"{READ_CHART}({json.dumps(canvas_id)})")


def open_view(browser: Chromium, base: str, **state: str) -> None:
    fragment = urlencode(state)
    browser.goto(f"{base}/#{fragment}")
    browser.wait_for(f"document.body.dataset.state === 'ready' && "
                     f"document.body.dataset.loaded === {json.dumps(fragment)}",
                     f"the view {fragment}")


def download_csv(browser: Chromium, table_id: str) -> list[dict]:
    name = browser.evaluate(f"window.statDashboard.tables[{json.dumps(table_id)}].filename") + ".csv"
    (browser.downloads / name).unlink(missing_ok=True)
    browser.evaluate(f"document.querySelector('#{table_id} button.csv').click()")
    text = browser.wait_for_download(name).read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


# ----------------------------------------------------------------- fixtures

@pytest.fixture
def golden_warehouse(warehouse_url: str) -> str:
    engine = sa.create_engine(warehouse_url)
    try:
        migrate(engine)
        load_golden_tables(engine, GOLDEN_DAY_SET)
    finally:
        engine.dispose()
    return warehouse_url


@pytest.fixture
def api_server(golden_warehouse: str):
    """The API app (and so the dashboard) on a loopback port, in a thread; (base URL, token)."""
    import uvicorn

    from stat_pipeline.serving.app import create_app
    from stat_pipeline.serving.auth import StaticToken

    token = secrets.token_urlsafe(24)
    app = create_app(golden_warehouse, StaticToken(token), mounts=[dashboard_mount()])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", token
    server.should_exit = True
    thread.join(30)
    listener.close()


@pytest.fixture
def browser(tmp_path: Path):
    chromium = Chromium(tmp_path / "chromium-profile", tmp_path / "downloads", width=1600)
    yield chromium
    chromium.close()


# ----------------------------------------------------------------- tests

def test_pytest_rewrites_no_installed_package():
    """The test servers run in threads and import modules while they serve (anyio's file
    module on the first static file). Were pytest rewriting those modules, that first import
    would parse source in the server's thread, and two threads parsing at once can fail on
    Python 3.11.7 (SystemError, CPython gh-106905): the dashboard test once lost its page so."""
    from _pytest.assertion.rewrite import AssertionRewritingHook

    import anyio

    assert anyio.open_file  # the import the dashboard's first file makes
    rewritten = sorted(name for name, module in list(sys.modules.items())
                       if isinstance(getattr(module, "__loader__", None), AssertionRewritingHook)
                       and name.partition(".")[0] != "stat_pipeline_tests")
    assert rewritten == []


def test_chartjs_bundle_is_the_pinned_release():
    """The shipped Chart.js is the file refresh_chartjs.sh took from npm for the pinned version."""
    lock = dict(line.split("=", 1) for line in
                (DASHBOARD_DIR.parent / "chart.js.lock").read_text().splitlines()
                if "=" in line and not line.startswith("#"))
    bundle = DASHBOARD_DIR / "vendor" / "chart.umd.min.js"
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == lock["sha256"]
    assert f"Chart.js v{lock['version']}" in bundle.read_text()[:200]
    assert (DASHBOARD_DIR / "vendor" / "chart.js.LICENSE.md").exists()
    page = (DASHBOARD_DIR / "index.html").read_text()
    assert 'src="vendor/chart.umd.min.js"' in page and 'src="dashboard.js"' in page


@needs_browser
@needs_golden
def test_dashboard_shows_the_golden_days_numbers(api_server, browser, tmp_path, golden_warehouse):
    base, token = api_server
    start, end = day_bounds(DAY)
    engine = sa.create_engine(golden_warehouse)
    with engine.connect() as conn:
        queues = queue_numbers(conn, start, end)
        agents = agent_numbers(conn, start, end)
        busiest = max(queues, key=lambda q: (queues[q]["received"], -q))
        per_hour = [queue_numbers(conn, a, b, queue_id=busiest)[busiest] for a, b in hours_of(DAY)]
        working = queue_numbers(conn, start, end, hours=(8, 17))
        agent_hours = [agent_numbers(conn, a, b) for a, b in hours_of(DAY)]
    engine.dispose()
    assert sum(q["received"] for q in queues.values()) > 100  # the day is a real day

    # 1. no token yet: the page asks for one; a wrong one is refused with the API's word
    state = dict(view="queues", **{"from": DAY.isoformat()}, to=DAY.isoformat(), tz=ZONE,
                 grain="hour", sl=str(SERVICE_LEVEL_S))
    browser.goto(f"{base}/#{urlencode(state)}")
    browser.wait_for("document.body.dataset.state === 'login'", "the token prompt")
    browser.evaluate("document.getElementById('token').focus()")
    browser.insert_text("not-the-token")
    browser.evaluate("document.querySelector('#login-form button[type=submit]').click()")
    browser.wait_for("document.body.dataset.state === 'login' && "
                     "document.getElementById('login-error').textContent.toLowerCase().includes('unauthorized')",
                     "the refusal of a wrong token")
    browser.evaluate("document.getElementById('token').focus()")
    browser.insert_text(token)
    browser.evaluate("document.querySelector('#login-form button[type=submit]').click()")
    browser.wait_for("document.body.dataset.state === 'ready'", "the queue view")

    # 2. queue view: the table of every queue over the day
    rows = {row["queue_name"]: row for row in table(browser, "table-queues")}
    assert set(rows) == {q["queue_name"] for q in queues.values()}
    for number in queues.values():
        row = rows[number["queue_name"]]
        assert {k: row[k] for k in QUEUE_KINDS} == \
               {k: shown(number[k], kind) for k, kind in QUEUE_KINDS.items()}, number["queue_name"]

    # the busiest queue's day, hour by hour (the zone's hours), in both charts
    calls_chart = chart(browser, "chart-queue-calls")
    assert calls_chart["labels"] == [f"{h:02d}:00" for h in range(24)]
    for key in ("received", "answered", "abandoned"):
        assert calls_chart["datasets"][key.capitalize()] == [h[key] for h in per_hour], key
    assert sum(calls_chart["datasets"]["Received"]) == queues[busiest]["received"]
    service = chart(browser, "chart-queue-service")
    assert service["datasets"]["Average wait, s"] == [h["average_waiting_time"] for h in per_hour]
    service_level = next(v for k, v in service["datasets"].items() if "% of answered" in k)
    assert service_level == [h["quality_of_service"] for h in per_hour]
    hourly = table(browser, "table-queue-intervals")
    assert [row["received"] for row in hourly] == [str(h["received"]) for h in per_hour]
    cards = browser.evaluate("[...document.querySelectorAll('#queue-cards .card strong')]"
                             ".map(e => e.textContent)")
    assert cards[:3] == [str(queues[busiest][k]) for k in ("received", "answered", "abandoned")]
    waits = table(browser, "table-queue-waits")
    assert sum(int(r["answered"]) for r in waits) == queues[busiest]["answered"]

    # sortable: Received, twice = descending
    for _ in range(2):
        browser.evaluate("document.querySelector('#table-queues th[data-key=received] button').click()")
    received_order = [int(row["received"]) for row in table(browser, "table-queues")]
    assert received_order == sorted((q["received"] for q in queues.values()), reverse=True)
    assert browser.evaluate("document.querySelector('#table-queues th[data-key=received]')"
                            ".getAttribute('aria-sort')") == "descending"

    # a CSV of every table, with the raw numbers (seconds, not h:mm:ss)
    exported = {row["Queue"]: row for row in download_csv(browser, "table-queues")}
    for number in queues.values():
        row = exported[number["queue_name"]]
        assert int(row["Received"]) == number["received"]
        assert int(row["Average wait (s)"] or -1) == (number["average_waiting_time"] if
                                                     number["average_waiting_time"] is not None else -1)
        assert (float(row["QoS (% of answered)"]) if row["QoS (% of answered)"] else None) == \
               number["quality_of_service"]
    for table_id in ("table-queue-intervals", "table-queue-waits"):
        assert len(download_csv(browser, table_id)) == len(table(browser, table_id)), table_id
    shots = [browser.screenshot(tmp_path / "dashboard_queues.png")]

    # 3. agent view
    open_view(browser, base, **{**state, "view": "agents"})
    agent_rows = {row["agent_number"]: row for row in table(browser, "table-agents")}
    assert set(agent_rows) == set(agents)
    for number, expected in agents.items():
        assert {k: agent_rows[number][k] for k in AGENT_KINDS} == \
               {k: shown(expected[k], kind) for k, kind in AGENT_KINDS.items()}, number
    times = chart(browser, "chart-agent-times")
    ordered = sorted(agents, key=int)
    assert times["labels"] == ordered
    for label, key in (("Logged in", "login_time"), ("Paused", "pause_time"),
                       ("Wrap-up", "wrapup_time"), ("Conversation", "conversation_time")):
        assert times["datasets"][label] == [agents[n][key] for n in ordered], label
    # the agent logged in longest, hour by hour
    most_logged = max(agents, key=lambda n: agents[n]["login_time"])
    per_interval = chart(browser, "chart-agent-intervals")
    for label, key in (("Logged in", "login_time"), ("Paused", "pause_time"),
                       ("Wrap-up", "wrapup_time"), ("Conversation", "conversation_time")):
        assert per_interval["datasets"][label] == [h[most_logged][key] for h in agent_hours], label
    exported_agents = {row["Agent"]: row for row in download_csv(browser, "table-agents")}
    assert {n: int(r["Logged in (s)"]) for n, r in exported_agents.items()} == \
           {n: a["login_time"] for n, a in agents.items()}
    for table_id in ("table-agent-intervals", "table-agent-queues"):
        assert len(download_csv(browser, table_id)) == len(table(browser, table_id)), table_id
    shots.append(browser.screenshot(tmp_path / "dashboard_agents.png"))

    # 4. working hours 08:00-17:00 (17h included, as call-logd does) on week days
    open_view(browser, base, **{**state, "ds": "08:00", "de": "17:00", "wd": "1,2,3,4,5"})
    rows = {row["queue_name"]: row for row in table(browser, "table-queues")}
    assert {name: int(row["received"]) for name, row in rows.items()} == \
           {q["queue_name"]: q["received"] for q in working.values()}
    assert sum(q["received"] for q in working.values()) < sum(q["received"] for q in queues.values())

    # the day the clocks go back in Paris (2024-10-27) has 25 hours; 02:00 comes twice
    open_view(browser, base, **{**state, "from": "2024-10-27", "to": "2024-10-27"})
    labels = chart(browser, "chart-queue-calls")["labels"]
    assert len(labels) == 25 and labels[:2] == ["00:00", "01:00"]
    assert labels[2:4] == ["02:00 +02:00", "02:00 +01:00"] and labels[-1] == "23:00"

    # 5. what the API refuses is said on the page, in the API's words (hours over > 1 month)
    refused = urlencode({**state, "from": "2024-01-01"})
    browser.goto(f"{base}/#{refused}")
    error = browser.wait_for("document.body.dataset.state === 'error' && "
                             "document.getElementById('error').textContent", "the API's refusal")
    assert error.startswith("400 ") and "month" in error.lower(), error
    assert browser.evaluate("document.getElementById('queues-view').classList.contains('stale')")
    for png in shots:
        assert png.stat().st_size > 20_000  # a drawn page, not a blank one
        keep_artifact(png)


def _get(url: str, token: str | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers={"X-Auth-Token": token} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@needs_golden
def test_the_api_serves_the_dashboard_beside_its_routes(api_server):
    base, token = api_server
    status, headers, page = _get(base + "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"<title>Call-centre statistics</title>" in page
    assert "default-src 'self'" in headers["content-security-policy"]  # nothing from elsewhere
    for asset, kind in (("/dashboard.js", "javascript"), ("/dashboard.css", "text/css"),
                        ("/vendor/chart.umd.min.js", "javascript")):
        status, headers, _ = _get(base + asset)
        assert status == 200 and kind in headers["content-type"], asset
    # the mount at / does not shadow the API: its routes still ask for the token
    status, headers, body = _get(base + "/1.0/queues/statistics")
    assert status == 401 and "unauthorized" in json.loads(body)["message"].lower()
    status, _, body = _get(base + "/1.0/queues/statistics", token)
    assert status == 200 and json.loads(body)["total"] == 4
    assert _get(base + "/no-such-page")[0] == 404


def test_demo_prints_the_dashboard_url_and_token_and_serves_the_samples_day(tmp_path):
    """``stat-pipeline demo`` as a user runs it: the line with the dashboard's URL and token;
    that token opens the API, whose numbers for the sample's day are those of the demo's
    warehouse (read here by SQL); SIGTERM leaves no process behind."""
    from stat_pipeline_tests.test_processes import (BIN, _descendants, _env, _free_port, _wait,
                                                     assert_all_gone)

    state, log = tmp_path / "state", tmp_path / "demo.log"
    port, api_port = _free_port(), _free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "stat-pipeline"), "demo", "--state-dir", str(state), "--port", str(port),
             "--api-port", str(api_port)], env=_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        line = _wait("the dashboard line", lambda: re.search(
            r"supervisor dashboard on (http://\S+/) \(token: (\S+)\)", log.read_text()), proc, log)
        url, token = line.group(1), line.group(2)
        assert url == f"http://127.0.0.1:{api_port}/"
        _wait("the dashboard page", lambda: _answers(url), proc, log)
        assert b"Call-centre statistics" in _get(url)[2]
        assert _get(url + "1.0/queues/statistics")[0] == 401

        yesterday = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
        day = dt.datetime.combine(yesterday, dt.time(), dt.timezone.utc)
        next_day = day + dt.timedelta(days=1)
        period = urlencode({"from": day.strftime("%Y-%m-%dT%H:%M:%S"),
                            "until": next_day.strftime("%Y-%m-%dT%H:%M:%S")})
        warehouse = sa.create_engine(f"postgresql+psycopg2://postgres@/stat?host={state / 'pg'}",
                                     poolclass=sa.NullPool)
        # the sensor's first run computes the sample's hours; compare once it has ended
        _wait("the sensor's run", lambda: re.search(r"hourly_queue_stats - \S+ - \d+ - RUN_SUCCESS",
                                                    log.read_text()), proc, log)
        try:
            def computed():
                with warehouse.connect() as conn:
                    return dict(conn.execute(sa.text(
                        "SELECT q.name, SUM(p.total) FROM stat_queue q JOIN stat_queue_periodic p "
                        "ON p.stat_queue_id = q.id WHERE p.time >= :day AND p.time < :next_day "
                        "GROUP BY q.name"), {"day": day, "next_day": next_day}).all()) or None
            received = computed()
            assert received
        finally:
            warehouse.dispose()
        status, _, body = _get(f"{url}1.0/queues/statistics?{period}", token)
        assert status == 200
        assert {item["queue_name"]: item["received"] for item in json.loads(body)["items"]
                if item["received"]} == received
        spawned = _descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        assert_all_gone(spawned, 60)
    finally:
        if proc.poll() is None:
            proc.kill()


def _answers(url: str) -> bool:
    try:
        return _get(url)[0] == 200
    except OSError:
        return False
