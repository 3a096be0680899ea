"""The checks verify, capture_deletes and primary_key (the data contract has test_data_contract.py):
validation, planning, operators, forms, and the engine's snapshot reads and manifest listing (no
processes: the real export is in tests/integration/test_engine_export.py)."""

from __future__ import annotations

import pytest

from airflow_rs2gcs.engine.manifest import listed_objects
from airflow_rs2gcs.engine.snapshot_reads import ContractReads, ReconciliationError, check_count
from airflow_rs2gcs.planning import plan_tables
from airflow_rs2gcs.plugins.forms import ConfigureBody, configure_conf
from airflow_rs2gcs.tenants import TenantConfigError, parse_tenant
from airflow_rs2gcs.transfers.redshift_tables_to_gcs import RedshiftTablesToGCSOperator
from airflow_rs2gcs.transfers.redshift_to_gcs import RedshiftToGCSOperator, key_query

ORDERS = {"name": "public.orders", "mode": "incremental", "cursor_column": "updated_at"}
COMPLETE = {
    "redshift_conn_id": "rs",
    "gcp_conn_id": "gcs",
    "bucket": "acme-exports",
    "syncFrequency": "hourly",
}


def _tenant(**table):
    return parse_tenant("acme", {**COMPLETE, "tables": [{**ORDERS, **table}]})


def test_the_keys_are_off_by_default_and_parse_when_set():
    plain = _tenant().tables[0]
    assert (plain.verify, plain.capture_deletes, plain.primary_key) == (None, False, ())
    table = _tenant(verify="count", capture_deletes=True, primary_key=["region", "id"]).tables[0]
    assert (table.verify, table.capture_deletes, table.primary_key) == ("count", True, ("region", "id"))


@pytest.mark.parametrize(
    ("table", "field", "fragments"),
    [
        ({"verify": "sum"}, "tables.0.verify", ["'public.orders'", "'sum'", "'count'", "null"]),
        ({"verify": True}, "tables.0.verify", ["'public.orders'", "True", "'count'"]),
        (
            {"capture_deletes": "yes"},
            "tables.0.capture_deletes",
            ["'public.orders'", "'yes'", "true or false"],
        ),
        (
            {"primary_key": "id"},
            "tables.0.primary_key",
            ["'public.orders'", "'id'", "a list of column names"],
        ),
        ({"primary_key": ["id; drop"]}, "tables.0.primary_key", ["'public.orders'", "'id; drop'", "letters"]),
        ({"primary_key": ["id", "id"]}, "tables.0.primary_key", ["'public.orders'", "['id']", "once"]),
        ({"capture_deletes": True}, "tables.0", ["'public.orders'", "capture_deletes needs", "primary_key"]),
        (
            {"capture_deletes": True, "primary_key": ["id"], "mode": "full", "cursor_column": None},
            "tables.0",
            ["'public.orders'", "mode 'incremental'", "mode is 'full'"],
        ),
    ],
)
def test_a_bad_value_names_tenant_table_field_and_what_is_allowed(table, field, fragments):
    entry = {k: v for k, v in {**ORDERS, **table}.items() if v is not None}
    with pytest.raises(TenantConfigError) as info:
        parse_tenant("acme", {**COMPLETE, "tables": [entry]})
    assert str(info.value).startswith("tenant 'acme': ")
    message = dict(info.value.problems)[field]
    for fragment in fragments:
        assert fragment in message


def test_the_plan_carries_the_keys_a_table_turns_on_and_nothing_for_the_others():
    tenant = parse_tenant(
        "acme",
        {
            **COMPLETE,
            "tables": [
                {**ORDERS, "verify": "count", "capture_deletes": True, "primary_key": ["id"]},
                {"name": "public.customers"},
            ],
        },
    )
    orders, customers = plan_tables(tenant, {}, None, None)
    assert (orders["verify"], orders["capture_deletes"], orders["primary_key"]) == ("count", True, ["id"])
    assert not {"verify", "capture_deletes", "primary_key"} & set(customers)


def test_the_key_query_reads_every_current_row_of_the_unwindowed_query():
    assert key_query("SELECT * FROM t", True, ["region", "id"]) == (
        'SELECT "region", "id" FROM (SELECT * FROM t) AS rs2gcs_keys'
    )
    assert key_query("SELECT * FROM t", False, ["id"]) is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"verify": "sum"}, "verify 'sum' is not supported; allowed: count"),
        ({"capture_deletes": True}, "needs primary_key"),
    ],
)
def test_the_operators_refuse_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        RedshiftToGCSOperator(task_id="t", sql="SELECT 1", bucket="b", object_prefix="p", **options)
    group = RedshiftTablesToGCSOperator(
        task_id="g", tables=[{"table": "t", "sql": "SELECT 1", "object_prefix": "p", **options}], bucket="b"
    )
    with pytest.raises(ValueError, match=message):
        group._sync_table(group.tables[0], {}, None, None, retry=False)


KEYED = {"capture_deletes": True, "primary_key": ["region", "id"]}


@pytest.mark.parametrize("contract", [{"exclude_columns": ["id"]}, {"columns": ["region", "updated_at"]}])
def test_a_captured_key_column_must_be_exported_so_the_key_set_joins_the_data(contract):
    with pytest.raises(TenantConfigError) as info:
        _tenant(**KEYED, **contract)
    assert (
        "'public.orders': primary_key columns ['id'] are not exported"
        in dict(info.value.problems)["tables.0"]
    )
    with pytest.raises(ValueError, match=r"t: primary_key columns \['id'\] are not exported"):
        RedshiftToGCSOperator(task_id="t", sql="SELECT 1", bucket="b", object_prefix="p", **KEYED, **contract)
    table = {"table": "orders", "sql": "SELECT 1", "object_prefix": "p", **KEYED, **contract}
    with pytest.raises(ValueError, match=r"g: table 'orders': primary_key columns \['id'\] are not exported"):
        RedshiftTablesToGCSOperator(task_id="g", tables=[table], bucket="b")
    # Without capture_deletes the key is not written, so leaving it out of the data is fine.
    assert _tenant(primary_key=["region", "id"], **contract).tables[0].primary_key == ("region", "id")


def test_a_hashed_key_column_is_allowed_and_planned_with_both_halves_of_the_contract():
    tenant = parse_tenant(
        "acme",
        {
            **COMPLETE,
            "hash_key_conn_id": "hmac",
            "tables": [
                {**ORDERS, **KEYED, "verify": "count", "hash_columns": ["id"], "exclude_columns": ["note"]}
            ],
        },
    )
    (planned,) = plan_tables(tenant, {}, None, None)
    assert {
        k: planned[k] for k in ("hash_columns", "exclude_columns", "verify", "capture_deletes", "primary_key")
    } == {
        "hash_columns": ["id"],
        "exclude_columns": ["note"],
        "verify": "count",
        "capture_deletes": True,
        "primary_key": ["region", "id"],
    }


class _Cursor:
    def __init__(self, count: int) -> None:
        self.count = count
        self.statements: list[str] = []

    def execute(self, sql: str) -> None:
        self.statements.append(sql)

    def fetchone(self) -> tuple[int]:
        return (self.count,)


def test_the_count_runs_on_the_export_query_and_a_difference_fails_naming_the_table():
    reads, cursor = ContractReads(count_sql="SELECT * FROM t WHERE w"), _Cursor(7)
    reads.before(cursor)
    assert cursor.statements == ["SELECT COUNT(*) FROM (SELECT * FROM t WHERE w) AS rs2gcs_count"]
    assert reads.source_rows == 7
    check_count(7, 7)
    check_count(None, 5)  # verify off
    with pytest.raises(ReconciliationError, match=r"public.orders: verify 'count' failed.* 7 row.*wrote 6"):
        check_count(7, 6, "public.orders")


def test_the_manifest_lists_the_key_objects_so_a_publish_keeps_them():
    manifest = {
        "objects": [{"name": "p/part-00000.parquet"}],
        "keys": {"objects": [{"name": "p/_keys/part-00000.parquet"}]},
    }
    assert listed_objects(manifest) == {"p/part-00000.parquet", "p/_keys/part-00000.parquet"}
    assert listed_objects({"objects": []}) == set()


def test_the_pages_configure_sends_the_keys_it_was_given_and_keeps_the_others():
    stored = {**COMPLETE, "status": "connected"}
    body = ConfigureBody.model_validate(
        {
            "tables": [
                {**ORDERS, "verify": "count", "capture_deletes": True, "primary_key": ["id"]},
                {"name": "public.customers"},
            ]
        }
    )
    conf = configure_conf("acme", body, stored)
    orders, customers = conf["tables"]
    assert (orders["verify"], orders["capture_deletes"], orders["primary_key"]) == ("count", True, ["id"])
    assert not {"verify", "capture_deletes", "primary_key"} & set(customers)
    bad = ConfigureBody.model_validate({"tables": [{**ORDERS, "capture_deletes": True}]})
    with pytest.raises(Exception, match="capture_deletes needs"):
        configure_conf("acme", bad, stored)


class _Catalog:
    """The catalog hook's two reads Configure's table check makes (the real one is in the e2e tests)."""

    def can_read(self, name: str) -> bool:
        return True

    def result_columns(self, sql: str) -> dict[str, int]:
        return {"customer_id": 20, "created_at": 1184, "name": 1043}


def test_configure_checks_primary_key_columns_against_the_catalog_and_lists_the_real_ones():
    from airflow_rs2gcs.operators.configure import ConfigureTenantOperator
    from airflow_rs2gcs.operators.lifecycle import LifecycleError

    operator = ConfigureTenantOperator(task_id="configure", tenant_id="acme")
    spec = {"name": "public.customers", "mode": "incremental", "cursor_column": "created_at"}
    good = {**spec, "capture_deletes": True, "primary_key": ["customer_id"]}
    assert operator._check_spec("acme", _Catalog(), good) == good
    with pytest.raises(LifecycleError) as info:
        operator._check_spec("acme", _Catalog(), {**good, "primary_key": ["customer_id", "id"]})
    assert str(info.value) == (
        "tenant 'acme', table 'public.customers': field 'primary_key': ['id'] missing; allowed: columns "
        "among ['created_at', 'customer_id', 'name']"
    )


def test_the_page_turns_the_keys_off_with_null_so_the_entry_is_stored_as_without_them():
    body = ConfigureBody.model_validate(
        {"tables": [{**ORDERS, "verify": None, "capture_deletes": None, "primary_key": None}]}
    )
    (orders,) = configure_conf("acme", body, {**COMPLETE, "status": "connected"})["tables"]
    assert {k: orders[k] for k in ("verify", "capture_deletes", "primary_key")} == dict.fromkeys(
        ("verify", "capture_deletes", "primary_key")
    )  # Configure pops a key given as null: back to its default
