"""An hour's result depends only on the warehouse rows, not on which run computed it: once
the rows are copied, hours can be classified in any order, any number of times, and give
the same tables as one run over the whole range."""
from __future__ import annotations

import csv
import datetime as dt
import gzip
import random
from collections import Counter
from pathlib import Path

from stat_pipeline_tests.harness import CallCentre

SAMPLE = Path(__file__).resolve().parents[1] / "stat_pipeline" / "sample" / "queue_log.csv.gz"
DOWNSTREAM = ["classified_calls", "stat_call_on_queue", "stat_queue_periodic"]


def _load_sample(centre: CallCentre) -> list[str]:
    with gzip.open(SAMPLE, "rt", newline="") as fh:
        rows = [[None if v == "\\N" else v for v in r] for r in csv.reader(fh)][1:]
    centre.log(*[(dt.datetime.fromisoformat(r[0]), *r[1:]) for r in rows])
    hours = sorted({dt.datetime.fromisoformat(r[0]).strftime("%Y-%m-%d-%H:00") for r in rows})
    return hours


def _snapshot(centre: CallCentre):
    return (Counter(centre.calls()), Counter(centre.periodic()),
            Counter(tuple(r) for r in centre.classified()))


def test_hour_order_does_not_matter(warehouse_url):
    centre = CallCentre(warehouse_url, until=dt.datetime(2024, 3, 5, 1, tzinfo=dt.timezone.utc),
                        day=dt.datetime(2024, 3, 4, tzinfo=dt.timezone.utc))
    hours = _load_sample(centre)
    assert len(hours) > 20
    centre.run(hours[0], hours[-1])
    one_run = _snapshot(centre)
    assert sum(one_run[0].values()) > 250

    rng = random.Random(20241123)
    for hour in rng.sample(hours, len(hours)):
        centre.run(hour, assets=["queue_log"])
    order = rng.sample(hours, len(hours)) + rng.sample(hours, 5)  # shuffled, some twice
    for hour in order:
        centre.run(hour, assets=DOWNSTREAM)
    assert _snapshot(centre) == one_run
    centre.close()
