"""The warehouse on every supported PostgreSQL (13 to 18): here the embedded 18 and Debian's
15 (conftest.py ``versioned_warehouse_url``; the golden parity tests run on both too).

The migrations apply on each, the helper functions every rule reads the log with mean the
same on each (checked against independent oracles: Python's reading of a decimal integer,
and PostgreSQL's own cast tried row by row), and a server older than 13 is refused in one
line naming the minimum.
"""
from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from stat_pipeline.warehouse.migrate import (MINIMUM_MAJOR_VERSION, UnsupportedServer,
                                             check_server_version, migrate, migration_files)

INT_MIN, INT_MAX = -2**31, 2**31 - 1

# Text fields of queue_log as they come: clean numbers, blanks, signs, junk, and forms that
# PostgreSQL 16's integer input reads but 13-15's does not (hex, underscores).
INTEGER_FIELDS = ["0", "42", " 42 ", "\t7\n", "+5", "-5", "007", "-0", "", " ", "abc", "12abc",
                  "4.5", "1e3", "0x1F", "0o17", "0b101", "1_000", "--1", "+", "2147483647",
                  "2147483648", "-2147483648", "-2147483649", "00000000000000000000042",
                  "99999999999999999999999", "١٢"]

# Times as sources write them, and text that is no time, or no time PostgreSQL can read.
TIME_FIELDS = ["2024-03-04T10:11:12.738938+00:00", "2024-03-04 10:11:12", "2024-03-04 10:11:12+01",
               "2024-02-29 23:59:59", "2023-02-29 10:00:00", "2024-04-31 10:00:00",
               "2024-13-01 10:00:00", "2024-03-04 24:00:01", "2024-03-04 10:61:00",
               " 2024-03-04 10:00:00", "2024-03-04", "03/04/2024 10:00", "20240304T101112",
               "2024-03-04 10:00:00 Europe/Paris", "2024-03-04 10:00:00 Nowhere/Atlantis",
               "2024-03-04 10:00:00+16:00", "now", "today", "epoch", "infinity", "", "  ",
               "NONE", "1709548800", "0000-01-01 00:00:00", "2024-03-04 10:00:00garbage"]


def _decimal_integer(field: str):
    """Independent reading: decimal digits with an optional sign and the blanks integer
    input skips, within 32 bits, else nothing."""
    found = re.fullmatch(r"[ \t\n\r\v\f]*([+-]?[0-9]+)[ \t\n\r\v\f]*", field, flags=re.ASCII)
    if not found:
        return None
    value = int(found.group(1))
    return value if INT_MIN <= value <= INT_MAX else None


@pytest.fixture
def engine(versioned_warehouse_url):
    engine = sa.create_engine(versioned_warehouse_url, poolclass=sa.NullPool,
                              connect_args={"options": "-c timezone=UTC"})
    yield engine
    engine.dispose()


def _major(conn) -> int:
    return int(conn.execute(sa.text("SELECT current_setting('server_version_num')")).scalar_one()) // 10000


def test_every_migration_applies_once(engine):
    assert migrate(engine) == [version for version, _ in migration_files()]
    assert migrate(engine) == []  # a second process on the migrated warehouse changes nothing
    with engine.connect() as conn:
        assert _major(conn) >= MINIMUM_MAJOR_VERSION
        recorded = conn.execute(sa.text("SELECT version FROM stat_pipeline_migrations")).scalars().all()
        # the functions the pipeline and the BI tools call exist, whatever the server
        functions = set(conn.execute(sa.text(
            "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace")).scalars())
    assert sorted(recorded) == [version for version, _ in migration_files()]
    assert {"ql_int", "is_event_time", "stat_queue_report"} <= functions


def test_integer_fields_read_as_decimal_on_every_version(engine):
    migrate(engine)
    with engine.connect() as conn:
        read = conn.execute(sa.text("SELECT f, ql_int(f) FROM unnest(CAST(:fields AS text[])) f"),
                            {"fields": INTEGER_FIELDS}).all()
        assert conn.execute(sa.text("SELECT ql_int(NULL)")).scalar_one() is None
    assert dict(read) == {field: _decimal_integer(field) for field in INTEGER_FIELDS}


def test_event_time_is_what_postgresql_parses(engine):
    """is_event_time(x) = x starts with a digit and PostgreSQL's own cast reads it; the cast
    is tried here, row by row in a savepoint, as the oracle."""
    migrate(engine)
    with engine.connect() as conn:
        oracle = {}
        for field in TIME_FIELDS:
            try:
                with conn.begin_nested():
                    conn.execute(sa.text("SELECT CAST(:f AS timestamptz)"), {"f": field})
                parses = True
            except sa.exc.DataError:
                parses = False
            oracle[field] = field.lstrip(" ")[:1].isdigit() and parses
        read = dict(conn.execute(sa.text("SELECT f, is_event_time(f) FROM unnest(CAST(:fields AS text[])) f"),
                                 {"fields": TIME_FIELDS}).all())
        assert conn.execute(sa.text("SELECT is_event_time(NULL)")).scalar_one() is None
    assert read == oracle
    # and the calendar is the calendar: the oracle itself is not vacuous
    assert oracle["2024-02-29 23:59:59"] and not oracle["2023-02-29 10:00:00"]
    assert not oracle["now"] and not oracle["2024-04-31 10:00:00"]


def test_event_time_check_runs_in_parallel_plans(engine):
    """A query that checks times may be planned in parallel: the check must not need what a
    parallel query refuses (PostgreSQL 13 to 15 refuse subtransactions, even in its leader)."""
    migrate(engine)
    with engine.connect() as conn:
        forced = "debug_parallel_query" if _major(conn) >= 16 else "force_parallel_mode"
        conn.execute(sa.text(f"SET {forced} = on"))
        n = conn.execute(sa.text(
            "SELECT count(*) FILTER (WHERE is_event_time(CASE WHEN mod(i, 2) = 0 THEN "
            "'2024-03-04 10:00:00' ELSE 'x' || i END)) FROM generate_series(1, 1000) i")).scalar_one()
    assert n == 500


# Instants at and around hour and day edges, at microsecond precision, before the Unix epoch,
# written in zones with half-hour offsets and across a DST change, and the infinities.
HOUR_EDGE_TIMES = ["2024-03-04 10:00:00+00", "2024-03-04 10:59:59.999999+00",
                   "2024-03-04 11:00:00.000001+00", "2024-03-04 23:59:59.999999+00",
                   "2024-03-31 02:30:00+05:30", "2024-03-31 01:59:59.999999 Europe/Paris",
                   "2024-10-27 02:30:00+02", "2024-10-27 02:30:00+01", "2024-02-29 23:30:00-09:30",
                   "1970-01-01 00:00:00+00", "1969-12-31 23:59:59.999999+00",
                   "1900-03-01 12:34:56.789+00", "4000-01-01 00:59:59.999999+00",
                   "infinity", "-infinity"]


def _utc_hour_forms() -> list[str]:
    """Migration 0023's CREATE FUNCTION statements, one per server version it chooses from."""
    sql = dict(migration_files())["0023_utc_hour"]
    forms = re.findall(r"CREATE FUNCTION utc_hour\(.*?\$\$.*?\$\$", sql, flags=re.S)
    assert len(forms) == 2  # date_bin from 14 on, date_trunc before
    return forms


def test_utc_hour_is_the_utc_hour_on_every_version(engine):
    """utc_hour (migration 0023), and each form the migration may create, gives the hour that
    date_trunc('hour', t, 'UTC') and Python give, and is inlined: no function call a row."""
    migrate(engine)
    with engine.connect() as conn:
        names = ["utc_hour"]
        for n, form in enumerate(_utc_hour_forms()):
            if "date_bin" in form and _major(conn) < 14:
                continue  # the form this server never gets
            conn.execute(sa.text(form.replace("utc_hour(", f"utc_hour_form{n}(", 1)))
            names.append(f"utc_hour_form{n}")
        for name in names:
            query = (f"SELECT t, {name}(t) AS hour, date_trunc('hour', t, 'UTC') AS truncated "
                     "FROM unnest(CAST(:times AS timestamptz[])) t")
            rows = conn.execute(sa.text(f"SELECT CAST(t AS text), CAST(hour AS text), "
                                        f"CAST(truncated AS text) FROM ({query}) x"),
                                {"times": HOUR_EDGE_TIMES}).all()
            finite = conn.execute(sa.text(f"SELECT t, hour FROM ({query}) x WHERE isfinite(t)"),
                                  {"times": HOUR_EDGE_TIMES}).all()
            plan = "\n".join(conn.execute(sa.text(f"EXPLAIN VERBOSE {query}"),
                                          {"times": HOUR_EDGE_TIMES}).scalars())
            assert len(rows) == len(HOUR_EDGE_TIMES), name
            assert [(t, h) for t, h, _ in rows] == [(t, truncated) for t, _, truncated in rows], name
            assert len(finite) == len(HOUR_EDGE_TIMES) - 2, name
            for t, hour in finite:
                assert hour == t.astimezone(dt.timezone.utc).replace(minute=0, second=0,
                                                                     microsecond=0), (name, t)
            assert name not in plan, f"{name} is not inlined:\n{plan}"
        conn.rollback()


def test_older_server_refused_in_one_line(engine):
    with engine.connect() as conn:
        check_server_version(conn)  # 15 and 18 are supported
        major = _major(conn)
        shown = conn.execute(sa.text("SHOW server_version")).scalar_one()
        with pytest.raises(UnsupportedServer) as refused:
            check_server_version(conn, minimum_major=major + 1)
    message = str(refused.value)
    assert "\n" not in message
    assert f"PostgreSQL {major + 1} or newer" in message and shown in message


def test_warehouse_migrated_before_0016_reads_integers_as_decimal(warehouse_url):
    """A warehouse created on PostgreSQL 16+ before this change has 0002's old ql_int
    (pg_input_is_valid, which reads '0x1F' as 31 there): 0016 replaces it."""
    engine = sa.create_engine(warehouse_url, poolclass=sa.NullPool)
    try:
        migrate(engine)
        with engine.begin() as conn:
            if _major(conn) < 16:
                pytest.skip("pg_input_is_valid exists from PostgreSQL 16 on")
            conn.execute(sa.text("""
                CREATE OR REPLACE FUNCTION ql_int(value text) RETURNS integer
                LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
                BEGIN
                    IF pg_input_is_valid(btrim(value), 'integer') THEN
                        RETURN btrim(value)::integer;
                    END IF;
                    RETURN NULL;
                END
                $$"""))
            assert conn.execute(sa.text("SELECT ql_int('0x1F')")).scalar_one() == 31
            conn.execute(sa.text("DELETE FROM stat_pipeline_migrations WHERE version LIKE '0016\\_%'"))
        assert [v for v in migrate(engine)] == [v for v, _ in migration_files() if v.startswith("0016_")]
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT ql_int('0x1F'), ql_int(' 31 ')")).one() == (None, 31)
    finally:
        engine.dispose()


def test_serve_refuses_an_older_warehouse_before_starting(versioned_warehouse_url):
    from stat_pipeline.commands.serve import ServeError, check_warehouse_server

    check_warehouse_server(versioned_warehouse_url)  # supported: nothing to say
    with pytest.raises(ServeError) as refused:
        check_warehouse_server(versioned_warehouse_url, minimum_major=99)
    assert str(refused.value).startswith("STAT_WAREHOUSE_URL: the warehouse's PostgreSQL is ")
    assert str(refused.value).endswith("needs PostgreSQL 99 or newer")
    with pytest.raises(ServeError, match="must be a PostgreSQL URL") as bad:
        check_warehouse_server("not a url:secret@host")
    assert "secret" not in str(bad.value)
