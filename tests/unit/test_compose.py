"""docker-compose.yaml, docker-compose.local.yaml and the Dockerfile, validated without a Docker engine
(none runs on our machines).

What `docker compose [-f docker-compose.yaml -f docker-compose.local.yaml] up --build` needs to work:
the YAML parses, every service has an image or a build, every Airflow service runs the one
provider-only image built from the Dockerfile, the base file is a deployment's stack with no stand-in
in it, the overlay adds the stand-ins and their connections, the settings all Airflow processes must
share agree once merged, and dependencies point at services that exist.

The Airflow settings live in one file, ``airflow.env``, read by every Airflow service (``env_file``)
and by the Celery test's stack on this machine (``rs2gcs_devstack.celery_stack``, which replaces only
the values that name a compose host): the checks below keep the two from drifting apart.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml
from rs2gcs_devstack.celery_stack import ADDRESS_SETTINGS, SETTINGS_FILE, compose_settings, read_env_file

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_FILE = "docker-compose.yaml"
LOCAL_FILE = "docker-compose.local.yaml"
AIRFLOW_SERVICES = {
    "airflow-init": "bash",
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
STAND_INS = {"redshift-db", "redshift", "fake-gcs", "rs2gcs-demo"}
# What docker-compose.local.yaml adds to every Airflow service: the connections to the stand-ins.
LOCAL_CONNECTION_SETTINGS = [
    "AIRFLOW_CONN_RS2GCS_REDSHIFT",
    "AIRFLOW_CONN_RS2GCS_GCS",
    "STORAGE_EMULATOR_HOST",
]
SHARED_SETTINGS = [
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    *LOCAL_CONNECTION_SETTINGS,
]


def _services(name: str) -> dict:
    return yaml.safe_load(Path(REPO_ROOT, name).read_text())["services"]


def _env_files(service: dict) -> list[str]:
    files = service.get("env_file", [])
    return [files] if isinstance(files, str) else list(files)


def _environment(service: dict) -> dict:
    """What the container gets: its ``env_file`` lines, then ``environment`` (which wins, as in Compose)."""
    env: dict = {}
    for name in _env_files(service):
        env.update(read_env_file(REPO_ROOT / name))
    return {**env, **service.get("environment", {})}


def _merge(into: dict, service: dict) -> dict:
    """Compose's rule for the fields these files use: ``environment`` mappings merge key by key, a
    later file's value of any other field replaces the earlier one."""
    merged = copy.deepcopy(into)
    for key, value in service.items():
        if key == "environment":
            merged["environment"] = {**merged.get("environment", {}), **value}
        elif key != "extends":
            merged[key] = copy.deepcopy(value)
    return merged


@pytest.fixture(scope="module")
def base() -> dict:
    return _services(BASE_FILE)


@pytest.fixture(scope="module")
def local() -> dict:
    return _services(LOCAL_FILE)


@pytest.fixture(scope="module")
def services(base, local) -> dict:
    """The project ``-f docker-compose.yaml -f docker-compose.local.yaml`` gives (the same services,
    images, entrypoints and environment keys as ``docker compose config`` of Compose 2.40)."""
    merged = {name: copy.deepcopy(service) for name, service in base.items()}
    for name, service in local.items():
        start = merged.get(name, {})
        if "extends" in service:
            extends = service["extends"]
            parent = _services(extends["file"])[extends["service"]]
            # Compose documents that extends does not carry depends_on (2.40 does carry them); the
            # demo states the ones it needs, so the checks below hold either way.
            start = {k: v for k, v in parent.items() if k != "depends_on"}
        merged[name] = _merge(start, service)
    return merged


def _command(service: dict) -> str:
    command = service.get("command", "")
    return command if isinstance(command, str) else " ".join(command)


def test_every_service_has_an_image_or_a_build(base, services):
    for project in (base, services):
        for name, service in project.items():
            assert "image" in service or "build" in service, name


def test_the_airflow_services_of_a_celery_stack_all_run_the_providers_image(base, local):
    for name, command in AIRFLOW_SERVICES.items():
        service = base[name]
        assert service["build"] == {"context": ".", "target": "provider"}, name
        assert service["image"] == "airflow-provider-rs2gcs:local", name
        assert _command(service).startswith(command), name
        assert "./dags:/opt/airflow/dags" in service["volumes"], name
        assert set(local.get(name, {})) <= {"environment"}, f"{name}: the overlay only adds connections"
    assert {"metadata-db", "redis"} <= set(base)
    assert base["metadata-db"]["image"].startswith("postgres:")
    assert base["redis"]["image"].startswith("redis:")


def test_the_base_file_is_a_deployment_with_no_stand_in(base):
    assert not STAND_INS & set(base)
    assert "rs2gcs_devstack" not in Path(REPO_ROOT, BASE_FILE).read_text()
    for name in AIRFLOW_SERVICES:
        assert not set(LOCAL_CONNECTION_SETTINGS) & set(_environment(base[name])), name


def test_the_overlay_adds_the_stand_ins_and_connects_every_airflow_service(local, services):
    assert set(local) >= STAND_INS
    for name in AIRFLOW_SERVICES:
        env = _environment(services[name])
        assert all(env.get(key) for key in LOCAL_CONNECTION_SETTINGS), name


def test_settings_every_airflow_service_must_share_agree(services):
    reference = _environment(services["airflow-scheduler"])
    assert reference["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for name in [*AIRFLOW_SERVICES, "rs2gcs-demo"]:
        env = _environment(services[name])
        for key in SHARED_SETTINGS:
            assert env.get(key) == reference[key], f"{name}: {key}"


def test_dependencies_name_existing_services_and_wait_for_the_database(base, services):
    for project in (base, services):
        for name, service in project.items():
            depends = service.get("depends_on", {})
            assert set(depends) <= set(project), name
    for name in [*AIRFLOW_SERVICES, "rs2gcs-demo"]:
        assert services[name]["depends_on"]["metadata-db"]["condition"] == "service_healthy", name
    for name in set(AIRFLOW_SERVICES) - {"airflow-init"}:
        condition = services[name]["depends_on"]["airflow-init"]["condition"]
        assert condition == "service_completed_successfully", name


def test_the_init_service_migrates_and_checks_the_provider_is_installed(base):
    command = _command(base["airflow-init"])
    assert "airflow db migrate" in command and "airflow-provider-rs2gcs" in command


def _dockerfile_stages() -> dict[str, str]:
    """Each ``FROM <image> AS <stage>`` block of the Dockerfile by stage name, its FROM line included."""
    text = Path(REPO_ROOT, "Dockerfile").read_text()
    blocks = re.split(r"^(?=FROM )", text, flags=re.M)
    stages = {}
    for block in blocks:
        named = re.match(r"FROM \S+ AS (\S+)", block)
        if named:
            stages[named.group(1)] = block
    return stages


def test_the_dockerfile_installs_this_provider_on_the_pinned_airflow():
    provider = _dockerfile_stages()["provider"]
    base = re.search(r"^FROM apache/airflow:(\S+)", provider, re.M)
    assert base, "the image must build on the official Airflow image"
    airflow_version = base.group(1).split("-")[0]
    pinned = re.search(r"^apache-airflow==(\S+)", Path(REPO_ROOT, "constraints.txt").read_text(), re.M)
    assert pinned and pinned.group(1) == airflow_version
    assert re.search(r"pip install .*-c /opt/rs2gcs/constraints.txt /opt/rs2gcs$", provider, re.M)
    assert "COPY --chown=airflow:root airflow_rs2gcs /opt/rs2gcs/airflow_rs2gcs" in provider
    assert " dev " not in provider and "/dev" not in provider, "the provider's image has no local stack"


def test_the_devstack_stage_adds_only_the_local_stack_to_the_providers_image():
    devstack = _dockerfile_stages()["devstack"]
    assert devstack.startswith("FROM provider AS devstack")
    assert "COPY --chown=airflow:root dev /opt/rs2gcs/dev" in devstack
    assert re.search(r"pip install .*/opt/rs2gcs/dev$", devstack, re.M)


def test_the_stand_ins_run_the_devstack_image_and_modules_that_exist(local):
    for name in ("redshift", "rs2gcs-demo"):
        service = local[name]
        assert service["build"] == {"context": ".", "target": "devstack"}, name
        assert service["image"] == "airflow-provider-rs2gcs:local-devstack", name
        module = service["entrypoint"][-1]
        assert module.startswith("rs2gcs_devstack."), name
        assert Path(REPO_ROOT, "dev", *module.split(".")).with_suffix(".py").is_file(), module


def test_the_stand_ins_match_the_connections(services):
    env = _environment(services["airflow-scheduler"])
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
    demo = services["rs2gcs-demo"]
    assert "@redshift-db:5432/" in demo["environment"]["RS2GCS_DEMO_SOURCE_DSN"]
    assert {"redshift-db", "fake-gcs", "airflow-init"} <= set(demo["depends_on"])


# -- one settings file for compose and the Celery test --------------------------------------------------
def test_every_airflow_service_takes_its_settings_from_the_one_file(base, services):
    settings = read_env_file(REPO_ROOT / SETTINGS_FILE)
    assert settings, f"{SETTINGS_FILE} is empty"
    for name in [*AIRFLOW_SERVICES, "rs2gcs-demo"]:
        assert _env_files(services[name]) == [SETTINGS_FILE], name
        # A setting repeated in `environment` would win over the file there, and not in the test.
        assert not set(settings) & set(services[name].get("environment", {})), name
    for name in set(base) - set(AIRFLOW_SERVICES):
        assert not _env_files(base[name]), f"{name} is not an Airflow service"


def test_the_celery_test_runs_the_same_file_changing_only_the_addresses(base):
    """The stack of tests/integration/test_celery_e2e.py reads this file (compose_settings) and swaps
    exactly ADDRESS_SETTINGS for loopback: those must be every setting that names a compose service,
    so no other setting can point the test somewhere compose does not go, or the reverse."""
    settings = compose_settings(REPO_ROOT)
    assert settings == read_env_file(REPO_ROOT / SETTINGS_FILE)
    hosts = re.compile(rf"(?<![\w-])({'|'.join(map(re.escape, base))})(?![\w-])")
    naming_a_host = {key for key, value in settings.items() if hosts.search(value)}
    assert naming_a_host == ADDRESS_SETTINGS
    metadata = base["metadata-db"]["environment"]
    login = (
        f"{metadata['POSTGRES_USER']}:{metadata['POSTGRES_PASSWORD']}@metadata-db/{metadata['POSTGRES_DB']}"
    )
    assert settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith(login)
    assert settings["AIRFLOW__CELERY__RESULT_BACKEND"].endswith(login)
    assert (
        settings["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        and "@redis:" in settings["AIRFLOW__CELERY__BROKER_URL"]
    )
    port = base["airflow-apiserver"]["ports"][0].split(":")[-1]
    assert (
        settings["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://airflow-apiserver:{port}/execution/"
    )


def test_the_settings_file_is_read_as_compose_reads_it(tmp_path):
    good = tmp_path / "good.env"
    good.write_text("# comment\n\nA=1\nB=x=y\nC=\n")
    assert read_env_file(good) == {"A": "1", "B": "x=y", "C": ""}
    for line in ('A="quoted"', "A=${INTERPOLATED}", "export A=1", "not a setting"):
        bad = tmp_path / "bad.env"
        bad.write_text(line + "\n")
        with pytest.raises(ValueError, match="not a plain KEY=VALUE"):
            read_env_file(bad)
