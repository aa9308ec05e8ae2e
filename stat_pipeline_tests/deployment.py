"""What the offline deployment tests (test_deploy_*.py) share: where deploy/ is, and a
Dagster instance built from one of its dagster.yaml files.

Nothing here needs a Docker daemon or a Kubernetes cluster: the instance's storage is a real
PostgreSQL database (the session's embedded server), its run launcher the real class from
dagster-docker / dagster-k8s, configured by the file under test.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Optional

import yaml

PROJECT = Path(__file__).resolve().parents[1]
DEPLOY = PROJECT / "deploy"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def validated_instance_config(path: Path) -> dict:
    """The file's instance config, checked against Dagster's instance schema (the same check
    ``DagsterInstance.from_config`` makes): unknown or mistyped keys fail here."""
    from dagster._core.instance.config import dagster_instance_config

    config, _custom_class = dagster_instance_config(str(path.parent), path.name)
    return config


def instance_home(tmp_path: Path, config: dict, overrides: Optional[dict] = None) -> Path:
    """A DAGSTER_HOME holding ``config`` with ``overrides`` replacing whole top-level
    sections (the tests replace only what a machine without the deployment's servers
    cannot have, and say so)."""
    home = tmp_path / "dagster_home"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    merged = {**config, **(overrides or {})}
    (home / "dagster.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    return home
