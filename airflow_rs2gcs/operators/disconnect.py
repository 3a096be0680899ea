"""Disconnect: delete the tenant's webhook registrations, then clear its configuration.

The rules every lifecycle operator follows are in :mod:`airflow_rs2gcs.operators.lifecycle`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_rs2gcs.operators.lifecycle import (
    DeleteBounds,
    FieldSource,
    LifecycleError,
    check_unchanged,
    checked_tenant_id,
    delete_webhooks,
    existing_entry,
    given_json,
    not_deleted,
    now_iso,
    webhook_for_deletion,
    webhook_key,
)
from airflow_rs2gcs.store import TENANTS_VARIABLE, update_tenant
from airflow_rs2gcs.tenants import SOURCE
from airflow_rs2gcs.webhooks import DELETE_ATTEMPTS, DELETE_DEADLINE_SECONDS, DELETE_FIRST_BACKOFF_SECONDS

if TYPE_CHECKING:
    from airflow.sdk import Context

_CONNECTION_FIELDS = ("redshift_conn_id", "gcp_conn_id", "bucket", "prefix")
_WEBHOOK_FIELDS = ("id", "url", "secret_conn_id", "registration_url")


def last_connection(entry: dict[str, Any]) -> dict[str, Any]:
    """What a disconnected entry keeps of ``entry`` so a reconnect starts prefilled: never a secret.

    A ``disconnecting`` entry already holds the snapshot taken before its first webhook was deleted.
    """
    if isinstance(entry.get("last_connection"), dict):
        return entry["last_connection"]
    kept: dict[str, Any] = {f: entry[f] for f in _CONNECTION_FIELDS if entry.get(f)}
    webhooks = [w for w in entry.get("webhooks") or [] if isinstance(w, dict) and w.get("id")]
    if webhooks:
        kept["webhooks"] = [
            {f: w[f] for f in _WEBHOOK_FIELDS if w.get(f)} | ({"signed": True} if w.get("secret") else {})
            for w in webhooks
        ]
    return kept


class DeactivateTenantOperator(BaseOperator):
    """Disconnect: delete the tenant's webhook registrations, then clear its configuration and context.

    Refuses a tenant that has no entry (naming the closest ids) and writes nothing. Otherwise works
    from any state and twice in a row. The tenant is first marked ``disconnecting`` (its sync DAG goes
    away at the next parse), then each webhook's registration gets a DELETE with bounded retries
    (404 and 410 count as deleted). Only when every registration is gone is the entry cleared to
    ``source``, ``status: disconnected``, ``disconnected_at`` and ``last_connection`` (the connection
    ids, bucket, prefix and webhooks without secrets, so a reconnect starts prefilled), and
    ``Deactivation completed for <tenant_id>`` returned. Otherwise the run fails naming each webhook
    it could not delete, and the entry stays ``disconnecting`` with those webhooks' records (the ones
    deleted are dropped); a re-run finishes the job. Data already in GCS is left alone.

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
        entry = existing_entry(
            tenant_id,
            lambda hint: (
                f"Tenant {tenant_id!r} has no entry in {TENANTS_VARIABLE!r}, so there is nothing to "
                f"disconnect ({hint}). Nothing was deleted or written."
            ),
        )
        return entry if isinstance(entry, dict) else {}

    def _targets(self, tenant_id: str, records: list[Any]) -> list[Any] | None:
        """The webhook records this run deletes; ``None`` means all of them (a full disconnect)."""
        wanted = given_json(tenant_id, "webhookIds", self.webhook_ids, list)
        if wanted is None:
            return None
        if not all(isinstance(i, str) and i for i in wanted):
            raise LifecycleError(f"tenant {tenant_id!r}: field 'webhookIds' must be a list of ids (text)")
        ids = [webhook_for_deletion(w).id for w in records]
        unknown = [i for i in wanted if i not in ids]
        if unknown:
            raise LifecycleError(
                f"tenant {tenant_id!r}: field 'webhookIds': {unknown} are not webhooks of this tenant; its "
                f"webhooks are {ids or 'none'}. Nothing was deleted or written."
            )
        return [w for w in records if webhook_for_deletion(w).id in wanted]

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
                check_unchanged(tenant_id, before, current)
                return {
                    **before,
                    "status": "disconnecting",
                    "disconnecting_at": now_iso(),
                    "last_connection": last_connection(before),
                }

            update_tenant(tenant_id, mark)
            self.log.info("tenant %s is disconnecting: deleting %d webhook(s)", tenant_id, len(targets))

        outcomes = delete_webhooks(self.log, tenant_id, targets, self.webhook_delete_bounds)
        gone = {webhook_key(raw) for raw, deletion in outcomes if deletion.deleted}
        failed = not_deleted(outcomes)
        result: dict[str, Any] = {}

        def settle(current: dict[str, Any] | None) -> dict[str, Any]:
            entry = dict(current) if isinstance(current, dict) else {}
            remaining = [w for w in entry.get("webhooks") or [] if webhook_key(w) not in gone]
            if (full or entry.get("status") == "disconnecting") and not remaining:
                result["done"] = True
                cleared = {"source": SOURCE, "status": "disconnected", "disconnected_at": now_iso()}
                kept = last_connection(entry)
                return {**cleared, "last_connection": kept} if kept else cleared
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
            ids = [webhook_for_deletion(raw).id for raw, _ in outcomes]
            left = [webhook_for_deletion(w).id for w in result["remaining"]]
            message = (
                f"Deleted webhook(s) {', '.join(ids)} of tenant {tenant_id}; it stays "
                f"{before.get('status')} with webhook(s) {left or 'none'}"
            )
        self.log.info(message)
        return message
