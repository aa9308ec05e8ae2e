"""The Kubernetes deployment (deploy/helm/), checked without a cluster.

deploy/helm/dagster.yaml (the instance the chart renders from our values) loads as a Dagster
instance whose run launcher is the real K8sRunLauncher; launching a run with it against a
stubbed Kubernetes BatchV1Api (the only stub: it records the Job instead of sending it)
yields a Job manifest that kubernetes-validate accepts in strict mode (no unknown field) for
a current Kubernetes version.

Replaced for the test, because this machine is not a pod: the in-cluster credentials (a
kubeconfig file naming an unreachable server instead: the client reads it, never calls it),
and the instance database's host (the session's embedded PostgreSQL instead of the managed
one the file names).
"""
from __future__ import annotations

import copy

import pytest

from stat_pipeline_tests.deployment import DEPLOY, instance_home, load_yaml, validated_instance_config

HELM = DEPLOY / "helm"
IMAGE = "registry.example.com/stat-pipeline:0.1.0"
# What the chart sets in every pod (names of objects, not secrets)
CHART_ENV = {
    "DAGSTER_HOME": "/opt/dagster/dagster_home",
    "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "stat-dagster-instance",
    "DAGSTER_K8S_PG_PASSWORD_SECRET": "stat-dagster-postgresql",
    "DAGSTER_K8S_PIPELINE_RUN_NAMESPACE": "stat",
    "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP": "stat-dagster-pipeline-env",
    "DAGSTER_PG_PASSWORD": "dummy-password",
}
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: offline
  cluster: {server: "https://127.0.0.1:9"}
users:
- name: offline
  user: {token: dummy}
contexts:
- name: offline
  context: {cluster: offline, user: offline}
current-context: offline
"""


class RecordingBatchApi:
    """Stands for kubernetes.client.BatchV1Api: keeps the Jobs it is asked to create."""

    def __init__(self):
        self.created: list[tuple[str, object]] = []

    def create_namespaced_job(self, namespace, body, **_kwargs):
        self.created.append((namespace, body))
        return body


@pytest.fixture
def k8s_instance(tmp_path, monkeypatch, dagster_pg_url):
    import dagster as dg

    for name, value in CHART_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("STAT_DAGSTER_PG_URL", dagster_pg_url)
    config = validated_instance_config(HELM / "dagster.yaml")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    launcher = copy.deepcopy(config["run_launcher"])
    launcher["config"].update(load_incluster_config=False, kubeconfig_file=str(kubeconfig))
    home = instance_home(tmp_path, config, {
        "run_launcher": launcher,
        "storage": {"postgres": {"postgres_url": {"env": "STAT_DAGSTER_PG_URL"}}},
    })
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def _launch(instance) -> tuple[str, dict]:
    import kubernetes
    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.launcher import LaunchRunContext
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster._core.test_utils import create_run_for_test

    from stat_pipeline.definitions import HOURLY_JOB

    origin = JobPythonOrigin(
        job_name=HOURLY_JOB,
        repository_origin=RepositoryPythonOrigin(
            executable_path="/usr/local/bin/python",
            code_pointer=ModuleCodePointer("stat_pipeline.definitions", "defs", None),
            container_image=IMAGE))
    run = create_run_for_test(instance, job_name=HOURLY_JOB, job_code_origin=origin,
                              tags={"dagster/partition": "2026-12-01-10:00"})
    launcher = instance.run_launcher
    stub = RecordingBatchApi()
    launcher._api_client.batch_api = stub  # the only stub: no cluster here
    launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    assert len(stub.created) == 1
    namespace, job = stub.created[0]
    return namespace, kubernetes.client.ApiClient().sanitize_for_serialization(job)


def test_instance_loads_with_k8s_run_launcher(k8s_instance):
    from dagster_k8s import K8sRunLauncher

    launcher = k8s_instance.run_launcher
    assert isinstance(launcher, K8sRunLauncher)
    assert launcher.job_namespace == "stat"
    assert launcher.env_secrets == ["stat-pipeline-env"]
    assert launcher.instance_config_map == "stat-dagster-instance"
    assert k8s_instance.get_concurrency_config().pool_config.default_pool_limit == 1


def test_launched_job_is_a_valid_kubernetes_job(k8s_instance):
    import kubernetes_validate

    namespace, manifest = _launch(k8s_instance)
    assert namespace == "stat"
    assert manifest["kind"] == "Job" and manifest["apiVersion"] == "batch/v1"
    version = kubernetes_validate.latest_version()
    assert tuple(int(p) for p in version.split(".")[:2]) >= (1, 33)
    kubernetes_validate.validate(manifest, version, strict=True)

    # strict mode is what refuses a misspelt field: the check can fail
    broken = copy.deepcopy(manifest)
    broken["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_launched_job_runs_our_image_with_our_settings(k8s_instance):
    _namespace, manifest = _launch(k8s_instance)
    spec = manifest["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    # one process runs the whole run (in-process executor): `dagster api execute_run`
    # (the image's interpreter: python:3.11-slim has it at /usr/local/bin/python)
    assert container["args"][:5] == ["/usr/local/bin/python", "-m", "dagster", "api",
                                     "execute_run"]
    assert pod["serviceAccountName"] == "stat-dagster"
    assert spec["backoffLimit"] == 0 and spec["ttlSecondsAfterFinished"] == 86400
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi"}
    # secrets arrive by reference only: the Secret of our settings, the instance password
    assert {"secretRef": {"name": "stat-pipeline-env"}} in container["envFrom"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DAGSTER_PG_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == \
        "stat-dagster-postgresql"
    assert env["DAGSTER_EVENT_BATCH_SIZE"]["value"] == "1000"
    assert "dummy-password" not in repr(manifest)
    assert manifest["metadata"]["labels"]["app.kubernetes.io/part-of"] == "stat-pipeline"
