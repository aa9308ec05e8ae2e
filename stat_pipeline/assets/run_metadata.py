"""Materialization metadata: every hour shows its own figures, even in a range run.

Dagster writes one materialization per hour of a run; a step's ``MaterializeResult``
metadata goes on every one of them, so a range run's totals would pose as each hour's
(``calls_total 294`` on an hour of 28 calls, flat partition plots). Instead:

- each hour's figures are attached to that hour only, as partition-scoped metadata
  (``context.add_asset_metadata(..., partition_key=key)``): the UI plots them per partition;
- the figures are computed set-based, one ``GROUP BY GROUPING SETS ((hour, ...), (...))``
  scan per figure for the whole range, which also yields the range's totals;
- the range's totals belong to the run, not to an hour: a range run logs ONE partition-less
  ``AssetObservation`` per asset, ``run_``-prefixed (``run_calls_total``, ``run_hours``,
  ``run_partition_range``), shown in the run's log and the asset's event list. It is one
  event per asset and run (a summary asset would be a node in the graph and a step per run;
  run tags are strings fixed at launch; step output metadata is copied onto every hour).
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Callable, Iterable, Iterator, Mapping, Optional, Sequence

import dagster as dg
from dagster._core.execution.context.metadata_logging import (AssetMetadataHandle,
                                                              OutputMetadataAccumulator)
from sqlalchemy import Connection

from stat_pipeline.assets.policies import WAREHOUSE_POOL  # noqa: F401  (re-exported)

HOUR = dt.timedelta(hours=1)
WHOLE_RANGE = None  # the key of the range's totals in ``by_hour``'s result

# Figures of one hour (``hour``) or of the whole range (``WHOLE_RANGE``).
HourFigures = Callable[[Optional[dt.datetime]], dict]
# (conn, start, end) -> HourFigures, from one set-based scan per figure over [start, end)
RangeFigures = Callable[[Connection, dt.datetime, dt.datetime], HourFigures]


def by_hour(rows: Iterable) -> Mapping[Optional[dt.datetime], list]:
    """Rows of a ``GROUPING SETS`` query (columns ``hour`` and ``whole_range``) by hour; the
    range's rows under ``WHOLE_RANGE``. An hour without rows maps to []."""
    grouped: dict[Optional[dt.datetime], list] = defaultdict(list)
    for row in rows:
        grouped[WHOLE_RANGE if row.whole_range else row.hour].append(row)
    return grouped


def report(context: dg.AssetExecutionContext, conn: Connection, figures: RangeFigures,
           run_figures: Optional[dict] = None) -> None:
    """Attach to every hour of the run its own figures and, for a range run, log the range's
    totals (plus ``run_figures``, facts of the run that belong to no single hour) once.
    For a one-hour run the run's facts are that hour's and go on it."""
    keys = context.partition_keys
    start, end = context.partition_time_window
    of = figures(conn, start, end)
    per_hour = {key: of(start + i * HOUR) for i, key in enumerate(keys)}
    if len(keys) == 1:
        per_hour[keys[0]].update(run_figures or {})
    add_hourly_metadata(context, per_hour)
    if len(keys) > 1:
        context.log_event(dg.AssetObservation(
            asset_key=context.asset_key,
            description=f"Totals of the run's {len(keys)} hours (each hour's own figures are "
                        "on its materialization)",
            metadata=run_totals(keys, {**of(WHOLE_RANGE), **(run_figures or {})})))


def run_totals(keys: Sequence[str], metadata: dict) -> dict:
    """The range's figures under ``run_`` names, so they never read as an hour's."""
    out = {("run_rows" if k == "dagster/row_count" else "run_" + k): v for k, v in metadata.items()}
    out["run_hours"] = len(keys)
    out["run_partition_range"] = f"{keys[0]} … {keys[-1]}"
    return out


def add_hourly_metadata(context: dg.AssetExecutionContext,
                        metadata_by_key: Mapping[str, Mapping]) -> None:
    """``context.add_asset_metadata(m, partition_key=k)`` for every (k, m), in one step.

    The public call re-validates everything recorded so far and lists the run's partition
    keys on every call: O(hours) each, O(hours²) for a range (1.7-3.4 s for 727 hours,
    minutes for a year). So the same entries go into the same accumulator in one update.
    Should that structure change (Dagster is pinned), the public call takes over, with a
    warning in the run's log that it is the slow path."""
    step = context.get_step_execution_context()
    accumulator = getattr(step, "_metadata_accumulator", None)
    if not isinstance(accumulator, OutputMetadataAccumulator):
        context.log.warning("per-hour metadata: slow path (Dagster's metadata accumulator "
                            "changed), one add_asset_metadata call per hour")
        for key, metadata in metadata_by_key.items():
            context.add_asset_metadata(metadata, partition_key=key)
        return
    targeted = set(context.partition_keys)  # what add_asset_metadata checks, once
    entries = dict(accumulator.per_output_metadata)
    for key, metadata in metadata_by_key.items():
        if key not in targeted:
            raise dg.DagsterInvariantViolationError(
                f"metadata for partition {key!r}, which the run does not target")
        handle = AssetMetadataHandle(asset_key=context.asset_key, partition_key=key)
        entries[handle] = {**entries.get(handle, {}), **metadata}
    step._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata=entries)


def check_outcomes(context: dg.AssetExecutionContext,
                   results: Iterable[dg.AssetCheckResult]) -> Iterator:
    """The check results to yield, whether or not the run selected the checks.

    Range runs of our jobs leave the checks out of their selection (definitions.py): Dagster
    1.13 writes, when it creates a run, one PLANNED ``asset_check_executions`` row per hour
    and check, and resolves only the one partition-less result, so every range run left
    hours x checks rows planned forever (and paid for writing them). A check the run did
    not select is still evaluated and recorded: as the evaluation event Dagster itself
    would make of the result, without its "not selected, letting it through" warning."""
    selected = context.selected_asset_check_keys
    step = context.get_step_execution_context()
    for result in results:
        key = dg.AssetCheckKey(context.asset_key, result.check_name)
        yield result if key in selected else result.to_asset_check_evaluation(step)


def merge_checks(per_source: Sequence[tuple[str, Sequence[dg.AssetCheckResult]]]
                 ) -> list[dg.AssetCheckResult]:
    """One result per check for a run of several sources (each source's statements checked
    in its own scope): passed when every source's passed, the figures under
    ``<source>/<figure>``. One source: its results as they are."""
    if len(per_source) == 1:
        return list(per_source[0][1])
    merged: dict[str, dg.AssetCheckResult] = {}
    for name, results in per_source:
        for result in results:
            metadata = {f"{name}/{k}": v for k, v in (result.metadata or {}).items()}
            previous = merged.get(result.check_name)
            if previous is None:
                merged[result.check_name] = dg.AssetCheckResult(
                    check_name=result.check_name, passed=result.passed,
                    severity=result.severity, metadata=metadata)
            else:
                merged[result.check_name] = dg.AssetCheckResult(
                    check_name=result.check_name, passed=previous.passed and result.passed,
                    severity=previous.severity, metadata={**previous.metadata, **metadata})
    return list(merged.values())
