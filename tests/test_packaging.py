"""The provider is installable and registered; docker-compose.yaml is well-formed (no Docker engine here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from airflow_rs2gcs.devstack.airflow_home import REPO_ROOT, AirflowHome

AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}


@pytest.mark.integration
def test_airflow_providers_list_shows_the_provider():
    with AirflowHome() as home:
        output = home.run("providers", "list").stdout
    assert "airflow-provider-rs2gcs" in output


def test_compose_file_parses_and_every_service_is_runnable():
    compose = yaml.safe_load(Path(REPO_ROOT, "docker-compose.yaml").read_text())
    services = compose["services"]
    assert set(services) >= AIRFLOW_SERVICES
    for name, service in services.items():
        assert "image" in service or "build" in service, name
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["build"] == "." and service["image"] == "airflow-provider-rs2gcs:local", name
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert (
            env["AIRFLOW__API_AUTH__JWT_SECRET"]
            == services["airflow-scheduler"]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"]
        )
        assert "./dags:/opt/airflow/dags" in service["volumes"]
    dockerfile = Path(REPO_ROOT, "Dockerfile").read_text()
    assert "pip install" in dockerfile and "/opt/rs2gcs" in dockerfile
