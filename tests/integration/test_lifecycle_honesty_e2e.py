"""The lifecycle never loses data nor reports a false success: real control-DAG runs on the local stack.

Issue 13. Each run is ``airflow dags test`` of the real control DAG (batched in one process per test,
see ``tests/dag_runs.py``) against PostgreSQL behind the Redshift shim, fake-gcs-server and a real
HTTP server for the webhook registrations; the ``rs2gcs_tenants`` Variable is read back after each run.

- text stays text: ids ``123``, ``007``, ``1_000``, ``0x1f``, ``True``, ``None``, ``1e3``, prefix and
  bucket ``2024``/``2025`` and connection id ``42`` are stored as those strings, and a sync writes
  under ``2024/007/``;
- exact tenants: Configure and Disconnect of ``acmee`` fail naming ``acme`` and write nothing;
- partial updates: a reconnect or a reconfigure keeps what it was not given; output moves and time
  zone changes need ``confirm_output_change``; a dropped webhook's registration is deleted first;
- honest deletion: DELETE retried on 5xx and connection errors, 404/410 count as deleted, a failed
  one fails the run and leaves the tenant ``disconnecting`` (no sync DAG) until a re-run finishes;
  ``webhookIds`` deletes only those;
- the sync DAG takes the widget's ``{"source": "redshift_to_gcs"}`` and refuses any other source.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections import Counter

import pytest
from dag_runs import Run, dags_test, run_batch
from pytest_httpserver import HTTPServer
from rs2gcs_devstack.airflow_home import AirflowHome
from rs2gcs_devstack.sample_data import REVENUE_QUERY, SCHEMA_SQL, grant_sql
from rs2gcs_devstack.stack import connection_json, env_var_name
from werkzeug import Request, Response

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

LITERAL_IDS = ["123", "007", "1_000", "0x1f", "True", "None", "1e3"]
NUMERIC_BUCKET = "2025"
NUMERIC_CONN_ID = "42"
BUCKET = "honesty-exports"
OTHER_BUCKET = "honesty-elsewhere"
LOGICAL_DATE = "2026-11-24T00:00:00+00:00"


# --- the real parts -----------------------------------------------------------------------------------


class Registrations:
    """Webhook registration endpoints on a real HTTP server: each path answers as told, in order."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.answers: dict[str, list[int]] = {}
        server.expect_request("/ok").respond_with_data("ok")  # deliveries, never called here
        server.expect_request(re.compile(r"^/reg/"), method="DELETE").respond_with_handler(self._answer)

    def _answer(self, request: Request) -> Response:
        name = request.path.removeprefix("/reg/")
        queue = self.answers.get(name, [204])
        status = queue.pop(0) if len(queue) > 1 else queue[0]  # the last answer repeats
        return Response("", status=status)

    def url(self, name: str) -> str:
        return self.server.url_for(f"/reg/{name}")

    def webhook(self, webhook_id: str, name: str | None = None) -> dict:
        return {
            "id": webhook_id,
            "url": self.server.url_for("/ok"),
            "registration_url": self.url(name or webhook_id),
        }

    def deletes(self) -> Counter[str]:
        return Counter(r.path.removeprefix("/reg/") for r, _ in self.server.log if r.method == "DELETE")


@pytest.fixture(scope="module")
def registrations():
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield Registrations(server)
    server.clear()
    server.stop()


@pytest.fixture(scope="module")
def home(stack):
    stack.postgres.psql(SCHEMA_SQL + grant_sql(stack.postgres.user), database=stack.postgres.database)
    for bucket in (BUCKET, OTHER_BUCKET, NUMERIC_BUCKET):
        stack.gcs.create_bucket(bucket)
    numeric = connection_json(stack.redshift_connection(NUMERIC_CONN_ID))
    with AirflowHome({**stack.airflow_env(), env_var_name(NUMERIC_CONN_ID): numeric}) as airflow_home:
        airflow_home.migrate()
        yield airflow_home


def connect(tenant_id: str, **fields) -> list[str]:
    return dags_test("rs2gcs_connect", {"tenant_id": tenant_id, **fields})


def configure(tenant_id: str, **fields) -> list[str]:
    return dags_test("rs2gcs_configure", {"tenant_id": tenant_id, **fields})


def disconnect(tenant_id: str, **fields) -> list[str]:
    return dags_test("rs2gcs_disconnect", {"tenant_id": tenant_id, **fields})


def listed_dag_ids() -> list[str]:
    return ["dags", "list", "--local", "-o", "json"]


def dag_ids(run: Run) -> set[str]:
    line = next(line for line in reversed(run.output.splitlines()) if line.startswith("[{"))
    return {dag["dag_id"] for dag in json.loads(line)}


def task_error(run: Run) -> str:
    """The lifecycle error line of a failed run."""
    assert not run.ok, run.output[-3000:]
    lines = [line for line in run.output.splitlines() if "LifecycleError: " in line]
    assert lines, run.output[-3000:]
    return lines[-1].split("LifecycleError: ", 1)[1]


def timed(home: AirflowHome, *argvs: list[str]) -> list[Run]:
    started = time.perf_counter()
    runs = run_batch(home, *argvs)
    print(f"\n{len(argvs)} runs in one process: {time.perf_counter() - started:.1f} s")
    return runs


# --- 1 and 7: text stays text; the widget's sync payload -----------------------------------------------


@pytest.fixture(scope="module")
def literal_runs(home):
    new = {"redshift_conn_id": NUMERIC_CONN_ID, "gcp_conn_id": "rs2gcs_gcs", "bucket": NUMERIC_BUCKET}
    return timed(
        home,
        *[connect(tenant_id, prefix="2024", **new) for tenant_id in LITERAL_IDS],
        configure("007", tables=["public.products"], syncFrequency="daily"),
        dags_test("rs2gcs_sync__007", {"source": "redshift_to_gcs"}, LOGICAL_DATE),
        dags_test("rs2gcs_sync__007", {"source": "s3_to_gcs"}, LOGICAL_DATE),
        disconnect("None"),
        disconnect("True"),
    )


def test_ids_prefixes_buckets_and_connection_ids_that_look_like_literals_stay_text(literal_runs, stack):
    connects = literal_runs[: len(LITERAL_IDS)]
    for tenant_id, run in zip(LITERAL_IDS, connects, strict=True):
        assert run.ok, run.output[-3000:]
        assert "Activation successful for redshift_to_gcs" in run.output
        assert f"Connect creates tenant {tenant_id} " in run.output
    stored = connects[-1].tenants
    # The exact strings: not 123, 7, 1000, 31, true, null or 1000.0.
    assert sorted(stored) == sorted(LITERAL_IDS)
    for tenant_id in LITERAL_IDS:
        entry = stored[tenant_id]
        assert entry["prefix"] == "2024" and entry["bucket"] == NUMERIC_BUCKET, (tenant_id, entry)
        assert entry["redshift_conn_id"] == NUMERIC_CONN_ID and entry["status"] == "connected"

    configured, synced, _, *disconnects = literal_runs[len(LITERAL_IDS) :]
    assert configured.ok, configured.output[-3000:]
    assert configured.tenants["007"]["status"] == "configured"
    assert configured.tenants["007"]["tables"] == [{"name": "public.products"}]
    assert synced.ok, synced.output[-3000:]
    objects = stack.gcs.list_objects(NUMERIC_BUCKET)
    assert objects and all(name.startswith("2024/007/public.products/") for name in objects), objects

    for tenant_id, run in zip(["None", "True"], disconnects, strict=True):
        assert run.ok, run.output[-3000:]
        assert f"Deactivation completed for {tenant_id}" in run.output
        assert run.tenants[tenant_id]["status"] == "disconnected"
    assert sorted(disconnects[-1].tenants) == sorted(LITERAL_IDS)  # no null or true key beside them


def test_the_sync_dag_takes_the_widget_payload_and_refuses_another_source(literal_runs):
    accepted, refused = literal_runs[len(LITERAL_IDS) + 1 : len(LITERAL_IDS) + 3]
    assert accepted.ok, accepted.output[-3000:]
    assert "starting task_id=sync_table" in accepted.output
    assert not refused.ok
    assert "'s3_to_gcs'" in refused.output and "redshift_to_gcs" in refused.output
    assert "starting task_id=sync_table" not in refused.output  # nothing was read or written


# --- 2 and 3: exact tenants; partial updates ------------------------------------------------------------


@pytest.fixture(scope="module")
def update_runs(home, registrations):
    registrations.answers["bad"] = [500]
    hooks = [registrations.webhook("wh_1"), registrations.webhook("wh_2")]
    tables = ["public.customers", "daily_revenue"]
    options = {"daily_revenue": {"query": REVENUE_QUERY}}
    runs = timed(
        home,
        connect(
            "acme",
            redshift_conn_id="rs2gcs_redshift",
            gcp_conn_id="rs2gcs_gcs",
            bucket=BUCKET,
            prefix="lifecycle",
            webhooks=hooks,
        ),
        configure(
            "acme",
            tables=tables,
            table_options=options,
            syncFrequency="hourly",
            timezone="Europe/Berlin",
            format="csv",
        ),
        configure("acmee", tables=tables, syncFrequency="daily"),  # 2: a typo
        disconnect("acmee"),
        connect("acme"),  # 3: "fix the password": nothing but the tenant id
        configure("acme", tables=[*tables, "public.products"]),  # add one table
        configure(
            "acme",
            tables=[
                {"name": "public.orders", "mode": "incremental", "cursor_column": "updated_at"},
                "public.customers",
                {"name": "daily_revenue"},
            ],
        ),
        connect("acme", bucket=OTHER_BUCKET),  # refused: moves the output
        configure("acme", timezone="UTC"),  # refused: splits the incremental windows
        configure("acme", format="parquet", confirm_output_change=True),
        connect("acme", prefix="moved", confirm_output_change=True),
        connect("acme", webhooks=[hooks[0], registrations.webhook("wh_bad", "bad")]),  # drops wh_2
        connect("acme", webhooks=[hooks[0]]),  # drops wh_bad, whose DELETE fails: nothing written
        connect("acme", clear=["prefix"], confirm_output_change=True),
    )
    return runs, registrations


def test_configure_and_disconnect_of_an_unknown_tenant_name_the_closest_ids_and_write_nothing(update_runs):
    runs, registrations = update_runs
    created, configured, typo_configure, typo_disconnect, reconnected = runs[:5]
    assert created.ok and "Connect creates tenant acme (it has no entry yet)" in created.output
    assert configured.ok, configured.output[-3000:]
    for run in (typo_configure, typo_disconnect):
        error = task_error(run)
        assert "'acmee'" in error and "closest existing ids: 'acme'" in error, error
        assert run.tenants == configured.tenants  # nothing written
    assert "Nothing was deleted or written" in task_error(typo_disconnect)
    assert "Deactivation completed" not in typo_disconnect.output
    assert registrations.deletes()["wh_1"] == 0
    assert reconnected.ok and "Connect reconnects tenant acme (status configured)" in reconnected.output


def test_runs_change_only_what_they_are_given_and_confirm_what_splits_history(update_runs):
    runs, _ = update_runs
    configured, reconnected, added, objects, moved, rezoned, reformatted, prefixed = [runs[1], *runs[4:11]]
    first = configured.tenants["acme"]
    assert (first["timezone"], first["format"], first["prefix"]) == ("Europe/Berlin", "csv", "lifecycle")

    # Connect with nothing but the id keeps every stored field (webhooks and prefix included).
    again = reconnected.tenants["acme"]
    assert {k: v for k, v in again.items() if k != "connected_at"} == {
        k: v for k, v in first.items() if k != "connected_at"
    }
    # Configure adding one table keeps the time zone, the format, the frequency and the custom query.
    entry = added.tenants["acme"]
    assert added.ok, added.output[-3000:]
    assert (entry["timezone"], entry["format"], entry["syncFrequency"]) == ("Europe/Berlin", "csv", "hourly")
    assert [t["name"] for t in entry["tables"]] == ["public.customers", "daily_revenue", "public.products"]
    assert entry["tables"][1]["query"].startswith("select")
    # Tables given as the Variable's objects (mixed with names) replace the selection.
    assert objects.ok, objects.output[-3000:]
    tables = objects.tenants["acme"]["tables"]
    assert tables[0] == {"name": "public.orders", "mode": "incremental", "cursor_column": "updated_at"}
    assert [t["name"] for t in tables] == ["public.orders", "public.customers", "daily_revenue"]
    assert tables[2]["query"].startswith("select")  # kept: the object named no query

    # Moving the output or the time zone is refused without confirmation, naming old and new.
    error = task_error(moved)
    assert f"bucket '{BUCKET}' -> '{OTHER_BUCKET}'" in error and "confirm_output_change" in error
    assert "tenant 'acme'" in error and moved.tenants == objects.tenants
    error = task_error(rezoned)
    assert "timezone 'Europe/Berlin' -> 'UTC'" in error and rezoned.tenants == objects.tenants
    assert reformatted.ok and reformatted.tenants["acme"]["format"] == "parquet"
    assert reformatted.tenants["acme"]["timezone"] == "Europe/Berlin"
    assert prefixed.ok and prefixed.tenants["acme"]["prefix"] == "moved"
    assert prefixed.tenants["acme"]["bucket"] == BUCKET and prefixed.tenants["acme"]["status"] == "configured"


def test_a_webhook_dropped_on_reconnect_has_its_registration_deleted_first(update_runs):
    runs, registrations = update_runs
    swapped, kept, cleared = runs[11:14]
    assert swapped.ok, swapped.output[-3000:]
    assert [w["id"] for w in swapped.tenants["acme"]["webhooks"]] == ["wh_1", "wh_bad"]
    assert "deleted webhook wh_2: DELETE" in swapped.output
    assert registrations.deletes()["wh_2"] == 1

    error = task_error(kept)  # wh_bad's registration answers 500: its record stays, nothing is written
    assert "wh_bad" in error and "HTTP 500" in error and "Nothing was written" in error
    assert kept.tenants == swapped.tenants
    assert registrations.deletes()["bad"] == 4  # retried, bounded
    assert registrations.deletes()["wh_1"] == 0

    assert cleared.ok and cleared.tenants["acme"]["prefix"] == ""  # clearing is explicit
    assert [w["id"] for w in cleared.tenants["acme"]["webhooks"]] == ["wh_1", "wh_bad"]


# --- 4: honest webhook deletion ---------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_disconnect_fails_naming_each_webhook_it_could_not_delete_and_a_rerun_finishes(home, registrations):
    down_port = closed_port()
    registrations.answers.update({"flaky": [500, 204], "gone": [404], "went": [410], "broken": [500]})
    down = {"id": "wh_down", "url": registrations.server.url_for("/ok")}
    down["registration_url"] = f"http://127.0.0.1:{down_port}/reg/down"
    hooks = [
        registrations.webhook("wh_flaky", "flaky"),
        registrations.webhook("wh_gone", "gone"),
        registrations.webhook("wh_went", "went"),
        registrations.webhook("wh_broken", "broken"),
        down,
    ]
    new = {"redshift_conn_id": "rs2gcs_redshift", "gcp_conn_id": "rs2gcs_gcs", "bucket": BUCKET}
    runs = timed(
        home,
        connect("hooked", webhooks=hooks, **new),
        configure("hooked", tables=["public.products"], syncFrequency="daily"),
        connect("pair", webhooks=[registrations.webhook("wh_a"), registrations.webhook("wh_b")], **new),
        listed_dag_ids(),
        disconnect("hooked"),
        listed_dag_ids(),
        disconnect("pair", webhookIds=["wh_a", "wh_zz"]),
        disconnect("pair", webhookIds=["wh_a"]),
    )
    _, configured, paired, before, failed, during, unknown, partial = runs
    assert configured.ok and paired.ok, configured.output[-3000:] + paired.output[-3000:]
    assert "rs2gcs_sync__hooked" in dag_ids(before)

    error = task_error(failed)
    assert "wh_broken" in error and "HTTP 500 after 4 attempts" in error
    assert "wh_down" in error and "no answer (ConnectionError" in error
    assert "disconnecting" in error and "run rs2gcs_disconnect again" in error
    assert "Deactivation completed" not in failed.output
    entry = failed.tenants["hooked"]
    assert entry["status"] == "disconnecting" and entry["tables"]  # nothing else lost either
    assert [w["id"] for w in entry["webhooks"]] == ["wh_broken", "wh_down"]
    deletes = registrations.deletes()
    assert (deletes["flaky"], deletes["gone"], deletes["went"], deletes["broken"]) == (2, 1, 1, 4)
    assert "rs2gcs_sync__hooked" not in dag_ids(during)  # disconnecting: no sync DAG

    error = task_error(unknown)
    assert "['wh_zz'] are not webhooks of this tenant" in error and "wh_a" in error
    assert unknown.tenants == failed.tenants
    assert "tenant pair: deleted" not in unknown.output  # refused before any DELETE
    assert partial.ok, partial.output[-3000:]
    assert registrations.deletes()["wh_a"] == 1 and registrations.deletes()["wh_b"] == 0
    assert partial.tenants["pair"]["status"] == "connected"
    assert [w["id"] for w in partial.tenants["pair"]["webhooks"]] == ["wh_b"]
    assert "Deactivation completed" not in partial.output

    # The endpoints recover; a re-run deletes what is left and only then reports completion.
    registrations.answers["broken"] = [204]
    revived = HTTPServer(host="127.0.0.1", port=down_port)
    revived.expect_request("/reg/down", method="DELETE").respond_with_data("", status=204)
    revived.start()
    try:
        finished, after = timed(home, disconnect("hooked"), listed_dag_ids())
    finally:
        revived.stop()
    assert finished.ok, finished.output[-3000:]
    assert "Deactivation completed for hooked" in finished.output
    assert finished.tenants["hooked"] == {
        "source": "redshift_to_gcs",
        "status": "disconnected",
        "disconnected_at": finished.tenants["hooked"]["disconnected_at"],
        # where it was connected, with every webhook it had before the first run deleted any
        "last_connection": {**new, "webhooks": hooks},
    }
    assert registrations.deletes()["broken"] == 5 and len(revived.log) == 1
    assert registrations.deletes()["flaky"] == 2  # deleted once, never again
    assert "rs2gcs_sync__hooked" not in dag_ids(after)
