"""The statistics API: wazo-call-logd's five statistics routes on our warehouse.

Routes (GET, under ``/1.0`` and under ``/api/call-logd/1.0``, the path behind Wazo's nginx):

    /queues/statistics                      call-logd.queues.statistics.read
    /queues/{queue_id}/statistics           call-logd.queues.{queue_id}.statistics.read
    /queues/{queue_id}/statistics/qos       call-logd.queues.{queue_id}.statistics.qos.read
    /agents/statistics                      call-logd.agents.statistics.read
    /agents/{agent_id}/statistics           call-logd.agents.{agent_id}.statistics.read
    /api/api.yml                            the OpenAPI (Swagger 2.0) document, no token

A request goes the way it goes in call-logd: token and ACL (401/403/503), query validation
(400 ``invalid-data``), tenants (``Wazo-Tenant`` or the token's, with sub-tenants), the
queue/agent looked up among them (404), ``interval=hour`` over more than a month (400
``date-range-too-large-for-interval``), then the numbers from ``stat_pipeline.serving.kpi``
(the SQL that BI tools call too), dumped as call-logd dumps them. Every error is Wazo's JSON
``{message, error_id, details, timestamp}``.

The service only reads: each request runs in a READ ONLY transaction.
"""
from __future__ import annotations

import contextlib
import time
from importlib import resources
from typing import Any, Callable, Iterable, Optional

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from stat_pipeline.serving import kpi
from stat_pipeline.serving.auth import ApiError, TokenChecker
from stat_pipeline.serving.schemas import (
    AgentListQuery, AgentQuery, QosQuery, QueryInvalid, QueueListQuery, QueueQuery,
    StatisticsQuery, dump_agent_item, dump_qos_item, dump_queue_item, envelope, parse_query,
)

API_PREFIXES = ("/1.0", "/api/call-logd/1.0")


def error_response(status_code: int, message: str, error_id: str, details=None) -> JSONResponse:
    return JSONResponse({"message": message, "error_id": error_id, "details": details or {},
                         "timestamp": time.time()}, status_code=status_code)


def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status_code, exc.message, exc.error_id, exc.details)


def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    if exc.status_code == 404:
        return error_response(404, "The requested URL was not found on the server", "not-found",
                              {"path": request.url.path})
    if exc.status_code == 405:
        return error_response(405, "The method is not allowed for the requested URL",
                              "method-not-allowed", {"method": request.method})
    return error_response(exc.status_code, exc.detail or "HTTP error", "http-error")


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # no traceback, query or SQL in the answer: they can hold what a client should not see
    if isinstance(exc, sa.exc.OperationalError):
        return error_response(503, "The statistics database is unavailable", "database-unavailable")
    return error_response(500, "Unexpected error", "unexpected-error")


def api_spec_text() -> str:
    return (resources.files("stat_pipeline.serving") / "api.yml").read_text()


def _kpi_call(function, conn, **arguments):
    """A kpi function, its refusals turned into call-logd's errors (the queue or agent is
    looked up before the interval range is checked, as in call-logd's services)."""
    try:
        return function(conn, **arguments)
    except kpi.QueueNotFoundError:
        raise ApiError(404, "No queue found matching this ID", "queue-not-found-with-given-id",
                       {"queue_id": arguments["queue_id"]}) from None
    except kpi.AgentNotFoundError:
        raise ApiError(404, "No agent found matching this ID", "agent-not-found-with-given-id",
                       {"agent_id": arguments["agent_id"]}) from None
    except kpi.RangeTooLargeError:
        raise ApiError(400, "Date range is too large for the given interval",
                       "date-range-too-large-for-interval",
                       "Maximum of 1 month for interval by hour") from None
    except (OverflowError, ValueError) as exc:
        # a month or a day past year 9999 (from=9999-12-31T23:00&interval=hour): the
        # caller's dates, not a fault of ours
        if "out of range" not in str(exc):
            raise
        raise ApiError(400, "Sent data is invalid", "invalid-data",
                       {"from": "Date out of range", "until": "Date out of range"}) from None


def _tenant_list(tenants: Optional[tuple[str, ...]]) -> Optional[list[str]]:
    return None if tenants is None else list(tenants)


class StatisticsApi:
    """The routes' work, on one engine."""

    def __init__(self, engine: sa.Engine, token_checker: TokenChecker) -> None:
        self.engine = engine
        self.token_checker = token_checker

    @contextlib.contextmanager
    def reading(self):
        with self.engine.connect() as conn:
            with conn.begin():
                conn.execute(sa.text("SET TRANSACTION READ ONLY"))
                yield conn

    async def _answer(self, request: Request, acl: str, model: type[StatisticsQuery],
                      work: Callable[[sa.Connection, Any, Optional[list[str]]], dict]) -> JSONResponse:
        access = await self.token_checker.authorize(request, acl)
        try:
            query = parse_query(model, request.query_params)
        except QueryInvalid as exc:
            raise ApiError(400, "Sent data is invalid", "invalid-data", exc.details) from None
        tenants = _tenant_list(access.tenant_uuids)

        def run() -> dict:
            with self.reading() as conn:
                return work(conn, query, tenants)

        return JSONResponse(await run_in_threadpool(run))

    # -- queues ------------------------------------------------------------------------
    async def queues(self, request: Request) -> JSONResponse:
        def work(conn, query: QueueListQuery, tenants):
            items = _kpi_call(kpi.queue_statistics, conn, **query.kpi_arguments(),
                              qos_threshold=query.qos_threshold, tenant_uuids=tenants)
            return envelope([dump_queue_item(i) for i in items])

        return await self._answer(request, "call-logd.queues.statistics.read", QueueListQuery, work)

    async def queue(self, request: Request) -> JSONResponse:
        queue_id = request.path_params["queue_id"]

        def work(conn, query: QueueQuery, tenants):
            items = _kpi_call(kpi.queue_statistics, conn, **query.kpi_arguments(), interval=query.interval,
                              qos_threshold=query.qos_threshold, tenant_uuids=tenants, queue_id=queue_id)
            return envelope([dump_queue_item(i) for i in items])

        return await self._answer(request, f"call-logd.queues.{queue_id}.statistics.read", QueueQuery, work)

    async def queue_qos(self, request: Request) -> JSONResponse:
        queue_id = request.path_params["queue_id"]

        def work(conn, query: QosQuery, tenants):
            items = _kpi_call(kpi.queue_qos, conn, queue_id=queue_id, **query.kpi_arguments(),
                              interval=query.interval, qos_thresholds=tuple(query.qos_thresholds),
                              tenant_uuids=tenants)
            return envelope([dump_qos_item(i) for i in items])

        return await self._answer(request, f"call-logd.queues.{queue_id}.statistics.qos.read", QosQuery, work)

    # -- agents ------------------------------------------------------------------------
    async def agents(self, request: Request) -> JSONResponse:
        def work(conn, query: AgentListQuery, tenants):
            items = _kpi_call(kpi.agent_statistics, conn, **query.kpi_arguments(), tenant_uuids=tenants)
            return envelope([dump_agent_item(i) for i in items])

        return await self._answer(request, "call-logd.agents.statistics.read", AgentListQuery, work)

    async def agent(self, request: Request) -> JSONResponse:
        agent_id = request.path_params["agent_id"]

        def work(conn, query: AgentQuery, tenants):
            items = _kpi_call(kpi.agent_statistics, conn, **query.kpi_arguments(), interval=query.interval,
                              tenant_uuids=tenants, agent_id=agent_id)
            return envelope([dump_agent_item(i) for i in items])

        return await self._answer(request, f"call-logd.agents.{agent_id}.statistics.read", AgentQuery, work)

    async def spec(self, request: Request) -> Response:
        return Response(api_spec_text(), media_type="application/x-yaml")

    def routes(self) -> list[Route]:
        routes = []
        for prefix in API_PREFIXES:
            routes += [
                Route(prefix + "/queues/statistics", self.queues, methods=["GET"]),
                Route(prefix + "/queues/{queue_id:int}/statistics", self.queue, methods=["GET"]),
                Route(prefix + "/queues/{queue_id:int}/statistics/qos", self.queue_qos, methods=["GET"]),
                Route(prefix + "/agents/statistics", self.agents, methods=["GET"]),
                Route(prefix + "/agents/{agent_id:int}/statistics", self.agent, methods=["GET"]),
                Route(prefix + "/api/api.yml", self.spec, methods=["GET"]),
            ]
        return routes


# Wazo's services answer browsers of other origins (their default CORS settings): web apps
# that read call-logd from a page can read us. The token travels in a header, never a cookie,
# so an origin learns nothing it was not given.
CORS = Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET"],
                  allow_headers=["Content-Type", "X-Auth-Token", "Wazo-Tenant"])


def create_app(warehouse_url: str, token_checker: TokenChecker, *,
               mounts: Iterable[BaseRoute] = (), migrate_schema: bool = True) -> Starlette:
    """The API on the warehouse at ``warehouse_url`` (SQLAlchemy URL, psycopg2 driver).

    ``mounts`` (e.g. the dashboard's static files at ``/``) come after the API's routes, so
    ``/1.0/...`` and ``/api/call-logd/1.0/...`` stay the API's. With ``migrate_schema`` the
    warehouse's tables are created at start if missing (a fresh warehouse answers empty lists).
    """
    engine = sa.create_engine(warehouse_url, pool_pre_ping=True)
    api = StatisticsApi(engine, token_checker)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        if migrate_schema:
            from stat_pipeline.warehouse.migrate import migrate

            await run_in_threadpool(migrate, engine)
        try:
            yield
        finally:
            engine.dispose()

    app = Starlette(
        routes=[*api.routes(), *mounts],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _unexpected},
        middleware=[CORS],
        lifespan=lifespan,
    )
    app.state.statistics_api = api
    return app
