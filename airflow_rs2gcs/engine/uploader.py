"""Upload finished local files to GCS in the background, a bounded number at a time.

The fetch of the next batch overlaps the upload of the previous file; at most ``max_in_flight``
uploads run (or wait) at once, so a slow bucket throttles the reader instead of filling the disk.
Each upload is retried with exponential backoff by ``GCSHook.upload``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from airflow_rs2gcs.engine.encoders import LocalFile

UPLOAD_ATTEMPTS = 5


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


class BackgroundUploader:
    """Uploads local files to ``gs://bucket/<object name>`` on a small thread pool.

    :param gcs_hook: a ``GCSHook`` (its client is shared by the upload threads).
    :param bucket: target bucket.
    :param content_type: MIME type set on every object.
    :param max_in_flight: uploads running or queued at once; ``submit`` blocks beyond it.
    """

    def __init__(self, gcs_hook: Any, bucket: str, content_type: str, max_in_flight: int = 2) -> None:
        self.gcs_hook = gcs_hook
        self.bucket = bucket
        self.content_type = content_type
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="rs2gcs-upload")
        self._futures: list[Future[UploadedObject]] = []

    def submit(self, local: LocalFile, object_name: str) -> None:
        """Queue one upload; blocks while ``max_in_flight`` uploads are pending."""
        self._slots.acquire()
        future = self._pool.submit(self._upload, local, object_name)
        future.add_done_callback(lambda _: self._slots.release())
        self._futures.append(future)

    def _upload(self, local: LocalFile, object_name: str) -> UploadedObject:
        checksum = md5_base64(local.path)
        self.gcs_hook.upload(
            bucket_name=self.bucket,
            object_name=object_name,
            filename=local.path,
            mime_type=self.content_type,
            num_max_attempts=UPLOAD_ATTEMPTS,
        )
        os.remove(local.path)
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
