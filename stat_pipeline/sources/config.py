"""Several PBXs, one warehouse: the sources file (``STAT_SOURCES_FILE``).

A YAML list of sources (README "Several PBXs, one warehouse", ``examples/sources.yml``)::

    - name: paris                 # slug: queue_log.source, sensor names, the run tag
      kind: wazo                  # wazo | asterisk_file | csv | mysql_dump
      url: {env: PARIS_DB_URL}    # secrets only as {env: VAR}, read when used
      table: asterisk.queue_log
      timezone: Europe/Paris
    - name: lyon
      kind: asterisk_file
      path: /srv/pbx/lyon/queue_log*
      tenant: 5d0a4f0c-...        # a plain Asterisk: the tenant its queues and agents are of
      config: {confd_json: /srv/pbx/lyon/confd.json}

The file is validated when the code location loads (pydantic; each error one line naming the
file and the source); ``{env: VAR}`` references are resolved only when a source is used (a
run, a sensor tick), so a secret never sits in Dagster's resource config, in the UI or in a
log. The one-source environment variables (definitions.py) stay the shorthand; they build the
same ``Member`` list of one.

Which sources a run works on: the tag ``stat_pipeline/source=<name>`` (the per-source
sensors set it) or, untagged (a materialization or backfill from the UI), every source.
"""
from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional, Union

import dagster as dg
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from stat_pipeline.sources.base import QueueLogSource, _known_zone

if TYPE_CHECKING:
    from stat_pipeline.resources import WazoConfig

SOURCE_TAG = "stat_pipeline/source"
# Dagster names (sensors) allow letters, digits and '_'; the name is also a column value and
# a run tag: lower case, starting with a letter, short enough for a sensor name.
_SLUG = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KINDS = ("wazo", "asterisk_file", "csv", "mysql_dump")


class SourcesFileError(ValueError):
    """A sources file that cannot be used: the message is one line naming file and source."""


class EnvRef(BaseModel):
    """``{env: VAR}``: a value (a secret) read from the environment when the source is used."""
    model_config = ConfigDict(extra="forbid")
    env: str

    @field_validator("env")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value


def _uuid(value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(f"{value!r} is not a tenant uuid") from None


class ConfigOrigin(BaseModel):
    """Where a source's queues, agents and contexts come from (resources.WazoConfig): a
    confd.json, wazo-confd, or (a Wazo source, by default) Wazo's tables in its database."""
    model_config = ConfigDict(extra="forbid")
    confd_json: Optional[str] = None
    confd_url: Optional[str] = None
    confd_token: Optional[Union[EnvRef, str]] = None
    confd_verify_certificate: str = "true"
    wazo_tables: Literal["auto", "require", "off"] = "auto"
    master_tenant: Optional[str] = None
    keep_unknown_agents: bool = False

    _tenant = field_validator("master_tenant")(classmethod(lambda cls, v: _uuid(v)))

    @field_validator("confd_token")
    @classmethod
    def _secret(cls, value):
        if isinstance(value, str):
            raise ValueError("a token is a secret: write {env: VAR}, never the value")
        return value

    @model_validator(mode="after")
    def _token_with_url(self):
        if self.confd_url and not self.confd_token:
            raise ValueError("confd_url needs confd_token: {env: VAR}")
        return self


class SourceSpec(BaseModel):
    """One PBX of the sources file."""
    model_config = ConfigDict(extra="forbid")
    name: str
    kind: Literal["wazo", "asterisk_file", "csv", "mysql_dump"]
    url: Optional[Union[EnvRef, str]] = Field(default=None, description="wazo: its database")
    path: Optional[str] = Field(default=None, description="file kinds: a file or a glob")
    table: str = "queue_log"
    timezone: str = "UTC"
    tenant: Optional[str] = None
    config: ConfigOrigin = Field(default_factory=ConfigOrigin)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(f"{value!r} is not a slug (a-z, 0-9, _, starting with a letter, "
                             "at most 40 characters)")
        return value

    _zone = field_validator("timezone")(classmethod(lambda cls, v: _known_zone(v)))
    _tenant = field_validator("tenant")(classmethod(lambda cls, v: _uuid(v)))

    @field_validator("url")
    @classmethod
    def _no_literal_password(cls, value):
        if isinstance(value, str):
            try:
                password = make_url(value).password
            except ArgumentError:
                raise ValueError("not a database URL (postgresql+psycopg2://user@host/db)") from None
            if password:
                raise ValueError("the URL holds a password: write url: {env: VAR}, never the "
                                 "secret in the file")
        return value

    @model_validator(mode="after")
    def _fits_kind(self):
        if self.kind == "wazo":
            if self.url is None:
                raise ValueError("a wazo source needs url: {env: VAR}")
            if self.path is not None:
                raise ValueError("a wazo source reads its database: no path")
            return self
        if not self.path:
            raise ValueError(f"a {self.kind} source needs path")
        if self.url is not None:
            raise ValueError(f"a {self.kind} source reads a file: no url")
        if self.tenant is None and not (self.config.confd_json or self.config.confd_url):
            raise ValueError("tenant (uuid) is missing: a plain Asterisk's queues and agents "
                             "need the tenant they belong to (or a confd config)")
        if self.config.wazo_tables != "auto":
            raise ValueError(f"wazo_tables is for a wazo source, not {self.kind}")
        return self


def _one_line(file: str, ident: str, exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"] if not str(p).startswith(("function-", "EnvRef", "str")))
    message = error["msg"].removeprefix("Value error, ")
    return f"{file}: source {ident}: " + (f"{where}: " if where else "") + message


def parse_sources(text: str, file: str = "<sources>") -> list[SourceSpec]:
    """The sources of a sources file's text (pure: no environment, no I/O)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SourcesFileError(f"{file}: not readable YAML{where}") from None
    if isinstance(doc, dict) and set(doc) == {"sources"}:
        doc = doc["sources"]
    if not isinstance(doc, list) or not doc:
        raise SourcesFileError(f"{file}: expected a list of sources (name, kind, ...)")
    specs: list[SourceSpec] = []
    for i, item in enumerate(doc, 1):
        ident = (repr(item["name"]) if isinstance(item, dict) and isinstance(item.get("name"), str)
                 else f"#{i}")
        if not isinstance(item, dict):
            raise SourcesFileError(f"{file}: source {ident}: expected a mapping (name: ..., kind: ...)")
        try:
            specs.append(SourceSpec.model_validate(item))
        except ValidationError as exc:
            raise SourcesFileError(_one_line(file, ident, exc)) from None
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise SourcesFileError(f"{file}: source {spec.name!r}: the name is used twice")
        seen.add(spec.name)
    return specs


def read_sources_file(path: str) -> list[SourceSpec]:
    try:
        body = Path(path).read_text()
    except OSError as exc:
        raise SourcesFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return parse_sources(body, path)


def _resolve(value: Union[EnvRef, str, None], file: str, name: str, field: str,
             env: Optional[dict[str, str]] = None) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    found = (os.environ if env is None else env).get(value.env)
    if not found:
        raise SourcesFileError(f"{file}: source {name!r}: {field}: environment variable "
                               f"{value.env} is not set")
    return found


def missing_env(specs: list[SourceSpec], env: Optional[dict[str, str]] = None) -> list[str]:
    """``source.field ($VAR)`` for every ``{env: VAR}`` of ``specs`` that is not set."""
    env = os.environ if env is None else env
    missing = []
    for spec in specs:
        for field, value in (("url", spec.url), ("config.confd_token", spec.config.confd_token)):
            if isinstance(value, EnvRef) and not env.get(value.env):
                missing.append(f"{spec.name}.{field} (${value.env})")
    return missing


@dataclass
class Member:
    """One source of a run: its name (the warehouse scope), reader and config origin."""
    name: str
    source: QueueLogSource
    config: "WazoConfig"


def build_member(spec: SourceSpec, file: str = "<sources>", until: Optional[str] = None,
                 env: Optional[dict[str, str]] = None) -> Member:
    """The reader and config of ``spec``, its secrets read from the environment now."""
    from stat_pipeline.resources import WazoConfig
    from stat_pipeline.sources.csv import CsvQueueLogSource
    from stat_pipeline.sources.flat_file import FlatFileQueueLogSource
    from stat_pipeline.sources.mysql_dump import MysqlDumpQueueLogSource
    from stat_pipeline.sources.postgres import PostgresQueueLogSource
    from stat_pipeline.sources.wazo_config import schema_of

    url = _resolve(spec.url, file, spec.name, "url", env)
    common: dict[str, Any] = {"name": spec.name, "until": until}
    if spec.kind == "wazo":
        source: QueueLogSource = PostgresQueueLogSource(url=url, table=spec.table,
                                                        timezone=spec.timezone, **common)
    elif spec.kind == "asterisk_file":  # epochs: no time zone to read them in
        source = FlatFileQueueLogSource(path=spec.path, **common)
    elif spec.kind == "csv":
        source = CsvQueueLogSource(path=spec.path, timezone=spec.timezone, **common)
    else:
        source = MysqlDumpQueueLogSource(path=spec.path, timezone=spec.timezone, **common)
    origin = spec.config
    config_fields: dict[str, Any] = {}
    if spec.tenant:
        config_fields["default_tenant"] = spec.tenant
    config = WazoConfig(
        confd_json=origin.confd_json, confd_url=origin.confd_url,
        confd_token=_resolve(origin.confd_token, file, spec.name, "config.confd_token", env),
        confd_verify_certificate=origin.confd_verify_certificate,
        database_url=url if spec.kind == "wazo" else None,
        database_schema=schema_of(spec.table) if spec.kind == "wazo" else None,
        wazo_tables=origin.wazo_tables if spec.kind == "wazo" else "off",
        master_tenant=origin.master_tenant or spec.tenant,
        keep_unknown_agents=origin.keep_unknown_agents, **config_fields)
    return Member(spec.name, source, config)


class SourceSet(QueueLogSource):
    """The ``source`` resource when a sources file is used: several PBXs. Assets and sensors
    ask ``members_of`` for the sources they work on (one source behaves the same way)."""

    sources_file: str = Field(description="YAML file of the sources (STAT_SOURCES_FILE)")

    def default_name(self) -> str:
        return "sources file " + self.sources_file

    def specs(self) -> list[SourceSpec]:
        return read_sources_file(self.sources_file)

    def members(self) -> list[Member]:
        return [build_member(spec, self.sources_file, self.until) for spec in self.specs()]

    def member(self, name: str) -> Member:
        for spec in self.specs():
            if spec.name == name:
                return build_member(spec, self.sources_file, self.until)
        raise SourcesFileError(f"{self.sources_file}: no source named {name!r} (removed since "
                               "the code location was loaded? reload it)")


def members_of(source: QueueLogSource, wazo_config: "WazoConfig") -> list[Member]:
    """Every source: those of a sources file, or the one-source shorthand's."""
    if isinstance(source, SourceSet):
        return source.members()
    return [Member(source.source_name(), source, wazo_config)]


def run_members(context, source: QueueLogSource, wazo_config: "WazoConfig") -> list[Member]:
    """The sources a run works on: the one its ``stat_pipeline/source`` tag names, else all."""
    wanted = context.run.tags.get(SOURCE_TAG) if context.run else None
    if wanted is None:
        return members_of(source, wazo_config)
    if isinstance(source, SourceSet):
        try:
            return [source.member(wanted)]
        except SourcesFileError as exc:
            raise dg.Failure(description=str(exc)) from None
    if wanted != source.source_name():
        raise dg.Failure(description=f"run tagged {SOURCE_TAG}={wanted}, but this code "
                                     f"location reads only {source.source_name()}")
    return [Member(wanted, source, wazo_config)]
