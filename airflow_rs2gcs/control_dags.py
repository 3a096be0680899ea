"""The control DAGs: the widget's buttons as trigger forms (``rs2gcs_connect``, ``rs2gcs_configure``,
``rs2gcs_disconnect``).

Trigger-only (no schedule). Their Params render as forms in the Airflow UI and their conf keys are
the Variable's keys, so ``airflow dags trigger rs2gcs_connect --conf '{"tenant_id": ...}'`` and the
form are the same thing. The syncFrequency dropdown is rendered from the one options table in
:mod:`airflow_rs2gcs.schedules`.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param

from airflow_rs2gcs.operators.lifecycle import (
    ActivateTenantOperator,
    ConfigureTenantOperator,
    DeactivateTenantOperator,
)
from airflow_rs2gcs.schedules import SYNC_FREQUENCIES
from airflow_rs2gcs.tenants import FORMATS, SOURCE, TENANT_ID_PATTERN

START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CONNECT_DAG_ID = "rs2gcs_connect"
CONFIGURE_DAG_ID = "rs2gcs_configure"
DISCONNECT_DAG_ID = "rs2gcs_disconnect"


def _tenant_param() -> Param:
    return Param(
        type="string",
        pattern=TENANT_ID_PATTERN.pattern,
        title="Tenant id",
        description="Letters, digits, '_' or '-'; becomes rs2gcs_sync__<tenant_id>.",
    )


def _control_dag(dag_id: str, doc: str, params: dict[str, Param]) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=16,
        is_paused_upon_creation=False,
        render_template_as_native_obj=True,
        tags=["rs2gcs", "rs2gcs:control"],
        doc_md=doc,
        params=params,
        default_args={"owner": "rs2gcs", "retries": 0},
    )


def build_connect_dag() -> DAG:
    """``rs2gcs_connect``: check the connections and bucket, record the tenant as connected."""
    params = {
        "tenant_id": _tenant_param(),
        "source": Param(SOURCE, type="string", title="Source", description=f"Must be {SOURCE!r}."),
        "redshift_conn_id": Param(type="string", minLength=1, title="Redshift connection id"),
        "gcp_conn_id": Param(type="string", minLength=1, title="GCP connection id"),
        "bucket": Param(type="string", minLength=3, title="GCS bucket"),
        # Nullable: the UI's trigger form requires every non-null type and refuses an empty string.
        "prefix": Param(
            None, type=["null", "string"], title="Object prefix", description="Optional folder in the bucket."
        ),
        "webhooks": Param(
            [],
            type="array",
            items={"type": "object"},  # a JSON editor in the form; plain arrays render as lines of strings
            title="Webhooks",
            description='JSON list: [{"id": "wh_1", "url": "https://...", "secret_conn_id": "..."}]',
        ),
    }
    with _control_dag(
        CONNECT_DAG_ID,
        "### Connect a tenant\n\nChecks the Redshift connection (a real query) "
        "and the bucket (writes and deletes a probe object), then records the tenant as "
        "connected. Returns `Activation successful for <source>`.",
        params,
    ) as dag:
        ActivateTenantOperator(
            task_id="activate",
            tenant_id="{{ params.tenant_id }}",
            source="{{ params.source }}",
            redshift_conn_id="{{ params.redshift_conn_id }}",
            gcp_conn_id="{{ params.gcp_conn_id }}",
            bucket="{{ params.bucket }}",
            prefix="{{ params.prefix }}",
            webhooks="{{ params.webhooks }}",
        )
    return dag


def build_configure_dag() -> DAG:
    """``rs2gcs_configure``: pick tables and a schedule for a connected tenant."""
    values = [o.value for o in SYNC_FREQUENCIES]
    params = {
        "tenant_id": _tenant_param(),
        # Optional in the form: a run without tables answers with the tables the connection can read.
        "tables": Param(
            None,
            type=["null", "array"],
            items={"type": "string"},
            title="Tables",
            description="One per line: schema.table, or the output name of a custom query. Leave empty "
            "and Trigger to get the list of readable tables in the run's error and log.",
        ),
        "table_options": Param(
            {},
            type="object",
            title="Per-table options",
            description='{"<table>": {"query": "select ...", "mode": "incremental", '
            '"cursor_column": "updated_at"}}',
        ),
        "syncFrequency": Param(
            "daily",
            type="string",
            enum=values,
            title="Sync frequency",
            values_display={o.value: o.label for o in SYNC_FREQUENCIES},
        ),
        "cron": Param(
            None,
            type=["null", "string"],  # the UI's form requires every non-null type: "" blocked Trigger
            title="Custom cron (optional)",
            description="A 5-field cron expression; when set it replaces the sync frequency.",
        ),
        "format": Param("parquet", type="string", enum=list(FORMATS), title="Format"),
        "timezone": Param(
            "UTC", type="string", title="Time zone", description="IANA name, e.g. Europe/Berlin."
        ),
        "page_size": Param(100, type="integer", minimum=1, maximum=1000, title="Catalog page size"),
        "limit": Param(1000, type="integer", minimum=1, title="Catalog listing limit"),
    }
    with _control_dag(
        CONFIGURE_DAG_ID,
        "### Configure a connected tenant\n\nLists the tables the connection "
        "can read, validates the selection and any custom query, stores the configuration. "
        "The tenant's sync DAG appears at the next parse.",
        params,
    ) as dag:
        ConfigureTenantOperator(
            task_id="configure",
            tenant_id="{{ params.tenant_id }}",
            tables="{{ params.tables }}",
            table_options="{{ params.table_options }}",
            sync_frequency="{{ params.cron or params.syncFrequency }}",
            export_format="{{ params.format }}",
            timezone="{{ params.timezone }}",
            page_size="{{ params.page_size }}",
            limit="{{ params.limit }}",
        )
    return dag


def build_disconnect_dag() -> DAG:
    """``rs2gcs_disconnect``: delete the tenant's webhooks and clear its configuration."""
    with _control_dag(
        DISCONNECT_DAG_ID,
        "### Disconnect a tenant\n\nDeletes its webhooks, clears its saved "
        "configuration; its sync DAG goes away at the next parse. Data in GCS is kept. "
        "Returns `Deactivation completed for <tenant_id>`.",
        {"tenant_id": _tenant_param()},
    ) as dag:
        DeactivateTenantOperator(task_id="deactivate", tenant_id="{{ params.tenant_id }}")
    return dag


def build_control_dags() -> dict[str, DAG]:
    """The three control DAGs, keyed by DAG id."""
    return {dag.dag_id: dag for dag in (build_connect_dag(), build_configure_dag(), build_disconnect_dag())}
