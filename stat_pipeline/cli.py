"""Command line: ``stat-pipeline compute`` and ``stat-pipeline demo``."""
from __future__ import annotations

import argparse
import sys
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


def _compute(args: argparse.Namespace) -> int:
    from stat_pipeline.compute import compute, parse_instant
    from stat_pipeline.instance import RunFailed
    from stat_pipeline.resources import ConfigError

    try:
        until = parse_instant(args.until) if args.until else None
        result = compute(Path(args.queue_log), Path(args.out),
                         Path(args.config) if args.config else None, until,
                         keep_unknown_agents=args.keep_unknown_agents, fmt=args.format,
                         timezone=args.timezone)
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        if hasattr(exc, "errors"):  # pydantic: keep the one line a user needs
            exc = exc.errors()[0]["msg"].removeprefix("Value error, ")
        print(f"stat-pipeline: {exc}", file=sys.stderr)
        return 2
    except RunFailed as exc:  # the run's own log (and the warehouse) were in the temp dir
        print(f"stat-pipeline: {exc}", file=sys.stderr)
        return 1
    files = ", ".join(f"{name} ({n} rows)" for name, n in result.files.items())
    print(f"{result.hours} hours computed from {result.first_hour or '-'}; wrote {files} to {args.out}")
    print(result.conservation_line())
    if result.rejects:
        print("rows kept aside: " + ", ".join(f"{n} {d}" for d, n in result.rejects.items()))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from stat_pipeline.demo import run_demo

    return run_demo(Path(args.state_dir), port=args.port, ui=not args.no_ui)


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
    d = sub.add_parser("demo", help="sample data -> embedded PostgreSQL -> Dagster UI on 127.0.0.1")
    d.add_argument("--state-dir", default=".state", help="where the embedded PostgreSQL and "
                   "DAGSTER_HOME live (default: ./.state)")
    d.add_argument("--port", type=int, default=3000)
    d.add_argument("--no-ui", action="store_true", help="materialize the sample and stop")
    d.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    _quiet_dagster()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
