"""Connect: check the tenant's Redshift connection and GCS bucket, then record the tenant.

The rules every lifecycle operator follows are in :mod:`airflow_rs2gcs.operators.lifecycle`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_rs2gcs.store import update_tenant
from airflow_rs2gcs.tenants import (
    SOURCE,
    closest_ids,
)
from airflow_rs2gcs.webhooks import (
    DELETE_ATTEMPTS,
    DELETE_DEADLINE_SECONDS,
    DELETE_FIRST_BACKOFF_SECONDS,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


from airflow_rs2gcs.operators.lifecycle import (
    CONNECT_CLEARABLE,
    DeleteBounds,
    FieldSource,
    LifecycleError,
    all_entries,
    check_unchanged,
    checked_tenant_id,
    delete_webhooks,
    given_flag,
    given_json,
    given_text,
    not_deleted,
    now_iso,
    parsed_tenant,
    refuse_unconfirmed,
    webhook_for_deletion,
    webhook_key,
)


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
            pending = [webhook_for_deletion(w).id for w in stored.get("webhooks") or []]
            raise LifecycleError(
                f"tenant {tenant_id!r} is disconnecting: the registrations of webhook(s) {pending} are "
                "not deleted yet. Run rs2gcs_disconnect for it again to finish, then connect it. "
                "Nothing was changed."
            )
        self._log_kind(tenant_id, before, tenants)
        reviving = stored.get("status") == "disconnected"

        # A disconnected entry's last_connection only prefills the page's form: Connect takes what is given.
        entry = {k: v for k, v in stored.items() if k not in ("disconnected_at", "last_connection")}
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
        tenant = parsed_tenant(tenant_id, entry)
        refuse_unconfirmed(tenant_id, stored, tenant, ("bucket", "prefix"), confirmed)

        assert tenant.redshift_conn_id and tenant.gcp_conn_id and tenant.bucket  # checked above
        self._check_redshift(tenant_id, tenant.redshift_conn_id)
        self._check_bucket(tenant_id, tenant.gcp_conn_id, tenant.bucket, tenant.prefix)

        kept = {webhook_key(w) for w in entry["webhooks"]}
        dropped = [w for w in stored.get("webhooks") or [] if webhook_key(w) not in kept]
        failed = not_deleted(delete_webhooks(self.log, tenant_id, dropped, self.webhook_delete_bounds))
        if failed:
            raise LifecycleError(
                f"Connect failed for tenant {tenant_id!r}: this run drops webhook(s) whose registration "
                f"could not be deleted: {'; '.join(d.describe() for d in failed)}. Nothing was written: "
                "their records are kept. Fix the endpoint (or keep the webhook) and trigger again."
            )
        entry["connected_at"] = now_iso()

        def connect(current: dict[str, Any] | None) -> dict[str, Any]:
            check_unchanged(tenant_id, before, current)
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
