"""Configure: list what the tenant's connection can read, check the selection, store it.

The rules every lifecycle operator follows are in :mod:`airflow_rs2gcs.operators.lifecycle`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_rs2gcs.query_check import QueryNotAllowed, check_read_only_select
from airflow_rs2gcs.sql import select_table
from airflow_rs2gcs.store import TENANTS_VARIABLE, update_tenant
from airflow_rs2gcs.tenants import (
    FORMATS,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_rs2gcs.hooks.redshift_catalog import RedshiftCatalogHook

from airflow_rs2gcs.operators.lifecycle import (
    ACTIVE_STATUSES,
    DEFAULT_SYNC_FREQUENCY,
    PICKER_PREVIEW,
    FieldSource,
    LifecycleError,
    check_unchanged,
    checked_tenant_id,
    existing_entry,
    given_flag,
    given_json,
    given_text,
    now_iso,
    parsed_tenant,
    refuse_unconfirmed,
    validated_entry,
)


class ConfigureTenantOperator(BaseOperator):
    """Configure: list what the tenant's Redshift connection can read, validate the selection, store it.

    Refuses a tenant that has no entry (naming the closest ids) or is not connected. Changes only what
    the run was given: ``tables`` (names, or the Variable's table objects) replaces the selection, and a
    table named again keeps its stored options unless the run gives new ones (``null`` clears one);
    ``table_options`` alone changes options of stored tables; ``sync_frequency``, ``export_format`` and
    ``timezone`` left empty keep their stored values (a first configuration: ``daily``, ``parquet``,
    ``UTC``). Changing a configured tenant's format or time zone needs ``confirm_output_change``.

    Lists only the relations the login can SELECT (tables, views, late-binding and materialized views,
    in schemas it has USAGE on), each spelled as ``tables`` accepts it, page by page in a stable order,
    and logs them. Each selected table must exist and be readable; each
    custom query must be ONE read-only SELECT, then is planned by the database with ``LIMIT 0`` (no
    rows read); each cursor column must exist with a date/time type.

    :param tenant_id: the tenant's id (templated).
    :param tables: tables to sync: ``schema.table`` names (for a custom query, its output name) or
        objects like the Variable's (``{"name": ..., "mode": ..., "cursor_column": ..., "query": ...}``)
        (templated: a string must be a JSON list).
    :param table_options: per table name: ``query``, ``mode``, ``cursor_column``, ``fetch_method``,
        ``on_schema_change``, ``columns``, ``exclude_columns``, ``hash_columns``, ``verify``,
        ``capture_deletes``, ``primary_key`` (the columns named must exist);
        ``null`` clears a stored option (templated: a string must be a JSON object).
    :param sync_frequency: a value or label of the syncFrequency options table, or a cron expression
        (templated).
    :param export_format: ``parquet``, ``csv`` or ``jsonl`` (templated).
    :param timezone: IANA time zone of the schedule (templated).
    :param page_size: relations per catalog page (templated: a string is read as an integer).
    :param limit: at most this many relations are listed (``None`` or ``""``: all) (templated).
    :param confirm_output_change: allow changing a configured tenant's format or time zone (templated).
    :param hash_key_conn_id: the Airflow connection whose password keys the tables' ``hash_columns``;
        empty keeps the stored one (templated).
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
        "confirm_output_change",
        "hash_key_conn_id",
    )

    def __init__(
        self,
        *,
        tenant_id: str | FieldSource,
        tables: Sequence[str | Mapping[str, Any]] | str | FieldSource | None = None,
        sync_frequency: str | FieldSource | None = None,
        table_options: Mapping[str, Mapping[str, Any]] | str | FieldSource | None = None,
        export_format: str | FieldSource | None = None,
        timezone: str | FieldSource | None = None,
        page_size: int | str | FieldSource = 100,
        limit: int | str | FieldSource | None = 1000,
        confirm_output_change: bool | str | FieldSource = False,
        hash_key_conn_id: str | FieldSource | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hash_key_conn_id = hash_key_conn_id
        self.tenant_id = tenant_id
        self.tables = tables
        self.table_options = table_options
        self.sync_frequency = sync_frequency
        self.export_format = export_format
        self.timezone = timezone
        self.page_size = page_size
        self.limit = limit
        self.confirm_output_change = confirm_output_change

    def _connected_entry(self, tenant_id: str) -> dict[str, Any]:
        entry = existing_entry(
            tenant_id,
            lambda hint: (
                f"Tenant {tenant_id!r} is not connected; run rs2gcs_connect for it first "
                f"({TENANTS_VARIABLE!r} has no entry {tenant_id!r}; {hint}). Nothing was changed."
            ),
        )
        if not isinstance(entry, dict) or entry.get("status") not in ACTIVE_STATUSES:
            status = entry.get("status") if isinstance(entry, dict) else None
            raise LifecycleError(
                f"Tenant {tenant_id!r} is not connected (status {status!r}); run rs2gcs_connect for it first "
                "(Configure needs a working Redshift connection and bucket)."
            )
        return entry

    def _selection(self, tenant_id: str, stored: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The tables after this run: the given selection (or the stored one) with options merged."""
        stored_specs = {
            t["name"]: dict(t) for t in stored.get("tables") or [] if isinstance(t, Mapping) and "name" in t
        }
        given = given_json(tenant_id, "tables", self.tables, list)
        options = given_json(tenant_id, "table_options", self.table_options, dict) or {}
        picked: list[tuple[str, dict[str, Any]]] = []
        for index, item in enumerate(given or []):
            if isinstance(item, str) and item.strip():
                picked.append((item, {}))
            elif isinstance(item, Mapping) and isinstance(item.get("name"), str) and item["name"].strip():
                picked.append((item["name"], {k: v for k, v in item.items() if k != "name"}))
            else:
                raise LifecycleError(
                    f"tenant {tenant_id!r}: field 'tables.{index}': {item!r} is neither a table name nor a "
                    'table object like {"name": "public.orders", "mode": "incremental", '
                    '"cursor_column": "updated_at"}'
                )
        if given is None:
            picked = [(name, {}) for name in stored_specs]
        names = [name for name, _ in picked]
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise LifecycleError(f"tenant {tenant_id!r}: table_options names tables not selected: {unknown}")
        specs = []
        for name, inline in picked:
            extra = options.get(name) or {}
            if not isinstance(extra, Mapping):
                raise LifecycleError(
                    f"tenant {tenant_id!r}: table_options[{name!r}] must be an object, got {extra!r}"
                )
            clash = sorted(k for k in set(inline) & set(extra) if inline[k] != extra[k])
            if clash:
                raise LifecycleError(
                    f"tenant {tenant_id!r}, table {name!r}: {clash} given differently in 'tables' and "
                    "'table_options'; give each option once"
                )
            spec = dict(stored_specs.get(name, {"name": name}))
            for key, value in {**inline, **extra}.items():
                if value is None:
                    spec.pop(key, None)  # explicit clear: back to the option's default
                elif value != "":
                    spec[key] = value
            specs.append(spec)
        return specs

    def _refuse_empty_selection(self, tenant_id: str, entry: Mapping[str, Any]) -> None:
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
            f"tenant {tenant_id!r}: field 'tables': select at least one table; readable by "
            f"connection {entry['redshift_conn_id']!r}: {shown}"
        )

    def _check_queries(self, tenant_id: str, specs: list[dict[str, Any]]) -> None:
        """Refuse every custom query that is not one read-only SELECT, all in one message."""
        problems = []
        for spec in specs:
            if spec.get("query"):
                try:
                    spec["query"] = check_read_only_select(str(spec["query"]))
                except QueryNotAllowed as exc:
                    where = f"tenant {tenant_id!r}, table {spec['name']!r}"
                    problems.append(f"{where}: field 'query' is not allowed: {exc}")
        if problems:
            raise LifecycleError("; ".join(problems))

    def _list_available(self, hook: RedshiftCatalogHook) -> list[str]:
        available: list[str] = []
        limit = None if self.limit in (None, "") else int(str(self.limit))
        for number, page in enumerate(hook.iter_relations(int(str(self.page_size)), limit), start=1):
            self.log.info("page %d: %s", number, ", ".join(f"{r.qualified} ({r.kind})" for r in page))
            available.extend(r.qualified for r in page)
        return available

    def _check_spec(self, tenant_id: str, hook: RedshiftCatalogHook, spec: dict[str, Any]) -> dict[str, Any]:
        from airflow_rs2gcs.hooks.redshift_catalog import TIME_TYPE_OIDS

        where = f"tenant {tenant_id!r}, table {spec['name']!r}"
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
        missing = [column for column in spec.get("primary_key") or [] if column not in columns]
        if missing:
            raise LifecycleError(
                f"{where}: field 'primary_key': {missing} missing; allowed: columns among {sorted(columns)}"
            )
        self._check_contract_columns(where, spec, list(columns))
        return spec

    @staticmethod
    def _check_contract_columns(where: str, spec: Mapping[str, Any], columns: list[str]) -> None:
        """Refuse columns/exclude_columns/hash_columns naming a column the table does not have."""
        for key in ("columns", "exclude_columns", "hash_columns"):
            names = spec.get(key) or []
            unknown = [n for n in names if n not in columns] if isinstance(names, list) else []
            if unknown:
                raise LifecycleError(
                    f"{where}: field {key!r}: unknown column(s) {unknown}; allowed: the table's columns "
                    f"{columns}"
                )

    def _settings(self, tenant_id: str, stored: Mapping[str, Any]) -> dict[str, Any]:
        """syncFrequency, format and timezone after this run: given, else stored, else the default."""
        frequency = given_text(tenant_id, "syncFrequency", self.sync_frequency)
        export_format = given_text(tenant_id, "format", self.export_format)
        timezone = given_text(tenant_id, "timezone", self.timezone)
        if frequency is None and not stored.get("syncFrequency"):
            self.log.info(
                "tenant %s: no syncFrequency given or stored; using %r", tenant_id, DEFAULT_SYNC_FREQUENCY
            )
        if export_format is not None and export_format not in FORMATS:
            raise LifecycleError(
                f"tenant {tenant_id!r}: field 'format': {export_format!r} is not a format; allowed: "
                f"{', '.join(FORMATS)}"
            )
        settings = {
            "syncFrequency": frequency or stored.get("syncFrequency") or DEFAULT_SYNC_FREQUENCY,
            "format": export_format or stored.get("format") or "parquet",
            "timezone": timezone or stored.get("timezone") or "UTC",
        }
        # Optional: written only once a run gives it, so a tenant without hashing keeps a clean entry.
        hash_key_conn_id = given_text(tenant_id, "hash_key_conn_id", self.hash_key_conn_id)
        if hash_key_conn_id or stored.get("hash_key_conn_id"):
            settings["hash_key_conn_id"] = hash_key_conn_id or stored["hash_key_conn_id"]
        return settings

    def execute(self, context: Context) -> list[str]:
        tenant_id = checked_tenant_id(self.tenant_id)
        confirmed = given_flag(tenant_id, "confirm_output_change", self.confirm_output_change)
        before = self._connected_entry(tenant_id)
        specs = self._selection(tenant_id, before)
        if not specs:
            self._refuse_empty_selection(tenant_id, before)
        self._check_queries(tenant_id, specs)
        settings: dict[str, Any] = {"tables": specs, **self._settings(tenant_id, before)}
        tenant = parsed_tenant(tenant_id, {**before, **settings})
        refuse_unconfirmed(tenant_id, before, tenant, ("format", "timezone"), confirmed)
        from airflow_rs2gcs.hooks.redshift_catalog import RedshiftCatalogHook

        hook = RedshiftCatalogHook(redshift_conn_id=before["redshift_conn_id"])
        available = self._list_available(hook)
        settings["tables"] = [self._check_spec(tenant_id, hook, spec) for spec in specs]
        entry = {**before, **settings, "status": "configured", "configured_at": now_iso()}

        def configure(current: dict[str, Any] | None) -> dict[str, Any]:
            check_unchanged(tenant_id, before, current)
            return validated_entry(tenant_id, entry)

        update_tenant(tenant_id, configure)
        changed = sorted(k for k in settings if settings[k] != before.get(k))
        self.log.info(
            "Configuration saved for %s: %d table(s), syncFrequency %s, format %s, timezone %s; changed: %s; "
            "its sync DAG rs2gcs_sync__%s appears at the next parse",
            tenant_id,
            len(specs),
            settings["syncFrequency"],
            settings["format"],
            settings["timezone"],
            ", ".join(changed) or "nothing",
            tenant_id,
        )
        return available


# --- Disconnect -------------------------------------------------------------------------------------
