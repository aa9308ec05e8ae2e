"""deploy/helm/values.yaml uses only keys of Dagster's chart (the vendored key list
deploy/helm/chart_keys.txt names each with the chart file that documents it), and says the
same as deploy/helm/dagster.yaml, the instance the chart renders from it."""
from __future__ import annotations

import re
from typing import Iterator

import pytest

from stat_pipeline_tests.deployment import DEPLOY, load_yaml

HELM = DEPLOY / "helm"


def chart_keys() -> dict[str, tuple[str, bool]]:
    """key -> (documentation source, free-form map below it)"""
    keys = {}
    for line in (HELM / "chart_keys.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, source = line.split(None, 1)
        is_map = source.rstrip().endswith("  map")
        keys[key] = (source.removesuffix("  map").strip() if is_map else source.strip(), is_map)
        if key.endswith("[]"):  # `a[]` documents the list `a` and its items
            keys.setdefault(key[:-2], (keys[key][0], False))
    return keys


def value_keys(node, prefix: str, keys: dict) -> Iterator[str]:
    """Every key path of ``node``, lists' items as ``key[]``, not below a free-form map."""
    if isinstance(node, dict):
        for name, child in node.items():
            path = f"{prefix}.{name}" if prefix else name
            yield path
            if not keys.get(path, ("", False))[1]:
                yield from value_keys(child, path, keys)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, (dict, list)):
                yield f"{prefix}[]"
                yield from value_keys(item, f"{prefix}[]", keys)


def test_key_list_names_chart_version_and_sources():
    header = (HELM / "chart_keys.txt").read_text()
    assert "version 1.13.27" in header
    assert "https://github.com/dagster-io/dagster/blob/1.13.27/helm/dagster/values.yaml" in header
    assert "values.schema.json" in header
    import dagster

    assert dagster.__version__ == "1.13.27", "the chart version must follow Dagster's"
    for key, (source, _map) in chart_keys().items():
        assert re.match(r"(dagster|dagster_user_deployments|utils)/", source), (key, source)


def test_values_use_only_chart_keys():
    keys = chart_keys()
    used = set(value_keys(load_yaml(HELM / "values.yaml"), "", keys))
    unknown = sorted(used - set(keys))
    assert not unknown, f"not keys of the chart's values: {unknown}"
    # the check can fail: a misspelt key (envSecret) is refused
    misspelt = load_yaml(HELM / "values.yaml")
    k8s = misspelt["runLauncher"]["config"]["k8sRunLauncher"]
    k8s["envSecret"] = k8s.pop("envSecrets")
    assert set(value_keys(misspelt, "", keys)) - set(keys) == {
        "runLauncher.config.k8sRunLauncher.envSecret",
        "runLauncher.config.k8sRunLauncher.envSecret[]",
        "runLauncher.config.k8sRunLauncher.envSecret[].name"}


def test_values_and_rendered_instance_agree():
    values = load_yaml(HELM / "values.yaml")
    instance = load_yaml(HELM / "dagster.yaml")
    launcher_values = values["runLauncher"]["config"]["k8sRunLauncher"]
    launcher = instance["run_launcher"]["config"]
    assert values["runLauncher"]["type"] == instance["run_launcher"]["class"] == "K8sRunLauncher"
    assert [s["name"] for s in launcher_values["envSecrets"]] == launcher["env_secrets"]
    assert launcher_values["envVars"] == launcher["env_vars"]
    assert launcher_values["resources"] == launcher["resources"]
    assert launcher_values["labels"] == launcher["labels"]
    job_spec = launcher_values["runK8sConfig"]["jobSpecConfig"]
    assert job_spec == {"backoffLimit": 0, "ttlSecondsAfterFinished": 86400}
    assert launcher["run_k8s_config"]["job_spec_config"] == {"backoff_limit": 0,
                                                             "ttl_seconds_after_finished": 86400}
    assert values["global"]["serviceAccountName"] == launcher["service_account_name"]
    pools = values["concurrency"]["pools"]
    assert pools == {"granularity": instance["concurrency"]["pools"]["granularity"],
                     "defaultLimit": instance["concurrency"]["pools"]["default_limit"]}
    assert values["concurrency"]["runs"]["maxConcurrentRuns"] == \
        instance["concurrency"]["runs"]["max_concurrent_runs"]
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    assert monitoring["startTimeoutSeconds"] == instance["run_monitoring"]["start_timeout_seconds"]
    pg = values["postgresql"]
    db = instance["storage"]["postgres"]["postgres_db"]
    assert (pg["postgresqlHost"], pg["postgresqlUsername"], pg["postgresqlDatabase"]) == \
        (db["hostname"], db["username"], db["db_name"])
    assert db["password"] == {"env": "DAGSTER_PG_PASSWORD"} and pg["postgresqlPassword"] == ""
    assert values["generatePostgresqlPasswordSecret"] is False and not pg["enabled"]


def test_pools_and_switches_are_the_projects():
    values = load_yaml(HELM / "values.yaml")
    ours = load_yaml(DEPLOY.parent / "dagster.yaml")
    assert values["concurrency"]["pools"]["defaultLimit"] == ours["concurrency"]["pools"]["default_limit"]
    from stat_pipeline.instance import LIVE_SWITCHES

    for component in (values["dagsterWebserver"], values["dagsterDaemon"],
                      values["dagster-user-deployments"]["deployments"][0]):
        assert component["env"] == LIVE_SWITCHES
        assert component["envSecrets"] == [{"name": "stat-pipeline-env"}]
        assert "requests" in component["resources"]


def test_code_server_arguments_are_the_images():
    (deployment,) = load_yaml(HELM / "values.yaml")["dagster-user-deployments"]["deployments"]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "stat_pipeline.definitions"]
    assert '"--module-name", "stat_pipeline.definitions"' in dockerfile
    assert f'"--port", "{deployment["port"]}"' in dockerfile


@pytest.mark.parametrize("path", ["values.yaml", "dagster.yaml"])
def test_no_secret_value_in_helm_files(path):
    text = (HELM / path).read_text()
    assert not re.search(r"(?i)(password|token)\s*:\s*['\"]?[A-Za-z0-9]{4,}", text)
