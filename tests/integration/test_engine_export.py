"""Exactly once per interval, on the real stack: re-runs, failed tries, empty results, incremental windows,
single-node fetches and a GCS outage."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from stack_exports import export_through_engine

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

BUCKET = "engine-export"
TABLE = "public.rs2gcs_export_events"
ROWS = 3000
DAY = dt.timedelta(days=1)
START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

# Events over three days, with rows exactly on each interval boundary.
SCHEMA_SQL = f"""
DROP TABLE IF EXISTS {TABLE};
CREATE TABLE {TABLE} (id bigint, updated_at timestamptz, seen_at timestamp, payload text);
INSERT INTO {TABLE}
SELECT g, timestamptz '2026-03-01 00:00:00+00' + (g - 1) * interval '86 seconds',
       timestamp '2026-03-01 00:00:00' + (g - 1) * interval '86 seconds', repeat(md5(g::text), 1 + g % 4)
FROM generate_series(1, {ROWS}) AS g;
INSERT INTO {TABLE} VALUES (90001, '2026-03-02 00:00:00+00', '2026-03-02 00:00:00', 'boundary'),
                           (90002, '2026-03-03 00:00:00+00', '2026-03-03 00:00:00', 'boundary');
"""


@pytest.fixture(scope="module")
def loaded(stack):
    stack.postgres.psql(
        SCHEMA_SQL + f'GRANT SELECT ON {TABLE} TO "{stack.postgres.user}";', database=stack.postgres.database
    )
    stack.gcs.create_bucket(BUCKET)
    return stack


@pytest.fixture
def gcs(loaded, stack_env):
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    return GCSHook(gcp_conn_id="rs2gcs_gcs")


def export(sql: str, prefix: str, **settings):
    interval = ("2026-03-01T00:00:00+00:00", "2026-03-02T00:00:00+00:00")
    return export_through_engine(sql, BUCKET, prefix, interval, "d", **settings)


def listing(gcs, prefix: str) -> dict[str, str]:
    """Object name -> the MD5 GCS reports, for every object under ``prefix/``."""
    bucket = gcs.get_conn().bucket(BUCKET)
    return {blob.name: blob.md5_hash for blob in bucket.list_blobs(prefix=f"{prefix}/")}


def manifest_of(gcs, prefix: str) -> dict:
    return json.loads(gcs.download(BUCKET, f"{prefix}/_manifest.json"))


def ids_in(gcs, manifest: dict) -> list[int]:
    tables = [pq.read_table(io.BytesIO(gcs.download(BUCKET, o["name"]))) for o in manifest["objects"]]
    return sorted(pa.concat_tables(tables).column("id").to_pylist())


SMALL = {"fetch_size": 200, "batch_rows": 256, "max_file_bytes": 40_000}


@pytest.fixture(params=["wire", "driver"])
def fetch_method(request) -> str:
    """The tests that take it run on the fast path and on the plain driver path."""
    return request.param


def test_the_manifest_is_last_and_lists_every_object_with_its_gcs_md5(gcs, fetch_method):
    prefix = f"m/{fetch_method}/orders"
    result = export(f"SELECT * FROM {TABLE}", prefix, fetch_method=fetch_method, **SMALL)
    manifest = manifest_of(gcs, prefix)
    present = listing(gcs, prefix)
    assert result.objects == len(manifest["objects"]) > 1
    assert {o["name"]: o["md5"] for o in manifest["objects"]} == {
        k: v for k, v in present.items() if "part-" in k
    }
    assert set(present) == {o["name"] for o in manifest["objects"]} | {f"{prefix}/_manifest.json"}
    assert manifest["rows"] == sum(o["rows"] for o in manifest["objects"]) == ROWS + 2
    assert manifest["source_query"] == f"SELECT * FROM {TABLE}"
    assert manifest["data_interval"] == {
        "start": "2026-03-01T00:00:00+00:00",
        "end": "2026-03-02T00:00:00+00:00",
    }
    assert [c["source_type"] for c in manifest["schema"]] == ["bigint", "timestamptz", "timestamp", "text"]
    assert ids_in(gcs, manifest) == [*range(1, ROWS + 1), 90001, 90002]


def test_rerunning_an_interval_changes_nothing_and_a_smaller_rerun_leaves_no_orphans(gcs, fetch_method):
    sql, prefix = f"SELECT * FROM {TABLE}", f"rerun/{fetch_method}/orders"
    export(sql, prefix, fetch_method=fetch_method, **SMALL)
    first = (listing(gcs, prefix), manifest_of(gcs, prefix))
    export(sql, prefix, fetch_method=fetch_method, **SMALL)
    assert (listing(gcs, prefix), manifest_of(gcs, prefix)) == first
    export(f"{sql} WHERE id <= 100", prefix, fetch_method=fetch_method, **SMALL)  # fewer rows, fewer files
    manifest = manifest_of(gcs, prefix)
    assert len(manifest["objects"]) == 1 < len(first[1]["objects"])
    assert set(listing(gcs, prefix)) == {manifest["objects"][0]["name"], f"{prefix}/_manifest.json"}
    assert ids_in(gcs, manifest) == list(range(1, 101))


def test_a_failed_try_leaves_no_manifest_and_no_objects(gcs, fetch_method):
    prefix = f"fail/{fetch_method}/orders"
    export(f"SELECT * FROM {TABLE}", prefix, fetch_method=fetch_method, **SMALL)
    assert f"{prefix}/_manifest.json" in listing(gcs, prefix)
    failing = f"SELECT id, payload, 1 / (id - 2500) AS boom FROM {TABLE}"  # division by zero at row 2500
    with pytest.raises(Exception, match="division by zero"):
        export(failing, prefix, fetch_method=fetch_method, **SMALL)
    assert listing(gcs, prefix) == {}


@pytest.mark.parametrize(
    ("export_format", "compression", "extension"),
    [("parquet", "snappy", "parquet"), ("csv", "gzip", "csv.gz"), ("jsonl", "none", "jsonl")],
)
def test_an_empty_result_publishes_a_manifest_with_zero_rows_and_one_empty_file(
    gcs, export_format, compression, extension, fetch_method
):
    prefix = f"empty/{fetch_method}/{export_format}"
    sql = f"SELECT * FROM {TABLE} WHERE false"
    result = export(
        sql, prefix, export_format=export_format, compression=compression, fetch_method=fetch_method
    )
    manifest = manifest_of(gcs, prefix)
    assert (result.rows, manifest["rows"], result.objects) == (0, 0, 1)
    assert manifest["objects"][0]["name"] == f"{prefix}/part-00000.{extension}"
    assert [c["name"] for c in manifest["schema"]] == ["id", "updated_at", "seen_at", "payload"]


def test_incremental_runs_over_consecutive_intervals_add_up_to_the_table(gcs, fetch_method):
    from airflow.sdk import DAG

    from airflow_rs2gcs.transfers.redshift_to_gcs import RedshiftToGCSOperator

    landed: list[int] = []
    for column in ("updated_at", "seen_at"):  # timestamptz, and a naive timestamp read as UTC
        landed.clear()
        for day in range(4):
            start, end = START + day * DAY, START + (day + 1) * DAY
            with DAG(f"incremental_{fetch_method}_{column}_{day}", schedule=None):
                operator = RedshiftToGCSOperator(
                    task_id="t",
                    sql=f"SELECT * FROM {TABLE}",
                    bucket=BUCKET,
                    object_prefix=f"incremental/{fetch_method}/{column}/dt={start:%Y-%m-%d}",
                    redshift_conn_id="rs2gcs_redshift",
                    gcp_conn_id="rs2gcs_gcs",
                    incremental_column=column,
                    fetch_method=fetch_method,
                )
            result = operator.execute({"data_interval_start": start, "data_interval_end": end})  # type: ignore[arg-type]
            ids = ids_in(gcs, manifest_of(gcs, result["object_prefix"]))
            assert len(ids) == result["rows"]
            landed += ids
            if day == 1:  # the row exactly at 2026-03-02 00:00 belongs to the interval it starts
                assert 90001 in ids
        assert sorted(landed) == [*range(1, ROWS + 1), 90001, 90002], column


def test_single_node_clusters_fetch_at_most_1000_rows(gcs):
    from airflow_rs2gcs.transfers.redshift_to_gcs import RedshiftToGCSOperator

    operator = RedshiftToGCSOperator(
        task_id="t",
        sql=f"SELECT * FROM {TABLE}",
        bucket=BUCKET,
        object_prefix="single",
        single_node_cluster=True,
    )
    assert operator.fetch_size == 1000
    result = export(f"SELECT * FROM {TABLE}", "single/orders", fetch_size=operator.fetch_size)
    assert result.rows == ROWS + 2


def test_a_gcs_outage_during_the_export_is_retried(gcs, loaded):
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = export(f"SELECT * FROM {TABLE}", "outage/orders", **SMALL)
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    loaded.gcs.stop()
    worker = threading.Thread(target=run)
    worker.start()
    try:
        time.sleep(2.5)  # the export starts against a dead endpoint and retries
    finally:
        loaded.gcs.start()  # from the main thread: the emulator dies with the thread that starts it
    worker.join(timeout=300)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"].rows == ROWS + 2
    assert ids_in(gcs, manifest_of(gcs, "outage/orders")) == [*range(1, ROWS + 1), 90001, 90002]


def test_the_export_runs_read_only_so_a_write_hidden_in_a_function_is_refused(loaded, gcs, fetch_method):
    """The query gate refuses side effects by name; a user-defined function is stopped by the server."""
    pg = loaded.postgres
    pg.psql(
        "DROP TABLE IF EXISTS public.rs2gcs_export_victim; CREATE TABLE public.rs2gcs_export_victim (i int);"
        "CREATE OR REPLACE FUNCTION public.rs2gcs_sneaky() RETURNS int LANGUAGE sql AS "
        "$$ INSERT INTO public.rs2gcs_export_victim VALUES (1); SELECT 1 $$;"
        f'GRANT ALL ON public.rs2gcs_export_victim TO "{pg.user}";',
        database=pg.database,
    )
    with pytest.raises(Exception, match="read-only transaction"):
        export(
            "SELECT public.rs2gcs_sneaky() AS one",
            f"readonly/{fetch_method}/sneaky",
            fetch_method=fetch_method,
        )
    assert pg.psql("SELECT count(*) FROM public.rs2gcs_export_victim", database=pg.database).strip() == "0"
    assert f"readonly/{fetch_method}/sneaky/_manifest.json" not in listing(
        gcs, f"readonly/{fetch_method}/sneaky"
    )
    plain = export(
        f"SELECT id FROM {TABLE} WHERE id <= 10", f"readonly/{fetch_method}/plain", fetch_method=fetch_method
    )
    assert plain.rows == 10


# Every decoder runs (numeric, date, time, bytea, text, bool, floats, timestamps) in a fresh process.
_EVERY_DECODER_SQL = (
    f"SELECT id, updated_at, seen_at, payload, (id / 7.0)::numeric(14, 2) AS amount,"
    f" (id * 1e20 / 7)::numeric(38, 10) AS wide, updated_at::date AS day, seen_at::time AS clock,"
    f" decode(md5(payload), 'hex') AS digest, id % 2 = 0 AS even, id / 3.0::float8 AS ratio"
    f" FROM {TABLE} WHERE id <= 500"
)
_COMPUTE_PROBE = f"""
import sys
sys.path.insert(0, "tests/integration")
from stack_exports import export_through_engine
result = export_through_engine({_EVERY_DECODER_SQL!r}, {BUCKET!r}, sys.argv[2], ("a", "b"), "d",
                               export_format=sys.argv[1], fetch_method=sys.argv[3])
assert result.rows == 500, result
print("compute kernels loaded:", "pyarrow._compute" in sys.modules)
"""


@pytest.mark.parametrize(("export_format", "loaded_kernels"), [("parquet", False), ("csv", True)])
def test_a_parquet_export_never_loads_arrows_compute_kernels(
    loaded, stack_env, export_format, loaded_kernels, fetch_method
):
    """Loading them costs every export process ~12 MB of RSS (bench/sync_bench.py's memory target);
    only the text formats need them."""
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            _COMPUTE_PROBE,
            export_format,
            f"kernels/{fetch_method}/{export_format}",
            fetch_method,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert f"compute kernels loaded: {loaded_kernels}" in probe.stdout


# --- several small tables in one task (the sync DAG's sync_small_tables) ------------------------------------

GROUP = ("public.rs2gcs_group_a", "public.rs2gcs_group_b", "public.rs2gcs_group_late")


class TryOf:
    """The task instance of one try as the operator sees it in its context: try number and pushed XComs."""

    def __init__(self, try_number: int) -> None:
        self.try_number = try_number
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


def _group_operator(plan_id: str):
    from airflow.sdk import DAG

    from airflow_rs2gcs.transfers.redshift_tables_to_gcs import RedshiftTablesToGCSOperator

    tables = [
        {
            "table": name,
            "sql": f"SELECT * FROM {name}",
            "object_prefix": f"group/{name}/dt=2026-03-01",
            "incremental_column": None,
            "fetch_method": "auto",
            # A projection rewrites the exported query: a retry must still keep this table's manifest.
            **({"columns": ["id"]} if name == GROUP[1] else {}),
        }
        for name in GROUP
    ]
    with DAG(f"group_{plan_id}", schedule=None):
        return RedshiftTablesToGCSOperator(
            task_id="sync_small_tables",
            tables=tables,
            bucket=BUCKET,
            redshift_conn_id="rs2gcs_redshift",
            gcp_conn_id="rs2gcs_gcs",
            plan_id=plan_id,
            pool_slots=2,
        )


def _context(try_number: int) -> dict:
    end = START + DAY
    return {"data_interval_start": START, "data_interval_end": end, "ti": TryOf(try_number)}


def _manifest_generation(gcs, name: str) -> int | None:
    blob = gcs.get_conn().bucket(BUCKET).get_blob(f"group/{name}/dt=2026-03-01/_manifest.json")
    return None if blob is None else int(blob.generation)


def _lineage(operator):
    return operator.get_openlineage_facets_on_complete(None)


def test_an_unqualified_table_is_named_in_redshifts_current_schema(loaded, stack_env):
    """The amazon hook's CURRENT_SCHEMA() query, through the real driver and the shim."""
    from airflow_rs2gcs.transfers.lineage import TableExport, task_lineage

    lineage = task_lineage(
        "rs2gcs_redshift", [TableExport("select * from rs2gcs_export_events", BUCKET, "p/t")]
    )
    assert [i.name for i in lineage.inputs] == [f"{loaded.postgres.database}.public.rs2gcs_export_events"]


def test_a_group_exports_every_table_keeps_the_others_when_one_fails_and_its_retry_redoes_only_that_one(
    loaded, gcs
):
    from airflow_rs2gcs.transfers.redshift_tables_to_gcs import TablesFailed

    pg = loaded.postgres
    a, b, late = GROUP
    pg.psql(
        f"DROP TABLE IF EXISTS {late}; DROP TABLE IF EXISTS {a}; DROP TABLE IF EXISTS {b};"
        f"CREATE TABLE {a} AS SELECT g AS id FROM generate_series(1, 10) g;"
        f"CREATE TABLE {b} AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 20) g;"
        f'GRANT SELECT ON {a}, {b} TO "{pg.user}";',
        database=pg.database,
    )
    # Try 1: the third table does not exist yet (as if dropped between plan and export).
    first = _context(1)
    failing = _group_operator("plan-1")
    with pytest.raises(TablesFailed, match=r"1 of 3 table\(s\) failed \(public\.rs2gcs_group_late: "):
        failing.execute(first)  # type: ignore[arg-type]
    # Its FAIL event's lineage: every table, statistics only for the two that were published.
    statistics = {o.name: o.outputFacets.get("outputStatistics") for o in _lineage(failing).outputs}
    assert {name: s and s.rowCount for name, s in statistics.items()} == {
        f"group/{a}": 10,
        f"group/{b}": 20,
        f"group/{late}": None,
    }
    kept = first["ti"].pushed["return_value"]
    assert [(o["table"], o["rows"]) for o in kept] == [(a, 10), (b, 20)]
    generations = {name: _manifest_generation(gcs, name) for name in GROUP}
    assert generations[a] and generations[b] and generations[late] is None
    assert manifest_of(gcs, f"group/{b}/dt=2026-03-01")["plan_id"] == "plan-1"

    # Try 2 of the same plan: only the missing table is exported; the others are read from their manifests.
    pg.psql(
        f"CREATE TABLE {late} AS SELECT g AS id FROM generate_series(1, 5) g;"
        f'GRANT SELECT ON {late} TO "{pg.user}";',
        database=pg.database,
    )
    retried = _group_operator("plan-1")
    outcomes = retried.execute(_context(2))  # type: ignore[arg-type]
    assert [(o["table"], o["rows"], o.get("kept", False)) for o in outcomes] == [
        (a, 10, True),
        (b, 20, True),
        (late, 5, False),
    ]
    assert _manifest_generation(gcs, a) == generations[a] and _manifest_generation(gcs, b) == generations[b]
    assert ids_in(gcs, manifest_of(gcs, f"group/{late}/dt=2026-03-01")) == [1, 2, 3, 4, 5]
    # Lineage of the retry: the kept tables are reported from their manifests, named through the real hook.
    lineage = _lineage(retried)
    namespace = f"redshift://127.0.0.1:{loaded.shim_port}"
    assert sorted((i.namespace, i.name) for i in lineage.inputs) == [
        (namespace, f"{pg.database}.{n}") for n in GROUP
    ]
    for output in lineage.outputs:
        manifest = manifest_of(gcs, f"{output.name}/dt=2026-03-01")
        stats = output.outputFacets["outputStatistics"]
        assert (stats.rowCount, stats.size, stats.fileCount) == (
            manifest["rows"],
            manifest["bytes"],
            len(manifest["objects"]),
        )
    b_input = next(i for i in lineage.inputs if i.name.endswith(b))
    columns = manifest_of(gcs, f"group/{b}/dt=2026-03-01")["schema"]
    assert [(f.name, f.type) for f in b_input.facets["schema"].fields] == [
        (c["name"], c["source_type"]) for c in columns
    ]
    assert [f.name for f in b_input.facets["schema"].fields] == ["id"]  # note: not exported

    # A new plan (a new run, or a cleared run) exports everything again.
    again = _group_operator("plan-2").execute(_context(2))  # type: ignore[arg-type]
    assert not any(o.get("kept") for o in again)
    assert _manifest_generation(gcs, a) != generations[a]


def test_row_estimates_come_from_the_catalog_and_views_are_unknown(loaded, stack_env):
    from airflow_rs2gcs.hooks.redshift_catalog import RedshiftCatalogHook

    pg = loaded.postgres
    pg.psql(
        "DROP VIEW IF EXISTS public.rs2gcs_estimate_view;"
        f"CREATE VIEW public.rs2gcs_estimate_view AS SELECT * FROM {TABLE};"
        f'GRANT SELECT ON public.rs2gcs_estimate_view TO "{pg.user}";',
        database=pg.database,
    )
    hook = RedshiftCatalogHook(redshift_conn_id="rs2gcs_redshift")
    assert hook.is_redshift() is False  # PostgreSQL behind the Redshift driver
    names = [TABLE, "public.rs2gcs_estimate_view", "public.rs2gcs_no_such_table"]
    before = hook.row_estimates(names)
    # Before ANALYZE (if autovacuum has not run) the size on disk stands in: never below the real count.
    assert before[TABLE] is not None and before[TABLE] >= ROWS
    assert before["public.rs2gcs_estimate_view"] is None and before["public.rs2gcs_no_such_table"] is None
    pg.psql(f"ANALYZE {TABLE};", database=pg.database)
    assert hook.row_estimates([TABLE]) == {TABLE: ROWS + 2}


# --- Data contract: verify "count" and capture_deletes (docs/output-format.md) -----------------------

CONTRACT_TABLE = "public.rs2gcs_contract_orders"
CONTRACT_SQL = f"""
DROP TABLE IF EXISTS {CONTRACT_TABLE};
CREATE TABLE {CONTRACT_TABLE} (region int, id bigint, updated_at timestamptz, note text,
                               PRIMARY KEY (region, id));
INSERT INTO {CONTRACT_TABLE}
SELECT g % 3, g, timestamptz '2026-03-01 00:00:00+00' + g * interval '1 minute', md5(g::text)
FROM generate_series(1, 2000) AS g;
"""
CONTRACT_WINDOW = (
    f"SELECT * FROM (SELECT * FROM {CONTRACT_TABLE}) AS rs2gcs_source "
    "WHERE updated_at >= '2026-03-01 12:00:00+00' AND updated_at < '2026-03-02 00:00:00+00'"
)
CONTRACT_KEYS = f'SELECT "region", "id" FROM (SELECT * FROM {CONTRACT_TABLE}) AS rs2gcs_keys'


@pytest.fixture
def contract_table(loaded):
    pg = loaded.postgres
    pg.psql(CONTRACT_SQL + f'GRANT SELECT ON {CONTRACT_TABLE} TO "{pg.user}";', database=pg.database)
    return pg


def column_of(gcs, manifest: dict, name: str) -> list:
    tables = [pq.read_table(io.BytesIO(gcs.download(BUCKET, o["name"]))) for o in manifest["objects"]]
    return pa.concat_tables(tables).column(name).to_pylist()


def keys_in(gcs, manifest: dict) -> list[tuple[int, int]]:
    objects = manifest["keys"]["objects"]
    table = pa.concat_tables([pq.read_table(io.BytesIO(gcs.download(BUCKET, o["name"]))) for o in objects])
    return sorted(zip(table.column("region").to_pylist(), table.column("id").to_pylist(), strict=True))


def test_verify_counts_in_the_snapshot_the_rows_come_from(gcs, contract_table, fetch_method, monkeypatch):
    """Rows committed by another session between the count and the cursor are in neither: one snapshot."""
    from airflow_rs2gcs.engine.snapshot_reads import ContractReads

    counted = ContractReads.before

    def count_then_insert(self, cursor):
        counted(self, cursor)
        contract_table.psql(
            f"INSERT INTO {CONTRACT_TABLE} SELECT 9, g, '2026-03-01 18:00:00+00', 'late' "
            "FROM generate_series(1, 5) AS g",
            database=contract_table.database,
        )

    monkeypatch.setattr(ContractReads, "before", count_then_insert)
    prefix = f"contract/verify/{fetch_method}"
    result = export(CONTRACT_WINDOW, prefix, fetch_method=fetch_method, verify="count", **SMALL)
    manifest = manifest_of(gcs, prefix)
    assert manifest["source_rows"] == manifest["rows"] == result.rows == 720  # minutes 720..1439
    assert "keys" not in manifest
    assert 9 not in set(column_of(gcs, manifest, "region"))
    after = contract_table.psql(
        f"SELECT count(*) FROM ({CONTRACT_WINDOW}) AS w", database=contract_table.database
    )
    assert int(after.strip()) == 725  # the late rows were committed: the next snapshot has them


def test_verify_fails_and_publishes_nothing_when_the_export_lost_rows(gcs, contract_table, monkeypatch):
    """A row lost between the source and the files (a fault at the boundary) fails the table: no
    manifest, and neither its data nor its _keys/ objects stay."""
    from airflow_rs2gcs.engine import export as export_module

    prefix = "contract/lost"
    export(CONTRACT_WINDOW, prefix, verify="count", key_query=CONTRACT_KEYS, **SMALL)
    assert f"{prefix}/_manifest.json" in listing(gcs, prefix)
    real = export_module.open_row_source

    def losing_one_row(*args, **kwargs):
        source = real(*args, **kwargs)
        batches = source.batches

        def fewer():
            for index, batch in enumerate(batches()):
                yield batch.slice(1) if index == 0 else batch

        source.batches = fewer
        return source

    monkeypatch.setattr(export_module, "open_row_source", losing_one_row)
    with pytest.raises(Exception, match=r"verify 'count' failed: the source holds 720 row\(s\).*wrote 719"):
        export(CONTRACT_WINDOW, prefix, verify="count", key_query=CONTRACT_KEYS, **SMALL)
    assert listing(gcs, prefix) == {}


def test_capture_deletes_writes_the_whole_current_key_set_beside_the_interval(
    gcs, contract_table, fetch_method
):
    pg = contract_table
    pg.psql(f"DELETE FROM {CONTRACT_TABLE} WHERE id % 10 = 0 OR id < 50", database=pg.database)
    expected = pg.psql(f"SELECT region || ',' || id FROM {CONTRACT_TABLE}", database=pg.database).split()
    prefix = f"contract/keys/{fetch_method}"
    for _ in range(2):  # a re-run replaces the key objects, never adds to them
        export(CONTRACT_WINDOW, prefix, fetch_method=fetch_method, key_query=CONTRACT_KEYS, **SMALL)
    manifest = manifest_of(gcs, prefix)
    keys = manifest["keys"]
    assert keys["columns"] == ["region", "id"]
    assert keys["rows"] == len(expected) == 1755 > manifest["rows"]  # every current key, not the window's
    assert keys_in(gcs, manifest) == sorted(tuple(map(int, k.split(","))) for k in expected)
    assert all(o["name"].startswith(f"{prefix}/_keys/part-") for o in keys["objects"])
    listed = {o["name"] for o in manifest["objects"] + keys["objects"]} | {f"{prefix}/_manifest.json"}
    assert set(listing(gcs, prefix)) == listed


# The data contract: hashed and excluded columns, and schema drift against the last manifest.
HASH_KEY = "s3cret-hmac-key"


def test_hashed_values_are_the_hmac_of_the_csv_text_and_excluded_columns_are_not_exported(gcs, monkeypatch):
    import csv
    import hashlib
    import hmac

    from airflow_rs2gcs.transfers.redshift_tables_to_gcs import RedshiftTablesToGCSOperator

    monkeypatch.setenv(
        "AIRFLOW_CONN_RS2GCS_HASH_KEY", json.dumps({"conn_type": "generic", "password": HASH_KEY})
    )
    sql = f"SELECT * FROM {TABLE} WHERE id <= 300 OR id > 90000"
    contract = {"exclude_columns": ["seen_at"], "hash_columns": ["payload", "updated_at"]}
    tables = [
        {"table": "plain", "sql": sql, "object_prefix": "contract/plain"},
        {"table": "hashed", "sql": sql, "object_prefix": "contract/hashed", **contract},
    ]
    operator = RedshiftTablesToGCSOperator(
        task_id="contract",
        tables=tables,
        bucket=BUCKET,
        redshift_conn_id="rs2gcs_redshift",
        gcp_conn_id="rs2gcs_gcs",
        export_format="csv",
        hash_key_conn_id="rs2gcs_hash_key",
    )
    operator.execute(_context(1))  # type: ignore[arg-type]

    def rows(prefix: str) -> list[dict[str, str]]:
        (name,) = [o["name"] for o in manifest_of(gcs, prefix)["objects"]]
        return list(csv.DictReader(io.StringIO(gcs.download(BUCKET, name).decode("utf-8"))))

    plain, hashed = rows("contract/plain"), rows("contract/hashed")
    assert list(hashed[0]) == ["id", "updated_at", "payload"]  # seen_at is gone, the order is kept
    assert [r["id"] for r in hashed] == [r["id"] for r in plain] and len(plain) == 302

    def mac(text: str) -> str:
        return hmac.new(HASH_KEY.encode(), text.encode("utf-8"), hashlib.sha256).hexdigest()

    for p, h in zip(plain, hashed, strict=True):
        assert (h["payload"], h["updated_at"]) == (mac(p["payload"]), mac(p["updated_at"]))
    manifest = manifest_of(gcs, "contract/hashed")
    assert manifest["hashed_columns"] == ["payload", "updated_at"]
    assert HASH_KEY not in json.dumps(manifest)
    assert [(c["name"], c["arrow_type"]) for c in manifest["schema"]] == [
        ("id", "int64"),
        ("updated_at", "string"),
        ("payload", "string"),
    ]
    assert "seen_at" not in manifest["source_query"].split(" FROM (")[0]  # never read: projected in SQL


def test_schema_drift_evolve_records_the_difference_and_fail_publishes_nothing(gcs):
    from airflow_rs2gcs.engine.contract import DataContract
    from airflow_rs2gcs.engine.drift import SchemaDrift

    root = "drift/acme/events"
    old, new, refused = (f"{root}/dt=2026-03-0{d}/interval=i{d}" for d in (1, 2, 3))
    export(f"SELECT id, payload FROM {TABLE} WHERE id <= 10", old)
    assert "schema_change" not in manifest_of(gcs, old)  # the first manifest has nothing to differ from

    changed = f"SELECT id::int4 AS id, 1 AS extra FROM {TABLE} WHERE id <= 10"
    result = export(changed, new)  # on_schema_change defaults to evolve
    expected = {
        "added": ["extra"],
        "removed": ["payload"],
        "changed": [{"name": "id", "from": "bigint (int64)", "to": "integer (int32)"}],
        "reordered": False,
    }
    assert result.schema_change == expected == manifest_of(gcs, new)["schema_change"]
    assert manifest_of(gcs, new)["rows"] == 10

    before = (listing(gcs, root), manifest_of(gcs, new))
    back = f"SELECT id, payload FROM {TABLE} WHERE id <= 10"
    for prefix in (refused, new):  # a new interval, and a re-run of the one holding the last manifest
        with pytest.raises(SchemaDrift, match=r"added: payload; removed: extra; changed: id from integer"):
            export_through_engine(
                back, BUCKET, prefix, ("a", "b"), "d", contract=DataContract(on_schema_change="fail")
            )
    assert (listing(gcs, root), manifest_of(gcs, new)) == before

    # In the sync DAG's task: refused without a retry (it would be refused again), the others exported.
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_rs2gcs.transfers.redshift_tables_to_gcs import RedshiftTablesToGCSOperator

    tables = [
        {"table": "events", "sql": back, "object_prefix": refused, "on_schema_change": "fail"},
        {"table": "other", "sql": back, "object_prefix": "drift/acme/other/dt=2026-03-01"},
    ]
    task = RedshiftTablesToGCSOperator(
        task_id="t",
        tables=tables,
        bucket=BUCKET,
        redshift_conn_id="rs2gcs_redshift",
        gcp_conn_id="rs2gcs_gcs",
    )
    with pytest.raises(AirflowFailException, match=r"1 of 2 table\(s\) refused by their data contract"):
        task.execute(_context(1))  # type: ignore[arg-type]
    assert (listing(gcs, root), manifest_of(gcs, new)) == before
    assert manifest_of(gcs, "drift/acme/other/dt=2026-03-01")["rows"] == 10

    same = export_through_engine(
        changed, BUCKET, refused, ("a", "b"), "d", contract=DataContract(on_schema_change="fail")
    )
    assert same.schema_change is None and "schema_change" not in manifest_of(gcs, refused)


def test_checks_with_a_projected_and_hashed_export_count_it_and_hash_its_keys_alike(gcs, contract_table):
    """Both halves of the data contract at once: verify counts the projected query that is exported,
    and the key set (read from the table, not the projection) hashes the key column the data hashes,
    so the anti-join still matches every exported row."""
    import hashlib
    import hmac

    from airflow_rs2gcs.engine.contract import DataContract

    contract = DataContract(exclude_columns=("note",), hash_columns=("id",), hash_key=HASH_KEY)
    prefix = "contract/checked-and-hashed"
    checks = {"verify": "count", "key_query": CONTRACT_KEYS}
    result = export(CONTRACT_WINDOW, prefix, contract=contract, **checks, **SMALL)
    manifest = manifest_of(gcs, prefix)
    assert manifest["source_query"].startswith('SELECT "region", "id", "updated_at" FROM (')
    assert manifest["source_rows"] == manifest["rows"] == result.rows == 720
    assert manifest["keys"]["columns"] == ["region", "id"] and manifest["keys"]["hashed_columns"] == ["id"]
    assert manifest["keys"]["rows"] == 2000

    def mac(value: int) -> str:
        return hmac.new(HASH_KEY.encode(), str(value).encode(), hashlib.sha256).hexdigest()

    keys = set(keys_in(gcs, manifest))
    assert (1, mac(1)) in keys and all(isinstance(i, str) for _, i in keys)
    exported = set(zip(column_of(gcs, manifest, "region"), column_of(gcs, manifest, "id"), strict=True))
    assert len(exported) == 720 and exported <= keys  # every exported row anti-joins to a key
