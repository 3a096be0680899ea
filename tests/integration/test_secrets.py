"""No secret leaks: one full lifecycle, then every artifact it left is searched for the secrets.

Connect -> Configure -> Sync -> Disconnect run through ``airflow dags test`` on the real stack with a
webhook whose signing secret is inline, another whose secret is the password of an Airflow connection
(``secret_conn_id``), and the Redshift connection's password (the stack's PostgreSQL role has a random
one). Afterwards none of them may appear in: the CLI output, the task log files under AIRFLOW_HOME,
the metadata DB's XCom values and rendered template fields, any object in the bucket (data files and
manifests), or the requests the webhook receiver got (bodies and headers). The Redshift password and
the connection-held secret may appear nowhere in the metadata DB at all.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from rs2gcs_devstack.airflow_home import AirflowHome
from rs2gcs_devstack.sample_data import REVENUE_QUERY, SCHEMA_SQL, grant_sql
from rs2gcs_devstack.stack import connection_json, env_var_name

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

BUCKET = "secrets-exports"
INLINE_SECRET = f"whsec-inline-{uuid.uuid4().hex}"
CONN_SECRET = f"whsec-conn-{uuid.uuid4().hex}"
SECRET_CONN_ID = "rs2gcs_webhook_signing"
LOGICAL_DATE = "2026-11-24T00:00:00+00:00"


@pytest.fixture(scope="module")
def receiver():
    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request("/inline", method="POST").respond_with_data("ok")
    server.expect_request("/by-connection", method="POST").respond_with_data("ok")
    server.start()
    yield server
    server.clear()
    server.stop()


def trigger(home: AirflowHome, dag_id: str, *args: str) -> str:
    result = home.run("dags", "test", dag_id, *args, check=False, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return output


@pytest.fixture(scope="module")
def lifecycle(stack, receiver):
    """Run the four buttons once; hand over the secrets, the CLI output and the Airflow home."""
    stack.postgres.psql(SCHEMA_SQL + grant_sql(stack.postgres.user), database=stack.postgres.database)
    stack.gcs.create_bucket(BUCKET)
    signing = {"conn_type": "generic", "password": CONN_SECRET}
    env = {**stack.airflow_env(), env_var_name(SECRET_CONN_ID): connection_json(signing)}
    with AirflowHome(env) as home:
        home.migrate()
        connect = {
            "tenant_id": "vault",
            "redshift_conn_id": "rs2gcs_redshift",
            "gcp_conn_id": "rs2gcs_gcs",
            "bucket": BUCKET,
            "prefix": "secrets",
            "webhooks": [
                {"id": "wh_inline", "url": receiver.url_for("/inline"), "secret": INLINE_SECRET},
                {
                    "id": "wh_conn",
                    "url": receiver.url_for("/by-connection"),
                    "secret_conn_id": SECRET_CONN_ID,
                },
            ],
        }
        configure = {
            "tenant_id": "vault",
            "tables": ["public.customers", "daily_revenue"],
            "table_options": {"daily_revenue": {"query": REVENUE_QUERY}},
            "syncFrequency": "daily",
        }
        outputs = [
            trigger(home, "rs2gcs_connect", "--conf", json.dumps(connect)),
            trigger(home, "rs2gcs_configure", "--conf", json.dumps(configure)),
            trigger(home, "rs2gcs_sync__vault", LOGICAL_DATE),
            trigger(home, "rs2gcs_disconnect", "--conf", json.dumps({"tenant_id": "vault"})),
        ]
        secrets = {
            "redshift password": stack.postgres.password,
            "inline webhook secret": INLINE_SECRET,
            "connection webhook secret": CONN_SECRET,
        }
        yield secrets, "\n".join(outputs), home


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value in text]


def test_the_run_did_use_every_secret(lifecycle, receiver):
    """Guards the searches below: the secrets were really in play, and the signatures prove it."""
    secrets, output, _ = lifecycle
    assert (
        "Activation successful for redshift_to_gcs" in output and "Deactivation completed for vault" in output
    )
    # The task logs are part of the CLI output searched below (plus any log files under AIRFLOW_HOME).
    assert "webhook wh_inline: delivered" in output and "webhook wh_conn: delivered" in output
    posts = [request for request, _ in receiver.log if request.method == "POST"]
    assert {r.path for r in posts} == {"/inline", "/by-connection"} and len(posts) == 4
    for request in posts:
        secret = INLINE_SECRET if request.path == "/inline" else CONN_SECRET
        expected = "sha256=" + hmac.new(secret.encode(), request.get_data(), hashlib.sha256).hexdigest()
        assert request.headers["X-Rs2gcs-Signature"] == expected
    assert len(secrets["redshift password"]) >= 20


def test_cli_output_and_task_logs_hold_no_secret(lifecycle):
    secrets, output, home = lifecycle
    assert leaks(output, secrets) == []
    log_files = [p for p in (home.path / "logs").rglob("*") if p.is_file()]
    for path in log_files:
        assert leaks(path.read_text(errors="replace"), secrets) == [], path


def test_xcom_and_rendered_template_fields_hold_no_secret(lifecycle):
    secrets, _, home = lifecycle
    with sqlite3.connect(Path(home.path) / "airflow.db") as db:
        xcoms = db.execute("select dag_id, task_id, key, value from xcom").fetchall()
        rendered = db.execute("select dag_id, task_id, rendered_fields from rendered_task_instance_fields")
        rendered = rendered.fetchall()
    assert {row[0] for row in xcoms} >= {"rs2gcs_connect", "rs2gcs_sync__vault"}
    assert {row[0] for row in rendered} >= {"rs2gcs_connect", "rs2gcs_configure"}
    for row in xcoms + rendered:
        assert leaks(str(row), secrets) == [], row[:3]


def test_the_metadata_db_never_stores_the_password_or_the_connection_secret(lifecycle):
    """Only connection ids are stored (the inline secret lives in the Variable, as the contract says)."""
    secrets, _, home = lifecycle
    database = (Path(home.path) / "airflow.db").read_bytes().decode("utf-8", errors="replace")
    stored = {k: v for k, v in secrets.items() if k != "inline webhook secret"}
    assert leaks(database, stored) == []


def test_objects_in_gcs_hold_no_secret(lifecycle, stack):
    secrets, _, _ = lifecycle
    names = stack.gcs.list_objects(BUCKET)
    assert any(name.endswith("_manifest.json") for name in names) and len(names) >= 4
    for name in names:
        url = f"{stack.gcs.url}/storage/v1/b/{BUCKET}/o/{urllib.parse.quote(name, safe='')}?alt=media"
        with urllib.request.urlopen(url, timeout=30) as response:
            body = response.read()
        assert leaks(body.decode("utf-8", errors="replace"), secrets) == [], name


def test_webhook_requests_hold_no_secret(lifecycle, receiver):
    secrets, _, _ = lifecycle
    for request, _ in receiver.log:
        seen = request.get_data().decode("utf-8", errors="replace") + str(dict(request.headers)) + request.url
        assert leaks(seen, secrets) == [], request.url
