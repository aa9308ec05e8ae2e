"""The sources file (STAT_SOURCES_FILE): parsing and validation, pure (no database)."""
from __future__ import annotations

from pathlib import Path

import pytest

from stat_pipeline.sources import CsvQueueLogSource, FlatFileQueueLogSource, PostgresQueueLogSource
from stat_pipeline.sources.config import (SourcesFileError, build_member, parse_sources,
                                          read_sources_file)

TENANT = "3f0b7c1e-6a53-4c8e-9a43-0c7f3d1b9e21"
WAZO = "- {name: paris, kind: wazo, url: {env: PARIS_URL}, table: asterisk.queue_log, timezone: Europe/Paris}\n"
FLAT = f"- {{name: lyon, kind: asterisk_file, path: /srv/lyon/queue_log*, tenant: {TENANT}}}\n"


def error_of(text: str) -> str:
    with pytest.raises(SourcesFileError) as info:
        parse_sources(text, "pbx.yml")
    message = str(info.value)
    assert "\n" not in message and message.startswith("pbx.yml: ")
    return message


def test_example_file_parses():
    specs = read_sources_file(str(Path(__file__).parents[1] / "examples" / "sources.yml"))
    assert [(s.name, s.kind) for s in specs] == [
        ("paris", "wazo"), ("lyon", "wazo"), ("lab_asterisk", "asterisk_file")]
    assert specs[1].config.confd_token.env == "LYON_CONFD_TOKEN"


def test_secrets_come_from_the_environment_when_used():
    wazo, flat = parse_sources(WAZO + FLAT)
    env = {"PARIS_URL": "postgresql+psycopg2://reader:s3cret@pbx/asterisk"}
    member = build_member(wazo, "pbx.yml", env=env)
    assert isinstance(member.source, PostgresQueueLogSource)
    assert member.source.url == env["PARIS_URL"] and member.source.source_name() == "paris"
    assert member.source.table == "asterisk.queue_log" and member.source.timezone == "Europe/Paris"
    # a Wazo source's queues and agents: Wazo's tables through the same account and schema
    assert member.config.database_url == env["PARIS_URL"]
    assert member.config.database_schema == "asterisk"
    lyon = build_member(flat, "pbx.yml", env={})
    assert isinstance(lyon.source, FlatFileQueueLogSource) and lyon.name == "lyon"
    # a plain Asterisk: its queues in its configured tenant, no database to look into
    assert lyon.config.default_tenant == TENANT and lyon.config.master_tenant == TENANT
    assert lyon.config.database_url is None and lyon.config.wazo_tables == "off"
    with pytest.raises(SourcesFileError, match=r"^pbx.yml: source 'paris': url: environment "
                                               r"variable PARIS_URL is not set$"):
        build_member(wazo, "pbx.yml", env={})


def test_confd_token_from_the_environment():
    text = (f"- name: lab\n  kind: csv\n  path: /x.csv\n  tenant: {TENANT}\n  timezone: UTC\n"
            "  config: {confd_url: 'https://pbx/api/confd', confd_token: {env: LAB_TOKEN}}\n")
    member = build_member(parse_sources(text)[0], env={"LAB_TOKEN": "t0k"})
    assert isinstance(member.source, CsvQueueLogSource)
    assert member.config.confd_token == "t0k" and member.config.confd_url == "https://pbx/api/confd"


@pytest.mark.parametrize("text, expected", [
    # literal secrets are refused
    ("- {name: a, kind: wazo, url: 'postgresql://u:pw@h/db'}\n",
     "source 'a': url: the URL holds a password: write url: {env: VAR}"),
    (f"- {{name: a, kind: csv, path: /x, tenant: {TENANT}, "
     "config: {confd_url: 'https://h', confd_token: abc}}\n",
     "source 'a': config.confd_token: a token is a secret: write {env: VAR}"),
    # names
    ("- {name: Paris-1, kind: wazo, url: {env: U}}\n", "source 'Paris-1': name: 'Paris-1' is not a slug"),
    ("- {name: 1st, kind: wazo, url: {env: U}}\n", "source '1st': name: '1st' is not a slug"),
    (WAZO + WAZO, "source 'paris': the name is used twice"),
    ("- {kind: wazo, url: {env: U}}\n", "source #1: name: Field required"),
    # the tenant of a plain Asterisk
    ("- {name: lyon, kind: asterisk_file, path: /q}\n", "source 'lyon': tenant (uuid) is missing"),
    ("- {name: lyon, kind: asterisk_file, path: /q, tenant: nope}\n",
     "source 'lyon': tenant: 'nope' is not a tenant uuid"),
    # kinds and their fields
    ("- {name: a, kind: sip, url: {env: U}}\n", "source 'a': kind: Input should be"),
    ("- {name: a, kind: wazo}\n", "source 'a': a wazo source needs url"),
    (f"- {{name: a, kind: csv, url: {{env: U}}, path: /x, tenant: {TENANT}}}\n",
     "source 'a': a csv source reads a file: no url"),
    ("- {name: a, kind: wazo, url: {env: 'NOT A NAME'}}\n", "source 'a': url.env: 'NOT A NAME' is not"),
    ("- {name: a, kind: wazo, url: {env: U}, timezone: Mars/Olympus}\n",
     "source 'a': timezone: unknown time zone 'Mars/Olympus'"),
    ("- {name: a, kind: wazo, url: {env: U}, passwd: x}\n", "source 'a': passwd: Extra inputs"),
    # the file itself
    ("name: a\n", "expected a list of sources"),
    ("- [unclosed\n", "not readable YAML at line"),
    ("[]\n", "expected a list of sources"),
])
def test_config_errors_are_one_line_naming_file_and_source(text, expected):
    assert expected in error_of(text)


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(SourcesFileError, match=r"^.*nowhere.yml: cannot be read"):
        read_sources_file(str(tmp_path / "nowhere.yml"))


def test_mapping_with_sources_key_is_accepted():
    assert [s.name for s in parse_sources("sources:\n" + WAZO + FLAT)] == ["paris", "lyon"]


def test_serve_checks_the_sources_file_before_starting(tmp_path):
    """`stat-pipeline serve` takes a sources file as the source, and says in one line what
    is wrong with it (invalid, or a {env: VAR} not set) before anything starts."""
    from stat_pipeline.commands.serve import ServeError, check_source

    good = tmp_path / "pbx.yml"
    good.write_text(WAZO + FLAT)
    check_source({"STAT_SOURCES_FILE": str(good), "PARIS_URL": "postgresql+psycopg2://r@h/a"})
    with pytest.raises(ServeError, match=r"environment variables not set: paris\.url \(\$PARIS_URL\)"):
        check_source({"STAT_SOURCES_FILE": str(good)})
    bad = tmp_path / "bad.yml"
    bad.write_text(WAZO + WAZO)
    with pytest.raises(ServeError, match="bad.yml: .*paris"):
        check_source({"STAT_SOURCES_FILE": str(bad), "PARIS_URL": "x"})
    with pytest.raises(ServeError, match="no source: set STAT_SOURCES_FILE"):
        check_source({})
