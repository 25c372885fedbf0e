"""Dockerfile and docker-compose.yaml, checked statically: no Docker engine runs on the test machines."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HEALTH_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def test_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), str(REPO / "Dockerfile")], capture_output=True, text=True)  # noqa: S603
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_extends_the_official_image_with_ffmpeg_and_our_pins():
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:3\.3\.\d+-python3\.11$", text, re.M)
    assert "apt-get install -y --no-install-recommends ffmpeg" in text
    assert "-r requirements.txt -c constraints.txt" in text
    for source in re.findall(r"^COPY (?:--chown=\S+ )?(.+?) \S+$", text, re.M):
        for path in source.split():
            assert (REPO / path).exists(), f"COPY of a missing path: {path}"
    pinned = (REPO / "requirements.txt").read_text()
    base = re.search(r"apache/airflow:(3\.3\.\d+)", text).group(1)
    assert f"apache-airflow=={base}" in pinned, "the image and requirements.txt must agree on Airflow"


def test_compose_references_only_what_it_defines(compose):
    services, volumes = compose["services"], set(compose.get("volumes") or {})
    used_volumes = set()
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on undefined {dependency}"
            condition = spec["condition"]
            assert condition in HEALTH_CONDITIONS, f"{name}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency} health it lacks"
            if condition == "service_completed_successfully":
                assert services[dependency].get("restart") is None, f"{dependency} is one-shot"
        for mount in service.get("volumes") or []:
            source = mount.split(":")[0]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in volumes, f"{name} uses undeclared volume {source}"
                used_volumes.add(source)
        check = service.get("healthcheck", {}).get("test")
        if check:
            assert check[0] in ("CMD", "CMD-SHELL"), name
    assert used_volumes == volumes, f"declared but unused: {volumes - used_volumes}"


def test_compose_runs_the_whole_distributed_stack(compose):
    services = compose["services"]
    assert {"postgres", "redis", "minio", "minio-init", "airflow-apiserver", "airflow-scheduler",
            "airflow-dag-processor", "airflow-triggerer", "airflow-worker", "airflow-worker-transcode",
            "airflow-init", "flower"} <= set(services)
    assert services["flower"]["profiles"] == ["flower"]
    assert "--queues transcode" in services["airflow-worker-transcode"]["command"]
    assert "--queues default" in services["airflow-worker"]["command"]
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("FabAuthManager")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert "minio:9000" in env["AIRFLOW_CONN_AWS_DEFAULT"]
    init = services["airflow-init"]
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert init["environment"]["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert "vodflow.cli db migrate" in " ".join(init["command"])
    assert "mc mb" in " ".join(services["minio-init"]["command"])
    assert any("init-catalog.sql" in v for v in services["postgres"]["volumes"])


def test_open_videos_follow_the_transcode_pool_as_in_the_dev_stack(compose):
    from vodflow.devtools.devstack import max_active_videos

    env = compose["x-airflow-common"]["environment"]
    init = " ".join(compose["services"]["airflow-init"]["command"])
    slots = int(re.search(r"\$\{TRANSCODE_POOL_SLOTS:-(\d+)\}", init).group(1))
    assert env["AIRFLOW__VODFLOW__MAX_ACTIVE_VIDEOS"] == f"${{VODFLOW_MAX_ACTIVE_VIDEOS:-{max_active_videos(slots)}}}"
    example = dict(re.findall(r"^([A-Z_]+)=(.*)$", (REPO / ".env.example").read_text(), re.M))
    assert int(example["VODFLOW_MAX_ACTIVE_VIDEOS"]) == max_active_videos(int(example["TRANSCODE_POOL_SLOTS"]))


def test_every_variable_without_a_default_is_documented():
    text = (REPO / "docker-compose.yaml").read_text().replace("$$", "")
    documented = set(re.findall(r"^([A-Z_]+)=", (REPO / ".env.example").read_text(), re.M))
    needed = {m.group(1) for m in re.finditer(r"\$\{([A-Z_]+)(:\?[^}]*)?\}", text)}
    assert needed <= documented, f"undocumented: {needed - documented}"
    assert not re.search(r"(PASSWORD|SECRET|FERNET_KEY)=\S", (REPO / ".env.example").read_text()), \
        ".env.example must not carry secrets"


def test_flower_needs_a_login_and_prometheus_scrapes_with_a_token(compose):
    services = compose["services"]
    flower = services["flower"]
    assert flower["environment"]["AIRFLOW__CELERY__FLOWER_BASIC_AUTH"] == "${FLOWER_BASIC_AUTH:-}"
    assert "exit 1" in " ".join(flower["command"]) and "--user" in " ".join(flower["healthcheck"]["test"])
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["metrics"]
    config = yaml.safe_load((REPO / "config/prometheus/prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/vodflow/metrics" and job["authorization"]["type"] == "Bearer"
    assert job["static_configs"][0]["targets"] == ["airflow-apiserver:8080"]
    env = services["airflow-apiserver"]["environment"]
    assert env["AIRFLOW__VODFLOW__METRICS_TOKEN"] == "${VODFLOW_METRICS_TOKEN:-}"
