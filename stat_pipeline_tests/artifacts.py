"""Files a test keeps for people to look at (screenshots), listed at the end of the run.

They are written under the test's ``tmp_path`` (the pytest basetemp) and copied to
``$STAT_TEST_ARTIFACTS`` (default: ``<system temp>/stat_pipeline_test_artifacts``), which
pytest does not clean between sessions.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

KEPT: list[Path] = []


def artifact_dir() -> Path:
    return Path(os.environ.get("STAT_TEST_ARTIFACTS")
                or Path(tempfile.gettempdir()) / "stat_pipeline_test_artifacts")


def keep_artifact(path: Path) -> Path:
    target_dir = artifact_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / path.name
    shutil.copyfile(path, target)
    KEPT.append(target)
    return target
