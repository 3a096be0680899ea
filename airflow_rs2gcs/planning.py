"""The plan of one sync run: which tables it exports, with what query and folder, in which tasks.

Runs inside the ``plan`` task (never at parse time, except :func:`may_group`, which reads only the
entry): the tables the run's params select, their row estimates (the entry's ``expected_rows`` hints,
then the catalog's), and the split into one-table and shared tasks by :mod:`airflow_rs2gcs.grouping`.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from airflow_rs2gcs.engine.paths import interval_partition, manual_partition, table_root
from airflow_rs2gcs.grouping import group_tables, task_label
from airflow_rs2gcs.sql import select_table
from airflow_rs2gcs.tenants import SOURCE, Tenant

log = logging.getLogger(__name__)


def may_group(tenant: Tenant) -> bool:
    """Whether a run could group tables: grouping on, and two tables that may turn out small.

    Decided at parse time from the entry alone (a custom query without ``expected_rows``, or one above
    the threshold, is always large): a tenant that can never group gets no small-table tasks, which
    keeps its DAG, and the parse of many such tenants, as small as before.
    """
    candidates = [
        t
        for t in tenant.tables
        if (t.query is None and t.expected_rows is None)
        or (t.expected_rows is not None and t.expected_rows <= tenant.small_table_rows)
    ]
    return tenant.group_small_tables and len(candidates) > 1


def _table_query(table: Any) -> str:
    return table.query or select_table(table.name)


def contract_kwargs(table: Any) -> dict[str, Any]:
    """A table's data contract keys that differ from the defaults, as the export operators take them.

    Defaults are left out: the plan travels through XCom for every table of every run.
    """
    keys: dict[str, Any] = {}
    if table.on_schema_change != "evolve":
        keys["on_schema_change"] = table.on_schema_change
    if table.columns is not None:
        keys["columns"] = list(table.columns)
    for key in ("exclude_columns", "hash_columns"):
        if getattr(table, key):
            keys[key] = list(getattr(table, key))
    return keys


def _check_options(table: Any) -> dict[str, Any]:
    """The table's checks (verify, capture_deletes with its primary_key), only those it turns on."""
    options: dict[str, Any] = {}
    if table.verify:
        options["verify"] = table.verify
    if table.capture_deletes:
        options |= {"capture_deletes": True, "primary_key": list(table.primary_key)}
    return options


def plan_tables(
    tenant: Tenant,
    params: Mapping[str, Any],
    data_interval_start: Any,
    data_interval_end: Any,
    run_after: Any = None,
) -> list[dict[str, Any]]:
    """Per selected table, the keyword arguments of its mapped export task."""
    source = params.get("source", SOURCE)
    if source != SOURCE:  # the Param's enum refuses it at trigger time; a run made past it stops here
        raise ValueError(f"tenant {tenant.tenant_id!r}: param 'source' is {source!r}; allowed: {SOURCE!r}")
    wanted = set(params.get("tables") or [t.name for t in tenant.tables])
    unknown = wanted - {t.name for t in tenant.tables}
    if unknown:
        raise ValueError(
            f"tenant {tenant.tenant_id!r}: param 'tables' names unknown tables {sorted(unknown)}"
        )
    full_refresh = bool(params.get("full_refresh"))
    if data_interval_start is None or data_interval_end is None:
        # A run triggered without a logical date has no data interval: give it its own folder.
        partition = manual_partition(run_after or dt.datetime.now(dt.UTC))
    else:
        partition = interval_partition(data_interval_start, data_interval_end)
    return [
        {
            "table": t.name,
            "sql": _table_query(t),
            "object_prefix": f"{table_root(tenant.prefix, tenant.tenant_id, t.folder)}/{partition}",
            "incremental_column": None if full_refresh or t.mode != "incremental" else t.cursor_column,
            "fetch_method": t.fetch_method,
            **contract_kwargs(t),
            **_check_options(t),
        }
        for t in tenant.tables
        if t.name in wanted
    ]


def _hinted_estimates(tenant: Tenant, planned: list[dict[str, Any]]) -> dict[str, int | None]:
    """Row estimates the tenant entry gives: ``expected_rows``, and custom queries without it (unknown)."""
    specs = {t.name: t for t in tenant.tables}
    hinted: dict[str, int | None] = {}
    for entry in planned:
        spec = specs[entry["table"]]
        if spec.expected_rows is not None or spec.query is not None:
            hinted[spec.name] = spec.expected_rows
    return hinted


def _catalog_estimates(redshift_conn_id: str, tables: list[str]) -> dict[str, int | None]:
    """The catalog's row estimates; none (every table large) when the catalog cannot be read."""
    if not tables:
        return {}
    from airflow_rs2gcs.hooks.redshift_catalog import RedshiftCatalogHook

    try:
        return RedshiftCatalogHook(redshift_conn_id=redshift_conn_id).row_estimates(tables)
    except Exception:  # grouping only saves task start-ups: without estimates each table runs alone
        log.warning("could not read row estimates; every table gets a task of its own", exc_info=True)
        return {}


def _task_kwargs(tables: list[dict[str, Any]], grouped: bool, plan_id: str) -> dict[str, Any]:
    label = task_label([t["object_prefix"].rsplit("/", 3)[1] for t in tables], grouped)
    return {"tables": tables, "tables_label": label, "plan_id": plan_id}


def plan_tasks(
    tenant: Tenant, planned: list[dict[str, Any]], catalog: Any = _catalog_estimates
) -> dict[str, Any]:
    """The plan's output: every table (``tables``), and the export tasks' kwargs (``large``, ``small``).

    ``catalog(redshift_conn_id, names)`` reads the row estimates of the tables that have no hint; it
    is asked only when the tenant groups small tables and at least two tables are planned.
    """
    plan_id = uuid.uuid4().hex
    estimates: dict[str, int | None] = {}
    if may_group(tenant) and len(planned) > 1:
        estimates = _hinted_estimates(tenant, planned)
        unhinted = [t["table"] for t in planned if t["table"] not in estimates]
        estimates |= catalog(tenant.redshift_conn_id, unhinted)
    grouping = group_tables(planned, estimates, tenant.small_table_rows)
    return {
        "tables": planned,
        "large": [_task_kwargs(group, False, plan_id) for group in grouping.large],
        "small": [_task_kwargs(group, True, plan_id) for group in grouping.small],
    }


def log_plan(tenant: Tenant, full: Mapping[str, Any]) -> None:
    for kind in ("large", "small"):
        for kwargs in full[kind]:
            log.info("tenant %s: %s task: %s", tenant.tenant_id, kind, kwargs["tables_label"])
