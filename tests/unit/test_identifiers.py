"""Table names with quoted parts: one parser, one spelling per relation, a safe folder for each."""

from __future__ import annotations

import pytest

from airflow_rs2gcs.engine.paths import check_object_prefix, table_folder
from airflow_rs2gcs.hooks.redshift_catalog import Relation, split_table_name
from airflow_rs2gcs.identifiers import InvalidTableName, TableName, format_table_name, parse_table_name
from airflow_rs2gcs.tenants import TableSpec, TenantConfigError, parse_tenant

CATALOG_NAMES = [
    ("public", "orders", "public.orders"),
    ("analytics", "Mixed Case Table", 'analytics."Mixed Case Table"'),
    ("analytics", "table with spaces", 'analytics."table with spaces"'),
    ("analytics", "2024_sales", 'analytics."2024_sales"'),
    ("analytics", "ventes_été", 'analytics."ventes_été"'),
    ("My Schema", "orders", '"My Schema".orders'),
    ("analytics", 'say "hi"', 'analytics."say ""hi"""'),
    ("analytics", "a.b", 'analytics."a.b"'),
    ("s", "Orders", 's."Orders"'),
    ("s", "select", "s.select"),
]


@pytest.mark.parametrize(("schema", "name", "written"), CATALOG_NAMES)
def test_every_listed_name_is_accepted_as_listed_and_means_the_same_relation(schema, name, written):
    assert Relation(schema, name, "table").qualified == written
    assert format_table_name(schema, name) == written
    TableSpec(name=written)  # accepted as listed
    assert split_table_name(written) == (schema, name)


def test_plain_names_fold_to_lower_case_and_quoted_names_are_kept():
    assert parse_table_name("Sales.Orders") == TableName("sales", "orders", quoted=False)
    assert parse_table_name("orders") == TableName(None, "orders", quoted=False)
    assert parse_table_name('"Orders"') == TableName(None, "Orders", quoted=True)
    assert split_table_name("orders") == ("public", "orders")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('public."orders"', "needs no quotes; write it orders"),
        ('analytics.""', "empty quoted part"),
        ('analytics."open', "unterminated"),
        ('analytics."A"x', "where only '\\.'"),
        ('analytics."a\x00b"', "non-printable"),
        ('analytics."a\nb"', "non-printable"),
        ('analytics."a\u202eb"', "non-printable"),
        ('analytics."' + "é" * 64 + '"', "longer than 127 bytes"),
        ("a.b.c", "3 parts"),
        ('"A"."B"."C"', "3 parts"),
        ("1orders", "neither"),
        ("", "neither"),
        ("a.", "neither"),
    ],
)
def test_bad_names_are_refused_with_the_reason(text, reason):
    with pytest.raises(InvalidTableName, match=reason):
        parse_table_name(text)
    with pytest.raises(ValueError, match="is not a table name"):
        TableSpec(name=text)


def test_a_127_byte_quoted_part_is_accepted():
    TableSpec(name='analytics."' + "é" * 63 + 'x"')


def test_plain_names_keep_their_folder():
    for name in ["public.orders", "Sales.Orders", "orders", "o$1", "_x.y_"]:
        assert table_folder(name) == name


def test_quoted_names_get_a_slug_and_a_hash_that_is_safe_and_stable():
    folders = {written: table_folder(written) for _, _, written in CATALOG_NAMES}
    # 5070d414: the first 8 hex digits of sha256(b'analytics."Mixed Case Table"')
    assert folders['analytics."Mixed Case Table"'] == "analytics.mixed_case_table-5070d414"
    assert folders['analytics."ventes_été"'].startswith("analytics.ventes_ete-")
    assert folders['analytics."2024_sales"'].startswith("analytics.2024_sales-")
    assert folders['"My Schema".orders'].startswith("my_schema.orders-")
    assert len(set(folders.values())) == len(folders)
    for folder in folders.values():
        assert check_object_prefix(f"redshift/acme/{folder}") == f"redshift/acme/{folder}"
        assert folder.isascii() and folder not in {".", ".."}
    # Names that slug alike stay apart; the same relation written two ways shares its folder.
    assert table_folder('s."A b"') != table_folder('s."a b"') != table_folder('s."a_b "')
    assert table_folder('S."Orders"') == table_folder('s."Orders"')
    assert table_folder('s."..."').startswith("s._-")


def test_a_tenant_refuses_two_spellings_of_one_table():
    with pytest.raises(TenantConfigError, match="duplicate table names"):
        parse_tenant("acme", {"tables": [{"name": "Sales.Orders"}, {"name": "sales.orders"}]})
    with pytest.raises(TenantConfigError, match="duplicate table names"):
        parse_tenant("acme", {"tables": [{"name": 'S."Orders"'}, {"name": 's."Orders"'}]})
    tenant = parse_tenant("acme", {"tables": [{"name": 's."Orders"'}, {"name": "s.orders"}]})
    assert [t.folder for t in tenant.tables][1] == "s.orders"
