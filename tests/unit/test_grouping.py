"""Grouping small tables into shared sync tasks: the rule, the names, the tenant keys, the plan."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_rs2gcs.factory import build_sync_dag
from airflow_rs2gcs.grouping import MAX_LABEL_CHARS, group_tables, task_label
from airflow_rs2gcs.hooks.redshift_catalog import estimates_from_rows, is_redshift_version
from airflow_rs2gcs.planning import plan_tables, plan_tasks
from airflow_rs2gcs.tenants import TenantConfigError, parse_tenant

ENTRY = {
    "redshift_conn_id": "rs",
    "gcp_conn_id": "gcs",
    "bucket": "acme-exports",
    "syncFrequency": "hourly",
    "tables": [
        {"name": "public.big"},
        {"name": "public.a"},
        {"name": "public.b"},
        {"name": "q_hinted", "query": "select 1 as x", "expected_rows": 10},
        {"name": "q_unhinted", "query": "select 2 as x"},
        {"name": "public.c"},
    ],
}
START, END = dt.datetime(2026, 11, 24, 7, tzinfo=dt.UTC), dt.datetime(2026, 11, 24, 8, tzinfo=dt.UTC)


def _tables(*names: str) -> list[dict]:
    return [{"table": n} for n in names]


def test_unknown_and_large_estimates_keep_a_task_each_and_small_ones_share():
    grouping = group_tables(_tables("big", "a", "view", "b"), {"big": 10**6, "a": 5, "b": 0}, 1000)
    assert grouping.large == [[{"table": "big"}], [{"table": "view"}]]
    assert grouping.small == [[{"table": "a"}, {"table": "b"}]]


def test_groups_are_bounded_by_tables_and_rows():
    names = [f"t{i}" for i in range(60)]
    by_count = group_tables(_tables(*names), dict.fromkeys(names, 1), 100)
    assert [len(g) for g in by_count.small] == [25, 25, 10]
    by_rows = group_tables(_tables(*names[:5]), dict.fromkeys(names, 90), 100, max_rows=200)
    assert [len(g) for g in by_rows.small] == [2, 2, 1]
    assert [t["table"] for g in by_rows.small for t in g] == names[:5]  # the tenant's order


def test_labels_say_which_tables_and_fit_airflow():
    assert task_label(["public.orders"], grouped=False) == "public.orders"
    assert task_label(["a", "b", "c"], grouped=True) == "small: a, b, c"
    many = [f"public.table_number_{i:03d}" for i in range(40)]
    label = task_label(many, grouped=True)
    assert len(label) <= MAX_LABEL_CHARS and label.startswith("small: public.table_number_000, ")
    shown = label.removeprefix("small: ").rsplit(" +", 1)
    assert len(shown[0].split(", ")) + int(shown[1]) == 40


def test_catalog_estimates_per_dialect():
    assert is_redshift_version("PostgreSQL 8.0.2 on i686-pc-linux-gnu, ... Redshift 1.0.12103")
    assert not is_redshift_version("PostgreSQL 16.4 on x86_64-pc-linux-gnu")
    wanted = {("public", "t"): "public.t", ("public", "empty"): "public.empty", ("public", "v"): "public.v"}
    kinds = {("public", "t"): "r", ("public", "empty"): "r", ("public", "v"): "v"}
    rows = {("public", "t"): 42}
    redshift = estimates_from_rows(wanted, kinds, rows, missing_table_is_empty=True)
    assert redshift == {"public.t": 42, "public.empty": 0, "public.v": None}
    postgres = estimates_from_rows(wanted, kinds, rows, missing_table_is_empty=False)
    assert postgres == {"public.t": 42, "public.empty": None, "public.v": None}


def test_plan_groups_by_hints_and_catalog_and_asks_the_catalog_only_for_the_rest():
    tenant = parse_tenant("acme", ENTRY)
    asked = []

    def catalog(conn_id, names):
        asked.append((conn_id, names))
        return {"public.big": 500_000, "public.a": 10, "public.b": 20, "public.c": None}

    plan = plan_tasks(tenant, plan_tables(tenant, {}, START, END), catalog)
    assert asked == [("rs", ["public.big", "public.a", "public.b", "public.c"])]
    assert [k["tables_label"] for k in plan["large"]] == ["public.big", "q_unhinted", "public.c"]
    assert [k["tables_label"] for k in plan["small"]] == ["small: public.a, public.b, q_hinted"]
    assert len({k["plan_id"] for k in plan["large"] + plan["small"]}) == 1
    assert [t["table"] for t in plan["tables"]] == [t["name"] for t in ENTRY["tables"]]


def test_switched_off_every_table_gets_its_own_task_and_no_catalog_read():
    tenant = parse_tenant("acme", {**ENTRY, "group_small_tables": False})

    def catalog(conn_id, names):
        raise AssertionError("no catalog read when grouping is off")

    plan = plan_tasks(tenant, plan_tables(tenant, {}, START, END), catalog)
    assert plan["small"] == [] and len(plan["large"]) == len(ENTRY["tables"])
    dag = build_sync_dag(tenant)
    assert set(dag.task_ids) == {"plan", "sync_table", "summary"}


def test_small_table_task_holds_the_tenants_slots():
    dag = build_sync_dag(parse_tenant("acme", {**ENTRY, "small_table_slots": 3}))
    assert dag.get_task("sync_small_tables").partial_kwargs.get("pool_slots") == 3
    assert dag.get_task("sync_table").partial_kwargs.get("pool_slots", 1) == 1
    assert "sync_small_tables" in dag.doc_md


@pytest.mark.parametrize(
    ("patch", "field", "allowed"),
    [
        ({"group_small_tables": "yes"}, "group_small_tables", "true or false"),
        ({"small_table_rows": -1}, "small_table_rows", "a whole number from 0"),
        ({"small_table_rows": "100"}, "small_table_rows", "a whole number from 0"),
        ({"small_table_slots": 0}, "small_table_slots", "from 1 to 16"),
        ({"small_table_slots": True}, "small_table_slots", "from 1 to 16"),
        (
            {"tables": [{"name": "q", "query": "select 1", "expected_rows": 1.5}]},
            "tables.0.expected_rows",
            "whole",
        ),
    ],
)
def test_grouping_keys_are_validated_with_tenant_field_and_allowed(patch, field, allowed):
    with pytest.raises(TenantConfigError) as info:
        parse_tenant("acme", {**ENTRY, **patch})
    message = str(info.value)
    assert message.startswith("tenant 'acme': ") and f"field {field!r}" in message and allowed in message


def test_a_tenant_that_can_never_group_gets_no_small_table_tasks():
    one = parse_tenant("acme", {**ENTRY, "tables": [{"name": "public.orders"}]})
    queries = parse_tenant(
        "acme",
        {
            **ENTRY,
            "tables": [{"name": "q1", "query": "select 1 as x"}, {"name": "t", "expected_rows": 10**9}],
        },
    )
    for tenant in (one, queries):
        assert set(build_sync_dag(tenant).task_ids) == {"plan", "sync_table", "summary"}
        plan = plan_tasks(tenant, plan_tables(tenant, {}, START, END), lambda *_: {"public.orders": 1})
        assert plan["small"] == []


class _PulledXComs:
    """A summary task's view of XComs: the plan, and each export task's return value per map index."""

    def __init__(self, plan: dict, returns: dict) -> None:
        self.plan, self.returns = plan, returns

    def xcom_pull(self, task_ids: str, key: str = "return_value", map_indexes: int | None = None):
        if key == "plan":
            return self.plan
        return self.returns.get((task_ids, map_indexes))


def test_summary_posts_one_outcome_per_table_and_fails_naming_the_tables_without_one(monkeypatch):
    import airflow_rs2gcs.factory as factory

    tenant = parse_tenant("acme", ENTRY)
    plan = plan_tasks(
        tenant, plan_tables(tenant, {}, START, END), lambda *_: {"public.a": 1, "public.b": 1, "public.c": 1}
    )
    assert [k["tables_label"] for k in plan["small"]] == ["small: public.a, public.b, q_hinted, public.c"]

    def outcome(name: str) -> dict:
        return {"table": name, "rows": 1, "bytes": 2, "objects": 1, "manifest": f"{name}/_manifest.json"}

    returns = {("sync_table", i): [outcome(k["tables"][0]["table"])] for i, k in enumerate(plan["large"])}
    returns[("sync_small_tables", 0)] = [outcome("public.a"), outcome("q_hinted")]  # b and c failed
    posted = []
    monkeypatch.setattr(factory, "deliver", lambda hooks, tenant_id, outcomes: posted.extend(outcomes))
    with pytest.raises(RuntimeError, match=r"tables failed: \['public.b', 'public.c'\]"):
        factory._summarise(tenant, _PulledXComs(plan, returns), START, END)
    assert [(o["table"], o["status"]) for o in posted] == [
        ("public.big", "success"),
        ("public.a", "success"),
        ("public.b", "failed"),
        ("q_hinted", "success"),
        ("q_unhinted", "success"),
        ("public.c", "failed"),
    ]
