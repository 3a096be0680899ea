"""The widget's three buttons as operators: Connect (activate), Configure and Disconnect (deactivate).

Each reads and writes the tenant's entry in ``rs2gcs_tenants`` only through
:func:`airflow_rs2gcs.store.update_tenant`, so concurrent runs for different tenants never lose each
other's updates; a run whose tenant entry changed while it checked connections or the catalog writes
nothing and says so. Messages are the widget's: ``Activation successful for <source>`` and
``Deactivation completed for <tenant_id>`` (only when every webhook registration is gone).

Rules every operator follows (the control DAGs' docs repeat them):

- Text stays text: tenant ids, connection ids, buckets and prefixes must arrive as ``str``; a number,
  bool or ``None`` where text belongs (what ``render_template_as_native_obj=True`` makes of ``"123"``,
  ``"True"`` or ``"None"``) is refused, never converted back.
- Exact tenants: Configure and Disconnect act only on a tenant that has an entry; otherwise they fail
  naming the closest existing ids and write nothing.
- Partial updates: a field left empty (``None``, ``""``, ``[]``, ``{}``) keeps its stored value;
  clearing is explicit (Connect's ``clear``; ``null`` for one option of one table in Configure).
- A change of where a configured tenant's output goes (bucket, prefix, format) or of its time zone
  is refused unless the run sets ``confirm_output_change``.
- A webhook registration is deleted before its record is dropped; a record is dropped only when its
  registration is gone (2xx, 404 or 410 after bounded retries).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_rs2gcs.query_check import QueryNotAllowed, check_read_only_select
from airflow_rs2gcs.sql import select_table
from airflow_rs2gcs.store import TENANTS_VARIABLE, parse_tenants_json, read_variable_text, update_tenant
from airflow_rs2gcs.tenants import (
    FORMATS,
    SOURCE,
    TENANT_ID_PATTERN,
    Tenant,
    TenantConfigError,
    Webhook,
    closest_ids,
    parse_tenant,
)
from airflow_rs2gcs.webhooks import (
    DELETE_ATTEMPTS,
    DELETE_DEADLINE_SECONDS,
    DELETE_FIRST_BACKOFF_SECONDS,
    Deletion,
    delete_registration,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_rs2gcs.hooks.redshift_catalog import RedshiftCatalogHook

# The hooks (boto, google-cloud-storage) are imported inside execute: DAG files that use these
# operators are parsed often, and those imports cost seconds per parse process.

# A templated field holds a Jinja string, a plain value, or a callable that Airflow calls with
# ``context`` and ``jinja_env`` at run time (the control DAGs pass each Param's value that way).
FieldSource = Callable[..., Any]

PICKER_PREVIEW = 20  # relations named in the error of a Configure run with no tables selected
ACTIVE_STATUSES = frozenset({"connected", "configured"})
# What a Connect run may clear explicitly (its ``clear`` list); the rest is required or has a default.
CONNECT_CLEARABLE = ("prefix", "webhooks")
DEFAULT_SYNC_FREQUENCY = "daily"  # a first Configure run that names no frequency
CONFIRM_HINT = (
    "Objects already written and the incremental history stay where they are, and the next syncs "
    "start over at the new place. Nothing was changed. To do it anyway, trigger again with "
    "confirm_output_change: true; to keep the stored values, leave those fields empty."
)


class LifecycleError(ValueError):
    """A lifecycle step refused its input; the message says which check failed and what to do."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# --- what a run was given ---------------------------------------------------------------------------


def _empty(value: Any) -> bool:
    """Left empty: ``None``, blank text, or an empty list or object."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, list | tuple | dict) and not value)


def checked_tenant_id(value: Any) -> str:
    """The tenant id as given, refused unless it is text in the tenant id alphabet."""
    if not isinstance(value, str):
        raise LifecycleError(
            f"tenant id {value!r} arrived as {type(value).__name__}, not text: tenant ids are strings end "
            "to end. If your DAG renders templates as native objects (render_template_as_native_obj=True), "
            "'123', 'True' and 'None' turn into a number, a bool and None: pass the Param's value itself "
            "(see airflow_rs2gcs.control_dags.ParamValue) instead of a '{{ params.x }}' template."
        )
    if not TENANT_ID_PATTERN.fullmatch(value):
        raise LifecycleError(
            f"tenant id {value!r} is not allowed: 1-63 letters, digits, '_' or '-', starting with a "
            "letter or digit"
        )
    return value


def given_text(tenant_id: str, field: str, value: Any) -> str | None:
    """A text field as given: ``None`` when left empty; anything but text is refused, never converted."""
    if _empty(value):
        return None
    if not isinstance(value, str):
        raise LifecycleError(
            f"tenant {tenant_id!r}: field {field!r} must be text, got {type(value).__name__} {value!r} "
            "(with render_template_as_native_obj=True a template turns '2024' or 'None' into a number or "
            "None; pass the Param's value itself)"
        )
    return value


def given_json(tenant_id: str, field: str, value: Any, kind: type[list[Any]] | type[dict[str, Any]]) -> Any:
    """A list or object field as given (a JSON string is parsed): ``None`` when left empty."""
    if _empty(value):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise LifecycleError(
                f"tenant {tenant_id!r}: field {field!r} must be a JSON {kind.__name__}: {exc.msg}"
            ) from None
    if isinstance(value, tuple) and kind is list:
        value = list(value)
    if not isinstance(value, kind):
        what = "list" if kind is list else "object"
        raise LifecycleError(
            f"tenant {tenant_id!r}: field {field!r} must be a JSON {what}, got {type(value).__name__}"
        )
    return value or None


def given_flag(tenant_id: str, field: str, value: Any) -> bool:
    """A boolean field: a bool, or the text ``true``/``false`` a Jinja template renders."""
    if isinstance(value, bool):
        return value
    if _empty(value):
        return False
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise LifecycleError(f"tenant {tenant_id!r}: field {field!r} must be true or false, got {value!r}")


# --- the stored entry -------------------------------------------------------------------------------


def _parsed(tenant_id: str, entry: Mapping[str, Any]) -> Tenant:
    """The entry as the tenant contract reads it; a problem becomes a :class:`LifecycleError`."""
    try:
        return parse_tenant(tenant_id, entry)
    except TenantConfigError as exc:
        raise LifecycleError(str(exc)) from None


def _validated(tenant_id: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """Check an entry against the tenant contract before it is stored; return it unchanged."""
    _parsed(tenant_id, entry)
    return dict(entry)


def all_entries() -> dict[str, Any]:
    """Every tenant entry of the Variable."""
    return parse_tenants_json(read_variable_text())


def current_entry(tenant_id: str) -> dict[str, Any] | None:
    """The tenant's stored entry (``None`` when it has none)."""
    return all_entries().get(tenant_id)


def _closest(tenant_id: str, tenants: Mapping[str, Any]) -> str:
    close = closest_ids(tenant_id, tenants)
    if close:
        return f"closest existing ids: {', '.join(repr(t) for t in close)}"
    if not tenants:
        return f"{TENANTS_VARIABLE!r} holds no tenant yet"
    shown = sorted(tenants)[:10]
    more = f", ... ({len(tenants)} in all)" if len(tenants) > len(shown) else ""
    return f"no existing id is close; existing ids: {', '.join(repr(t) for t in shown)}{more}"


def _unchanged(tenant_id: str, before: Mapping[str, Any] | None, stored: Mapping[str, Any] | None) -> None:
    """Refuse to write over an entry another run changed while this one was checking."""
    if stored != before:
        raise LifecycleError(
            f"tenant {tenant_id!r} was changed by another run while this one was checking it; "
            "nothing was written. Trigger this run again."
        )


def _show(value: Any) -> str:
    return repr(value) if value not in (None, "") else "(none)"


def _refuse_unconfirmed(
    tenant_id: str, stored: Mapping[str, Any], new: Tenant, fields: Sequence[str], confirmed: bool
) -> None:
    """Refuse changing ``fields`` of a configured tenant (they split its history) unless confirmed.

    Values are compared as the tenant contract reads them (``/a//b/`` and ``a/b`` are one prefix).
    """
    if stored.get("status") != "configured" or confirmed:
        return
    try:
        old: Mapping[str, Any] = parse_tenant(tenant_id, stored).model_dump()
    except TenantConfigError:  # written by hand and invalid: compare the raw values
        old = stored
    changes = [(f, old.get(f), getattr(new, f)) for f in fields if old.get(f) != getattr(new, f)]
    if changes:
        listed = "; ".join(f"{field} {_show(old)} -> {_show(new)}" for field, old, new in changes)
        raise LifecycleError(
            f"tenant {tenant_id!r} is configured and this run changes where its output goes or how its "
            f"runs are windowed: {listed}. {CONFIRM_HINT}"
        )


def _webhook_for_deletion(raw: Any) -> Webhook:
    """The id and registration URL of a stored webhook record, however malformed the rest is."""
    record = raw if isinstance(raw, Mapping) else {}
    url = record.get("registration_url")
    return Webhook.model_construct(
        id=str(record.get("id") or f"(record {raw!r})"),
        url=str(record.get("url") or ""),
        registration_url=None if url in (None, "") else str(url),
    )


def _webhook_key(raw: Any) -> tuple[str, str | None]:
    webhook = _webhook_for_deletion(raw)
    return webhook.id, webhook.registration_url


@dataclass(frozen=True)
class DeleteBounds:
    """How hard a lifecycle run tries to delete one webhook registration (see ``delete_registration``)."""

    attempts: int = DELETE_ATTEMPTS
    first_backoff: float = DELETE_FIRST_BACKOFF_SECONDS
    deadline_seconds: float = DELETE_DEADLINE_SECONDS


def delete_webhooks(
    log: Any, tenant_id: str, records: Iterable[Any], bounds: DeleteBounds
) -> list[tuple[Any, Deletion]]:
    """Delete each record's registration within ``bounds``, logging each outcome on ``log``."""
    outcomes = []
    for raw in records:
        deletion = delete_registration(
            _webhook_for_deletion(raw),
            attempts=bounds.attempts,
            first_backoff=bounds.first_backoff,
            deadline_seconds=bounds.deadline_seconds,
        )
        if deletion.deleted:
            log.info("tenant %s: deleted %s", tenant_id, deletion.describe())
        else:
            log.error("tenant %s: NOT deleted: %s", tenant_id, deletion.describe())
        outcomes.append((raw, deletion))
    return outcomes


def _not_deleted(outcomes: Iterable[tuple[Any, Deletion]]) -> list[Deletion]:
    return [deletion for _, deletion in outcomes if not deletion.deleted]


# --- Connect ----------------------------------------------------------------------------------------


class ActivateTenantOperator(BaseOperator):
    """Connect: check the tenant's Redshift connection and GCS bucket, then record it as connected.

    Creates the tenant, or reconnects an existing one. A reconnect changes only the fields the run
    was given: an empty field keeps its stored value, ``clear`` empties ``prefix`` or ``webhooks``
    explicitly, and the configuration (tables, schedule, format, time zone) is kept. Moving a
    configured tenant's output (``bucket``, ``prefix``) needs ``confirm_output_change``. A webhook
    that a reconnect drops (or whose ``registration_url`` changes) has its registration deleted first;
    if that fails, the run fails and writes nothing. A tenant that is ``disconnecting`` is refused.

    Runs a real query on Redshift (and logs the server version), checks that the bucket exists and is
    writable under the tenant's prefix (writes and deletes a probe object). Only when both pass is the
    tenant recorded (status ``connected``, or ``configured`` if it was; ``connected_at``).

    :param tenant_id: the tenant's id (templated).
    :param source: must be ``redshift_to_gcs`` (templated).
    :param redshift_conn_id: Airflow connection of type ``redshift``; required for a new tenant
        (templated).
    :param gcp_conn_id: Airflow connection of type ``google_cloud_platform``; required for a new tenant
        (templated).
    :param bucket: the tenant's GCS bucket; required for a new tenant (templated).
    :param prefix: object prefix inside the bucket (templated).
    :param webhooks: webhook definitions (id, url, secret or secret_conn_id, registration_url); when
        given they replace the stored list (templated: a string must be a JSON list).
    :param clear: fields to empty: ``prefix`` and/or ``webhooks`` (templated).
    :param confirm_output_change: allow changing a configured tenant's bucket or prefix (templated).
    :param webhook_delete_attempts: DELETE requests per dropped webhook at most.
    :param webhook_delete_backoff: seconds before the first retry; doubles on each retry.
    :param webhook_delete_deadline: seconds after which no DELETE of one webhook is started.
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
        "clear",
        "confirm_output_change",
    )

    def __init__(
        self,
        *,
        tenant_id: str | FieldSource,
        redshift_conn_id: str | FieldSource | None = None,
        gcp_conn_id: str | FieldSource | None = None,
        bucket: str | FieldSource | None = None,
        source: str | FieldSource = SOURCE,
        prefix: str | FieldSource | None = None,
        webhooks: Sequence[Mapping[str, Any]] | str | FieldSource | None = None,
        clear: Sequence[str] | str | FieldSource | None = None,
        confirm_output_change: bool | str | FieldSource = False,
        webhook_delete_attempts: int = DELETE_ATTEMPTS,
        webhook_delete_backoff: float = DELETE_FIRST_BACKOFF_SECONDS,
        webhook_delete_deadline: float = DELETE_DEADLINE_SECONDS,
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
        self.clear = clear
        self.confirm_output_change = confirm_output_change
        self.webhook_delete_bounds = DeleteBounds(
            webhook_delete_attempts, webhook_delete_backoff, webhook_delete_deadline
        )

    def _given(self, tenant_id: str) -> tuple[dict[str, Any], set[str]]:
        """The fields this run sets (empty ones left out) and the fields it clears."""
        source = given_text(tenant_id, "source", self.source) or SOURCE
        if source != SOURCE:
            raise LifecycleError(f"Unknown source {source!r} for tenant {tenant_id!r}; allowed: {SOURCE!r}")
        given: dict[str, Any] = {"source": source}
        for field in ("redshift_conn_id", "gcp_conn_id", "bucket", "prefix"):
            value = given_text(tenant_id, field, getattr(self, field))
            if value is not None:
                given[field] = value
        webhooks = given_json(tenant_id, "webhooks", self.webhooks, list)
        if webhooks is not None:
            ids = [w.get("id") for w in webhooks if isinstance(w, Mapping)]
            duplicates = sorted({str(i) for i in ids if ids.count(i) > 1})
            if duplicates:
                raise LifecycleError(
                    f"tenant {tenant_id!r}: field 'webhooks': duplicate ids {duplicates}; "
                    "each id must be unique"
                )
            given["webhooks"] = webhooks
        clear = given_json(tenant_id, "clear", self.clear, list) or []
        unknown = sorted({str(c) for c in clear} - set(CONNECT_CLEARABLE))
        if unknown:
            raise LifecycleError(
                f"tenant {tenant_id!r}: field 'clear': {unknown} cannot be cleared; allowed: "
                f"{list(CONNECT_CLEARABLE)} (connection ids and bucket are required)"
            )
        both = sorted(set(clear) & set(given))
        if both:
            raise LifecycleError(
                f"tenant {tenant_id!r}: field 'clear' names {both}, which this run also sets; set a "
                "value or clear it, not both"
            )
        return given, set(clear)

    def _check_redshift(self, tenant_id: str, redshift_conn_id: str) -> None:
        from airflow_rs2gcs.hooks.redshift_catalog import RedshiftCatalogHook

        try:
            version = RedshiftCatalogHook(redshift_conn_id=redshift_conn_id).server_version()
        except Exception as exc:
            raise LifecycleError(
                f"Connect failed for tenant {tenant_id!r}: the Redshift check on connection "
                f"{redshift_conn_id!r} failed ({type(exc).__name__}: {exc}). Fix host, port, database, "
                "login/password (or IAM) and 'ssl' of that connection in Admin > Connections."
            ) from None
        self.log.info("Redshift connection %s works: %s", redshift_conn_id, version)

    def _check_bucket(self, tenant_id: str, gcp_conn_id: str, bucket: str, prefix: str) -> None:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        hook = GCSHook(gcp_conn_id=gcp_conn_id)
        probe = "/".join(p for p in (prefix, tenant_id, f"_rs2gcs_probe_{uuid.uuid4().hex}") if p)
        step = "find the bucket"
        try:
            hook.get_bucket(bucket).reload()
            step = f"write gs://{bucket}/{probe}"
            hook.upload(bucket_name=bucket, object_name=probe, data=b"rs2gcs connect probe")
            step = f"delete gs://{bucket}/{probe}"
            hook.delete(bucket_name=bucket, object_name=probe)
        except Exception as exc:
            raise LifecycleError(
                f"Connect failed for tenant {tenant_id!r}: could not {step} with connection "
                f"{gcp_conn_id!r} ({type(exc).__name__}: {exc}). Check that bucket {bucket!r} "
                "exists and that the connection's service account may create and delete objects in it."
            ) from None
        self.log.info("bucket gs://%s is writable under %r", bucket, prefix)

    def _log_kind(self, tenant_id: str, stored: Mapping[str, Any] | None, tenants: Mapping[str, Any]) -> None:
        if stored is None:
            self.log.info("Connect creates tenant %s (it has no entry yet)", tenant_id)
            close = closest_ids(tenant_id, tenants)
            if close:
                self.log.warning(
                    "new tenant %r is close to existing tenant(s) %s: check it is not a typo",
                    tenant_id,
                    ", ".join(repr(t) for t in close),
                )
        else:
            self.log.info(
                "Connect reconnects tenant %s (status %s); fields left empty keep their stored values",
                tenant_id,
                stored.get("status"),
            )

    def execute(self, context: Context) -> str:
        tenant_id = checked_tenant_id(self.tenant_id)
        confirmed = given_flag(tenant_id, "confirm_output_change", self.confirm_output_change)
        given, cleared = self._given(tenant_id)
        tenants = all_entries()
        before = tenants.get(tenant_id)
        stored: dict[str, Any] = dict(before) if isinstance(before, Mapping) else {}
        if stored.get("status") == "disconnecting":
            pending = [_webhook_for_deletion(w).id for w in stored.get("webhooks") or []]
            raise LifecycleError(
                f"tenant {tenant_id!r} is disconnecting: the registrations of webhook(s) {pending} are "
                "not deleted yet. Run rs2gcs_disconnect for it again to finish, then connect it. "
                "Nothing was changed."
            )
        self._log_kind(tenant_id, before, tenants)
        reviving = stored.get("status") == "disconnected"

        entry = {k: v for k, v in stored.items() if k != "disconnected_at"}
        entry.update(given)
        for field in cleared:
            entry[field] = "" if field == "prefix" else []
        entry.setdefault("prefix", "")
        entry.setdefault("webhooks", [])
        missing = [f for f in ("redshift_conn_id", "gcp_conn_id", "bucket") if not entry.get(f)]
        if missing:
            raise LifecycleError(
                f"tenant {tenant_id!r}: {', '.join(repr(f) for f in missing)} required to connect "
                f"{'a new' if before is None or reviving else 'this'} tenant; nothing was changed"
            )
        configured = bool(entry.get("tables")) and stored.get("status") == "configured"
        entry["status"] = "configured" if configured else "connected"
        tenant = _parsed(tenant_id, entry)
        _refuse_unconfirmed(tenant_id, stored, tenant, ("bucket", "prefix"), confirmed)

        assert tenant.redshift_conn_id and tenant.gcp_conn_id and tenant.bucket  # checked above
        self._check_redshift(tenant_id, tenant.redshift_conn_id)
        self._check_bucket(tenant_id, tenant.gcp_conn_id, tenant.bucket, tenant.prefix)

        kept = {_webhook_key(w) for w in entry["webhooks"]}
        dropped = [w for w in stored.get("webhooks") or [] if _webhook_key(w) not in kept]
        failed = _not_deleted(delete_webhooks(self.log, tenant_id, dropped, self.webhook_delete_bounds))
        if failed:
            raise LifecycleError(
                f"Connect failed for tenant {tenant_id!r}: this run drops webhook(s) whose registration "
                f"could not be deleted: {'; '.join(d.describe() for d in failed)}. Nothing was written: "
                "their records are kept. Fix the endpoint (or keep the webhook) and trigger again."
            )
        entry["connected_at"] = _now()

        def connect(current: dict[str, Any] | None) -> dict[str, Any]:
            _unchanged(tenant_id, before, current)
            return entry

        update_tenant(tenant_id, connect)
        changed = sorted(
            k for k in set(entry) | set(stored) if k != "connected_at" and entry.get(k) != stored.get(k)
        )
        self.log.info(
            "tenant %s %s; fields changed: %s",
            tenant_id,
            "created" if before is None else "reconnected",
            ", ".join(changed) or "none",
        )
        message = f"Activation successful for {entry['source']}"
        self.log.info(message)
        return message


# --- Configure --------------------------------------------------------------------------------------


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
    :param table_options: per table name: ``query``, ``mode``, ``cursor_column``, ``fetch_method``;
        ``null`` clears a stored option (templated: a string must be a JSON object).
    :param sync_frequency: a value or label of the syncFrequency options table, or a cron expression
        (templated).
    :param export_format: ``parquet``, ``csv`` or ``jsonl`` (templated).
    :param timezone: IANA time zone of the schedule (templated).
    :param page_size: relations per catalog page (templated: a string is read as an integer).
    :param limit: at most this many relations are listed (``None`` or ``""``: all) (templated).
    :param confirm_output_change: allow changing a configured tenant's format or time zone (templated).
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
        self.confirm_output_change = confirm_output_change

    def _connected_entry(self, tenant_id: str) -> dict[str, Any]:
        tenants = all_entries()
        entry = tenants.get(tenant_id)
        if entry is None:
            raise LifecycleError(
                f"Tenant {tenant_id!r} is not connected; run rs2gcs_connect for it first "
                f"({TENANTS_VARIABLE!r} has no entry {tenant_id!r}; {_closest(tenant_id, tenants)}). "
                "Nothing was changed."
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
        return spec

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
        return {
            "syncFrequency": frequency or stored.get("syncFrequency") or DEFAULT_SYNC_FREQUENCY,
            "format": export_format or stored.get("format") or "parquet",
            "timezone": timezone or stored.get("timezone") or "UTC",
        }

    def execute(self, context: Context) -> list[str]:
        tenant_id = checked_tenant_id(self.tenant_id)
        confirmed = given_flag(tenant_id, "confirm_output_change", self.confirm_output_change)
        before = self._connected_entry(tenant_id)
        specs = self._selection(tenant_id, before)
        if not specs:
            self._refuse_empty_selection(tenant_id, before)
        self._check_queries(tenant_id, specs)
        settings: dict[str, Any] = {"tables": specs, **self._settings(tenant_id, before)}
        tenant = _parsed(tenant_id, {**before, **settings})
        _refuse_unconfirmed(tenant_id, before, tenant, ("format", "timezone"), confirmed)
        from airflow_rs2gcs.hooks.redshift_catalog import RedshiftCatalogHook

        hook = RedshiftCatalogHook(redshift_conn_id=before["redshift_conn_id"])
        available = self._list_available(hook)
        settings["tables"] = [self._check_spec(tenant_id, hook, spec) for spec in specs]
        entry = {**before, **settings, "status": "configured", "configured_at": _now()}

        def configure(current: dict[str, Any] | None) -> dict[str, Any]:
            _unchanged(tenant_id, before, current)
            return _validated(tenant_id, entry)

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


class DeactivateTenantOperator(BaseOperator):
    """Disconnect: delete the tenant's webhook registrations, then clear its configuration and context.

    Refuses a tenant that has no entry (naming the closest ids) and writes nothing. Otherwise works
    from any state and twice in a row. The tenant is first marked ``disconnecting`` (its sync DAG goes
    away at the next parse), then each webhook's registration gets a DELETE with bounded retries
    (404 and 410 count as deleted). Only when every registration is gone is the entry cleared to
    ``source``, ``status: disconnected`` and ``disconnected_at``, and ``Deactivation completed for
    <tenant_id>`` returned. Otherwise the run fails naming each webhook it could not delete, and the
    entry stays ``disconnecting`` with those webhooks' records (the ones deleted are dropped); a re-run
    finishes the job. Data already in GCS is left alone.

    With ``webhook_ids``, only those webhooks are deleted (each must be one of the tenant's; an
    unknown id fails the run before anything is deleted) and the tenant keeps its status, except that
    a ``disconnecting`` tenant left with no webhook is disconnected.

    :param tenant_id: the tenant's id (templated).
    :param webhook_ids: ids of the webhooks to delete (the widget's ``webhookIds``); empty: all, and
        the tenant is disconnected (templated: a string must be a JSON list).
    :param webhook_delete_attempts: DELETE requests per webhook at most.
    :param webhook_delete_backoff: seconds before the first retry; doubles on each retry.
    :param webhook_delete_deadline: seconds after which no DELETE of one webhook is started.
    :return: ``Deactivation completed for <tenant_id>``; with ``webhook_ids`` on a tenant that stays,
        ``Deleted webhook(s) <ids> of tenant <tenant_id>``.
    """

    template_fields: Sequence[str] = ("tenant_id", "webhook_ids")

    def __init__(
        self,
        *,
        tenant_id: str | FieldSource,
        webhook_ids: Sequence[str] | str | FieldSource | None = None,
        webhook_delete_attempts: int = DELETE_ATTEMPTS,
        webhook_delete_backoff: float = DELETE_FIRST_BACKOFF_SECONDS,
        webhook_delete_deadline: float = DELETE_DEADLINE_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tenant_id = tenant_id
        self.webhook_ids = webhook_ids
        self.webhook_delete_bounds = DeleteBounds(
            webhook_delete_attempts, webhook_delete_backoff, webhook_delete_deadline
        )

    def _entry(self, tenant_id: str) -> dict[str, Any]:
        tenants = all_entries()
        entry = tenants.get(tenant_id)
        if entry is None:
            raise LifecycleError(
                f"Tenant {tenant_id!r} has no entry in {TENANTS_VARIABLE!r}, so there is nothing to "
                f"disconnect ({_closest(tenant_id, tenants)}). Nothing was deleted or written."
            )
        return entry if isinstance(entry, dict) else {}

    def _targets(self, tenant_id: str, records: list[Any]) -> list[Any] | None:
        """The webhook records this run deletes; ``None`` means all of them (a full disconnect)."""
        wanted = given_json(tenant_id, "webhookIds", self.webhook_ids, list)
        if wanted is None:
            return None
        if not all(isinstance(i, str) and i for i in wanted):
            raise LifecycleError(f"tenant {tenant_id!r}: field 'webhookIds' must be a list of ids (text)")
        ids = [_webhook_for_deletion(w).id for w in records]
        unknown = [i for i in wanted if i not in ids]
        if unknown:
            raise LifecycleError(
                f"tenant {tenant_id!r}: field 'webhookIds': {unknown} are not webhooks of this tenant; its "
                f"webhooks are {ids or 'none'}. Nothing was deleted or written."
            )
        return [w for w in records if _webhook_for_deletion(w).id in wanted]

    def execute(self, context: Context) -> str:
        tenant_id = checked_tenant_id(self.tenant_id)
        before = self._entry(tenant_id)
        records = list(before.get("webhooks") or [])
        targets = self._targets(tenant_id, records)
        full = targets is None
        if full:
            targets = records
        assert targets is not None
        if full and not records and before.get("status") == "disconnected":
            self.log.info(
                "tenant %s is already disconnected (since %s)", tenant_id, before.get("disconnected_at")
            )
            message = f"Deactivation completed for {tenant_id}"
            self.log.info(message)
            return message
        if full and targets and before.get("status") != "disconnecting":

            def mark(current: dict[str, Any] | None) -> dict[str, Any]:
                _unchanged(tenant_id, before, current)
                return {**before, "status": "disconnecting", "disconnecting_at": _now()}

            update_tenant(tenant_id, mark)
            self.log.info("tenant %s is disconnecting: deleting %d webhook(s)", tenant_id, len(targets))

        outcomes = delete_webhooks(self.log, tenant_id, targets, self.webhook_delete_bounds)
        gone = {_webhook_key(raw) for raw, deletion in outcomes if deletion.deleted}
        failed = _not_deleted(outcomes)
        result: dict[str, Any] = {}

        def settle(current: dict[str, Any] | None) -> dict[str, Any]:
            entry = dict(current) if isinstance(current, dict) else {}
            remaining = [w for w in entry.get("webhooks") or [] if _webhook_key(w) not in gone]
            if (full or entry.get("status") == "disconnecting") and not remaining:
                result["done"] = True
                return {"source": SOURCE, "status": "disconnected", "disconnected_at": _now()}
            result["done"], result["remaining"] = False, remaining
            return {**entry, "webhooks": remaining}

        update_tenant(tenant_id, settle)
        if failed:
            if full or before.get("status") == "disconnecting":
                state = "stays 'disconnecting' (it has no sync DAG)"
            else:
                state = f"keeps its status {before.get('status')!r}"
            raise LifecycleError(
                f"Deactivation of tenant {tenant_id!r} is not complete: could not delete "
                f"{len(failed)} webhook registration(s): {'; '.join(d.describe() for d in failed)}. Their "
                f"records are kept and the tenant {state}. Fix the endpoint(s) and run rs2gcs_disconnect "
                "again to finish; a registration that is gone for good can be removed from the "
                f"{TENANTS_VARIABLE!r} Variable by hand first."
            )
        if result["done"]:
            message = f"Deactivation completed for {tenant_id}"
        else:
            ids = [_webhook_for_deletion(raw).id for raw, _ in outcomes]
            left = [_webhook_for_deletion(w).id for w in result["remaining"]]
            message = (
                f"Deleted webhook(s) {', '.join(ids)} of tenant {tenant_id}; it stays "
                f"{before.get('status')} with webhook(s) {left or 'none'}"
            )
        self.log.info(message)
        return message
