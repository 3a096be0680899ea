"""The control DAGs: the widget's buttons as trigger forms (``rs2gcs_connect``, ``rs2gcs_configure``,
``rs2gcs_disconnect``).

Trigger-only (no schedule). Their Params render as forms in the Airflow UI and their conf keys are
the Variable's keys, so ``airflow dags trigger rs2gcs_connect --conf '{"tenant_id": ...}'`` and the
form are the same thing. The operators get each Param's value as it is (:class:`ParamValue`), never a
rendered template: ids and prefixes such as ``123``, ``007`` or ``None`` stay text. The syncFrequency
dropdown is rendered from the one options table in
:mod:`airflow_rs2gcs.schedules`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow.sdk import DAG, Param

from airflow_rs2gcs.operators.configure import ConfigureTenantOperator
from airflow_rs2gcs.operators.connect import ActivateTenantOperator
from airflow_rs2gcs.operators.disconnect import DeactivateTenantOperator
from airflow_rs2gcs.operators.lifecycle import CONNECT_CLEARABLE
from airflow_rs2gcs.schedules import SYNC_FREQUENCIES
from airflow_rs2gcs.tenants import FORMATS, SOURCE, TENANT_ID_PATTERN

START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CONNECT_DAG_ID = "rs2gcs_connect"
CONFIGURE_DAG_ID = "rs2gcs_configure"
DISCONNECT_DAG_ID = "rs2gcs_disconnect"
KEEP = "Empty keeps the stored value."
# The dropdown's empty choice (before the widget's own labels): a reconfigure keeps the frequency.
KEEP_FREQUENCY_LABEL = "(keep the stored one; first time: 1 day)"
RULES_DOC = (
    "\n\nRules: a field left empty keeps its stored value; clearing is explicit. Changing a configured "
    "tenant's bucket, prefix, format or time zone splits its history and needs **confirm_output_change**."
)


@dataclass(frozen=True)
class ParamValue:
    """A templated field's value taken from the run's Params as it is: no Jinja, no text round trip.

    Airflow calls a callable template field with ``context`` and ``jinja_env`` at run time. Passing
    ``"{{ params.tenant_id }}"`` instead renders text, and with ``render_template_as_native_obj`` that
    text is parsed back into Python literals: tenant ``123`` became an int, ``True`` a bool, ``None``
    None, ``007`` 7. Here a string Param stays the exact string, a list stays a list.

    :param name: the Param to read.
    :param or_else: another Param to read when ``name`` is empty (``None`` or ``""``).
    """

    name: str
    or_else: str | None = None

    def __call__(self, context: Mapping[str, Any], jinja_env: Any = None) -> Any:
        params = context["params"]
        value = params.get(self.name)
        if value in (None, "") and self.or_else is not None:
            value = params.get(self.or_else)
        return value


def _tenant_param() -> Param:
    return Param(
        type="string",
        pattern=TENANT_ID_PATTERN.pattern,
        title="Tenant id",
        description="Letters, digits, '_' or '-'; becomes rs2gcs_sync__<tenant_id>. Taken as text "
        "whatever it looks like ('123', '007', 'None' stay those strings).",
    )


def _text_param(title: str, description: str, min_length: int = 1) -> Param:
    # Nullable: the UI's trigger form requires every non-null type and refuses an empty string.
    return Param(None, type=["null", "string"], minLength=min_length, title=title, description=description)


def _confirm_param(fields: str) -> Param:
    return Param(
        False,
        type="boolean",
        title="Confirm output change",
        description=f"Allow changing a configured tenant's {fields}: its objects and incremental history "
        "stay at the old place and the next syncs start over at the new one.",
    )


def _control_dag(dag_id: str, doc: str, params: dict[str, Param]) -> DAG:
    # No render_template_as_native_obj: the operators get the Params' values through ParamValue.
    return DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=16,
        is_paused_upon_creation=False,
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
        "redshift_conn_id": _text_param("Redshift connection id", f"Required for a new tenant. {KEEP}"),
        "gcp_conn_id": _text_param("GCP connection id", f"Required for a new tenant. {KEEP}"),
        "bucket": _text_param("GCS bucket", f"Required for a new tenant. {KEEP}", min_length=3),
        "prefix": _text_param(
            "Object prefix", f"Optional folder in the bucket. {KEEP} Clear: pick 'prefix'."
        ),
        "webhooks": Param(
            None,
            type=["null", "array"],
            items={"type": "object"},  # a JSON editor in the form; plain arrays render as lines of strings
            title="Webhooks",
            description='JSON list: [{"id": "wh_1", "url": "https://...", "secret_conn_id": "..."}]. '
            "When given it replaces the stored list, and a dropped webhook's registration is deleted "
            f"first. {KEEP} Clear: pick 'webhooks'.",
        ),
        "clear": Param(
            None,
            type=["null", "array"],
            items={"type": "string", "enum": list(CONNECT_CLEARABLE)},
            examples=list(CONNECT_CLEARABLE),
            title="Clear",
            description="Fields to empty explicitly (webhooks: their registrations are deleted first).",
        ),
        "confirm_output_change": _confirm_param("bucket or prefix"),
    }
    with _control_dag(
        CONNECT_DAG_ID,
        "### Connect a tenant\n\nCreates the tenant, or reconnects it (the log says which). Checks the "
        "Redshift connection (a real query) and the bucket (writes and deletes a probe object), then "
        "records the tenant as connected; a reconnect keeps its configuration. Returns "
        "`Activation successful for <source>`." + RULES_DOC,
        params,
    ) as dag:
        ActivateTenantOperator(
            task_id="activate",
            tenant_id=ParamValue("tenant_id"),
            source=ParamValue("source"),
            redshift_conn_id=ParamValue("redshift_conn_id"),
            gcp_conn_id=ParamValue("gcp_conn_id"),
            bucket=ParamValue("bucket"),
            prefix=ParamValue("prefix"),
            webhooks=ParamValue("webhooks"),
            clear=ParamValue("clear"),
            confirm_output_change=ParamValue("confirm_output_change"),
        )
    return dag


def build_configure_dag() -> DAG:
    """``rs2gcs_configure``: pick tables and a schedule for a connected tenant."""
    values = [o.value for o in SYNC_FREQUENCIES]
    params = {
        "tenant_id": _tenant_param(),
        # Optional in the form: a run without tables keeps the stored ones, or (first time) answers with
        # the tables the connection can read.
        "tables": Param(
            None,
            type=["null", "array"],
            # No "type" on items: the form keeps its one-name-per-line editor; --conf may also give
            # the Variable's table objects.
            items={"anyOf": [{"type": "string", "minLength": 1}, {"type": "object", "required": ["name"]}]},
            title="Tables",
            description="One per line: schema.table as the catalog lists it (quote a part that needs it: "
            'analytics."Mixed Case Table"), or the output name of a custom query (in --conf also '
            'objects as in the Variable: {"name": ..., "mode": ..., "cursor_column": ...}). Replaces the '
            "selection; a table named again keeps its stored options. Empty keeps the stored tables; "
            "the first time, Trigger with none to get the readable tables in the run's error and log.",
        ),
        "table_options": Param(
            None,
            type=["null", "object"],
            title="Per-table options",
            description='{"<table>": {"query": "select ...", "mode": "incremental", '
            '"cursor_column": "updated_at", "exclude_columns": ["ssn"], "hash_columns": ["email"], '
            '"on_schema_change": "fail", "verify": "count", "capture_deletes": true, '
            '"primary_key": ["id"]}}. Only the options given change; null clears one.',
        ),
        "hash_key_conn_id": _text_param(
            "Hash key connection",
            f"The Airflow connection whose password is the HMAC key of hash_columns. {KEEP}",
        ),
        "syncFrequency": Param(
            None,
            type=["null", "string"],
            enum=[None, *values],
            title="Sync frequency",
            values_display={None: KEEP_FREQUENCY_LABEL} | {o.value: o.label for o in SYNC_FREQUENCIES},
        ),
        "cron": _text_param(
            "Custom cron (optional)", "A 5-field cron expression; when set it replaces the sync frequency."
        ),
        "format": Param(
            None,
            type=["null", "string"],
            enum=[None, *FORMATS],
            title="Format",
            description=f"{KEEP} First time: parquet.",
        ),
        "timezone": _text_param("Time zone", f"IANA name, e.g. Europe/Berlin. {KEEP} First time: UTC."),
        "page_size": Param(100, type="integer", minimum=1, maximum=1000, title="Catalog page size"),
        "limit": Param(1000, type="integer", minimum=1, title="Catalog listing limit"),
        "confirm_output_change": _confirm_param("format or time zone"),
    }
    with _control_dag(
        CONFIGURE_DAG_ID,
        "### Configure a connected tenant\n\nLists the tables the connection "
        "can read, validates the selection and any custom query, stores the configuration. "
        "The tenant's sync DAG appears at the next parse. A tenant id with no entry is refused, "
        "naming the closest existing ids." + RULES_DOC,
        params,
    ) as dag:
        ConfigureTenantOperator(
            task_id="configure",
            tenant_id=ParamValue("tenant_id"),
            tables=ParamValue("tables"),
            table_options=ParamValue("table_options"),
            sync_frequency=ParamValue("cron", or_else="syncFrequency"),
            export_format=ParamValue("format"),
            timezone=ParamValue("timezone"),
            page_size=ParamValue("page_size"),
            limit=ParamValue("limit"),
            confirm_output_change=ParamValue("confirm_output_change"),
            hash_key_conn_id=ParamValue("hash_key_conn_id"),
        )
    return dag


def build_disconnect_dag() -> DAG:
    """``rs2gcs_disconnect``: delete the tenant's webhooks and clear its configuration."""
    params = {
        "tenant_id": _tenant_param(),
        "webhookIds": Param(
            None,
            type=["null", "array"],
            items={"type": "string", "minLength": 1},
            title="Webhook ids",
            description="Delete only these webhooks (each must be one of the tenant's); the tenant stays. "
            "Empty: delete all and disconnect the tenant.",
        ),
    }
    with _control_dag(
        DISCONNECT_DAG_ID,
        "### Disconnect a tenant\n\nDeletes its webhook registrations (DELETE, retried; 404 and 410 "
        "count as deleted), then clears its saved configuration; its sync DAG goes away at the next "
        "parse. Data in GCS is kept. Returns `Deactivation completed for <tenant_id>` only when every "
        "registration is gone; otherwise the run fails naming each webhook it could not delete, the "
        "tenant stays `disconnecting` (no sync DAG) with their records, and a re-run finishes the job. "
        "A tenant id with no entry is refused, naming the closest existing ids.",
        params,
    ) as dag:
        DeactivateTenantOperator(
            task_id="deactivate", tenant_id=ParamValue("tenant_id"), webhook_ids=ParamValue("webhookIds")
        )
    return dag


def build_control_dags() -> dict[str, DAG]:
    """The three control DAGs, keyed by DAG id."""
    return {dag.dag_id: dag for dag in (build_connect_dag(), build_configure_dag(), build_disconnect_dag())}
