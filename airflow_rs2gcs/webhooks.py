"""Webhooks: signed delivery of each sync's outcome, and deletion of registrations on disconnect.

Delivery: ``POST <url>`` with a JSON body and these headers:

- ``X-Rs2gcs-Signature: sha256=<hex>``: HMAC-SHA256 of the exact body bytes with the webhook's secret
  (inline ``secret`` or the password of the connection ``secret_conn_id``); absent when no secret.
- ``X-Rs2gcs-Event: sync.table``, ``X-Rs2gcs-Delivery: <uuid>`` (the same on every retry of a delivery),
  ``X-Rs2gcs-Tenant: <tenant_id>``.

Each delivery is retried with exponential backoff on connection errors, timeouts, 429 and 5xx, but
all deliveries of one call share a deadline (``deadline_seconds``): a down or slow endpoint never
fails a sync or holds it past that bound. Failures are logged, never raised.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from airflow_rs2gcs.tenants import Webhook

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Rs2gcs-Signature"
DEFAULT_DEADLINE_SECONDS = 30.0
REQUEST_TIMEOUT_SECONDS = 5.0
FIRST_BACKOFF_SECONDS = 0.5


def sign(body: bytes, secret: str) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``, the value of the signature header."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def resolve_secret(webhook: Webhook) -> str | None:
    """The webhook's signing secret, masked in every log Airflow prints from now on."""
    secret = webhook.secret
    if webhook.secret_conn_id:
        from airflow.sdk import BaseHook

        secret = BaseHook.get_connection(webhook.secret_conn_id).password
    if secret:
        from airflow.sdk.log import mask_secret

        mask_secret(secret)
    return secret


@dataclass(frozen=True)
class Delivery:
    """The outcome of one delivery: webhook id, HTTP status (``None`` without an answer), attempts."""

    webhook_id: str
    status: int | None
    attempts: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _retryable(status: int | None) -> bool:
    return status is None or status == 429 or status >= 500


def _post_with_retries(
    webhook: Webhook, body: bytes, headers: Mapping[str, str], deadline: float
) -> Delivery:
    attempts, status, backoff = 0, None, FIRST_BACKOFF_SECONDS
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        attempts += 1
        try:
            response = requests.post(
                webhook.url, data=body, headers=dict(headers), timeout=min(REQUEST_TIMEOUT_SECONDS, remaining)
            )
            status = response.status_code
        except requests.RequestException as exc:
            status = None
            log.warning("webhook %s: attempt %d failed: %s", webhook.id, attempts, type(exc).__name__)
        if not _retryable(status) or deadline - time.monotonic() <= backoff:
            break
        time.sleep(backoff)
        backoff *= 2
    return Delivery(webhook.id, status, attempts)


def deliver(
    webhooks: Iterable[Webhook],
    tenant_id: str,
    payloads: Iterable[Mapping[str, Any]],
    *,
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
) -> list[Delivery]:
    """POST every payload to every webhook within one shared deadline; log and return the outcomes."""
    deadline = time.monotonic() + deadline_seconds
    outcomes = []
    hooks = [(w, resolve_secret(w)) for w in webhooks]
    for payload in payloads:
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        for webhook, secret in hooks:
            headers = {
                "Content-Type": "application/json",
                "X-Rs2gcs-Event": "sync.table",
                "X-Rs2gcs-Delivery": uuid.uuid4().hex,
                "X-Rs2gcs-Tenant": tenant_id,
            }
            if secret:
                headers[SIGNATURE_HEADER] = sign(body, secret)
            outcome = _post_with_retries(webhook, body, headers, deadline)
            if outcome.ok:
                log.info(
                    "webhook %s: delivered (%s) after %d attempt(s)",
                    webhook.id,
                    outcome.status,
                    outcome.attempts,
                )
            else:
                log.error(
                    "webhook %s: delivery failed (status %s) after %d attempt(s); the sync is not affected",
                    webhook.id,
                    outcome.status,
                    outcome.attempts,
                )
            outcomes.append(outcome)
    return outcomes


def delete_registration(webhook: Webhook, timeout: float = REQUEST_TIMEOUT_SECONDS) -> int | None:
    """Send the registration's DELETE, if it has one; the HTTP status, or ``None`` when unreachable."""
    if not webhook.registration_url:
        return None
    try:
        return requests.delete(webhook.registration_url, timeout=timeout).status_code
    except requests.RequestException as exc:
        log.warning("webhook %s: DELETE %s failed: %s", webhook.id, webhook.registration_url, exc)
        return None
