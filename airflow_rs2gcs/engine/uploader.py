"""Upload finished local files to GCS in the background, a bounded number at a time, with retries.

The fetch and encoding of the next batches overlap the upload of finished files; at most
``max_in_flight`` uploads run or wait at once (``submit`` blocks beyond that), so a slow bucket
throttles the reader instead of filling the disk. Each upload streams its file from disk in one
request of a resumable session (flat memory), checks the MD5 GCS reports, and is retried on
transient errors (connection errors, timeouts, HTTP 408/429/5xx, a checksum mismatch) with
exponential backoff and jitter; other errors (a missing bucket, no permission) fail at once.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud.storage.retry import DEFAULT_RETRY

from airflow_rs2gcs.engine.encoders import LocalFile
from airflow_rs2gcs.engine.memory import release_free_memory

log = logging.getLogger(__name__)

UPLOAD_ATTEMPTS = 6
UPLOAD_TIMEOUT = (60, 300)  # connect, read (seconds)
BACKOFF_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
# The storage client retries each call for up to 120 s by itself; under our 6 tries that would make a
# dead endpoint fail a try only after ~12 minutes. A 20 s client budget per call (30 s per request)
# keeps the worst case near 2.5 minutes while still riding through outages of about that length.
CLIENT_RETRY = DEFAULT_RETRY.with_timeout(20.0)
CLIENT_TIMEOUT = 30.0
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_RETRYABLE_TYPES = (
    ConnectionError,
    TimeoutError,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    http.client.HTTPException,
)


class UploadIntegrityError(IOError):
    """GCS stored an object whose MD5 differs from the local file's (retried like a transient error)."""


@dataclass(frozen=True)
class UploadedObject:
    """One published data object, as listed in the manifest."""

    name: str
    rows: int
    bytes: int
    md5: str


def md5_base64(path: str) -> str:
    """The file's MD5 in the form GCS reports as ``md5Hash``, so readers can check objects against it."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode("ascii")


def is_transient(error: BaseException) -> bool:
    """True for errors worth retrying: connection trouble, timeouts, HTTP 408/429/5xx, bad checksums."""
    if isinstance(error, (*_RETRYABLE_TYPES, UploadIntegrityError)):
        return True
    if isinstance(error, api_exceptions.RetryError):  # the client's own retries ran out of time
        return error.cause is None or is_transient(error.cause)
    if isinstance(error, api_exceptions.GoogleAPICallError):
        return error.code in _RETRYABLE_STATUS
    if isinstance(error, auth_exceptions.TransportError):
        return True
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None) in _RETRYABLE_STATUS


def backoff_delay(attempt: int, base: float = BACKOFF_SECONDS, cap: float = BACKOFF_MAX_SECONDS) -> float:
    """Seconds to wait after failed ``attempt`` (1-based): exponential, capped, with +-50% jitter."""
    return min(cap, base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)


def with_retries(
    action: Callable[[], Any],
    what: str,
    attempts: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Run ``action``; retry transient failures up to ``attempts`` tries in all, then re-raise.

    ``attempts`` defaults to ``UPLOAD_ATTEMPTS``, read at call time.
    """
    attempts = attempts or UPLOAD_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            delay = backoff_delay(attempt)
            log.warning(
                "%s failed (try %d of %d: %s); retrying in %.1fs", what, attempt, attempts, exc, delay
            )
            sleep(delay)
    raise AssertionError("unreachable")


def _put_file(session_url: str, path: str, size: int) -> dict[str, Any]:
    with open(path, "rb") as body:
        # requests sends an empty file object chunked (with our Content-Length: an invalid request).
        data = body if size else b""
        response = requests.put(
            session_url, data=data, headers={"Content-Length": str(size)}, timeout=UPLOAD_TIMEOUT
        )
    response.raise_for_status()
    return response.json() if response.content else {}


def upload_file(gcs_hook: Any, bucket: str, object_name: str, path: str, content_type: str, md5: str) -> None:
    """Upload one local file in a single streamed request of a resumable session (retried).

    The session is opened through the hook's client (credentials, impersonation, emulator host);
    the file is then streamed from disk, so memory stays flat whatever its size (``GCSHook.upload``
    reads a resumable upload's chunks, up to 100 MiB each, into memory). The object GCS reports must
    have the local file's MD5.
    """
    size = os.path.getsize(path)

    def attempt() -> None:
        blob = gcs_hook.get_conn().bucket(bucket).blob(object_name)
        session_url = blob.create_resumable_upload_session(
            content_type=content_type, size=size, timeout=CLIENT_TIMEOUT, retry=CLIENT_RETRY
        )
        stored = _put_file(session_url, path, size).get("md5Hash")
        if stored is not None and stored != md5:
            raise UploadIntegrityError(f"gs://{bucket}/{object_name} has MD5 {stored}, the file {md5}")

    with_retries(attempt, f"upload of gs://{bucket}/{object_name}")


class BackgroundUploader:
    """Uploads local files to ``gs://bucket/<object name>`` on a small thread pool.

    :param gcs_hook: a ``GCSHook`` (its client is shared by the upload threads).
    :param bucket: target bucket.
    :param content_type: MIME type set on every object.
    :param max_in_flight: uploads running or queued at once; :meth:`submit` blocks beyond it.
    """

    def __init__(self, gcs_hook: Any, bucket: str, content_type: str, max_in_flight: int = 2) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be positive, got {max_in_flight}")
        self.gcs_hook = gcs_hook
        self.bucket = bucket
        self.content_type = content_type
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="rs2gcs-upload")
        self._futures: list[Future[UploadedObject]] = []

    def submit(self, local: LocalFile, object_name: str) -> None:
        """Queue one upload; blocks while ``max_in_flight`` are pending; fails fast after a failure."""
        self._slots.acquire()
        failed = next((f for f in self._futures if f.done() and f.exception() is not None), None)
        if failed is not None:
            self._slots.release()
            failed.result()
        future = self._pool.submit(self._upload, local, object_name)
        future.add_done_callback(lambda _: self._slots.release())
        self._futures.append(future)

    def _upload(self, local: LocalFile, object_name: str) -> UploadedObject:
        checksum = md5_base64(local.path)
        upload_file(self.gcs_hook, self.bucket, object_name, local.path, self.content_type, checksum)
        os.remove(local.path)
        release_free_memory()
        return UploadedObject(object_name, local.rows, local.size, checksum)

    def abort(self) -> None:
        """Drop queued uploads and wait for running ones (after a failed read; nothing is published)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def wait(self) -> list[UploadedObject]:
        """Wait for every upload, in submission order; re-raise the first failure."""
        try:
            return [future.result() for future in self._futures]
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def delete_object(gcs_hook: Any, bucket: str, object_name: str) -> None:
    """Delete one object if it exists (retried; a missing object is not an error and is not logged)."""

    def attempt() -> None:
        with contextlib.suppress(api_exceptions.NotFound):
            blob = gcs_hook.get_conn().bucket(bucket).blob(object_name)
            blob.delete(timeout=CLIENT_TIMEOUT, retry=CLIENT_RETRY)

    with_retries(attempt, f"delete of gs://{bucket}/{object_name}")
