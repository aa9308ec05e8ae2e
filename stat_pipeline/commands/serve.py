"""``stat-pipeline serve``: the Dagster webserver and daemon on the pipeline's definitions,
with the Dagster instance in PostgreSQL, set up the way it is fast.

Where the databases are:
  STAT_WAREHOUSE_URL     the warehouse (our statistics), if set;
  STAT_DAGSTER_PG_URL    Dagster's instance (runs, events, sensor cursors), if set;
  otherwise an embedded PostgreSQL in ``<state-dir>/pg`` holds a ``stat`` and a ``dagster``
  database, started and stopped by this command (and stopped by the kernel if it is killed).
The source (STAT_SOURCE_URL / STAT_SOURCE_FILE …) is read by the definitions, as always.

Every Dagster process gets the instance settings of ``stat_pipeline.instance.LIVE_SWITCHES``
through its environment: ``dagster dev`` passes it to its webserver, daemon and code server,
and the code server to the run workers it spawns. URLs (secrets) travel in the environment
only: the instance's ``dagster.yaml`` names the variable, not the value, and nothing here
prints them.
"""
from __future__ import annotations

import os
import shutil
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from stat_pipeline.commands.processes import ProcessGroup, terminate_as_interrupt
from stat_pipeline.instance import INSTANCE_URL_VARIABLE, LIVE_SWITCHES
from stat_pipeline.warehouse.embedded import EmbeddedPostgres

PROJECT = Path(__file__).resolve().parents[2]
WAREHOUSE_URL_VARIABLE = "STAT_WAREHOUSE_URL"
API_TOKEN_VARIABLE = "STAT_API_TOKEN"


@dataclass(frozen=True)
class StatisticsApi:
    """``stat-pipeline api`` run beside the Dagster UI: its port and the token it accepts."""
    port: int
    token: str
    generated: bool  # ours, shown once; an operator's own token (a secret) is never printed


class ServeError(RuntimeError):
    """A configuration problem, told in one line."""


def psycopg2_url(url: str) -> str:
    """SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which we do not ship."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgres"):
        raise ServeError(f"{INSTANCE_URL_VARIABLE} must be a PostgreSQL URL "
                         "(postgresql+psycopg2://user@host/dagster)")
    return url if scheme == "postgresql+psycopg2" else "postgresql+psycopg2://" + rest


def prepare_home(home: Path) -> None:
    """``DAGSTER_HOME`` with the deployment's ``dagster.yaml`` (the instance in PostgreSQL,
    from ``$STAT_DAGSTER_PG_URL``)."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT / "dagster.yaml", home / "dagster.yaml")
    # The UI's first-visit newsletter dialog would cover the page; this is its "Skip".
    (home / ".nux").mkdir(exist_ok=True)
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n")


def check_source(env: dict[str, str]) -> None:
    """A source is configured, and a sources file is valid with every ``{env: VAR}`` it
    names set: said in one line before anything starts, not as a failing code location."""
    if env.get("STAT_SOURCES_FILE"):
        from stat_pipeline.sources.config import SourcesFileError, missing_env, read_sources_file

        try:
            specs = read_sources_file(env["STAT_SOURCES_FILE"])
        except SourcesFileError as exc:
            raise ServeError(str(exc)) from None
        missing = missing_env(specs, env)
        if missing:
            raise ServeError(f"{env['STAT_SOURCES_FILE']}: environment variables not set: "
                             f"{', '.join(missing)}")
        return
    if not any(env.get(v) for v in ("STAT_SOURCE_URL", "STAT_SOURCE_FILE", "STAT_SOURCE_CSV")):
        raise ServeError("no source: set STAT_SOURCES_FILE (several PBXs), STAT_SOURCE_URL "
                         "(Wazo's asterisk database, read-only account) or STAT_SOURCE_FILE "
                         "(a queue_log file)")


def check_warehouse_server(url: str, minimum_major: Optional[int] = None) -> None:
    """Refuse, before anything starts, a warehouse on a PostgreSQL older than we support
    (one line naming the minimum). A warehouse that cannot be reached now is left to the
    runs, which fail and are redone, as before."""
    import sqlalchemy as sa

    from stat_pipeline.warehouse.migrate import (MINIMUM_MAJOR_VERSION, UnsupportedServer,
                                                 check_server_version)

    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):  # bare: psycopg 3 for SQLAlchemy 2.1, not shipped
        url = "postgresql+psycopg2://" + rest
    try:
        engine = sa.create_engine(url, poolclass=sa.NullPool, connect_args={"connect_timeout": 10})
    except sa.exc.ArgumentError:  # the URL is not repeated: it may hold a password
        raise ServeError(f"{WAREHOUSE_URL_VARIABLE} must be a PostgreSQL URL "
                         "(postgresql+psycopg2://user@host/stat)") from None
    try:
        with engine.connect() as conn:
            check_server_version(conn, minimum_major or MINIMUM_MAJOR_VERSION)
    except UnsupportedServer as exc:
        raise ServeError(f"{WAREHOUSE_URL_VARIABLE}: {exc}") from None
    except sa.exc.DBAPIError:
        pass
    finally:
        engine.dispose()


def open_instance_storage(home: Path, owned: bool) -> None:
    """Create (or check) the instance's tables once, before several processes race to."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        if owned:
            fail_orphaned_runs(instance)


def fail_orphaned_runs(instance) -> int:
    """Runs left "started" by a deployment that was killed with its run workers.

    Only for the instance this command owns (embedded): no run worker of it can be alive
    now, and a run that stays "started" forever hides its hours from the sensor's healing.
    """
    import dagster as dg

    stuck = instance.get_runs(filters=dg.RunsFilter(statuses=[
        dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
        dg.DagsterRunStatus.CANCELING]))
    for run in stuck:
        instance.report_run_failed(run, "the deployment stopped while this run was going "
                                        "(stat-pipeline serve was killed)")
    return len(stuck)


def serve(state_dir: Path, host: str = "127.0.0.1", port: int = 3000,
          pg: Optional[EmbeddedPostgres] = None, log=None,
          api: Optional[StatisticsApi] = None) -> int:
    """Run webserver + daemon until Ctrl-C / SIGTERM; ``pg``: an embedded server already
    started by the caller (the demo) to use instead of starting one; ``api``: also run
    ``stat-pipeline api`` (statistics API + dashboard) on the same warehouse."""
    state_dir = state_dir.resolve()
    home = state_dir / "dagster_home"
    env = dict(os.environ)
    check_source(env)
    if env.get(WAREHOUSE_URL_VARIABLE):
        check_warehouse_server(env[WAREHOUSE_URL_VARIABLE])
    terminate_as_interrupt()
    with ExitStack() as stack:
        owned_instance = not env.get(INSTANCE_URL_VARIABLE)
        if owned_instance or not env.get(WAREHOUSE_URL_VARIABLE):
            if pg is None:
                pg = stack.enter_context(EmbeddedPostgres(state_dir / "pg"))
            if not env.get(WAREHOUSE_URL_VARIABLE):
                pg.create_database("stat")
                env[WAREHOUSE_URL_VARIABLE] = pg.url("stat")
            if owned_instance:
                pg.create_database("dagster")
                env[INSTANCE_URL_VARIABLE] = pg.url("dagster")
        env[INSTANCE_URL_VARIABLE] = psycopg2_url(env[INSTANCE_URL_VARIABLE])
        env["DAGSTER_HOME"] = str(home)
        for name, value in LIVE_SWITCHES.items():  # an operator's own choice wins
            env.setdefault(name, value)
        prepare_home(home)
        saved = dict(os.environ)
        os.environ.update(env)  # the instance opened here reads the URL from the environment
        try:
            open_instance_storage(home, owned=owned_instance)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        print(f"serve: Dagster UI on http://{host}:{port} (instance: PostgreSQL "
              f"{'in ' + str(state_dir / 'pg') if owned_instance else 'from $' + INSTANCE_URL_VARIABLE}"
              "); Ctrl-C stops it", flush=True)
        group = ProcessGroup(
            [sys.executable, "-m", "dagster", "dev", "-h", host, "-p", str(port),
             "-m", "stat_pipeline.definitions"],
            env=env, cwd=home, stdout=log, stderr=log)
        stack.callback(group.stop)
        if api is not None:
            # Its own process group, stopped (and watched) like Dagster's; the token travels
            # in its environment only.
            api_group = ProcessGroup(
                [sys.executable, "-m", "stat_pipeline.cli", "api", "--host", host,
                 "--port", str(api.port)],
                env={**env, API_TOKEN_VARIABLE: api.token}, cwd=home, stdout=log, stderr=log,
                grace_s=5.0)
            stack.callback(api_group.stop)
            print(f"serve: statistics API and supervisor dashboard on http://{host}:{api.port}/ "
                  f"(token: {api.token if api.generated else '$' + API_TOKEN_VARIABLE})",
                  flush=True)
        try:
            return group.wait()
        except KeyboardInterrupt:
            return 0
