"""docker-compose.yaml and the Dockerfile, validated without a Docker engine (none runs on our machines).

What `docker compose up --build` needs to work: the YAML parses, every service has an image or a build,
every Airflow service runs the one image built from the Dockerfile that installs this provider, the
settings all services must share agree, dependencies point at services that exist, and the demo
service's module imports and uses the connection ids the stack defines.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import yaml

AIRFLOW_SERVICES = {
    "airflow-init": "bash",
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SETTINGS = [
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW_CONN_RS2GCS_REDSHIFT",
    "AIRFLOW_CONN_RS2GCS_GCS",
    "STORAGE_EMULATOR_HOST",
]


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(Path(REPO_ROOT, "docker-compose.yaml").read_text())["services"]


def _command(service: dict) -> str:
    command = service.get("command", "")
    return command if isinstance(command, str) else " ".join(command)


def test_every_service_has_an_image_or_a_build(services):
    for name, service in services.items():
        assert "image" in service or "build" in service, name


def test_the_airflow_services_of_a_celery_stack_all_run_the_providers_image(services):
    for name, command in AIRFLOW_SERVICES.items():
        service = services[name]
        assert service["build"] == "." and service["image"] == "airflow-provider-rs2gcs:local", name
        assert _command(service).startswith(command), name
        assert "./dags:/opt/airflow/dags" in service["volumes"], name
    assert {"metadata-db", "redis"} <= set(services)
    assert services["metadata-db"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")


def test_settings_every_airflow_service_must_share_agree(services):
    reference = services["airflow-scheduler"]["environment"]
    assert reference["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for name in [*AIRFLOW_SERVICES, "rs2gcs-demo"]:
        env = services[name]["environment"]
        for key in SHARED_SETTINGS:
            assert env.get(key) == reference[key], f"{name}: {key}"


def test_dependencies_name_existing_services_and_wait_for_the_database(services):
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert set(depends) <= set(services), name
    for name in [*AIRFLOW_SERVICES, "rs2gcs-demo"]:
        assert services[name]["depends_on"]["metadata-db"]["condition"] == "service_healthy", name
    for name in set(AIRFLOW_SERVICES) - {"airflow-init"}:
        condition = services[name]["depends_on"]["airflow-init"]["condition"]
        assert condition == "service_completed_successfully", name


def test_the_init_service_migrates_and_checks_the_provider_is_installed(services):
    command = _command(services["airflow-init"])
    assert "airflow db migrate" in command and "airflow-provider-rs2gcs" in command


def test_the_dockerfile_installs_this_provider_on_the_pinned_airflow():
    dockerfile = Path(REPO_ROOT, "Dockerfile").read_text()
    base = re.search(r"^FROM apache/airflow:(\S+)", dockerfile, re.M)
    assert base, "the image must build on the official Airflow image"
    airflow_version = base.group(1).split("-")[0]
    pinned = re.search(r"^apache-airflow==(\S+)", Path(REPO_ROOT, "constraints.txt").read_text(), re.M)
    assert pinned and pinned.group(1) == airflow_version
    assert re.search(r"pip install .*-c /opt/rs2gcs/constraints.txt /opt/rs2gcs", dockerfile)
    assert "COPY --chown=airflow:root airflow_rs2gcs /opt/rs2gcs/airflow_rs2gcs" in dockerfile


def test_the_stand_ins_match_the_connections(services):
    env = services["airflow-scheduler"]["environment"]
    redshift = json.loads(env["AIRFLOW_CONN_RS2GCS_REDSHIFT"])
    shim = services["redshift"]
    assert shim["entrypoint"][-1] == "rs2gcs_devstack.shim"
    shim_args = shim["command"]
    assert shim_args[shim_args.index("--listen-port") + 1] == str(redshift["port"])
    assert shim_args[shim_args.index("--target-host") + 1] == "redshift-db"
    source = services["redshift-db"]["environment"]
    assert (source["POSTGRES_USER"], source["POSTGRES_PASSWORD"], source["POSTGRES_DB"]) == (
        redshift["login"],
        redshift["password"],
        redshift["schema"],
    )
    port = re.search(r":(\d+)$", env["STORAGE_EMULATOR_HOST"]).group(1)
    assert f"-port {port}" in _command(services["fake-gcs"])


def test_the_demo_service_runs_an_importable_module_on_the_stacks_connections(services):
    demo = services["rs2gcs-demo"]
    module = importlib.import_module(demo["entrypoint"][-1])
    env = demo["environment"]
    assert f"AIRFLOW_CONN_{module.REDSHIFT_CONN_ID.upper()}" in env
    assert f"AIRFLOW_CONN_{module.GCP_CONN_ID.upper()}" in env
    assert "@redshift-db:5432/" in env["RS2GCS_DEMO_SOURCE_DSN"]
    assert {"redshift-db", "fake-gcs", "airflow-init"} <= set(demo["depends_on"])


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_the_demo_set_up_runs_against_real_stand_ins(stack):
    """What the rs2gcs-demo container does, run here against the local stack's PostgreSQL and emulator."""
    import subprocess
    import sys

    from rs2gcs_devstack.airflow_home import AirflowHome
    from rs2gcs_devstack.compose_demo import POOL_SLOTS
    from rs2gcs_devstack.demo import BUCKET, TENANT_ID
    from rs2gcs_devstack.sample_data import SAMPLE_TABLES

    pg = stack.postgres
    pg.psql("drop table if exists public.orders, public.customers, public.products cascade", pg.database)
    env = {
        **stack.airflow_env(),
        "RS2GCS_DEMO_SOURCE_DSN": f"postgresql://{pg.user}:{pg.password}@{pg.host}:{pg.port}/{pg.database}",
        "RS2GCS_DEMO_SOURCE_ROLE": pg.user,
    }
    with AirflowHome(env) as home:
        home.migrate()
        result = subprocess.run(
            [sys.executable, "-m", "rs2gcs_devstack.compose_demo"],
            env=home.env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        tenants = json.loads(home.run("variables", "get", "rs2gcs_tenants").stdout.strip().splitlines()[-1])
        pools = json.loads(home.run("pools", "list", "-o", "json").stdout)
        dags = home.run("dags", "list", "--local", "-o", "json").stdout
    assert tenants[TENANT_ID]["bucket"] == BUCKET
    assert {p["pool"]: int(p["slots"]) for p in pools}["rs2gcs_redshift__rs2gcs_redshift"] == POOL_SLOTS
    assert f"rs2gcs_sync__{TENANT_ID}" in dags
    for table in SAMPLE_TABLES:
        if table.query is None:
            assert int(pg.psql(table.count_sql, database=pg.database).strip()) > 0
    assert BUCKET in _buckets(stack)


def _buckets(stack) -> list[str]:
    import urllib.request

    with urllib.request.urlopen(f"{stack.gcs.url}/storage/v1/b?project={stack.gcs.project}", timeout=30) as r:
        return [item["name"] for item in json.load(r).get("items", [])]
