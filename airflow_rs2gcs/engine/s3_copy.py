"""Copy S3 objects to GCS: streamed, several at a time, checked, with memory bounded by the chunk size.

Each object is read from S3 in ranged GETs of ``range_size`` bytes, each body read ``chunk_size``
bytes at a time (through the amazon provider's ``S3Hook``'s boto3 client), and streamed as the body
of one PUT into a GCS resumable upload session (opened through the ``GCSHook``'s client, as
:mod:`airflow_rs2gcs.engine.uploader` does), so one copy holds about one chunk in memory whatever the
object's size; ``max_in_flight`` copies run at once. One PUT per object, not one per chunk: the
resumable protocol's chunks would each cost a round trip (and fake-gcs-server re-handles the whole
object per chunk). While streaming, an MD5 is computed; the written object must then have S3's
``ContentLength`` as its size, that MD5 as GCS's ``md5Hash`` and, when S3's ETag is a plain MD5 (a
single-part upload: no ``-``), S3's MD5 too.

On any failure the GCS object does not remain: an upload whose body breaks off is never finalized
(GCS finalizes only when it has every declared byte) and its session is cancelled; a finished object
that fails a check is deleted. The error names the S3 object and the GCS target. Transient S3 errors
are retried per chunk, a bounded number of times, with a ranged GET from the first byte not yet read;
the storage client retries the session's creation itself.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import requests
from google.cloud.storage.retry import DEFAULT_RETRY

log = logging.getLogger(__name__)

MIB = 1 << 20
DEFAULT_CHUNK_SIZE = 8 * MIB
DEFAULT_RANGE_SIZE = 64 * MIB
GCS_CHUNK_MULTIPLE = 256 * 1024  # GCS resumable chunks: kept so a chunk can always be one
DEFAULT_MAX_IN_FLIGHT = 4
S3_CHUNK_ATTEMPTS = 3  # tries of one chunk's read (each success resets the count)
_RETRYABLE_S3_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# As in engine/uploader.py (not imported: it brings pyarrow, ~40 MB of RSS this copy does not need):
# a short budget for the storage client's own retries, so a dead GCS fails a copy in about a minute.
CLIENT_RETRY = DEFAULT_RETRY.with_timeout(20.0)
CLIENT_TIMEOUT = 30.0
UPLOAD_TIMEOUT = (60, 300)  # connect, read (seconds)
BACKOFF_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 5.0


class S3CopyError(RuntimeError):
    """One object could not be copied; the message names it, and no GCS object was left for it."""


class CopyIntegrityError(S3CopyError):
    """The written GCS object's size or checksum differs from the S3 object's (it was deleted)."""


@dataclass(frozen=True)
class ObjectCopy:
    """One object to copy: ``s3://source_bucket/source_key`` to ``gs://target_bucket/target_name``."""

    source_bucket: str
    source_key: str
    target_bucket: str
    target_name: str

    @property
    def description(self) -> str:
        """Both ends, for log lines and errors."""
        return f"s3://{self.source_bucket}/{self.source_key} -> gs://{self.target_bucket}/{self.target_name}"


@dataclass(frozen=True)
class CopiedObject:
    """A copied, checked object: its GCS name, size and MD5 (base64, as GCS reports ``md5Hash``)."""

    target_bucket: str
    target_name: str
    bytes: int
    md5: str


def is_transient_s3_error(error: BaseException) -> bool:
    """True for S3 errors worth retrying: connection trouble, timeouts, a cut stream, HTTP 408/429/5xx."""
    from botocore import exceptions as boto_exceptions

    if isinstance(
        error,
        (
            ConnectionError,
            TimeoutError,
            boto_exceptions.ConnectionError,
            boto_exceptions.ReadTimeoutError,
            boto_exceptions.IncompleteReadError,
            boto_exceptions.ResponseStreamingError,
        ),
    ):
        return True
    if isinstance(error, boto_exceptions.ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status in _RETRYABLE_S3_STATUS
    return False


def plain_md5_of_etag(etag: str) -> str | None:
    """S3's ETag as a base64 MD5 when it is one (single-part upload); ``None`` for multipart ETags."""
    value = etag.strip('"')
    if "-" in value or len(value) != 32:
        return None
    try:
        return base64.b64encode(bytes.fromhex(value)).decode("ascii")
    except ValueError:
        return None


def read_chunks(
    s3_client: Any,
    copy: ObjectCopy,
    size: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    range_size: int = DEFAULT_RANGE_SIZE,
    attempts: int = S3_CHUNK_ATTEMPTS,
    sleep: Callable[[float], None] | None = None,
) -> Iterator[bytes]:
    """The object's bytes in pieces of at most ``chunk_size``, from ranged GETs of ``range_size``.

    Each GET's body is read a chunk at a time, so memory holds one chunk whatever ``range_size`` is
    (fewer, longer GETs cost fewer requests: S3 bills and rate-limits per request). A transient error
    is retried with a ranged GET from the first byte not yet read, up to ``attempts`` tries per chunk;
    a body that ends early is such an error.
    """
    offset = 0
    failures = 0
    while offset < size:
        last = min(offset + range_size, size) - 1
        try:
            body = s3_client.get_object(
                Bucket=copy.source_bucket, Key=copy.source_key, Range=f"bytes={offset}-{last}"
            )["Body"]
            try:
                while offset <= last:
                    data: bytes = body.read(min(chunk_size, last - offset + 1))
                    if not data:
                        raise ConnectionError(f"S3 ended the body at byte {offset} of range ..{last}")
                    offset += len(data)
                    failures = 0
                    yield data
            finally:
                body.close()
        except Exception as exc:
            failures += 1
            if failures >= attempts or not is_transient_s3_error(exc):
                raise
            delay = min(BACKOFF_MAX_SECONDS, BACKOFF_SECONDS * 2 ** (failures - 1)) * random.uniform(0.5, 1.5)
            log.warning(
                "read of %s from byte %d failed (try %d of %d: %s); retrying in %.1fs",
                *(copy.description, offset, failures, attempts, exc, delay),
            )
            (sleep or time.sleep)(delay)


def _check_written(blob: Any, copy: ObjectCopy, size: int, md5: str, s3_md5: str | None) -> None:
    blob.reload(timeout=CLIENT_TIMEOUT, retry=CLIENT_RETRY)
    problems = []
    if blob.size != size:
        problems.append(f"GCS has {blob.size} bytes, S3 has {size}")
    if blob.md5_hash != md5:
        problems.append(f"GCS md5Hash {blob.md5_hash} differs from the streamed bytes' {md5}")
    if s3_md5 is not None and s3_md5 != md5:
        problems.append(f"S3's ETag MD5 {s3_md5} differs from the streamed bytes' {md5}")
    if problems:
        raise CopyIntegrityError(f"copy of {copy.description} failed its checks: {'; '.join(problems)}")


def copy_object(
    s3_client: Any,
    gcs_client: Any,
    copy: ObjectCopy,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    content_type: str = "application/octet-stream",
    attempts: int = S3_CHUNK_ATTEMPTS,
    range_size: int = DEFAULT_RANGE_SIZE,
) -> CopiedObject:
    """Stream one S3 object into a GCS resumable upload and check it (see the module docstring).

    :raises S3CopyError: naming the object, after cancelling the upload or deleting the written object.
    """
    try:
        head = s3_client.head_object(Bucket=copy.source_bucket, Key=copy.source_key)
    except Exception as exc:
        raise S3CopyError(f"copy of {copy.description} failed: cannot read the S3 object: {exc}") from exc
    size = int(head["ContentLength"])
    s3_md5 = plain_md5_of_etag(str(head.get("ETag", "")))
    blob = gcs_client.bucket(copy.target_bucket).blob(copy.target_name)
    try:
        session_url = blob.create_resumable_upload_session(
            content_type=content_type, size=size, timeout=CLIENT_TIMEOUT, retry=CLIENT_RETRY
        )
    except Exception as exc:
        raise S3CopyError(f"copy of {copy.description} failed: cannot start the GCS upload: {exc}") from exc
    stream = ChunkStream(read_chunks(s3_client, copy, size, chunk_size, range_size, attempts), size)
    try:
        put_stream(session_url, stream, size)
    except Exception as exc:
        cancel_session(session_url)
        raise S3CopyError(f"copy of {copy.description} failed: {exc}") from exc
    md5 = base64.b64encode(stream.digest.digest()).decode("ascii")
    try:
        _check_written(blob, copy, size, md5, s3_md5)
    except Exception as exc:
        _delete_quietly(blob, copy)
        if isinstance(exc, S3CopyError):
            raise
        raise S3CopyError(f"copy of {copy.description} failed: cannot check the GCS object: {exc}") from exc
    return CopiedObject(copy.target_bucket, copy.target_name, size, md5)


class ChunkStream:
    """A read-only file over an iterator of chunks, with a known length and a running MD5.

    ``requests`` sends a file-like body with a length as a plain ``Content-Length`` request, reading it
    a block at a time; only the current chunk is held.
    """

    def __init__(self, chunks: Iterator[bytes], size: int) -> None:
        self._chunks = chunks
        self._size = size
        self._current = memoryview(b"")
        self.digest = hashlib.md5(usedforsecurity=False)

    def __len__(self) -> int:
        return self._size

    def read(self, amount: int = -1) -> bytes:
        """Up to ``amount`` bytes (the rest of the current chunk if negative); ``b""`` at the end."""
        while not self._current:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self.digest.update(chunk)
            self._current = memoryview(chunk)
        if amount < 0:
            amount = len(self._current)
        piece = bytes(self._current[:amount])
        self._current = self._current[amount:]
        return piece


def put_stream(session_url: str, stream: ChunkStream, size: int) -> dict[str, Any]:
    """Send the whole object as one request of the resumable session; GCS's object metadata."""
    # requests would send an empty file object chunked (beside our Content-Length: an invalid request).
    data: Any = stream if size else b""
    response = requests.put(
        session_url, data=data, headers={"Content-Length": str(size)}, timeout=UPLOAD_TIMEOUT
    )
    response.raise_for_status()
    return response.json() if response.content else {}


def cancel_session(session_url: str) -> None:
    """Cancel an unfinished resumable upload (GCS answers 499); best effort, it expires anyway."""
    try:
        requests.delete(session_url, timeout=CLIENT_TIMEOUT)
    except requests.RequestException as exc:
        log.warning("could not cancel the upload session %s: %s", session_url, exc)


def _delete_quietly(blob: Any, copy: ObjectCopy) -> None:
    try:
        blob.delete(timeout=CLIENT_TIMEOUT, retry=CLIENT_RETRY)
    except Exception as exc:  # the original error matters more; say what is left behind
        log.error(
            "could not delete gs://%s/%s after a failed copy: %s", copy.target_bucket, copy.target_name, exc
        )


def validate_chunk_size(chunk_size: int) -> None:
    """A chunk must be a positive multiple of 256 KiB (GCS's rule for resumable upload chunks)."""
    if chunk_size <= 0 or chunk_size % GCS_CHUNK_MULTIPLE:
        raise ValueError(f"chunk_size must be a positive multiple of 256 KiB (262144), got {chunk_size}")


def copy_objects(
    s3_hook: Any,
    gcs_hook: Any,
    copies: Sequence[ObjectCopy],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    content_type: str = "application/octet-stream",
    attempts: int = S3_CHUNK_ATTEMPTS,
    range_size: int = DEFAULT_RANGE_SIZE,
) -> list[CopiedObject]:
    """Copy ``copies`` from S3 to GCS, ``max_in_flight`` at a time; results in the order given.

    Memory stays near ``chunk_size * max_in_flight`` whatever the objects' sizes. The first failure
    stops the copies not yet started, waits for the running ones, and is raised; objects already
    copied stay (each is complete and checked).

    :param s3_hook: an amazon provider ``S3Hook`` (its boto3 client is shared by the threads).
    :param gcs_hook: a google provider ``GCSHook`` (its storage client is shared by the threads).
    :param copies: the objects to copy.
    :param chunk_size: bytes read from S3 at a time (the memory per copy); a multiple of 256 KiB.
    :param max_in_flight: objects copied at once.
    :param content_type: MIME type set on every GCS object.
    :param attempts: tries of each chunk's read on transient S3 errors.
    :param range_size: bytes per ranged GET (read ``chunk_size`` at a time); at least ``chunk_size``.
    :raises S3CopyError: naming the first object that failed.
    """
    validate_chunk_size(chunk_size)
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be positive, got {max_in_flight}")
    if range_size < chunk_size:
        raise ValueError(f"range_size must be at least chunk_size ({chunk_size}), got {range_size}")
    if not copies:
        return []
    s3_client = s3_hook.get_conn()
    gcs_client = gcs_hook.get_conn()
    with ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="rs2gcs-s3copy") as pool:
        futures: list[Future[CopiedObject]] = [
            pool.submit(
                copy_object, s3_client, gcs_client, copy, chunk_size, content_type, attempts, range_size
            )
            for copy in copies
        ]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None:
            for future in futures:
                future.cancel()
            wait(futures)
            failed.result()
    return [future.result() for future in futures]
