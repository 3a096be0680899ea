"""The widget's three buttons as operators: Connect (activate), Configure and Disconnect (deactivate).

Each reads and writes the tenant's entry in ``rs2gcs_tenants`` only through
:func:`airflow_rs2gcs.store.update_tenant`, so concurrent runs for different tenants never lose each
other's updates. Messages are the widget's: ``Activation successful for <source>`` and
``Deactivation completed for <tenant_id>``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_rs2gcs.query_check import QueryNotAllowed, check_read_only_select
from airflow_rs2gcs.sql import select_table
from airflow_rs2gcs.store import parse_tenants_json, read_variable_text, update_tenant
from airflow_rs2gcs.tenants import SOURCE, TenantConfigError, parse_tenant
from airflow_rs2gcs.webhooks import delete_registration

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_rs2gcs.hooks.redshift_catalog import RedshiftCatalogHook

# The hooks (boto, google-cloud-storage) are imported inside execute: DAG files that use these
# operators are parsed often, and those imports cost seconds per parse process.


PICKER_PREVIEW = 20  # relations named in the error of a Configure run with no tables selected


class LifecycleError(ValueError):
    """A lifecycle step refused its input; the message says which check failed and what to do."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _validated(tenant_id: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """Check an entry against the tenant contract before it is stored; return it unchanged."""
    try:
        parse_tenant(tenant_id, entry)
    except TenantConfigError as exc:
        raise LifecycleError(str(exc)) from None
    return dict(entry)


def current_entry(tenant_id: str) -> dict[str, Any] | None:
    """The tenant's stored entry (``None`` when it has none)."""
    return parse_tenants_json(read_variable_text()).get(tenant_id)


class ActivateTenantOperator(BaseOperator):
    """Connect: check the tenant's Redshift connection and GCS bucket, then record it as connected.

    Runs a real query on Redshift (and logs the server version), checks that the bucket exists and is
    writable under the tenant's prefix (writes and deletes a probe object). Only when both pass is the
    tenant recorded (status ``connected``, ``connected_at``); a reconnect keeps an existing configuration.

    :param tenant_id: the tenant's id (templated).
    :param source: must be ``redshift_to_gcs`` (templated).
    :param redshift_conn_id: Airflow connection of type ``redshift`` (templated).
    :param gcp_conn_id: Airflow connection of type ``google_cloud_platform`` (templated).
    :param bucket: the tenant's GCS bucket (templated).
    :param prefix: object prefix inside the bucket (templated).
    :param webhooks: webhook definitions (id, url, secret or secret_conn_id, registration_url) (templated:
        a template string must render to the list).
    :return: ``Activation successful for <source>``.
    """

    template_fields: Sequence[str] = (
        "tenant_id",
        "source",
        "redshift_conn_id",
        "gcp_conn_id",
        "bucket",
        "prefix",
        "webhooks",
    )

    def __init__(
        self,
        *,
        tenant_id: str,
        redshift_conn_id: str,
        gcp_conn_id: str,
        bucket: str,
        source: str = SOURCE,
        prefix: str = "",
        webhooks: Sequence[Mapping[str, Any]] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tenant_id = tenant_id
        self.source = source
        self.redshift_conn_id = redshift_conn_id
        self.gcp_conn_id = gcp_conn_id
        self.bucket = bucket
        self.prefix = prefix
        self.webhooks = webhooks

    def _connection_fields(self) -> dict[str, Any]:
        webhooks = self.webhooks or []
        if isinstance(webhooks, str):
            raise LifecycleError(f"tenant {self.tenant_id!r}: webhooks must be a JSON list, got {webhooks!r}")
        if self.source != SOURCE:
            raise LifecycleError(
                f"Unknown source {self.source!r} for tenant {self.tenant_id!r}; allowed: {SOURCE!r}"
            )
        return {
            "source": self.source,
            "redshift_conn_id": self.redshift_conn_id,
            "gcp_conn_id": self.gcp_conn_id,
            "bucket": self.bucket,
            "prefix": self.prefix or "",
            "webhooks": list(webhooks),
        }

    def _check_redshift(self) -> None:
        from airflow_rs2gcs.hooks.redshift_catalog import RedshiftCatalogHook

        try:
            version = RedshiftCatalogHook(redshift_conn_id=self.redshift_conn_id).server_version()
        except Exception as exc:
            raise LifecycleError(
                f"Connect failed for tenant {self.tenant_id!r}: the Redshift check on connection "
                f"{self.redshift_conn_id!r} failed ({type(exc).__name__}: {exc}). Fix host, port, database, "
                "login/password (or IAM) and 'ssl' of that connection in Admin > Connections."
            ) from None
        self.log.info("Redshift connection %s works: %s", self.redshift_conn_id, version)

    def _check_bucket(self, prefix: str) -> None:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        hook = GCSHook(gcp_conn_id=self.gcp_conn_id)
        probe = "/".join(p for p in (prefix, self.tenant_id, f"_rs2gcs_probe_{uuid.uuid4().hex}") if p)
        step = "find the bucket"
        try:
            hook.get_bucket(self.bucket).reload()
            step = f"write gs://{self.bucket}/{probe}"
            hook.upload(bucket_name=self.bucket, object_name=probe, data=b"rs2gcs connect probe")
            step = f"delete gs://{self.bucket}/{probe}"
            hook.delete(bucket_name=self.bucket, object_name=probe)
        except Exception as exc:
            raise LifecycleError(
                f"Connect failed for tenant {self.tenant_id!r}: could not {step} with connection "
                f"{self.gcp_conn_id!r} ({type(exc).__name__}: {exc}). Check that bucket {self.bucket!r} "
                "exists and that the connection's service account may create and delete objects in it."
            ) from None
        self.log.info("bucket gs://%s is writable under %r", self.bucket, prefix)

    def execute(self, context: Context) -> str:
        fields = self._connection_fields()
        prefix = parse_tenant(self.tenant_id, _validated(self.tenant_id, fields)).prefix
        self._check_redshift()
        self._check_bucket(prefix)

        def connect(entry: dict[str, Any] | None) -> dict[str, Any]:
            entry = {k: v for k, v in (entry or {}).items() if k != "disconnected_at"}
            configured = bool(entry.get("tables")) and entry.get("status") == "configured"
            return _validated(
                self.tenant_id,
                {
                    **entry,
                    **fields,
                    "status": "configured" if configured else "connected",
                    "connected_at": _now(),
                },
            )

        update_tenant(self.tenant_id, connect)
        message = f"Activation successful for {self.source}"
        self.log.info(message)
        return message


class ConfigureTenantOperator(BaseOperator):
    """Configure: list what the tenant's Redshift connection can read, validate the selection, store it.

    Refuses a tenant that is not connected. Lists readable tables and views (late-binding views
    included; schemas without USAGE are skipped) page by page in a stable order and logs them.
    Each selected table must exist and be readable; each custom query must be ONE read-only SELECT,
    then is planned by the database with ``LIMIT 0`` (no rows read); each cursor column must exist
    with a date/time type (the incremental window is the run's data interval).

    :param tenant_id: the tenant's id (templated).
    :param tables: table names to sync (``schema.table``; for a custom query, its output name) (templated).
    :param table_options: per table name: optional ``query``, ``mode`` and ``cursor_column`` (templated:
        a template string must render to the mapping).
    :param sync_frequency: a value or label of the syncFrequency options table, or a cron expression
        (templated).
    :param export_format: ``parquet``, ``csv`` or ``jsonl`` (templated).
    :param timezone: IANA time zone of the schedule (templated).
    :param page_size: relations per catalog page (templated: a string is read as an integer).
    :param limit: at most this many relations are listed (``None`` or ``""``: all) (templated).
    :return: the list of available relations (``schema.name``), as the widget's table picker shows them.
    """

    template_fields: Sequence[str] = (
        "tenant_id",
        "tables",
        "table_options",
        "sync_frequency",
        "export_format",
        "timezone",
        "page_size",
        "limit",
    )

    def __init__(
        self,
        *,
        tenant_id: str,
        tables: Sequence[str],
        sync_frequency: str,
        table_options: Mapping[str, Mapping[str, Any]] | str | None = None,
        export_format: str = "parquet",
        timezone: str = "UTC",
        page_size: int | str = 100,
        limit: int | str | None = 1000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tenant_id = tenant_id
        self.tables = tables
        self.table_options = table_options
        self.sync_frequency = sync_frequency
        self.export_format = export_format
        self.timezone = timezone
        self.page_size = page_size
        self.limit = limit

    def _connected_entry(self) -> dict[str, Any]:
        entry = current_entry(self.tenant_id)
        if not entry or entry.get("status") not in {"connected", "configured"}:
            raise LifecycleError(
                f"Tenant {self.tenant_id!r} is not connected; run rs2gcs_connect for it first "
                "(Configure needs a working Redshift connection and bucket)."
            )
        return entry

    def _table_specs(self) -> list[dict[str, Any]]:
        rendered = self.table_options or {}
        if isinstance(rendered, str):
            raise LifecycleError(
                f"tenant {self.tenant_id!r}: table_options must be a JSON object, got {rendered!r}"
            )
        options = dict(rendered)
        unknown = sorted(set(options) - set(self.tables or []))
        if unknown:
            raise LifecycleError(
                f"tenant {self.tenant_id!r}: table_options names tables not selected: {unknown}"
            )
        specs = []
        for name in self.tables or []:
            extra = {k: v for k, v in dict(options.get(name, {})).items() if v not in (None, "")}
            specs.append({"name": name, **extra})
        return specs

    def _refuse_empty_selection(self, entry: Mapping[str, Any]) -> None:
        """Like the widget's picker: a run with no tables answers with what the connection can read."""
        from airflow_rs2gcs.hooks.redshift_catalog import RedshiftCatalogHook

        hook = RedshiftCatalogHook(redshift_conn_id=entry["redshift_conn_id"])
        available = self._list_available(hook)
        total, named = hook.count_relations(), min(len(available), PICKER_PREVIEW)
        shown = ", ".join(available[:PICKER_PREVIEW]) or "none"
        if total > named:
            listed = "all" if len(available) >= total else f"the first {len(available)}"
            shown += f", ... ({named} shown of {total}; the task log lists {listed})"
        raise LifecycleError(
            f"tenant {self.tenant_id!r}: field 'tables': select at least one table; readable by "
            f"connection {entry['redshift_conn_id']!r}: {shown}"
        )

    def _check_queries(self, specs: list[dict[str, Any]]) -> None:
        """Refuse every custom query that is not one read-only SELECT, all in one message."""
        problems = []
        for spec in specs:
            if spec.get("query"):
                try:
                    spec["query"] = check_read_only_select(str(spec["query"]))
                except QueryNotAllowed as exc:
                    where = f"tenant {self.tenant_id!r}, table {spec['name']!r}"
                    problems.append(f"{where}: field 'query' is not allowed: {exc}")
        if problems:
            raise LifecycleError("; ".join(problems))

    def _list_available(self, hook: RedshiftCatalogHook) -> list[str]:
        available: list[str] = []
        limit = None if self.limit in (None, "") else int(self.limit)
        for number, page in enumerate(hook.iter_relations(int(self.page_size), limit), start=1):
            self.log.info("page %d: %s", number, ", ".join(f"{r.qualified} ({r.kind})" for r in page))
            available.extend(r.qualified for r in page)
        return available

    def _check_spec(self, hook: RedshiftCatalogHook, spec: dict[str, Any]) -> dict[str, Any]:
        from airflow_rs2gcs.hooks.redshift_catalog import TIME_TYPE_OIDS

        where = f"tenant {self.tenant_id!r}, table {spec['name']!r}"
        if spec.get("query"):  # already one read-only SELECT: _check_queries ran first
            sql = spec["query"]
        else:
            if not hook.can_read(spec["name"]):
                raise LifecycleError(f"{where}: no such table or view readable by this connection")
            sql = select_table(spec["name"])
        try:
            columns = hook.result_columns(sql)
        except Exception as exc:
            raise LifecycleError(f"{where}: the database refused the query: {exc}") from None
        cursor = spec.get("cursor_column")
        if cursor and TIME_TYPE_OIDS.get(columns.get(cursor, -1)) is None:
            found = "is missing" if cursor not in columns else f"has type OID {columns[cursor]}"
            raise LifecycleError(
                f"{where}: field 'cursor_column': {cursor!r} {found}; allowed: a column of type date, "
                f"timestamp or timestamptz among {sorted(columns)}"
            )
        return spec

    def execute(self, context: Context) -> list[str]:
        entry = self._connected_entry()
        specs = self._table_specs()
        if not specs:
            self._refuse_empty_selection(entry)
        self._check_queries(specs)
        settings = {
            "tables": specs,
            "syncFrequency": self.sync_frequency,
            "format": self.export_format,
            "timezone": self.timezone,
        }
        _validated(self.tenant_id, {**entry, **settings})
        from airflow_rs2gcs.hooks.redshift_catalog import RedshiftCatalogHook

        hook = RedshiftCatalogHook(redshift_conn_id=entry["redshift_conn_id"])
        available = self._list_available(hook)
        settings["tables"] = [self._check_spec(hook, spec) for spec in specs]

        def configure(stored: dict[str, Any] | None) -> dict[str, Any]:
            if not stored or stored.get("status") not in {"connected", "configured"}:
                raise LifecycleError(
                    f"Tenant {self.tenant_id!r} was disconnected meanwhile; connect it again"
                )
            return _validated(
                self.tenant_id, {**stored, **settings, "status": "configured", "configured_at": _now()}
            )

        update_tenant(self.tenant_id, configure)
        self.log.info(
            "Configuration saved for %s: %d table(s), syncFrequency %s; its sync DAG "
            "rs2gcs_sync__%s appears at the next parse",
            self.tenant_id,
            len(specs),
            self.sync_frequency,
            self.tenant_id,
        )
        return available


class DeactivateTenantOperator(BaseOperator):
    """Disconnect: delete the tenant's webhooks one by one, then clear its configuration and context.

    Works from any state and is idempotent. A webhook with a ``registration_url`` gets a DELETE
    request (a failure is logged, not fatal). The entry keeps only ``source``, ``status:
    disconnected`` and ``disconnected_at``, so the sync DAG disappears at the next parse. Data already
    in GCS is left alone.

    :param tenant_id: the tenant's id (templated).
    :return: ``Deactivation completed for <tenant_id>``.
    """

    template_fields: Sequence[str] = ("tenant_id",)

    def __init__(self, *, tenant_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tenant_id = tenant_id

    def _delete_webhooks(self, entry: Mapping[str, Any]) -> None:
        from airflow_rs2gcs.tenants import Webhook

        for raw in entry.get("webhooks") or []:
            try:
                webhook = Webhook.model_validate(raw)
            except Exception:
                self.log.warning(
                    "skipping a malformed webhook entry: %r", raw.get("id") if isinstance(raw, dict) else raw
                )
                continue
            status = delete_registration(webhook)
            self.log.info(
                "deleted webhook %s%s",
                webhook.id,
                "" if webhook.registration_url is None else f" (remote DELETE: {status})",
            )

    def execute(self, context: Context) -> str:
        self._delete_webhooks(current_entry(self.tenant_id) or {})

        def disconnect(entry: dict[str, Any] | None) -> dict[str, Any]:
            return {
                "source": (entry or {}).get("source", SOURCE),
                "status": "disconnected",
                "disconnected_at": _now(),
            }

        update_tenant(self.tenant_id, disconnect)
        message = f"Deactivation completed for {self.tenant_id}"
        self.log.info(message)
        return message
