"""Tokens and tenants of the statistics API.

Shared secret: a missing or wrong ``X-Auth-Token`` is a 401 whose message says
"unauthorized"; ``Wazo-Tenant`` narrows the answer to one tenant.

wazo-auth: a small local HTTP server stands in for wazo-auth, answering the three calls
wazo-call-logd makes through xivo's helpers (``HEAD /0.1/token/{t}?scope=&tenant=``,
``GET /0.1/token/{t}``, ``GET /0.1/tenants`` with ``Wazo-Tenant``) from a table of tokens
(ACL, tenant) and a tenant tree, with wazo-auth's ACL patterns (``*`` one segment, ``#`` any)
and its status codes (204 / 403 / 404, 401 on the tenant list without ``auth.tenants.read``).
The stand-in records each request, so the tests also check the exact ACL call-logd requires
on each route.
"""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from stat_pipeline_tests.api_support import (  # noqa: F401 (fixtures)
    TENANT_A, TENANT_B, TOKEN, CallLogdClient, CallLogdError, add_agent, add_queue, api_database,
    api_port, call_logd, serving, warehouse,
)

ROOT = "00000000-0000-4000-8000-000000000000"
CHILD = "33333333-3333-4333-8333-333333333333"       # under TENANT_A
GRANDCHILD = "44444444-4444-4444-8444-444444444444"  # under CHILD
# ROOT -> TENANT_A -> CHILD -> GRANDCHILD ; ROOT -> TENANT_B
PARENTS = {TENANT_A: ROOT, TENANT_B: ROOT, CHILD: TENANT_A, GRANDCHILD: CHILD}
ALL_TENANTS = [ROOT, TENANT_A, TENANT_B, CHILD, GRANDCHILD]

TOKENS = {
    # token: (tenant, acl)
    "supervisor-a": (TENANT_A, ["call-logd.#", "auth.tenants.read"]),
    "queues-only": (TENANT_A, ["call-logd.queues.*.statistics.read", "call-logd.queues.statistics.read",
                               "auth.tenants.read"]),
    "no-tenant-listing": (CHILD, ["call-logd.#"]),
    "nothing": (TENANT_A, ["confd.#"]),
}


def _subtree(tenant):
    return [t for t in ALL_TENANTS if t == tenant or _is_below(t, tenant)]


def _is_below(tenant, ancestor):
    while tenant in PARENTS:
        tenant = PARENTS[tenant]
        if tenant == ancestor:
            return True
    return False


def _allowed(acl, required):
    for access in acl:
        pattern = re.escape(access).replace(r"\*", "[^.#]*?").replace(r"\#", ".*?")
        if re.match(f"^{pattern}$", required):
            return True
    return False


class StandInAuth(BaseHTTPRequestHandler):
    calls: list = []

    def log_message(self, *args):  # quiet
        pass

    def _answer(self, status, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _route(self):
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.calls.append((self.command, url.path, query, dict(self.headers)))
        if url.path.startswith("/0.1/token/"):
            token = unquote(url.path.removeprefix("/0.1/token/"))
            if token == "refused-with-401":
                return self._answer(401, {"reason": ["Unauthorized"]})
            if token not in TOKENS:
                return self._answer(404, {"reason": ["No such token"]})
            tenant, acl = TOKENS[token]
            if self.command == "HEAD":
                if "scope" in query and not _allowed(acl, query["scope"]):
                    return self._answer(403)
                if "tenant" in query and query["tenant"] not in _subtree(tenant):
                    return self._answer(403)
                return self._answer(204)
            return self._answer(200, {"data": {"token": token, "acl": acl,
                                               "metadata": {"tenant_uuid": tenant, "uuid": "user"}}})
        if url.path == "/0.1/tenants":
            token = self.headers.get("X-Auth-Token", "")
            if token not in TOKENS or not _allowed(TOKENS[token][1], "auth.tenants.read"):
                return self._answer(401, {"reason": ["Unauthorized"]})
            scope = self.headers.get("Wazo-Tenant") or TOKENS[token][0]
            if scope not in _subtree(TOKENS[token][0]):
                return self._answer(401, {"reason": ["Unauthorized"]})
            items = [{"uuid": t, "name": t[:4]} for t in _subtree(scope)]
            return self._answer(200, {"items": items, "total": len(items), "filtered": len(items)})
        return self._answer(404, {"reason": ["Not found"]})

    do_HEAD = do_GET = _route


@pytest.fixture(scope="module")
def stand_in_auth():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInAuth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def wazo_auth_api_port(api_database, stand_in_auth):
    from stat_pipeline.serving.app import create_app
    from stat_pipeline.serving.auth import WazoAuth

    checker = WazoAuth(f"http://127.0.0.1:{stand_in_auth.server_address[1]}")
    with serving(create_app(api_database, checker)) as port:
        yield port


@pytest.fixture
def queues_in_every_tenant(warehouse):
    with warehouse.begin() as conn:
        for number, tenant in enumerate(ALL_TENANTS, start=1):
            add_queue(conn, number, tenant, name=f"q{number}")
            add_agent(conn, number, tenant, number=str(1000 + number))
    return {tenant: number for number, tenant in enumerate(ALL_TENANTS, start=1)}


def _error(call, *args, **params):
    with pytest.raises(CallLogdError) as caught:
        call(*args, **params)
    return caught.value


# ---- shared secret -------------------------------------------------------------------------

def test_missing_or_wrong_token_is_401_unauthorized(api_port, warehouse):
    for token in (None, "", "wrong", TOKEN + "x", TOKEN[:-1]):
        client = CallLogdClient("127.0.0.1", port=api_port, https=False, prefix=None, token=token)
        for call, args in ((client.queue_statistics.list, ()), (client.queue_statistics.get_by_id, (33,)),
                           (client.queue_statistics.get_qos_by_id, (33,)), (client.agent_statistics.list, ()),
                           (client.agent_statistics.get_by_id, (33,))):
            error = _error(call, *args)
            assert error.status_code == 401, token
            assert "unauthorized" in error.message.lower()
            assert error.error_id == "unauthorized"


def test_token_is_checked_before_the_query(api_port, warehouse):
    """As in call-logd (auth decorators outside validation): a bad query without a token is a 401."""
    client = CallLogdClient("127.0.0.1", port=api_port, https=False, token="wrong")
    assert _error(client.queue_statistics.get_by_id, 1, from_="nonsense").status_code == 401


def test_tenant_header_restricts_the_answer(call_logd, queues_in_every_tenant):
    everything = call_logd.queue_statistics.list()
    assert {i["tenant_uuid"] for i in everything["items"]} == set(ALL_TENANTS)
    call_logd.tenant_uuid = TENANT_B
    only_b = call_logd.queue_statistics.list()
    assert [(i["queue_id"], i["tenant_uuid"]) for i in only_b["items"]] == [(queues_in_every_tenant[TENANT_B], TENANT_B)]
    assert only_b["total"] == 1
    assert [i["agent_id"] for i in call_logd.agent_statistics.list()["items"]] == [queues_in_every_tenant[TENANT_B]]
    # another tenant's queue or agent does not exist for this request
    error = _error(call_logd.queue_statistics.get_by_id, queues_in_every_tenant[TENANT_A])
    assert (error.status_code, error.error_id) == (404, "queue-not-found-with-given-id")
    assert error.details == {"queue_id": queues_in_every_tenant[TENANT_A]}
    error = _error(call_logd.agent_statistics.get_by_id, queues_in_every_tenant[TENANT_A])
    assert (error.status_code, error.error_id) == (404, "agent-not-found-with-given-id")
    assert call_logd.queue_statistics.get_by_id(queues_in_every_tenant[TENANT_B])["items"]
    call_logd.tenant_uuid = "99999999-9999-4999-8999-999999999999"
    assert call_logd.queue_statistics.list() == {"items": [], "total": 0}


# ---- wazo-auth -----------------------------------------------------------------------------

def _wazo_client(port, token, tenant=None, prefix=None):
    return CallLogdClient("127.0.0.1", port=port, https=False, prefix=prefix, token=token, tenant=tenant)


def test_wazo_token_sees_its_tenant_and_sub_tenants_recursively(wazo_auth_api_port, queues_in_every_tenant,
                                                                 stand_in_auth):
    client = _wazo_client(wazo_auth_api_port, "supervisor-a")
    seen = {i["tenant_uuid"] for i in client.queue_statistics.list()["items"]}
    assert seen == {TENANT_A, CHILD, GRANDCHILD}
    assert {i["tenant_uuid"] for i in client.agent_statistics.list()["items"]} == {TENANT_A, CHILD, GRANDCHILD}
    # with Wazo-Tenant: that sub-tenant's subtree only
    client.tenant_uuid = CHILD
    assert {i["tenant_uuid"] for i in client.queue_statistics.list()["items"]} == {CHILD, GRANDCHILD}
    assert client.queue_statistics.get_by_id(queues_in_every_tenant[GRANDCHILD])["items"]
    assert _error(client.queue_statistics.get_by_id, queues_in_every_tenant[TENANT_A]).status_code == 404


def test_wazo_auth_is_asked_for_call_logds_acl_on_each_route(wazo_auth_api_port, queues_in_every_tenant,
                                                              stand_in_auth):
    client = _wazo_client(wazo_auth_api_port, "supervisor-a", tenant=TENANT_A)
    queue = agent = queues_in_every_tenant[TENANT_A]
    expected = [
        (client.queue_statistics.list, (), "call-logd.queues.statistics.read"),
        (client.queue_statistics.get_by_id, (queue,), f"call-logd.queues.{queue}.statistics.read"),
        (client.queue_statistics.get_qos_by_id, (queue,), f"call-logd.queues.{queue}.statistics.qos.read"),
        (client.agent_statistics.list, (), "call-logd.agents.statistics.read"),
        (client.agent_statistics.get_by_id, (agent,), f"call-logd.agents.{agent}.statistics.read"),
    ]
    for call, args, acl in expected:
        StandInAuth.calls.clear()
        call(*args)
        checks = [c for c in StandInAuth.calls if c[0] == "HEAD"]
        assert [(c[1], c[2]) for c in checks] == [("/0.1/token/supervisor-a", {"scope": acl, "tenant": TENANT_A})]
        listing = [c for c in StandInAuth.calls if c[1] == "/0.1/tenants"]
        assert len(listing) == 1 and listing[0][3]["Wazo-Tenant"] == TENANT_A
        assert listing[0][3]["X-Auth-Token"] == "supervisor-a"


def test_wazo_token_without_the_acl_is_forbidden(wazo_auth_api_port, queues_in_every_tenant):
    limited = _wazo_client(wazo_auth_api_port, "queues-only")
    assert limited.queue_statistics.list()["items"]
    assert limited.queue_statistics.get_by_id(queues_in_every_tenant[TENANT_A])["items"]
    for call, args in ((limited.agent_statistics.list, ()), (limited.agent_statistics.get_by_id, (2,)),
                       (limited.queue_statistics.get_qos_by_id, (2,))):  # qos needs its own ACL
        error = _error(call, *args)
        assert (error.status_code, error.error_id) == (403, "forbidden")
    error = _error(_wazo_client(wazo_auth_api_port, "nothing").queue_statistics.list)
    assert error.status_code == 403 and error.details["required_access"] == "call-logd.queues.statistics.read"


def test_unknown_or_missing_wazo_token_is_401(wazo_auth_api_port, queues_in_every_tenant):
    for token in ("expired-or-unknown", "refused-with-401", None):
        error = _error(_wazo_client(wazo_auth_api_port, token).queue_statistics.list)
        assert error.status_code == 401 and "unauthorized" in error.message.lower()


def test_tenant_outside_the_tokens_tree_is_refused(wazo_auth_api_port, queues_in_every_tenant):
    error = _error(_wazo_client(wazo_auth_api_port, "supervisor-a", tenant=TENANT_B).queue_statistics.list)
    assert error.status_code == 403
    assert error.details["tenant_uuid"] == TENANT_B


def test_token_that_may_not_list_tenants_sees_its_own_tenant(wazo_auth_api_port, queues_in_every_tenant):
    """xivo's Token.visible_tenants: a 401 on the tenant list means "the token's tenant only"."""
    client = _wazo_client(wazo_auth_api_port, "no-tenant-listing")
    assert {i["tenant_uuid"] for i in client.queue_statistics.list()["items"]} == {CHILD}
    # asking for a sub-tenant it may see but not list: refused rather than guessed
    client.tenant_uuid = GRANDCHILD
    error = _error(client.queue_statistics.list)
    assert (error.status_code, error.error_id) == (401, "unauthorized-tenant")


def test_wazo_auth_down_is_503_naming_auth(api_database, queues_in_every_tenant):
    from stat_pipeline.serving.app import create_app
    from stat_pipeline.serving.auth import WazoAuth

    import socket

    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    with serving(create_app(api_database, WazoAuth(f"http://127.0.0.1:{dead_port}"))) as port:
        for call, args in ((lambda c: c.queue_statistics.list, ()), (lambda c: c.queue_statistics.get_by_id, (33,))):
            error = _error(call(_wazo_client(port, "supervisor-a")), *args)
            assert error.status_code == 503 and "auth" in error.message.lower()
            assert error.error_id == "authentication-server-unreachable"
            assert error.details["auth_server_port"] == dead_port
