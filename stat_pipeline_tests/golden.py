"""Access to the golden sets of ../shared/golden and to the acceptance comparison tool."""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

SHARED = Path(os.environ.get("STAT_SHARED_DIR",
                             Path(__file__).resolve().parents[1].parent / "shared"))
GOLDEN = SHARED / "golden"


def compare_module():
    """../shared/tools/compare_outputs.py, the comparison acceptance uses (instants,
    decimals, multisets): we use its own parsing so our notion of 'equal' is its notion."""
    spec = importlib.util.spec_from_file_location("compare_outputs",
                                                  SHARED / "tools" / "compare_outputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class GoldenSet:
    name: str
    path: Path

    @property
    def queue_log(self) -> Path:
        plain = self.path / "queue_log.csv"
        return plain if plain.exists() else self.path / "queue_log.csv.gz"

    @property
    def confd(self) -> Path:
        return self.path / "confd.json"

    @property
    def until(self) -> dt.datetime:
        runs = json.loads((self.path / "runs.json").read_text())
        return dt.datetime.fromisoformat(runs[-1]["end"])

    @property
    def window_start(self) -> Optional[dt.datetime]:
        """The explicit --start of the reference's first run (None: automatic start, which
        is 8 h before the first row, so every hour with rows is in its window)."""
        start = json.loads((self.path / "runs.json").read_text())[0]["start"]
        return dt.datetime.fromisoformat(start) if start else None

    @property
    def expected_dir(self) -> Path:
        single = self.path / "expected" / "single"
        if single.is_dir():
            return single
        runs = sorted((p for p in (self.path / "expected").iterdir() if p.name.startswith("run")),
                      key=lambda p: int(p.name[3:]))
        return runs[-1]

    @property
    def reference_error(self) -> Optional[str]:
        error = self.expected_dir / "error.txt"
        return error.read_text().strip() if error.exists() else None


def golden_sets() -> list[GoldenSet]:
    if not GOLDEN.is_dir():
        return []
    return [GoldenSet(p.name, p) for p in sorted(GOLDEN.iterdir()) if (p / "runs.json").exists()]
