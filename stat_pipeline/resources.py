"""Dagster resources: the warehouse (our PostgreSQL) and the Wazo configuration."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Union

import dagster as dg
from pydantic import Field, PrivateAttr
from sqlalchemy import Engine, create_engine

from stat_pipeline.sources.wazo_config import (WazoConfigUnavailable, read_confd,
                                                read_wazo_database, wazo_tables_present)
from stat_pipeline.warehouse.migrate import migrate

# One engine per URL and process: Dagster builds resources per step, engines are expensive.
_ENGINES: dict[tuple[str, int], Engine] = {}


def warehouse_engine(url: str) -> Engine:
    key = (url, os.getpid())
    if key not in _ENGINES:
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which we do not ship.
            url = "postgresql+psycopg2://" + url.split("://", 1)[1]
        engine = create_engine(
            url,
            pool_pre_ping=True,
            # Statistics are bucketed in UTC whatever the server's default zone is.
            connect_args={"options": "-c timezone=UTC"},
        )
        migrate(engine)
        _ENGINES[key] = engine
    return _ENGINES[key]


def dispose_engines() -> None:
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()


class Warehouse(dg.ConfigurableResource):
    """Our PostgreSQL: Wazo's stat_* tables plus the queue_log copy and classified calls."""

    url: str = Field(description="SQLAlchemy URL, e.g. postgresql+psycopg2://user@host/db "
                                 "(set STAT_WAREHOUSE_URL)")

    def engine(self) -> Engine:
        return warehouse_engine(self.url)


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message is one line for the user."""


# Where the configuration comes from, in this order of precedence (README "Queues, agents
# and tenants"): an explicit file, else wazo-confd's REST API, else Wazo's own tables in the
# source database (when the source is a Wazo PostgreSQL), else none.
FILE, CONFD, DATABASE = "file", "confd", "database"
LIVE_ORIGINS = (CONFD, DATABASE)
_NO_WAZO_TABLES = "no Wazo tables"  # auto mode, a database without them (yet)


class WazoConfig(dg.ConfigurableResource):
    """Queues, agents and contexts as wazo-confd lists them: from a confd.json (the golden
    sets' format), from wazo-confd's REST API, or from Wazo's tables in the source database.

    Without any, every queue name seen in queue_log is a live queue of ``default_tenant``
    and no agent is known (wazo-stat only knows agents from confd).
    """

    confd_json: Optional[str] = Field(
        default=None, description="Path of a confd.json (STAT_CONFD_JSON); empty = none. "
                                  "Wins over every other origin")
    confd_url: Optional[str] = Field(
        default=None, description="wazo-confd's base URL, e.g. https://wazo.example.com/api/confd "
                                  "(STAT_CONFD_URL); needs confd_token")
    confd_token: Optional[str] = Field(
        default=None, description="wazo-auth token for wazo-confd (STAT_CONFD_TOKEN, a secret: "
                                  "EnvVar only), with confd.queues.read, confd.agents.read, "
                                  "confd.contexts.read")
    confd_verify_certificate: str = Field(
        default="true", description="'true', 'false' or a CA bundle path "
                                    "(STAT_CONFD_VERIFY_CERTIFICATE)")
    database_url: Optional[str] = Field(
        default=None, description="Wazo's asterisk database through the source's read-only "
                                  "account (STAT_SOURCE_URL)")
    database_schema: Optional[str] = Field(
        default=None, description="Schema of Wazo's tables (that of the source's queue_log); "
                                  "empty = the account's current schema")
    wazo_tables: str = Field(
        default="auto", description="auto: read Wazo's tables when the source database has "
                                    "them; require: a one-line error when it has not; off: "
                                    "never (STAT_WAZO_TABLES)")
    master_tenant: Optional[str] = Field(
        default=None, description="Master tenant uuid for confd or the database "
                                  "(STAT_MASTER_TENANT); unset: the token's tenant through "
                                  "confd, the only (or only empty) tenant of the database")
    default_tenant: str = Field(default="00000000-0000-0000-0000-000000000000",
                                description="Tenant of queues when no config is found")
    keep_unknown_agents: bool = Field(
        default=False,
        description="Give agents seen in queue_log but unknown to the config a stat_agent "
                    "row (master tenant, no confd id, deleted) so their calls and times are "
                    "kept; default: dropped, as wazo-stat does")

    _origin: Optional[tuple[Optional[str]]] = PrivateAttr(default=None)

    def origin(self, stored_origin: Optional[str] = None) -> Optional[str]:
        """FILE, CONFD, DATABASE or None (no config), by precedence; decided once.
        ``stored_origin``: where the warehouse's stored config came from. Wazo's tables
        that were read before and are gone now (dropped, SELECT revoked) are an error to
        show, not a switch to "no config", which would turn every queue into a log-only one."""
        if self._origin is None:
            self._origin = (self._find_origin(),)
        found = self._origin[0]
        if found == _NO_WAZO_TABLES:
            return DATABASE if stored_origin == DATABASE else None
        return found

    def _find_origin(self) -> Optional[str]:
        if self.confd_json:
            return FILE
        if self.confd_url:
            if not self.confd_token:
                raise ConfigError("STAT_CONFD_URL is set but STAT_CONFD_TOKEN is not: "
                                  "wazo-confd needs a token")
            return CONFD
        if self.wazo_tables not in ("auto", "require", "off"):
            raise ConfigError(f"STAT_WAZO_TABLES={self.wazo_tables!r}: expected auto, require "
                              "or off")
        if not self.database_url or self.wazo_tables == "off":
            return None
        if self.wazo_tables == "require":
            return DATABASE
        try:
            present = wazo_tables_present(self.database_url, self.database_schema)
        except WazoConfigUnavailable as exc:
            raise ConfigError(str(exc)) from None
        return DATABASE if present else _NO_WAZO_TABLES

    def document(self, stored_origin: Optional[str] = None) -> Optional[dict[str, Any]]:
        origin = self.origin(stored_origin)
        if origin is None:
            return None
        if origin == FILE:
            return self._file_document()
        try:
            if origin == CONFD:
                doc = read_confd(self.confd_url or "", self.confd_token or "",
                                 master_tenant=self.master_tenant,
                                 verify=_verify(self.confd_verify_certificate))
                where = f"wazo-confd {self.confd_url}"
            else:
                doc = read_wazo_database(self.database_url or "", self.database_schema,
                                         master_tenant=self.master_tenant)
                where = "Wazo config from the source database"
        except WazoConfigUnavailable as exc:
            raise ConfigError(str(exc)) from None
        problems = _config_problems(doc)
        if problems:
            raise ConfigError(f"{where}: {problems}")
        return doc

    def _file_document(self) -> dict[str, Any]:
        path = Path(self.confd_json or "")
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"confd config {path}: file not found") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"confd config {path}: not readable JSON ({exc})") from None
        problems = _config_problems(doc)
        if problems:
            raise ConfigError(f"confd config {path}: {problems}")
        return doc


def _verify(setting: str) -> Union[bool, str]:
    lowered = setting.strip().lower()
    if lowered in ("true", "1", "yes", ""):
        return True
    if lowered in ("false", "0", "no"):
        return False
    return setting  # a CA bundle


# What Wazo's tables hold (wazo_schema.sql): a longer value fails the dimension sync deep
# inside a run (StringDataRightTruncation, a 200-line traceback); said here in one line.
_INT_MAX = 2**31 - 1
_MAX_CHARS = {
    ("queues", "name"): (128, "stat_queue.name"),
    ("queues", "tenant_uuid"): (36, "stat_queue.tenant_uuid"),
    ("agents", "number"): (128 - len("Agent/"), "stat_agent.name ('Agent/' + number)"),
    ("agents", "tenant_uuid"): (36, "stat_agent.tenant_uuid"),
    ("contexts", "name"): (79, "context.name"),
    ("contexts", "tenant_uuid"): (36, "context.tenant_uuid"),
}


def _config_problems(doc: Any) -> str:
    if not isinstance(doc, dict):
        return "expected a JSON object with master_tenant, queues, agents"
    if not isinstance(doc.get("master_tenant"), str):
        return "'master_tenant' (a tenant uuid string) is missing"
    if len(doc["master_tenant"]) > 36:
        return "'master_tenant' is longer than 36 characters (Wazo's tenant uuid columns)"
    for key, fields in (("queues", ("id", "name", "tenant_uuid")),
                        ("agents", ("id", "number", "tenant_uuid")),
                        ("contexts", ("name", "tenant_uuid"))):
        items = doc.get(key, [])
        if key == "contexts" and not isinstance(items, list):
            continue  # optional: without a list, context 'default' is in the agents' tenant
        if not isinstance(items, list):
            return f"'{key}' must be a list"
        for i, item in enumerate(items):
            missing = [f for f in fields if not isinstance(item, dict) or item.get(f) in (None, "")]
            if missing:
                return f"{key}[{i}] lacks {', '.join(missing)}"
            if "id" in fields and (not isinstance(item["id"], int) or isinstance(item["id"], bool)
                                   or not 0 <= item["id"] <= _INT_MAX):
                return f"{key}[{i}].id must be an integer from 0 to {_INT_MAX}"
            for field in fields:
                if field == "id":
                    continue
                value = item[field]
                if not isinstance(value, (str, int)) or isinstance(value, bool):
                    return f"{key}[{i}].{field} must be a string"
                limit, column = _MAX_CHARS[(key, field)]
                if len(str(value)) > limit:
                    return (f"{key}[{i}].{field} is {len(str(value))} characters long: "
                            f"{column} holds at most {limit}")
    return ""
