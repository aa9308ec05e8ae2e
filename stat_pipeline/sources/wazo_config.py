"""Queues, agents, contexts and tenants as Wazo itself knows them, without a hand-made file.

Two ways, giving the document a ``confd.json`` holds (``{"master_tenant", "queues": [{id,
name, tenant_uuid}], "agents": [{id, number, tenant_uuid}], "contexts": [{name,
tenant_uuid}]}``), so the dimension rules downstream never know which one was used:

* ``read_wazo_database``: Wazo's ``asterisk`` database, through the source's read-only
  account — tables ``queuefeatures``, ``agentfeatures``, ``context`` and ``tenant`` (the
  tables wazo-confd serves its lists from; xivo-manage-db's schema).
* ``read_confd``: wazo-confd's REST API, as wazo-stat does (``GET /1.1/queues?recurse=true``,
  ``/1.1/agents?recurse=true``; we also read ``/1.1/contexts?recurse=true`` for the
  context -> tenant rule), with a token taken from the environment.

The master tenant (the tenant of queues only seen in queue_log) is the token's tenant for
wazo-stat. Here: ``master_tenant`` when configured (STAT_MASTER_TENANT); through confd, the
token's own tenant (``GET /1.1/tenants`` without recurse lists only it); in the database, the
only tenant, else the only tenant owning no queue, agent or context. Anything else is a
one-line error asking for STAT_MASTER_TENANT.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from stat_pipeline.sql import queries
from stat_pipeline.sources.postgres import read_only_engine

# What we read from each table (xivo-manage-db: queuefeatures.tenant_uuid and
# agentfeatures.tenant_uuid exist since the multi-tenant migrations of Wazo 18.x/19.x).
WAZO_COLUMNS = {
    "queuefeatures": ("id", "name", "tenant_uuid"),
    "agentfeatures": ("id", "number", "tenant_uuid"),
    "context": ("id", "name", "tenant_uuid"),
    "tenant": ("uuid",),
}
CONFD_TIMEOUT_SECONDS = 30.0
_SQL = Path(__file__).with_name("wazo_config.sql")


class WazoConfigUnavailable(ValueError):
    """Wazo's configuration could not be read; the message is one line for the user."""


def _first_line(exc: BaseException) -> str:
    message = str(getattr(exc, "orig", None) or exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__


def schema_of(table: str) -> Optional[str]:
    """The schema part of a source table name ('asterisk.queue_log' -> 'asterisk')."""
    return table.rsplit(".", 1)[0].strip('"') if "." in table else None


def wazo_tables_present(url: str, schema: Optional[str]) -> bool:
    """Whether the database holds Wazo's queuefeatures table (readable by the account): a
    Wazo ``asterisk`` database, not a plain queue_log copy."""
    found = _columns(url, schema)
    return "queuefeatures" in found


def _columns(url: str, schema: Optional[str]) -> dict[str, set[str]]:
    engine = read_only_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(queries(_SQL)["columns"], {"schema": schema}).all()
    except DBAPIError as exc:
        raise WazoConfigUnavailable(
            f"Wazo config from the source database: unreachable: {_first_line(exc)}") from None
    finally:
        engine.dispose()
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    return found


def read_wazo_database(url: str, schema: Optional[str] = None,
                       master_tenant: Optional[str] = None) -> dict[str, Any]:
    """The confd document from Wazo's tables in the database at ``url`` (read-only)."""
    where = f"schema {schema}" if schema else "the account's schema"
    found = _columns(url, schema)
    for table, columns in WAZO_COLUMNS.items():
        if table not in found:
            raise WazoConfigUnavailable(
                f"Wazo config from the source database: table {table} not found in {where} "
                "(or not readable by the source account: GRANT SELECT ON queuefeatures, "
                "agentfeatures, context, tenant); set STAT_CONFD_JSON or STAT_CONFD_URL instead")
        missing = [c for c in columns if c not in found[table]]
        if missing:
            raise WazoConfigUnavailable(
                f"Wazo config from the source database: {table} has no column "
                f"{', '.join(missing)} (a Wazo older than its multi-tenant schema?); set "
                "STAT_CONFD_JSON instead")
    prefix = '"' + schema.replace('"', '""') + '".' if schema else ""
    sql = {name: text(queries(_SQL)[name].text.replace("{schema}", prefix))
           for name in ("queues", "agents", "contexts", "tenants")}
    engine = read_only_engine(url)
    try:
        with engine.connect() as conn:
            queues = [{"id": r.id, "name": r.name, "tenant_uuid": r.tenant_uuid}
                      for r in conn.execute(sql["queues"])]
            agents = [{"id": r.id, "number": r.number, "tenant_uuid": r.tenant_uuid}
                      for r in conn.execute(sql["agents"])]
            contexts = [{"name": r.name, "tenant_uuid": r.tenant_uuid}
                        for r in conn.execute(sql["contexts"])]
            tenants = conn.execute(sql["tenants"]).all()
    except DBAPIError as exc:
        raise WazoConfigUnavailable(
            f"Wazo config from the source database: {_first_line(exc)}") from None
    finally:
        engine.dispose()
    if master_tenant is None:
        master_tenant = _master_from_tenants([t.uuid for t in tenants],
                                             [t.uuid for t in tenants if t.empty])
    return {"master_tenant": master_tenant, "queues": queues, "agents": agents,
            "contexts": contexts}


def _master_from_tenants(tenants: list[str], empty: list[str]) -> str:
    if len(tenants) == 1:
        return tenants[0]
    if len(empty) == 1:
        return empty[0]
    raise WazoConfigUnavailable(
        f"Wazo config from the source database: {len(tenants)} tenants and no single one "
        "without queues, agents or contexts: set STAT_MASTER_TENANT to the master tenant's "
        "uuid (wazo-auth's)")


def _confd_base(url: str) -> str:
    # 'https://wazo/api/confd', with or without the API version: the version is ours to add
    base = url.rstrip("/")
    return base[:-len("/1.1")] if base.endswith("/1.1") else base


def read_confd(url: str, token: str, master_tenant: Optional[str] = None,
               verify: Union[bool, str] = True,
               timeout: float = CONFD_TIMEOUT_SECONDS) -> dict[str, Any]:
    """The confd document from wazo-confd's REST API at ``url`` (its base, e.g.
    ``https://wazo.example.com/api/confd``), with the token ``token`` (never logged)."""
    import requests  # here: a file's or a database's config needs no HTTP client (~0.1 s)

    base = _confd_base(url) + "/1.1"
    with requests.Session() as session:
        session.headers.update({"X-Auth-Token": token, "Accept": "application/json"})

        def items(resource: str, recurse: bool = True) -> list[dict[str, Any]]:
            try:
                response = session.get(f"{base}/{resource}",
                                       params={"recurse": "true"} if recurse else None,
                                       timeout=timeout, verify=verify)
            except requests.RequestException as exc:
                raise WazoConfigUnavailable(
                    f"wazo-confd {base}: unreachable ({type(exc).__name__})") from None
            if response.status_code in (401, 403):
                raise WazoConfigUnavailable(
                    f"wazo-confd {base}/{resource}: HTTP {response.status_code}: the token "
                    f"(STAT_CONFD_TOKEN) is refused or lacks confd.{resource}.read")
            if response.status_code != 200:
                raise WazoConfigUnavailable(
                    f"wazo-confd {base}/{resource}: HTTP {response.status_code}")
            try:
                found = response.json()["items"]
                if not isinstance(found, list):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                raise WazoConfigUnavailable(
                    f"wazo-confd {base}/{resource}: not a confd list (no 'items')") from None
            return found

        queues = [{"id": q.get("id"), "name": q.get("name"), "tenant_uuid": q.get("tenant_uuid")}
                  for q in items("queues")]
        agents = [{"id": a.get("id"), "number": a.get("number"),
                   "tenant_uuid": a.get("tenant_uuid")} for a in items("agents")]
        contexts = [{"name": c.get("name"), "tenant_uuid": c.get("tenant_uuid")}
                    for c in items("contexts")]
        if master_tenant is None:
            own = items("tenants", recurse=False)
            if len(own) != 1 or not own[0].get("uuid"):
                raise WazoConfigUnavailable(
                    f"wazo-confd {base}/tenants: {len(own)} tenants for the token, expected "
                    "its own: set STAT_MASTER_TENANT to the master tenant's uuid")
            master_tenant = own[0]["uuid"]
    return {"master_tenant": master_tenant, "queues": queues, "agents": agents,
            "contexts": contexts}
