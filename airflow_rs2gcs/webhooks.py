"""Webhooks: signed delivery of each sync's outcome, and deletion of registrations on disconnect.

Delivery: ``POST <url>`` with a JSON body and these headers:

- ``X-Rs2gcs-Signature: sha256=<hex>``: HMAC-SHA256 of the exact body bytes with the webhook's secret
  (inline ``secret`` or the password of the connection ``secret_conn_id``); absent when no secret.
- ``X-Rs2gcs-Event: sync.table`` (a table's outcome) or ``schema_changed`` (a table's columns differ
  from its last manifest; sent after the outcomes), ``X-Rs2gcs-Delivery: <uuid>`` (the same on every
  retry of a delivery), ``X-Rs2gcs-Tenant: <tenant_id>``.

Each delivery is retried with exponential backoff on connection errors, timeouts, 429 and 5xx, but
all deliveries of one call share a deadline (``deadline_seconds``): a down or slow endpoint never
fails a sync or holds it past that bound. Failures are logged, never raised.

Deletion: ``DELETE <registration_url>``, retried with bounded backoff on connection errors, timeouts,
429 and 5xx; 2xx, 404 and 410 mean the registration is gone. :func:`delete_registration` returns a
:class:`Deletion` that says so; the caller decides (Disconnect keeps the record of every webhook not
gone and fails).
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
    event: str = "sync.table",
) -> list[Delivery]:
    """POST every payload to every webhook within one shared deadline; log and return the outcomes.

    ``event`` is the ``X-Rs2gcs-Event`` header of every payload of this call.
    """
    deadline = time.monotonic() + deadline_seconds
    outcomes = []
    hooks = [(w, resolve_secret(w)) for w in webhooks]
    for payload in payloads:
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        for webhook, secret in hooks:
            headers = {
                "Content-Type": "application/json",
                "X-Rs2gcs-Event": event,
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


# Deleting a registration: a DELETE to ``registration_url``, retried on what may pass (connection errors,
# timeouts, 429, 5xx) with doubling backoff, at most ``attempts`` tries within ``deadline_seconds``.
DELETE_ATTEMPTS = 4
DELETE_FIRST_BACKOFF_SECONDS = 0.5
DELETE_DEADLINE_SECONDS = 30.0
# The registration is gone either way: deleted now, or already (by an earlier try or by its owner).
GONE_STATUSES = frozenset({404, 410})


@dataclass(frozen=True)
class Deletion:
    """The outcome of deleting one webhook's registration.

    :param webhook_id: the webhook's id.
    :param url: the registration URL sent the DELETE (``None``: the webhook has none, nothing remote).
    :param status: the last HTTP status (``None`` without an answer).
    :param attempts: DELETE requests sent.
    :param error: the last error without an answer (exception type and message).
    """

    webhook_id: str
    url: str | None
    status: int | None = None
    attempts: int = 0
    error: str | None = None

    @property
    def deleted(self) -> bool:
        """The registration is gone: no registration URL, a 2xx answer, or 404/410 (already gone)."""
        if self.url is None:
            return True
        return self.status is not None and (200 <= self.status < 300 or self.status in GONE_STATUSES)

    def describe(self) -> str:
        """One line for the log or an error: what was sent and what came back."""
        if self.url is None:
            return f"webhook {self.webhook_id}: no registration_url, nothing to delete remotely"
        answer = f"HTTP {self.status}" if self.status is not None else f"no answer ({self.error})"
        gone = " (already gone)" if self.status in GONE_STATUSES else ""
        tries = f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}"
        return f"webhook {self.webhook_id}: DELETE {self.url} -> {answer}{gone} after {tries}"


def delete_registration(
    webhook: Webhook,
    *,
    attempts: int = DELETE_ATTEMPTS,
    first_backoff: float = DELETE_FIRST_BACKOFF_SECONDS,
    deadline_seconds: float = DELETE_DEADLINE_SECONDS,
    timeout: float = REQUEST_TIMEOUT_SECONDS,
) -> Deletion:
    """Delete the webhook's registration, if it has one; never raises, the outcome says what happened.

    Retries connection errors, timeouts, 429 and 5xx with doubling backoff (``first_backoff``, then
    twice that, ...), at most ``attempts`` requests, none started after ``deadline_seconds``. Any other
    answer is final: 2xx, 404 and 410 mean deleted; the rest (400, 401, 403, ...) mean not deleted.
    """
    url = webhook.registration_url
    if not url:
        return Deletion(webhook.id, None)
    deadline = time.monotonic() + deadline_seconds
    backoff, sent = first_backoff, 0
    status: int | None = None
    error: str | None = None
    while True:
        sent += 1
        remaining = max(deadline - time.monotonic(), 0.1)
        try:
            status, error = requests.delete(url, timeout=min(timeout, remaining)).status_code, None
        except (requests.ConnectionError, requests.Timeout) as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
        except requests.RequestException as exc:  # a URL requests cannot send: retrying will not help
            return Deletion(webhook.id, url, None, sent, f"{type(exc).__name__}: {exc}")
        if not _retryable(status) or sent >= attempts or time.monotonic() + backoff >= deadline:
            break
        log.warning(
            "webhook %s: DELETE %s attempt %d got %s; retrying in %.1f s",
            webhook.id,
            url,
            sent,
            status if status is not None else error,
            backoff,
        )
        time.sleep(backoff)
        backoff *= 2
    return Deletion(webhook.id, url, status, sent, error)
