"""The S3 -> GCS copy engine against a fake S3 client and a fake GCS client: chunking, bounded
in-flight copies, checksum checks and cleanup (the real S3/GCS run is tests/integration/test_s3_copy.py)."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from airflow_rs2gcs.engine import s3_copy
from airflow_rs2gcs.engine.s3_copy import (
    CopyIntegrityError,
    ObjectCopy,
    S3CopyError,
    copy_objects,
    plain_md5_of_etag,
    read_chunks,
)

CHUNK = 256 * 1024


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


class FakeBody:
    """A GET's body; raises ``cut`` once ``cut_after`` bytes have been read."""

    def __init__(self, data: bytes, cut_after: int | None = None, cut: BaseException | None = None) -> None:
        self.data, self.position, self.cut_after, self.cut = data, 0, cut_after, cut
        self.reads: list[int] = []

    def read(self, amount: int) -> bytes:
        if self.cut_after is not None and self.position >= self.cut_after:
            assert self.cut is not None
            raise self.cut
        self.reads.append(amount)
        piece = self.data[self.position : self.position + amount]
        self.position += len(piece)
        return piece

    def close(self) -> None:
        pass


class FakeS3:
    """Objects in a dict; records ranges; can fail chosen reads and slow reads down."""

    def __init__(self, objects: dict[str, bytes], etags: dict[str, str] | None = None) -> None:
        self.objects = objects
        self.etags = etags or {}
        self.ranges: list[tuple[str, str]] = []
        self.fail_reads: list[BaseException] = []
        self.cuts: list[tuple[int, BaseException]] = []  # (bytes served, error) for the next bodies
        self.bodies: list[FakeBody] = []
        self.delay = 0.0
        self.lock = threading.Lock()

    def get_conn(self) -> FakeS3:
        return self

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        data = self.objects[Key]
        etag = self.etags.get(Key, hashlib.md5(data).hexdigest())
        return {"ContentLength": len(data), "ETag": f'"{etag}"'}

    def get_object(self, Bucket: str, Key: str, Range: str) -> dict[str, Any]:
        with self.lock:
            self.ranges.append((Key, Range))
            if self.fail_reads:
                raise self.fail_reads.pop(0)
        time.sleep(self.delay)
        first, last = (int(n) for n in Range.removeprefix("bytes=").split("-"))
        cut_after, cut = self.cuts.pop(0) if self.cuts else (None, None)
        body = FakeBody(self.objects[Key][first : last + 1], cut_after, cut)
        self.bodies.append(body)
        return {"Body": body}


SESSIONS: dict[str, tuple[FakeGCS, str]] = {}


def fake_put_stream(session_url: str, stream: Any, size: int) -> dict[str, Any]:
    """Like the real PUT: read the body a block at a time; the object exists only if it all arrived."""
    gcs, name = SESSIONS[session_url]
    gcs.enter()
    try:
        parts = []
        while block := stream.read(16384):
            parts.append(block)
        data = b"".join(parts)
        assert len(data) == size
        gcs.stored[name] = gcs.corrupt(data)
        return {"size": str(size), "md5Hash": md5_b64(gcs.stored[name])}
    finally:
        gcs.leave()


@pytest.fixture(autouse=True)
def fake_gcs_requests(monkeypatch):
    """The session's PUT and DELETE go to the fake GCS instead of over HTTP."""
    monkeypatch.setattr(s3_copy, "put_stream", fake_put_stream)
    cancelled: list[str] = []
    monkeypatch.setattr(s3_copy, "cancel_session", cancelled.append)
    SESSIONS.clear()
    return cancelled


class FakeBlob:
    def __init__(self, gcs: FakeGCS, name: str) -> None:
        self.gcs, self.name = gcs, name
        self.size: int | None = None
        self.md5_hash: str | None = None

    def create_resumable_upload_session(self, **kwargs: Any) -> str:
        url = f"fake://session/{len(SESSIONS)}"
        SESSIONS[url] = (self.gcs, self.name)
        return url

    def reload(self, **kwargs: Any) -> None:
        data = self.gcs.stored[self.name]
        self.size, self.md5_hash = len(data), md5_b64(data)

    def delete(self, **kwargs: Any) -> None:
        del self.gcs.stored[self.name]


class FakeGCS:
    """A bucket in a dict; counts the uploads open at once; can corrupt what it stores."""

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}
        self.open_now = 0
        self.open_max = 0
        self.lock = threading.Lock()
        self.corrupt = lambda data: data

    def get_conn(self) -> FakeGCS:
        return self

    def bucket(self, name: str) -> FakeGCS:
        return self

    def blob(self, name: str) -> FakeBlob:
        return FakeBlob(self, name)

    def enter(self) -> None:
        with self.lock:
            self.open_now += 1
            self.open_max = max(self.open_max, self.open_now)

    def leave(self) -> None:
        with self.lock:
            self.open_now -= 1


def copies_of(*keys: str) -> list[ObjectCopy]:
    return [ObjectCopy("src", key, "dst", f"out/{key}") for key in keys]


def test_ranged_gets_are_read_a_chunk_at_a_time():
    s3 = FakeS3({"a": bytes(range(10))})
    pieces = list(read_chunks(s3, copies_of("a")[0], 10, chunk_size=2, range_size=4))
    assert pieces == [bytes([0, 1]), bytes([2, 3]), bytes([4, 5]), bytes([6, 7]), bytes([8, 9])]
    assert [r for _, r in s3.ranges] == ["bytes=0-3", "bytes=4-7", "bytes=8-9"]
    assert max(n for body in s3.bodies for n in body.reads) == 2  # never more than a chunk at once
    assert list(read_chunks(s3, copies_of("a")[0], 0, chunk_size=2, range_size=4)) == []


def test_plain_md5_of_etag_refuses_multipart_etags():
    data = b"abc"
    assert plain_md5_of_etag(f'"{hashlib.md5(data).hexdigest()}"') == md5_b64(data)
    assert plain_md5_of_etag('"9b2cf535f27731c974343645a3985328-3"') is None
    assert plain_md5_of_etag("") is None


def test_objects_are_copied_in_ranged_chunks_byte_identical():
    objects = {"big": bytes(range(256)) * 4096 + b"tail", "small": b"x" * 10, "empty": b""}
    s3, gcs = FakeS3(objects), FakeGCS()
    copied = copy_objects(s3, gcs, copies_of("big", "small", "empty"), chunk_size=CHUNK, range_size=2 * CHUNK)
    assert [c.target_name for c in copied] == ["out/big", "out/small", "out/empty"]
    assert {name: gcs.stored[f"out/{name}"] for name in objects} == objects
    assert [(c.bytes, c.md5) for c in copied] == [(len(objects[k]), md5_b64(objects[k])) for k in objects]
    big_ranges = [r for key, r in s3.ranges if key == "big"]
    assert big_ranges == ["bytes=0-524287", "bytes=524288-1048575", "bytes=1048576-1048579"]
    assert {n for body in s3.bodies for n in body.reads} <= {CHUNK, 4, 10}
    assert not [r for key, r in s3.ranges if key == "empty"]


def test_no_more_than_max_in_flight_objects_are_copied_at_once():
    s3, gcs = FakeS3({f"k{i}": b"y" * 100 for i in range(8)}), FakeGCS()
    s3.delay = 0.05
    copy_objects(s3, gcs, copies_of(*(f"k{i}" for i in range(8))), chunk_size=CHUNK, max_in_flight=3)
    assert gcs.open_max == 3
    assert len(gcs.stored) == 8


def test_a_gcs_checksum_mismatch_fails_naming_the_object_and_deletes_it():
    s3, gcs = FakeS3({"a": b"hello"}), FakeGCS()
    gcs.corrupt = lambda data: data[:-1] + b"X"
    with pytest.raises(CopyIntegrityError, match=r"s3://src/a -> gs://dst/out/a.*md5Hash"):
        copy_objects(s3, gcs, copies_of("a"), chunk_size=CHUNK)
    assert gcs.stored == {}


def test_an_s3_etag_that_differs_from_the_streamed_bytes_fails_the_copy():
    s3, gcs = FakeS3({"a": b"hello"}, etags={"a": hashlib.md5(b"other").hexdigest()}), FakeGCS()
    with pytest.raises(CopyIntegrityError, match=r"s3://src/a.*S3's ETag MD5"):
        copy_objects(s3, gcs, copies_of("a"), chunk_size=CHUNK)
    assert gcs.stored == {}


def test_a_multipart_etag_is_not_compared():
    s3, gcs = FakeS3({"a": b"hello"}, etags={"a": "0123456789abcdef0123456789abcdef-2"}), FakeGCS()
    assert copy_objects(s3, gcs, copies_of("a"), chunk_size=CHUNK)[0].md5 == md5_b64(b"hello")


def test_a_transient_s3_error_is_retried_per_chunk(monkeypatch):
    monkeypatch.setattr(s3_copy.time, "sleep", lambda _: None)
    s3, gcs = FakeS3({"a": b"z" * (CHUNK + 1)}), FakeGCS()
    s3.fail_reads = [EndpointConnectionError(endpoint_url="http://s3")]
    copy_objects(s3, gcs, copies_of("a"), chunk_size=CHUNK)
    assert gcs.stored["out/a"] == b"z" * (CHUNK + 1)
    assert [r for _, r in s3.ranges] == [f"bytes=0-{CHUNK}"] * 2  # the failed GET, then again


def test_a_stream_cut_mid_range_resumes_from_the_first_byte_not_read(monkeypatch):
    from botocore.exceptions import ResponseStreamingError

    monkeypatch.setattr(s3_copy.time, "sleep", lambda _: None)
    data = bytes(range(256)) * 4096  # 1 MiB: four chunks in one range
    s3, gcs = FakeS3({"a": data}), FakeGCS()
    s3.cuts = [(2 * CHUNK, ResponseStreamingError(error="reset"))]
    copied = copy_objects(s3, gcs, copies_of("a"), chunk_size=CHUNK)
    assert gcs.stored["out/a"] == data
    assert copied[0].md5 == md5_b64(data)
    assert [r for _, r in s3.ranges] == [f"bytes=0-{len(data) - 1}", f"bytes={2 * CHUNK}-{len(data) - 1}"]


def test_s3_failing_mid_copy_leaves_no_gcs_object_and_names_it(monkeypatch, fake_gcs_requests):
    monkeypatch.setattr(s3_copy.time, "sleep", lambda _: None)
    s3, gcs = FakeS3({"a": b"z" * (3 * CHUNK)}), FakeGCS()
    s3.fail_reads = [EndpointConnectionError(endpoint_url="http://s3")] * 3
    with pytest.raises(S3CopyError, match=r"copy of s3://src/a -> gs://dst/out/a failed"):
        copy_objects(s3, gcs, copies_of("a"), chunk_size=CHUNK, attempts=3)
    assert gcs.stored == {}
    assert fake_gcs_requests == ["fake://session/0"]  # the unfinished session is cancelled
    assert len(s3.ranges) == 3  # bounded: three tries of the first chunk


def test_a_non_transient_error_is_not_retried():
    s3, gcs = FakeS3({"a": b"z"}), FakeGCS()
    s3.fail_reads = [PermissionError("denied")]
    with pytest.raises(S3CopyError, match="denied"):
        copy_objects(s3, gcs, copies_of("a"), chunk_size=CHUNK)
    assert len(s3.ranges) == 1


def test_a_failure_stops_copies_not_yet_started():
    s3, gcs = FakeS3({f"k{i}": b"y" for i in range(6)}), FakeGCS()
    s3.fail_reads = [PermissionError("denied")]
    s3.delay = 0.02
    with pytest.raises(S3CopyError, match="s3://src/k0"):
        copy_objects(s3, gcs, copies_of(*(f"k{i}" for i in range(6))), chunk_size=CHUNK, max_in_flight=1)
    assert gcs.stored == {}


@pytest.mark.parametrize("chunk_size", [0, 1000, CHUNK + 1])
def test_a_chunk_size_gcs_refuses_is_a_clear_error(chunk_size):
    with pytest.raises(ValueError, match="multiple of 256 KiB"):
        copy_objects(FakeS3({}), FakeGCS(), copies_of("a"), chunk_size=chunk_size)


def test_a_range_smaller_than_a_chunk_is_refused():
    with pytest.raises(ValueError, match="range_size must be at least chunk_size"):
        copy_objects(FakeS3({}), FakeGCS(), copies_of("a"), chunk_size=CHUNK, range_size=CHUNK // 2)
