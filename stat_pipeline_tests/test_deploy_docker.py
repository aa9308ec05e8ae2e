"""The Docker deployment (deploy/Dockerfile, deploy/docker/), checked without a Docker daemon:
its dagster.yaml is a valid instance whose run launcher is DockerRunLauncher, and the compose
file is what Docker Compose reads (``docker compose config`` or Debian's ``docker-compose
config``, skipped with the reason where neither is installed), consistent with both."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from stat_pipeline_tests.deployment import DEPLOY, instance_home, load_yaml, validated_instance_config

DOCKER = DEPLOY / "docker"
COMPOSE = DOCKER / "docker-compose.yml"
# Dummy secrets: compose refuses to render the file without them.
SECRETS = {
    "STAT_WAREHOUSE_DB_PASSWORD": "warehouse-secret-1",
    "STAT_DAGSTER_DB_PASSWORD": "dagster-secret-2",
    "STAT_API_TOKEN": "api-token-3",
    "STAT_SOURCE_URL": "postgresql+psycopg2://stat_reader:source-secret-4@wazo.invalid/asterisk",
}


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def _compose_config(env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` (the Compose plugin) nor Debian's docker-compose "
                    "is installed: apt-get install docker-compose")
    env = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("STAT_")}
    env.update(env_extra)
    return subprocess.run([*command, "-f", str(COMPOSE), "config"], capture_output=True,
                          text=True, env=env, cwd=DOCKER, timeout=120)


@pytest.fixture(scope="module")
def compose() -> dict:
    done = _compose_config(SECRETS)
    assert done.returncode == 0, done.stderr
    import yaml

    return yaml.safe_load(done.stdout)


def test_instance_loads_with_docker_run_launcher(tmp_path, monkeypatch, dagster_pg_url):
    import dagster as dg
    from dagster_docker import DockerRunLauncher

    config = validated_instance_config(DOCKER / "dagster.yaml")
    # No Docker daemon here: the launcher must not need one until it launches.
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setenv("STAT_DAGSTER_PG_URL", dagster_pg_url)
    home = instance_home(tmp_path, config)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, DockerRunLauncher)
        assert launcher.networks == ["stat_pipeline"]
        assert "STAT_WAREHOUSE_URL" in launcher.env_vars
        # the run queue and the pools of the project's own dagster.yaml
        assert instance.get_concurrency_config().pool_config.pool_granularity.value == "run"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"
        assert instance.run_monitoring_enabled


def test_instance_sections_match_the_project_instance():
    """The compose instance is the project's dagster.yaml plus a run launcher: the run
    queue, pools and monitoring must not drift apart."""
    ours = load_yaml(DEPLOY.parent / "dagster.yaml")
    docker = load_yaml(DOCKER / "dagster.yaml")
    for section in ("storage", "concurrency", "run_queue", "run_monitoring", "telemetry"):
        assert docker[section] == ours[section], section
    assert docker["run_launcher"]["class"] == "DockerRunLauncher"


def test_compose_config_renders_every_service(compose):
    services = compose["services"]
    assert set(services) == {"warehouse-db", "dagster-db", "user-code", "webserver", "daemon",
                             "api"}
    # one image for code server, webserver, daemon, API and (through DAGSTER_CURRENT_IMAGE)
    # every run container
    image = services["user-code"]["image"]
    for name in ("webserver", "daemon", "api"):
        assert services[name]["image"] == image, name
    assert services["user-code"]["environment"]["DAGSTER_CURRENT_IMAGE"] == image
    # the network the launcher attaches run containers to is the compose project's
    launcher = load_yaml(DOCKER / "dagster.yaml")["run_launcher"]["config"]
    assert compose["networks"]["stat_pipeline"]["name"] == launcher["network"]
    # the URLs are assembled from the secrets the operator exported, nowhere else
    env = services["daemon"]["environment"]
    assert env["STAT_WAREHOUSE_URL"].startswith("postgresql+psycopg2://stat:warehouse-secret-1@")
    assert env["STAT_DAGSTER_PG_URL"].startswith("postgresql+psycopg2://dagster:dagster-secret-2@")


def test_every_variable_the_launcher_forwards_is_set_on_the_daemon(compose):
    """DockerRunLauncher fails a launch whose env_vars name an unset variable."""
    launcher = load_yaml(DOCKER / "dagster.yaml")["run_launcher"]["config"]
    daemon_env = compose["services"]["daemon"]["environment"]
    for name in launcher["env_vars"]:
        assert "=" in name or name in daemon_env, f"{name} is forwarded but not set on the daemon"


def test_code_server_command_is_the_images(compose):
    cmd = re.search(r"^CMD (\[.*?\])\s*$", (DEPLOY / "Dockerfile").read_text(),
                    re.MULTILINE | re.DOTALL)
    import json

    image_cmd = json.loads(cmd.group(1).replace("\\\n", ""))
    assert compose["services"]["user-code"]["command"] == image_cmd
    assert image_cmd[:3] == ["dagster", "api", "grpc"]
    assert "stat_pipeline.definitions" in image_cmd


def test_compose_refuses_to_start_without_its_secrets():
    for missing in SECRETS:
        done = _compose_config({k: v for k, v in SECRETS.items() if k != missing})
        assert done.returncode != 0, f"renders without {missing}"
        assert missing in done.stderr


def test_no_secret_in_the_deployment_files():
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            text = path.read_text()
            for value in SECRETS.values():
                assert value not in text, path
            # a password written into a file, instead of taken from the environment/Secret
            assert not re.search(r"(?i)password\s*[:=]\s*['\"]?[A-Za-z0-9]{4,}", text), path
