"""The data contract: schema diffs, HMAC hashing of text forms, and validation of the contract keys."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from types import SimpleNamespace

import pyarrow as pa
import pytest

from airflow_rs2gcs.engine.contract import ContractError, DataContract
from airflow_rs2gcs.engine.drift import SchemaDrift, describe_change, latest_manifest, schema_diff
from airflow_rs2gcs.engine.hashing import BatchHasher, hashed_array
from airflow_rs2gcs.outcomes import schema_change_events
from airflow_rs2gcs.planning import plan_tables
from airflow_rs2gcs.tenants import TenantConfigError, parse_tenant
from airflow_rs2gcs.transfers.redshift_tables_to_gcs import RedshiftTablesToGCSOperator
from airflow_rs2gcs.transfers.redshift_to_gcs import RedshiftToGCSOperator

ENTRY = {
    "redshift_conn_id": "rs",
    "gcp_conn_id": "gcs",
    "bucket": "acme-exports",
    "syncFrequency": "daily",
    "tables": [{"name": "public.orders"}],
}


def _col(name: str, source: str = "int4", arrow: str = "int32") -> dict:
    return {"name": name, "source_type": source, "arrow_type": arrow}


def test_schema_diff_lists_added_removed_changed_and_order():
    before = [_col("id"), _col("email", "varchar", "string"), _col("amount", "numeric", "decimal128(10, 2)")]
    after = [
        _col("id", "int8", "int64"),
        _col("amount", "numeric", "decimal128(10, 2)"),
        _col("note", "text", "string"),
    ]
    change = schema_diff(before, after)
    assert change == {
        "added": ["note"],
        "removed": ["email"],
        "changed": [{"name": "id", "from": "int4 (int32)", "to": "int8 (int64)"}],
        "reordered": False,
    }
    assert (
        describe_change(change)
        == "added: note; removed: email; changed: id from int4 (int32) to int8 (int64)"
    )


def test_schema_diff_sees_a_new_order_and_nothing_when_equal():
    a, b = _col("a"), _col("b")
    assert schema_diff([a, b], [a, b]) is None
    assert schema_diff([a, b], [b, a]) == {"added": [], "removed": [], "changed": [], "reordered": True}


def test_schema_drift_error_lists_the_difference_and_how_to_accept_it():
    error = str(
        SchemaDrift({"added": ["x"], "removed": ["y"], "changed": [], "reordered": False}, "gs://b/m")
    )
    assert "added: x" in error and "removed: y" in error and "gs://b/m" in error
    assert "set on_schema_change to 'evolve' for one run" in error


def test_hashes_are_the_hmac_of_the_csv_text_form_and_nulls_stay_null():
    key = b"k3y"
    values = pa.array([Decimal("1.50"), None, Decimal("-0.05")], pa.decimal128(10, 2))
    expected = [
        hmac.new(key, t.encode(), hashlib.sha256).hexdigest() if t else None for t in ("1.50", None, "-0.05")
    ]
    assert hashed_array(values, key).to_pylist() == expected
    text = pa.array(["é", ""])  # UTF-8 bytes, and the empty string is a value, not NULL
    assert hashed_array(text, key).to_pylist() == [
        hmac.new(key, "é".encode(), hashlib.sha256).hexdigest(),
        hmac.new(key, b"", hashlib.sha256).hexdigest(),
    ]


def test_the_batch_hasher_makes_hashed_columns_strings_and_leaves_the_others():
    batch = pa.record_batch({"id": pa.array([1, 2], pa.int32()), "email": pa.array(["a@x", None])})
    hasher = BatchHasher(batch.schema, ["id"], "key")
    out = hasher(batch)
    assert out.schema.field("id").type == pa.string() and out.schema.field("email").type == pa.string()
    assert out.column("email").to_pylist() == ["a@x", None]
    assert out.column("id").to_pylist()[0] == hmac.new(b"key", b"1", hashlib.sha256).hexdigest()
    assert len(out.column("id").to_pylist()[0]) == 64


def test_projection_keeps_the_selected_columns_in_order_and_refuses_unknown_names():
    available = ["id", "email", "Note"]
    assert DataContract().projection("SELECT 1", available) == "SELECT 1"
    assert DataContract(columns=("Note", "id")).projection("Q", available) == (
        'SELECT "Note", "id" FROM (Q) AS rs2gcs_columns'
    )
    assert DataContract(exclude_columns=("email",)).selected(available) == ["id", "Note"]
    with pytest.raises(ContractError, match=r"hash_columns 'phone'.*\['id', 'email', 'Note'\]"):
        DataContract(hash_columns=("phone",), hash_key="k").selected(available)


@pytest.mark.parametrize(
    ("contract", "fragment"),
    [
        ({"on_schema_change": "ignore"}, "allowed: 'evolve' or 'fail'"),
        ({"columns": ("a",), "exclude_columns": ("b",)}, "given together"),
        ({"columns": ("a",), "hash_columns": ("b",), "hash_key": "k"}, "must be among the exported ones"),
        ({"exclude_columns": ("b",), "hash_columns": ("b",), "hash_key": "k"}, "must be among the exported"),
        ({"hash_columns": ("b",)}, "needs a hash key"),
    ],
)
def test_the_engine_refuses_a_contradictory_contract(contract, fragment):
    with pytest.raises(ContractError, match=fragment):
        DataContract(**contract)


@pytest.mark.parametrize(
    ("table", "tenant", "field", "fragments"),
    [
        ({"on_schema_change": "warn"}, {}, "tables.0.on_schema_change", ["'warn'", "'evolve'", "'fail'"]),
        ({"columns": ["a"], "exclude_columns": ["b"]}, {}, "tables.0", ["public.orders", "given together"]),
        ({"hash_columns": ["a"]}, {}, "hash_key_conn_id", ["public.orders", "HMAC key"]),
        (
            {"columns": ["a"], "hash_columns": ["b"]},
            {"hash_key_conn_id": "k"},
            "tables.0",
            ["['b']", "exported"],
        ),
        ({"columns": "a"}, {}, "tables.0.columns", ["a list of column names"]),
        ({"exclude_columns": ["bad\nname"]}, {}, "tables.0.exclude_columns", ["not column names"]),
    ],
)
def test_tenant_errors_name_tenant_table_field_and_allowed(table, tenant, field, fragments):
    entry = {**ENTRY, **tenant, "tables": [{"name": "public.orders", **table}]}
    with pytest.raises(TenantConfigError) as info:
        parse_tenant("acme", entry)
    assert field in dict(info.value.problems), info.value.problems
    assert "acme" in str(info.value)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_the_plan_hands_each_table_its_contract():
    table = {
        "name": "public.orders",
        "on_schema_change": "fail",
        "exclude_columns": ["ssn"],
        "hash_columns": ["email"],
    }
    tenant = parse_tenant("acme", {**ENTRY, "hash_key_conn_id": "hk", "tables": [table]})
    (planned,) = plan_tables(tenant, {}, None, None)
    assert planned["on_schema_change"] == "fail" and "columns" not in planned
    assert planned["exclude_columns"] == ["ssn"] and planned["hash_columns"] == ["email"]
    json.dumps(planned)  # it travels through XCom


def test_operators_refuse_a_bad_contract_when_the_dag_is_built():
    with pytest.raises(ValueError, match="hash_columns needs hash_key_conn_id"):
        RedshiftToGCSOperator(task_id="t", sql="SELECT 1", bucket="b", object_prefix="p", hash_columns=["a"])
    with pytest.raises(ValueError, match=r"table 'x'.*given together"):
        RedshiftTablesToGCSOperator(
            task_id="t",
            bucket="b",
            tables=[
                {"table": "x", "sql": "S", "object_prefix": "p", "columns": ["a"], "exclude_columns": ["b"]}
            ],
        )


def test_schema_changed_events_only_for_tables_that_changed():
    outcomes = [
        {"tenant": "acme", "table": t, "data_interval": {}, "manifest": f"gs://b/{t}"}
        for t in ("a", "b", "c")
    ]
    change = {"added": ["x"], "removed": [], "changed": [], "reordered": False}
    events = schema_change_events(outcomes, [{"schema_change": change}, {"schema_change": None}, None])
    assert events == [
        {
            "event": "schema_changed",
            "tenant": "acme",
            "table": "a",
            "data_interval": {},
            "manifest": "gs://b/a",
            "schema_change": change,
        }
    ]


class _Bucket:
    def __init__(self, blobs):
        self.blobs = blobs
        self.asked = {}

    def list_blobs(self, **kwargs):
        self.asked = kwargs
        return [SimpleNamespace(name=n, updated=u) for n, u in self.blobs]


def test_the_last_manifest_is_the_newest_one_under_the_table_root():
    bucket = _Bucket(
        [
            ("p/t/dt=2026-03-02/interval=x/_manifest.json", 1),
            ("p/t/dt=2026-03-01/interval=y/_manifest.json", 5),  # a backfill published last
            ("p/t/dt=2026-03-03/interval=z/part-00000.parquet", 9),  # not a manifest
        ]
    )
    hook = SimpleNamespace(
        get_conn=lambda: SimpleNamespace(bucket=lambda name: bucket),
        download=lambda bucket_name, object_name: json.dumps({"name": object_name}).encode(),
    )
    name, document = latest_manifest(hook, "b", "p/t")
    assert name == "p/t/dt=2026-03-01/interval=y/_manifest.json" == document["name"]
    assert bucket.asked["prefix"] == "p/t/" and bucket.asked["match_glob"] == "**/_manifest.json"
    bucket.blobs = []
    assert latest_manifest(hook, "b", "p/t") is None


CONNECTED = {"status": "connected", "redshift_conn_id": "rs", "gcp_conn_id": "gcs", "bucket": "acme-exports"}


def test_the_page_configure_passes_contract_keys_and_leaves_out_what_it_did_not_send():
    from airflow_rs2gcs.plugins.forms import action_conf

    contract = {
        "exclude_columns": ["ssn"],
        "hash_columns": ["email"],
        "on_schema_change": "fail",
        "columns": None,
    }
    body = {
        "tables": [{"name": "public.orders", **contract}, "public.items"],
        "queries": [{"name": "q", "sql": "select 1 as x", "columns": ["x"]}],
        "hash_key_conn_id": "hk",
    }
    conf = action_conf("configure", "acme", body, CONNECTED)
    orders, items, query = conf["tables"]
    assert {k: orders[k] for k in contract} == contract  # columns: null clears a stored selection
    assert not {"columns", "exclude_columns", "hash_columns", "on_schema_change"} & set(
        items
    )  # kept as stored
    assert query["columns"] == ["x"] and conf["hash_key_conn_id"] == "hk"


def test_the_page_configure_refuses_a_contract_the_tenant_model_refuses():
    from airflow_rs2gcs.plugins.forms import FormError, action_conf

    body = {"tables": [{"name": "public.orders", "hash_columns": ["email"]}]}
    with pytest.raises(FormError) as info:
        action_conf("configure", "acme", body, CONNECTED)
    assert "hash_key_conn_id" in info.value.errors
    with pytest.raises(FormError) as info:
        action_conf("configure", "acme", {"tables": [{"name": "t", "on_schema_change": "warn"}]}, CONNECTED)
    assert any(field.startswith("tables.0") for field in info.value.errors)


def test_configure_keeps_a_stored_contract_unless_the_run_gives_a_new_one():
    from airflow_rs2gcs.operators.configure import ConfigureTenantOperator

    stored = {
        **CONNECTED,
        "tables": [{"name": "public.orders", "exclude_columns": ["ssn"], "on_schema_change": "fail"}],
    }
    kept = ConfigureTenantOperator(task_id="c", tenant_id="acme", tables=["public.orders"])
    assert kept._selection("acme", stored) == stored["tables"]
    changed = ConfigureTenantOperator(
        task_id="c2",
        tenant_id="acme",
        table_options={
            "public.orders": {"exclude_columns": None, "columns": ["id"], "on_schema_change": "evolve"}
        },
    )
    assert changed._selection("acme", stored) == [
        {"name": "public.orders", "on_schema_change": "evolve", "columns": ["id"]}
    ]


def test_configure_refuses_unknown_contract_columns_listing_the_real_ones():
    from airflow_rs2gcs.operators.configure import ConfigureTenantOperator
    from airflow_rs2gcs.operators.lifecycle import LifecycleError

    where, spec = "tenant 'acme', table 'public.orders'", {"name": "public.orders", "hash_columns": ["emial"]}
    with pytest.raises(LifecycleError) as info:
        ConfigureTenantOperator._check_contract_columns(where, spec, ["id", "email"])
    message = str(info.value)
    assert "'acme'" in message and "public.orders" in message and "'hash_columns'" in message
    assert "['emial']" in message and "['id', 'email']" in message
    ConfigureTenantOperator._check_contract_columns(
        where, {"name": "t", "columns": ["email", "id"]}, ["id", "email"]
    )
