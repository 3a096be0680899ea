"""The DAG factory: a pure function from the tenants mapping to Airflow DAGs.

No I/O happens here: the caller (``dags/rs2gcs.py`` through :mod:`airflow_rs2gcs.store`) reads the
``rs2gcs_tenants`` Variable once per parse and passes its parsed JSON in. Each tenant is handled on
its own: a ready tenant gets ``rs2gcs_sync__<tenant_id>``; a tenant whose entry is invalid gets a
placeholder DAG of the same id whose doc and single task show the error, so one tenant's typo never
hides or breaks the others; a valid but not yet ready tenant (not configured, or disconnected) gets
no DAG.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Mapping
from typing import Any

import pendulum
from airflow.sdk import DAG, AssetAlias, Param, task

from airflow_rs2gcs.engine.paths import table_root
from airflow_rs2gcs.grouping import MAX_GROUP_TABLES
from airflow_rs2gcs.outcomes import schema_change_events, table_outcomes, totals
from airflow_rs2gcs.planning import log_plan, may_group, plan_tables, plan_tasks
from airflow_rs2gcs.schedules import cron_for, timetable_for
from airflow_rs2gcs.tenants import SOURCE, TENANT_ID_PATTERN, Tenant, TenantConfigError, parse_tenant
from airflow_rs2gcs.transfers.redshift_tables_to_gcs import RedshiftTablesToGCSOperator
from airflow_rs2gcs.webhooks import DEFAULT_DEADLINE_SECONDS, deliver

log = logging.getLogger(__name__)

SYNC_DAG_PREFIX = "rs2gcs_sync__"
REDSHIFT_POOL_PREFIX = "rs2gcs_redshift__"
VARIABLE_ERROR_DAG_ID = "rs2gcs_tenants_invalid"
DEFAULT_START_DATE = dt.datetime(2026, 1, 1)
SYNC_RETRIES = 2
SYNC_RETRY_DELAY = dt.timedelta(minutes=1)


def sync_dag_id(tenant_id: str) -> str:
    """``rs2gcs_sync__<tenant_id>``; an id that cannot be part of a DAG id gets a stable stand-in."""
    if TENANT_ID_PATTERN.fullmatch(tenant_id):
        return f"{SYNC_DAG_PREFIX}{tenant_id}"
    digest = hashlib.sha256(tenant_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{SYNC_DAG_PREFIX}invalid_id_{digest}"


def redshift_pool(redshift_conn_id: str) -> str:
    """The Airflow pool that bounds concurrent table syncs on one Redshift connection, for all tenants.

    Create it before enabling tenants (``airflow pools set rs2gcs_redshift__<conn_id> 4 "..."``):
    Airflow 3.3 never schedules a task whose pool does not exist (see ``docs/operations.md``).
    """
    return f"{REDSHIFT_POOL_PREFIX}{redshift_conn_id}"


# The mapped export tasks: one task per large table, and tasks shared by groups of small tables.
PLAN_TASK_ID = "plan"
PLAN_XCOM_KEY = "plan"
SMALL_GROUPS_TASK_ID = "small_table_groups"
TABLE_TASK_ID = "sync_table"
SMALL_TABLES_TASK_ID = "sync_small_tables"
# Each mapped export is named in the UI by the folders (engine.paths.table_folder) of its tables:
# ``public.orders``, or ``small: public.a, public.b +7`` (see grouping.task_label), set by the plan.
TABLE_MAP_INDEX_TEMPLATE = "{{ task.tables_label }}"


def tables_asset_alias(tenant_id: str) -> AssetAlias:
    """The alias through which each ``sync_table`` task emits its table's Asset (``gs://bucket/prefix/...``)."""
    return AssetAlias(f"{SYNC_DAG_PREFIX}{tenant_id}")


def _doc(tenant: Tenant, frequency: str) -> str:
    tables = "\n".join(
        f"| `{t.name}` | {t.mode} | {t.cursor_column or ''} | {'custom query' if t.query else 'table'} |"
        for t in tenant.tables
    )
    cron = cron_for(tenant.tenant_id, frequency) or "none (manual only)"
    return (
        f"### rs2gcs sync for tenant `{tenant.tenant_id}`\n\n"
        f"* schedule: `{frequency}` -> cron `{cron}` in `{tenant.timezone}`\n"
        f"* destination: `gs://{tenant.bucket}/{table_root(tenant.prefix, tenant.tenant_id, '<table>')}/`"
        f" ({tenant.format})\n"
        f"* Redshift connection: `{tenant.redshift_conn_id}`, GCP connection: `{tenant.gcp_conn_id}`\n\n"
        f"| table | mode | cursor column | kind |\n|---|---|---|---|\n{tables}\n\n"
        f"{_grouping_doc(tenant)}\n\n"
        "Trigger by hand with **full_refresh** to ignore incremental windows, and **tables** to sync "
        "only some tables."
    )


def _grouping_doc(tenant: Tenant) -> str:
    if not may_group(tenant):
        return (
            "Each table is exported by a `sync_table` task of its own (`group_small_tables` is off, or "
            "fewer than two tables could be small)."
        )
    return (
        f"Tables expected to hold at most {tenant.small_table_rows} rows share `sync_small_tables` tasks "
        f"(up to {MAX_GROUP_TABLES} tables each, {tenant.small_table_slots} at a time); larger ones, "
        "views and custom queries without `expected_rows` get a `sync_table` task each."
    )


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


def _results_by_table(plan: Mapping[str, Any], ti: Any) -> dict[str, dict[str, Any]]:
    """Table name -> its export's outcome, from every export task's return value (a list per task).

    A failed task pushes the outcomes of its tables that succeeded; a table missing here failed.
    """
    found: dict[str, dict[str, Any]] = {}
    for task_id, key in ((TABLE_TASK_ID, "large"), (SMALL_TABLES_TASK_ID, "small")):
        for index in range(len(plan.get(key) or [])):
            for outcome in ti.xcom_pull(task_ids=task_id, map_indexes=index) or []:
                if isinstance(outcome, Mapping) and "table" in outcome:
                    found[str(outcome["table"])] = dict(outcome)
    return found


def _summarise(tenant: Tenant, ti: Any, start: Any, end: Any) -> dict[str, Any]:
    """Collect each table's result, post the outcomes to the webhooks, fail the run if a table failed."""
    plan = ti.xcom_pull(task_ids=PLAN_TASK_ID, key=PLAN_XCOM_KEY)
    if not isinstance(plan, Mapping):
        raise RuntimeError(f"tenant {tenant.tenant_id!r}: the plan task made no plan; see its log")
    planned = plan["tables"]
    found = _results_by_table(plan, ti)
    results = [found.get(entry["table"]) for entry in planned]
    outcomes = table_outcomes(tenant, planned, results, (_iso(start), _iso(end)))
    started = time.monotonic()
    deliver(tenant.webhooks, tenant.tenant_id, outcomes)
    changes = schema_change_events(outcomes, results)
    if changes:  # within what is left of the run's one delivery budget
        left = max(DEFAULT_DEADLINE_SECONDS - (time.monotonic() - started), 0.0)
        deliver(tenant.webhooks, tenant.tenant_id, changes, deadline_seconds=left, event="schema_changed")
    total = totals(outcomes)
    log.info("tenant %s: %s", tenant.tenant_id, total)
    if total["failed"]:
        raise RuntimeError(f"tenant {tenant.tenant_id!r}: tables failed: {total['failed']}")
    return total


def build_sync_dag(tenant: Tenant) -> DAG:
    """The scheduled sync DAG of one ready tenant: plan -> mapped exports -> summary.

    Large tables get a ``sync_table`` task each; small ones share ``sync_small_tables`` tasks (unless the
    tenant's ``group_small_tables`` is false), each holding ``small_table_slots`` slots of the pool
    and exporting that many tables at once.
    """
    frequency, redshift_conn_id = tenant.sync_frequency, tenant.redshift_conn_id
    if frequency is None or redshift_conn_id is None:  # a ready tenant has both
        raise ValueError(f"tenant {tenant.tenant_id!r} has no syncFrequency or redshift_conn_id")
    table_names = [t.name for t in tenant.tables]
    with DAG(
        dag_id=sync_dag_id(tenant.tenant_id),
        schedule=timetable_for(tenant.tenant_id, frequency, tenant.timezone),
        start_date=pendulum.instance(DEFAULT_START_DATE, tz=tenant.timezone),
        catchup=tenant.catchup,
        max_active_runs=1,
        is_paused_upon_creation=False,
        tags=["rs2gcs", f"tenant:{tenant.tenant_id}"],
        doc_md=_doc(tenant, frequency),
        default_args={"owner": tenant.owner, "retries": SYNC_RETRIES, "retry_delay": SYNC_RETRY_DELAY},
        params={
            # The widget's sync payload is {"source": "redshift_to_gcs"}: accepted, and nothing else is.
            "source": Param(
                SOURCE,
                type="string",
                enum=[SOURCE],
                title="Source",
                description=f"The widget's sync payload names its source; only {SOURCE!r} is allowed.",
            ),
            "full_refresh": Param(
                False,
                type="boolean",
                title="Full refresh",
                description="Copy incremental tables whole for this run.",
            ),
            "tables": Param(
                None,
                type=["array", "null"],
                examples=table_names,
                items={"type": "string", "enum": table_names},
                title="Tables",
                description="Sync only these tables (empty: all of the tenant's tables).",
            ),
        },
    ) as dag:

        @task(task_id=PLAN_TASK_ID)
        def plan(
            params: dict[str, Any] | None = None,
            data_interval_start: Any = None,
            data_interval_end: Any = None,
            dag_run: Any = None,
            ti: Any = None,
        ) -> list[dict[str, Any]]:
            run_after = getattr(dag_run, "run_after", None)
            planned = plan_tables(tenant, params or {}, data_interval_start, data_interval_end, run_after)
            full = plan_tasks(tenant, planned)
            log_plan(tenant, full)
            ti.xcom_push(key=PLAN_XCOM_KEY, value=full)
            return list(full["large"])

        @task(trigger_rule="all_done", retries=0)
        def summary(
            ti: Any = None,
            data_interval_start: Any = None,
            data_interval_end: Any = None,
        ) -> dict[str, Any]:
            return _summarise(tenant, ti, data_interval_start, data_interval_end)

        planned = plan()
        common: dict[str, Any] = {
            "redshift_conn_id": redshift_conn_id,
            "gcp_conn_id": tenant.gcp_conn_id,
            "bucket": tenant.bucket,
            "export_format": tenant.format,
            "single_node_cluster": tenant.single_node_cluster,
            "hash_key_conn_id": tenant.hash_key_conn_id,
            "pool": redshift_pool(redshift_conn_id),
            "outlets": [tables_asset_alias(tenant.tenant_id)],
            "map_index_template": TABLE_MAP_INDEX_TEMPLATE,
        }
        exports = [
            RedshiftTablesToGCSOperator.partial(task_id=TABLE_TASK_ID, **common).expand_kwargs(planned)
        ]
        if may_group(tenant):
            # Two mapped tasks, as Airflow reads pool_slots from the partial (it cannot be mapped), and
            # a second list to map over, as Airflow maps only over a task's return value.
            @task(task_id=SMALL_GROUPS_TASK_ID)
            def small_table_groups(ti: Any = None) -> list[dict[str, Any]]:
                return list(ti.xcom_pull(task_ids=PLAN_TASK_ID, key=PLAN_XCOM_KEY)["small"])

            groups = small_table_groups()
            planned >> groups
            small = RedshiftTablesToGCSOperator.partial(
                task_id=SMALL_TABLES_TASK_ID, pool_slots=tenant.small_table_slots, **common
            ).expand_kwargs(groups)
            exports.append(small)
        exports >> summary()
    return dag


def build_error_dag(dag_id: str, subject: str, error: str) -> DAG:
    """A DAG whose doc and only task show why ``subject``'s configuration is invalid."""
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=pendulum.instance(DEFAULT_START_DATE, tz="UTC"),
        catchup=False,
        # Unpaused, though it has no schedule: a placeholder shares the tenant's sync DAG id, and the
        # paused flag outlives the fix, so a paused placeholder would leave the fixed tenant paused.
        is_paused_upon_creation=False,
        tags=["rs2gcs", "rs2gcs:invalid"],
        doc_md=f"### Invalid rs2gcs configuration: `{subject}`\n\nFix it in the `rs2gcs_tenants` "
        f"Variable:\n\n```\n{error}\n```",
    ) as dag:

        @task(task_id="invalid_configuration", retries=0)
        def invalid_configuration() -> None:
            raise ValueError(error)

        invalid_configuration()
    return dag


def build_placeholder_dag(tenant_id: str, error: str) -> DAG:
    """The placeholder with the tenant's sync DAG id, shown instead of its sync DAG."""
    return build_error_dag(sync_dag_id(tenant_id), f"tenant {tenant_id}", error)


def build_dags(tenants: Mapping[str, Any]) -> dict[str, DAG]:
    """Every tenant's DAG, keyed by DAG id; never raises for one tenant's mistake."""
    dags: dict[str, DAG] = {}
    for tenant_id, entry in tenants.items():
        try:
            tenant = parse_tenant(str(tenant_id), entry)
            if tenant.is_ready:
                dags[sync_dag_id(tenant.tenant_id)] = build_sync_dag(tenant)
        except TenantConfigError as exc:
            log.error("rs2gcs: invalid tenant entry: %s", exc)
            dags[sync_dag_id(str(tenant_id))] = build_placeholder_dag(str(tenant_id), str(exc))
        except Exception as exc:
            message = f"tenant {tenant_id!r}: could not build its sync DAG: {exc}"
            log.exception("rs2gcs: %s", message)
            dags[sync_dag_id(str(tenant_id))] = build_placeholder_dag(str(tenant_id), message)
    return dags
