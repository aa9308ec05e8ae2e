"""Command line: ``stat-pipeline compute``, ``serve``, ``demo`` and ``api``."""
from __future__ import annotations

import argparse
import contextlib
import gc
import io
import sys
from collections.abc import Iterator
from pathlib import Path


def _quiet_dagster() -> None:
    # The command prints its own summary; Dagster's per-event DEBUG lines would drown it.
    import logging
    import warnings

    logging.getLogger("dagster").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        import dagster as dg

        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    except AttributeError:
        pass


@contextlib.contextmanager
def _imports_without_gc() -> Iterator[None]:
    """Python's cyclic garbage collector off while ``compute`` imports Dagster and the
    definitions: an import makes many long-lived objects and no garbage, and the collector
    ran over the growing heap ~15 % of the imports' time (~0.35 s). The objects made so far
    are then frozen (later collections skip them) and the collector is on again for the
    runs, whose memory stays bounded."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _database_failure(exc: BaseException) -> str | None:
    """The driver's first words if ``exc`` (or what caused it) is a lost database."""
    import psycopg2
    import sqlalchemy.exc

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None:
            exc = exc.orig
        if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) or \
                type(exc).__name__ == "DagsterPostgresException":
            return str(exc).strip().splitlines()[0]
        exc = exc.__cause__ or exc.__context__
    return None


def _compute(args: argparse.Namespace) -> int:
    import logging
    import os

    from stat_pipeline.commands.processes import terminate_as_interrupt

    # dagster-postgres logs every reconnection attempt to the root logger; the command ends
    # with one line saying what happened instead
    logging.getLogger().setLevel(logging.ERROR)
    terminate_as_interrupt()  # SIGTERM: stop PostgreSQL and remove the temp folder first
    if os.environ.get("STAT_TRACEBACK") == "1":
        return _compute_reporting(args, debug=True)
    # What the libraries print on their way down (psycopg2 prints an error raised inside
    # COPY's read callback itself) is held back: replayed on success, replaced by the
    # command's one line on failure.
    held, sys.stderr = sys.stderr, io.StringIO()
    try:
        code = _compute_reporting(args, debug=False, stderr=held)
        if code == 0:
            held.write(sys.stderr.getvalue())
        return code
    finally:
        sys.stderr = held


def _compute_reporting(args: argparse.Namespace, debug: bool, stderr=None) -> int:
    with _imports_without_gc():
        from stat_pipeline.commands.processes import Terminated
        from stat_pipeline.compute_server import compute_server

    def fail(message: str, code: int) -> int:
        print(f"stat-pipeline: {message}", file=stderr or sys.stderr)
        return code

    try:
        # The template is copied first (on the other core) while Dagster and the definitions
        # are imported (~1 s), and the server launched in between: compute() waits for it
        # only then.
        with compute_server() as server:
            with _imports_without_gc():
                _quiet_dagster()
                # the template's copy has usually finished by now: the server starts while
                # the definitions and Dagster's storage modules are imported (~0.3 s)
                server[1].launch_if_copied()
                from stat_pipeline.compute import compute, parse_instant

            until = parse_instant(args.until) if args.until else None
            result = compute(Path(args.queue_log), Path(args.out),
                             Path(args.config) if args.config else None, until,
                             keep_unknown_agents=args.keep_unknown_agents, fmt=args.format,
                             timezone=args.timezone, server=server)
    except KeyboardInterrupt as exc:
        return fail("stopped", 143 if isinstance(exc, Terminated) else 130)
    except Exception as exc:  # one line, not pages of Dagster and SQLAlchemy frames
        from stat_pipeline.instance import RunFailed
        from stat_pipeline.resources import ConfigError

        if isinstance(exc, (ConfigError, ValueError, FileNotFoundError)):
            if hasattr(exc, "errors"):  # pydantic: keep the one line a user needs
                exc = exc.errors()[0]["msg"].removeprefix("Value error, ")
            return fail(str(exc), 2)
        if isinstance(exc, RunFailed):  # the run's own log (and the warehouse) were in the temp dir
            return fail(_one_line(exc), 1)
        if debug:
            raise
        lost = _database_failure(exc)
        return fail((f"the computation's PostgreSQL stopped answering: {lost}" if lost
                     else f"{type(exc).__name__}: {_one_line(exc)}")
                    + " (STAT_TRACEBACK=1 shows the traceback)", 1)
    files = ", ".join(f"{name} ({n} rows)" for name, n in result.files.items())
    print(f"{result.hours} hours computed from {result.first_hour or '-'}; wrote {files} to {args.out}")
    print(result.conservation_line())
    if result.rejects:
        print("rows kept aside: " + ", ".join(f"{n} {d}" for d, n in result.rejects.items()))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from stat_pipeline.demo import run_demo

    return run_demo(Path(args.state_dir), port=args.port, ui=not args.no_ui,
                    api_port=args.api_port)


def _serve(args: argparse.Namespace) -> int:
    from stat_pipeline.commands.serve import ServeError, serve

    try:
        return serve(Path(args.state_dir), host=args.host, port=args.port)
    except ServeError as exc:
        print(f"stat-pipeline: {exc}", file=sys.stderr)
        return 2


def _api(args: argparse.Namespace) -> int:
    from stat_pipeline.commands.api import ApiConfigError, run_api

    try:
        return run_api(args.host, args.port)
    except ApiConfigError as exc:
        print(f"stat-pipeline: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stat-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("compute", help="statistics of a queue_log CSV file into CSV files")
    p.add_argument("queue_log", help="queue_log CSV (time,callid,queuename,agent,event,data1..data5), "
                                     "Asterisk queue_log file or MySQL dump, .gz allowed")
    p.add_argument("--config", help="confd.json with queues, agents, contexts")
    p.add_argument("--until", help="ISO instant with offset: only rows with time <= until exist")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", choices=("auto", "csv", "asterisk", "mysql"), default="auto",
                   help="csv: golden layout with header; asterisk: the flat file "
                        "epoch|callid|queue|agent|event|data... (a glob reads rotated files "
                        "in order); mysql: a mysqldump of a realtime queue_log table (INSERT "
                        "statements); auto (default): from the first lines")
    p.add_argument("--timezone", default="UTC",
                   help="IANA zone of CSV and dump times written without an offset, e.g. Europe/Paris "
                        "(default UTC); DST changes are handled")
    p.add_argument("--keep-unknown-agents", action="store_true",
                   help="keep the calls and times of agents the config does not know "
                        "(wazo-stat drops them)")
    p.set_defaults(func=_compute)
    d = sub.add_parser("demo", help="sample data -> embedded PostgreSQL -> Dagster UI and the "
                       "supervisor dashboard on 127.0.0.1")
    d.add_argument("--state-dir", default=".state", help="where the embedded PostgreSQL and "
                   "DAGSTER_HOME live (default: ./.state)")
    d.add_argument("--port", type=int, default=3000)
    d.add_argument("--api-port", type=int, default=9298,
                   help="port of the statistics API and supervisor dashboard (default 9298, "
                        "wazo-call-logd's)")
    d.add_argument("--no-ui", action="store_true", help="materialize the sample and stop")
    d.set_defaults(func=_demo)
    s = sub.add_parser("serve", help="Dagster webserver + daemon on your source, the instance "
                       "in PostgreSQL (embedded in --state-dir unless STAT_WAREHOUSE_URL / "
                       "STAT_DAGSTER_PG_URL are set)")
    s.add_argument("--state-dir", default=".state", help="embedded PostgreSQL and "
                   "DAGSTER_HOME (default: ./.state)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=3000)
    s.set_defaults(func=_serve)
    a = sub.add_parser("api", help="the statistics API (wazo-call-logd's statistics routes) on "
                       "the warehouse named by STAT_WAREHOUSE_URL; token from STAT_API_TOKEN "
                       "(else generated and printed once) or wazo-auth (STAT_API_WAZO_AUTH_URL)")
    a.add_argument("--host", default="127.0.0.1")
    a.add_argument("--port", type=int, default=9298, help="default 9298, call-logd's port")
    a.set_defaults(func=_api)
    args = parser.parse_args(argv)
    if args.func is not _compute:  # compute imports Dagster once its server is launched
        _quiet_dagster()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
