"""The tenant contract: valid entries parse; every invalid one names tenant, field, value and allowed."""

from __future__ import annotations

import pytest

from airflow_rs2gcs.tenants import TenantConfigError, parse_tenant

COMPLETE = {
    "source": "redshift_to_gcs",
    "redshift_conn_id": "rs",
    "gcp_conn_id": "gcs",
    "bucket": "acme-exports",
    "prefix": "redshift/",
    "syncFrequency": "hourly",
    "tables": [{"name": "public.orders", "mode": "incremental", "cursor_column": "updated_at"}],
}


def _error(entry, tenant_id="acme") -> TenantConfigError:
    with pytest.raises(TenantConfigError) as info:
        parse_tenant(tenant_id, entry)
    return info.value


def test_complete_entry_is_ready_and_normalised():
    tenant = parse_tenant("acme", COMPLETE)
    assert tenant.is_ready and tenant.prefix == "redshift" and tenant.timezone == "UTC"
    assert tenant.tables[0].cursor_column == "updated_at"


def test_widget_labels_are_accepted_as_values():
    assert parse_tenant("acme", {**COMPLETE, "syncFrequency": "1 hour"}).sync_frequency == "hourly"
    assert parse_tenant("acme", {**COMPLETE, "syncFrequency": "5 minutes"}).sync_frequency == "5min"
    assert parse_tenant("acme", {**COMPLETE, "syncFrequency": " 30  2 * * * "}).sync_frequency == "30 2 * * *"


@pytest.mark.parametrize(
    ("patch", "field", "fragments"),
    [
        ({"syncFrequency": "every blue moon"}, "syncFrequency", ["'every blue moon'", "'5min'", "cron"]),
        ({"source": "s3_to_gcs"}, "source", ["'s3_to_gcs'", "'redshift_to_gcs'"]),
        ({"timezone": "Mars/Olympus"}, "timezone", ["'Mars/Olympus'", "IANA"]),
        ({"bucket": "Bad_Bucket!"}, "bucket", ["'Bad_Bucket!'", "lowercase"]),
        ({"prefix": "a/../b"}, "prefix", ["'a/../b'", "'..'"]),
        ({"format": "xml"}, "format", ["'xml'", "parquet"]),
        (
            {"tables": [{"name": "orders; drop table x"}]},
            "tables.0.name",
            ["'orders; drop table x'", "schema.table"],
        ),
        ({"tables": [{"name": "t", "mode": "incremental"}]}, "tables.0", ["cursor_column"]),
        (
            {"tables": [{"name": "t", "fetch_method": "fast"}]},
            "tables.0.fetch_method",
            ["'fast'", "'auto'", "'wire'", "'driver'"],
        ),
        ({"tables": [{"name": "t"}, {"name": "T"}]}, "tables", ["duplicate table names ['t']"]),
        ({"bukcet": "x"}, "bukcet", ["did you mean 'bucket'"]),
        ({"tables": [{"nmae": "t"}]}, "tables.0.nmae", ["did you mean 'name'"]),
        ({"syncfrequency": "hourly"}, "syncfrequency", ["did you mean 'syncFrequency'"]),
    ],
)
def test_errors_name_tenant_field_value_and_allowed(patch, field, fragments):
    error = _error({**COMPLETE, **patch})
    assert field in [f for f, _ in error.problems]
    assert str(error).startswith("tenant 'acme': ")
    message = dict(error.problems)[field]
    for fragment in fragments:
        assert fragment in message


def test_bad_tenant_id_and_non_object_entry():
    assert "tenant id" in str(_error(COMPLETE, tenant_id="../escape"))
    assert "JSON object" in str(_error(["not", "an", "object"]))


def test_duplicate_table_names_are_refused():
    error = _error({**COMPLETE, "tables": [{"name": "public.t"}, {"name": "PUBLIC.T"}]})
    assert "duplicate" in str(error)


@pytest.mark.parametrize(
    ("patch", "ready"),
    [
        ({}, True),
        ({"status": "disconnected"}, False),
        ({"status": "configured"}, True),
        ({"tables": []}, False),
        ({"bucket": None}, False),
        ({"syncFrequency": None}, False),
    ],
)
def test_readiness(patch, ready):
    entry = {k: v for k, v in {**COMPLETE, **patch}.items() if v is not None}
    assert parse_tenant("acme", entry).is_ready is ready
