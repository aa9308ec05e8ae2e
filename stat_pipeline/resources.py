"""Dagster resources: the warehouse (our PostgreSQL) and the Wazo configuration."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import dagster as dg
from pydantic import Field
from sqlalchemy import Engine, create_engine

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


class WazoConfig(dg.ConfigurableResource):
    """Queues, agents and contexts as wazo-confd lists them (the golden sets' confd.json).

    Without a file, every queue name seen in queue_log is a live queue of ``default_tenant``
    and no agent is known (wazo-stat only knows agents from confd).
    """

    confd_json: Optional[str] = Field(
        default=None, description="Path of a confd.json (STAT_CONFD_JSON); empty = none")
    default_tenant: str = Field(default="00000000-0000-0000-0000-000000000000",
                                description="Tenant of queues when no confd.json is given")
    keep_unknown_agents: bool = Field(
        default=False,
        description="Give agents seen in queue_log but unknown to the config a stat_agent "
                    "row (master tenant, no confd id, deleted) so their calls and times are "
                    "kept; default: dropped, as wazo-stat does")

    def document(self) -> Optional[dict[str, Any]]:
        if not self.confd_json:
            return None
        path = Path(self.confd_json)
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
