"""The compose stack's demo set-up (``rs2gcs-demo`` in docker-compose.local.yaml), run for real here.

Its module imports, uses the connection ids the overlay defines, and does what the container does
against the local stack's PostgreSQL and fake-gcs-server (no Docker engine on our machines).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_service() -> dict:
    return yaml.safe_load(Path(REPO_ROOT, "docker-compose.local.yaml").read_text())["services"]["rs2gcs-demo"]


@pytest.mark.integration
def test_the_demo_service_runs_an_importable_module_on_the_stacks_connections(demo_service):
    module = importlib.import_module(demo_service["entrypoint"][-1])
    env = demo_service["environment"]
    assert f"AIRFLOW_CONN_{module.REDSHIFT_CONN_ID.upper()}" in env
    assert f"AIRFLOW_CONN_{module.GCP_CONN_ID.upper()}" in env


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
