"""Helpers of the statistics API tests: a real uvicorn server in a thread, and a client that
sends requests exactly as Wazo's ``wazo-call-logd-client`` does (it is not on PyPI).

What the client reproduces (wazo-call-logd-client ``commands/queue_statistics.py``,
``agent_statistics.py``, ``helpers/base.py``; wazo-lib-rest-client ``client.py``,
``command.py``):
* URL ``{scheme}://{host}:{port}{prefix}/1.0/{fragments}`` (``prefix`` ``None`` -> none);
* a ``requests`` session per call with headers ``Connection: close``, ``X-Auth-Token`` (when
  a token is set), ``Wazo-Tenant`` (when a tenant is set) and ``User-agent``; the command adds
  ``Accept: application/json``;
* ``session.get(url, params=params, headers=headers)``, ``from_`` renamed ``from``, other
  values as given (requests turns ``False`` into ``"False"``, ``124.2`` into ``"124.2"``);
* an error answer becomes ``CallLogdError`` with the JSON's message/error_id/details/timestamp
  (a body without them is not a Wazo error: ``InvalidCallLogdError``).
"""
from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
import uuid
from typing import Any, Iterator, Optional

import requests
import sqlalchemy as sa


class InvalidCallLogdError(Exception):
    pass


class CallLogdError(requests.HTTPError):
    def __init__(self, response: requests.Response) -> None:
        try:
            body = response.json()
        except ValueError:
            raise InvalidCallLogdError(response.text) from None
        self.status_code = response.status_code
        try:
            self.message = body["message"]
            self.error_id = body["error_id"]
            self.details = body["details"]
            self.timestamp = body["timestamp"]
        except (KeyError, TypeError):
            raise InvalidCallLogdError(response.text) from None
        super().__init__(f"{self.message}: {self.details}", response=response)


class _Command:
    def __init__(self, client: "CallLogdClient") -> None:
        self._client = client

    def _get(self, *fragments, **params) -> Any:
        if "from_" in params:
            params["from"] = params.pop("from_")
        headers = {"Accept": "application/json"}
        if self._client.tenant_uuid:
            headers["Wazo-Tenant"] = self._client.tenant_uuid
        response = self._client.session().get(self._client.url(*fragments), params=params, headers=headers)
        if response.status_code >= 400:
            raise CallLogdError(response)
        return response.json()


class QueueStatistics(_Command):
    def get_by_id(self, queue_id, **params):
        return self._get("queues", queue_id, "statistics", **params)

    def list(self, **params):
        return self._get("queues", "statistics", **params)

    def get_qos_by_id(self, queue_id, **params):
        return self._get("queues", queue_id, "statistics", "qos", **params)


class AgentStatistics(_Command):
    def get_by_id(self, agent_id, **params):
        return self._get("agents", agent_id, "statistics", **params)

    def list(self, **params):
        return self._get("agents", "statistics", **params)


class CallLogdClient:
    """``wazo_call_logd_client.Client(host, port=P, https=False, prefix=None, token=T)``."""

    def __init__(self, host: str, port: int = 9298, version: str = "1.0", token: Optional[str] = None,
                 tenant: Optional[str] = None, https: bool = False, prefix: Optional[str] = None,
                 timeout: int = 10) -> None:
        self.host, self.port, self._version = host, port, version
        self._token_id, self.tenant_uuid, self._https, self.timeout = token, tenant, https, timeout
        self._prefix = "" if not prefix else (prefix if prefix.startswith("/") else "/" + prefix)
        self.queue_statistics = QueueStatistics(self)
        self.agent_statistics = AgentStatistics(self)

    def set_token(self, token: Optional[str]) -> None:
        self._token_id = token

    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers = {"Connection": "close"}
        if self._token_id:
            session.headers["X-Auth-Token"] = self._token_id
        if self.tenant_uuid:
            session.headers["Wazo-Tenant"] = self.tenant_uuid
        session.headers["User-agent"] = os.path.basename(sys.argv[0])
        original = session.request
        session.request = lambda *a, **k: original(*a, timeout=self.timeout, **k)  # type: ignore[method-assign]
        return session

    def url(self, *fragments) -> str:
        base = (f"{'https' if self._https else 'http'}://{self.host}:{self.port}"
                f"{self._prefix}/{self._version}")
        return base + ("/" + "/".join(str(f) for f in fragments) if fragments else "")


@contextlib.contextmanager
def serving(app) -> Iterator[int]:
    """``app`` behind a real uvicorn on 127.0.0.1 (a free port, returned) until the block ends."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:  # readiness, not a timing assertion
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        yield port
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


# ---- warehouse rows ------------------------------------------------------------------------

def add_queue(conn: sa.Connection, queue_id: int, tenant: str, name: str = "queue",
              deleted: bool = False) -> int:
    return conn.execute(sa.text(
        "INSERT INTO stat_queue (name, tenant_uuid, queue_id, deleted) "
        "VALUES (:name, :tenant, :queue_id, :deleted) RETURNING id"),
        {"name": name, "tenant": tenant, "queue_id": queue_id, "deleted": deleted}).scalar_one()


def add_agent(conn: sa.Connection, agent_id: int, tenant: str, number: str = "1000",
              deleted: bool = False) -> int:
    return conn.execute(sa.text(
        "INSERT INTO stat_agent (name, tenant_uuid, agent_id, deleted) "
        "VALUES (:name, :tenant, :agent_id, :deleted) RETURNING id"),
        {"name": f"Agent/{number}", "tenant": tenant, "agent_id": agent_id, "deleted": deleted}).scalar_one()


def add_queue_periodic(conn: sa.Connection, stat_queue_id: int, time_: str, **counts: int) -> None:
    columns = ", ".join(f'"{c}"' for c in counts)
    values = ", ".join(f":{c}" for c in counts)
    conn.execute(sa.text(
        f"INSERT INTO stat_queue_periodic (time, stat_queue_id{', ' + columns if counts else ''}) "
        f"VALUES (:time, :sq{', ' + values if counts else ''})"),
        {"time": time_, "sq": stat_queue_id, **counts})


def add_call(conn: sa.Connection, stat_queue_id: int, time_: str, status: str, waittime: int = 0,
             talktime: int = 0, stat_agent_id: Optional[int] = None, callid: Optional[str] = None) -> None:
    conn.execute(sa.text(
        "INSERT INTO stat_call_on_queue (callid, time, waittime, talktime, status, stat_queue_id, stat_agent_id) "
        "VALUES (:callid, :time, :waittime, :talktime, :status, :sq, :sa)"),
        {"callid": callid or uuid.uuid4().hex, "time": time_, "waittime": waittime,
         "talktime": talktime, "status": status, "sq": stat_queue_id, "sa": stat_agent_id})


def add_agent_periodic(conn: sa.Connection, stat_agent_id: int, time_: str, login: str = "0",
                       pause: str = "0", wrapup: str = "0", stat_queue_id: Optional[int] = None) -> None:
    conn.execute(sa.text(
        "INSERT INTO stat_agent_periodic (time, login_time, pause_time, wrapup_time, stat_agent_id, stat_queue_id) "
        "VALUES (:time, CAST(:login AS interval), CAST(:pause AS interval), CAST(:wrapup AS interval), :sa, :sq)"),
        {"time": time_, "login": login, "pause": pause, "wrapup": wrapup, "sa": stat_agent_id, "sq": stat_queue_id})


def empty_tables(conn: sa.Connection) -> None:
    conn.execute(sa.text("TRUNCATE stat_call_on_queue, stat_agent_periodic, stat_queue_periodic, "
                         "stat_queue, stat_agent RESTART IDENTITY CASCADE"))


# ---- fixtures (imported by the test_api*.py modules) ------------------------------------------
import pytest

TOKEN = "test-token-" + uuid.uuid4().hex
TENANT_A = "11111111-1111-4111-8111-111111111111"
TENANT_B = "22222222-2222-4222-8222-222222222222"


@pytest.fixture(scope="module")
def api_database(pg_server) -> Iterator[str]:
    """One warehouse per test module (the server runs on it); tests empty its tables."""
    from stat_pipeline.warehouse.migrate import migrate

    name = f"api_{uuid.uuid4().hex[:12]}"
    pg_server.create_database(name)
    url = pg_server.url(name)
    engine = sa.create_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    pg_server.drop_database(name)


@pytest.fixture
def warehouse(api_database) -> Iterator[sa.Engine]:
    engine = sa.create_engine(api_database)
    with engine.begin() as conn:
        empty_tables(conn)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def api_port(api_database) -> Iterator[int]:
    """The API with the shared-secret token ``TOKEN`` behind a real uvicorn."""
    from stat_pipeline.serving.app import create_app
    from stat_pipeline.serving.auth import StaticToken

    with serving(create_app(api_database, StaticToken(TOKEN))) as port:
        yield port


@pytest.fixture
def call_logd(api_port) -> CallLogdClient:
    return CallLogdClient("127.0.0.1", port=api_port, https=False, prefix=None, token=TOKEN)
