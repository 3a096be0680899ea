"""The factory through a real ``airflow dag-processor`` pass, checked in the metadata DB it writes.

Three scenarios, each a throwaway AIRFLOW_HOME (copies of one migrated SQLite DB) whose
``rs2gcs_tenants`` Variable is written with the real CLI, parsed by ``airflow dag-processor -n 1``:

* ``tenants``: ``hourly_utc`` (hourly, UTC), ``daily_ny`` (daily, America/New_York) and ``moon``
  (``"syncFrequency": "every blue moon"``): two scheduled, unpaused sync DAGs with real data
  intervals and one placeholder DAG that explains the bad field;
* ``not_json``: a Variable that is not JSON gives the ``rs2gcs_tenants_invalid`` DAG;
* ``missing``: no Variable gives no sync DAG.

None of them may record an import error. The scenarios run side by side (the CLI's start-up
dominates), and ``airflow dags test`` then runs ``rs2gcs_sync__hourly_utc`` from the ``tenants``
home, whose Variable lives only in the metadata DB, against the real local stack.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import urllib.parse
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from rs2gcs_devstack.airflow_home import AirflowHome

from airflow_rs2gcs.schedules import cron_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

VARIABLE = "rs2gcs_tenants"
REDSHIFT_CONN_ID = "rs2gcs_redshift"  # the local stack's connection ids (stack.airflow_env())
GCP_CONN_ID = "rs2gcs_gcs"
TABLE = "public.rs2gcs_dp_probe"
HOURLY_BUCKET = "rs2gcs-dp-hourly"
LOGICAL_DATE = "2026-11-23T00:00:00+00:00"
CONTROL_DAG_IDS = {"rs2gcs_connect", "rs2gcs_configure", "rs2gcs_disconnect"}


def _tenant(bucket: str, frequency: str, timezone: str = "UTC") -> dict:
    return {
        "source": "redshift_to_gcs",
        "redshift_conn_id": REDSHIFT_CONN_ID,
        "gcp_conn_id": GCP_CONN_ID,
        "bucket": bucket,
        "prefix": "dp",
        "syncFrequency": frequency,
        "timezone": timezone,
        "tables": [{"name": TABLE}],
    }


TENANTS = {
    "hourly_utc": _tenant(HOURLY_BUCKET, "hourly"),
    "daily_ny": _tenant("rs2gcs-dp-daily", "daily", "America/New_York"),
    "moon": _tenant("rs2gcs-dp-moon", "every blue moon"),
}
SCENARIOS: dict[str, str | dict | None] = {
    "tenants": TENANTS,
    "not_json": '{"acme": {"bucket": "acme-exports",',  # cut off mid-object
    "missing": None,
}


@dataclass
class Parsed:
    """One scenario after its dag-processor pass: the home and what the metadata DB holds."""

    home: AirflowHome
    dags: dict[str, sqlite3.Row]  # the ``dag`` table's live rows, by dag_id
    import_errors: list[sqlite3.Row]  # the ``import_error`` table
    import_errors_cli: tuple[int, str] | None  # ``airflow dags list-import-errors -o json``: exit, last line

    def query(self, sql: str, *args: object) -> list[sqlite3.Row]:
        with sqlite3.connect(self.home.path / "airflow.db") as db:
            db.row_factory = sqlite3.Row
            return db.execute(sql, args).fetchall()

    def serialized(self, dag_id: str) -> dict:
        """The DAG as the dag-processor serialized it into ``serialized_dag``."""
        rows = self.query(
            "select data, data_compressed from serialized_dag where dag_id = ? order by created_at desc",
            dag_id,
        )
        assert rows, f"{dag_id} has no serialized DAG"
        data, compressed = rows[0]["data"], rows[0]["data_compressed"]
        return json.loads(data if data is not None else zlib.decompress(compressed))["dag"]

    def tags(self, dag_id: str) -> set[str]:
        return {row["name"] for row in self.query("select name from dag_tag where dag_id = ?", dag_id)}


def _read_db(home: AirflowHome) -> tuple[dict[str, sqlite3.Row], list[sqlite3.Row]]:
    with sqlite3.connect(home.path / "airflow.db") as db:
        db.row_factory = sqlite3.Row
        dags = {row["dag_id"]: row for row in db.execute("select * from dag where is_stale = 0")}
        errors = db.execute("select filename, stacktrace from import_error").fetchall()
    return dags, errors


def _parse_scenario(variable: str | dict | None, ask_cli: bool) -> Parsed:
    home = AirflowHome()
    try:
        home.migrate()  # a copy of the DB this process migrated once
        if variable is not None:
            home.set_variable(VARIABLE, variable)
        home.run("dag-processor", "-n", "1", timeout=240)
        dags, errors = _read_db(home)
        cli_errors = None
        if ask_cli:  # the same table as _read_db reads; the CLI costs seconds, so ask it once
            cli = home.run("dags", "list-import-errors", "-o", "json", check=False)
            lines = [line for line in cli.stdout.splitlines() if line.strip()]  # warnings come first
            cli_errors = (cli.returncode, lines[-1] if lines else "")
    except BaseException:
        home.close()
        raise
    return Parsed(home, dags, errors, cli_errors)


@pytest.fixture(scope="module")
def parsed():
    """Every scenario parsed once by its own real dag-processor pass; the homes live for the module."""
    with ThreadPoolExecutor(max_workers=len(SCENARIOS)) as pool:
        futures = {
            name: pool.submit(_parse_scenario, variable, name == "tenants")
            for name, variable in SCENARIOS.items()
        }
    results = {name: f.result() for name, f in futures.items() if f.exception() is None}
    failed = [f.exception() for f in futures.values() if f.exception() is not None]
    try:
        if failed:
            raise failed[0]
        yield results
    finally:
        for result in results.values():
            result.home.close()


def _utc(text: str) -> dt.datetime:
    """A datetime column of the SQLite metadata DB (naive UTC text) as an aware UTC datetime."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


# --- three tenants: two schedules and one placeholder ----------------------------------------------
def test_no_import_error_in_any_scenario(parsed):
    for name, result in parsed.items():
        assert result.import_errors == [], f"{name}: {[dict(e) for e in result.import_errors]}"
    assert parsed["tenants"].import_errors_cli == (0, "[]"), parsed["tenants"].import_errors_cli


def test_every_tenant_has_a_dag_from_the_factory_file(parsed):
    dags = parsed["tenants"].dags
    expected = {f"rs2gcs_sync__{tenant_id}" for tenant_id in TENANTS} | CONTROL_DAG_IDS
    assert set(dags) == expected
    for row in dags.values():
        assert row["relative_fileloc"] == "rs2gcs.py"
        assert row["last_parsed_time"] is not None


@pytest.mark.parametrize(
    ("tenant_id", "frequency", "timezone", "period"),
    [
        ("hourly_utc", "hourly", "UTC", dt.timedelta(hours=1)),
        ("daily_ny", "daily", "America/New_York", dt.timedelta(days=1)),
    ],
)
def test_ready_tenant_is_scheduled_unpaused_with_a_real_data_interval(
    parsed, tenant_id, frequency, timezone, period
):
    result = parsed["tenants"]
    dag_id = f"rs2gcs_sync__{tenant_id}"
    row = result.dags[dag_id]
    cron = cron_for(tenant_id, frequency)

    # Unpaused although this home creates new DAGs paused (is_paused_upon_creation=False).
    assert result.home.env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "True"
    assert row["is_paused"] == 0
    assert row["timetable_type"] == "CronDataIntervalTimetable"
    assert row["timetable_summary"] == cron
    serialized = result.serialized(dag_id)
    assert serialized["timetable"]["__var"] == {"expression": cron, "timezone": timezone}
    assert serialized["timezone"] == timezone
    assert {"rs2gcs", f"tenant:{tenant_id}"} <= result.tags(dag_id)

    # The next run has a non-empty data interval, one period of wall-clock time in the tenant's zone
    # (23 or 25 hours across a DST change), ending on a tick of the cron there (Airflow's default cron
    # timetable would give start == end).
    start = _utc(row["next_dagrun_data_interval_start"])
    end = _utc(row["next_dagrun_data_interval_end"])
    assert start < end
    zone = ZoneInfo(timezone)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    assert local_end.replace(tzinfo=None) - local_start.replace(tzinfo=None) == period
    minute, hour = cron.split()[:2]
    assert local_end.minute == int(minute)
    if hour != "*":
        assert local_end.hour == int(hour)


def test_bad_sync_frequency_gives_a_placeholder_that_explains_it(parsed):
    result = parsed["tenants"]
    dag_id = "rs2gcs_sync__moon"
    row = result.dags[dag_id]
    assert row["timetable_summary"] in (None, "None")  # trigger-only: never scheduled
    assert "rs2gcs:invalid" in result.tags(dag_id)
    serialized = result.serialized(dag_id)
    doc = serialized["doc_md"]
    assert "moon" in doc
    assert "syncFrequency" in doc
    assert "every blue moon" in doc
    for allowed in ("'5min'", "'15min'", "'hourly'", "'daily'", "'weekly'", "'monthly'", "'manual'", "cron"):
        assert allowed in doc, allowed
    task_ids = [task["__var"]["task_id"] for task in serialized["tasks"]]
    assert task_ids == ["invalid_configuration"]


# --- the Variable itself is broken, or missing ----------------------------------------------------
def test_variable_that_is_not_json_gives_one_error_dag(parsed):
    result = parsed["not_json"]
    assert set(result.dags) == CONTROL_DAG_IDS | {"rs2gcs_tenants_invalid"}
    assert "rs2gcs:invalid" in result.tags("rs2gcs_tenants_invalid")
    doc = result.serialized("rs2gcs_tenants_invalid")["doc_md"]
    assert "rs2gcs_tenants" in doc
    assert "not valid JSON" in doc


def test_missing_variable_gives_no_sync_dag(parsed):
    result = parsed["missing"]
    assert not [d for d in result.dags if d.startswith("rs2gcs_sync__")]
    assert "rs2gcs_tenants_invalid" not in result.dags
    assert set(result.dags) == CONTROL_DAG_IDS  # the control DAGs always exist


# --- airflow dags test with the Variable only in the metadata DB -----------------------------------
def _download(stack, bucket: str, name: str) -> bytes:
    quoted = urllib.parse.quote(name, safe="")
    with urllib.request.urlopen(
        f"{stack.gcs.url}/storage/v1/b/{bucket}/o/{quoted}?alt=media", timeout=30
    ) as r:
        return r.read()


def test_dags_test_runs_the_tenant_dag_from_the_db_variable(parsed, stack):
    stack.postgres.psql(
        f"create table if not exists {TABLE} (id int primary key, name text);"
        f"truncate {TABLE};"
        f"insert into {TABLE} values (1, 'one'), (2, 'two'), (3, NULL);"
        f'grant usage on schema public to "{stack.postgres.user}";'
        f'grant select on {TABLE} to "{stack.postgres.user}";',
        database=stack.postgres.database,
    )
    stack.gcs.create_bucket(HOURLY_BUCKET)
    home = parsed["tenants"].home
    assert "AIRFLOW_VAR_RS2GCS_TENANTS" not in home.env  # the Variable is only in the metadata DB
    home.env.update(stack.airflow_env())

    result = home.run("dags", "test", "rs2gcs_sync__hourly_utc", LOGICAL_DATE, timeout=240, check=False)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    runs = parsed["tenants"].query("select state from dag_run where dag_id = 'rs2gcs_sync__hourly_utc'")
    assert [row["state"] for row in runs] == ["success"]
    manifests = [n for n in stack.gcs.list_objects(HOURLY_BUCKET) if n.endswith("/_manifest.json")]
    assert len(manifests) == 1, manifests
    assert manifests[0].startswith(f"dp/hourly_utc/{TABLE}/")
    manifest = json.loads(_download(stack, HOURLY_BUCKET, manifests[0]))
    assert manifest["rows"] == 3
    assert manifest["dag_id"] == "rs2gcs_sync__hourly_utc"
