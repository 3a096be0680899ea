"""The S3 -> GCS copy engine on real parts: moto's S3 server (LocalS3) through the amazon provider's
S3Hook, fake-gcs-server through the google provider's GCSHook."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from airflow_rs2gcs.engine.s3_copy import ObjectCopy, S3CopyError, copy_objects

SOURCE = "rs2gcs-s3copy-src"
TARGET = "rs2gcs-s3copy-dst"
S3_CONN = "rs2gcs_s3copy_s3"
CHUNK = 4 << 20


@pytest.fixture(scope="module")
def local_s3():
    from rs2gcs_devstack.s3 import LocalS3

    with LocalS3() as s3:
        s3.create_bucket(SOURCE)
        yield s3


@pytest.fixture
def hooks(stack_env, local_s3, monkeypatch):
    """An S3Hook on the local S3 and a GCSHook on the stack's fake GCS (with its target bucket)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    monkeypatch.setenv(f"AIRFLOW_CONN_{S3_CONN.upper()}", local_s3.aws_connection_json())
    stack_env.gcs.create_bucket(TARGET)
    return S3Hook(aws_conn_id=S3_CONN), GCSHook(gcp_conn_id="rs2gcs_gcs")


def test_objects_land_byte_identical_with_their_checksums(hooks, local_s3):
    from boto3.s3.transfer import TransferConfig

    s3_hook, gcs_hook = hooks
    payloads = {
        "big.parquet": os.urandom(24 << 20) + b"odd tail",  # six chunks and a bit: ranged reads
        "small.parquet": os.urandom(1000),
        "empty.parquet": b"",
    }
    client = local_s3.client()
    for key, data in payloads.items():
        client.put_object(Bucket=SOURCE, Key=f"in/{key}", Body=data)
    client.upload_fileobj(  # a multipart upload: its ETag is no MD5, so only GCS's md5Hash is compared
        io.BytesIO(payloads["big.parquet"]),
        SOURCE,
        "in/multipart.parquet",
        Config=TransferConfig(multipart_threshold=8 << 20),
    )
    payloads["multipart.parquet"] = payloads["big.parquet"]
    copies = [ObjectCopy(SOURCE, f"in/{key}", TARGET, f"out/{key}") for key in payloads]

    copied = copy_objects(s3_hook, gcs_hook, copies, chunk_size=CHUNK, max_in_flight=3)

    assert [(c.target_name, c.bytes) for c in copied] == [(f"out/{k}", len(v)) for k, v in payloads.items()]
    for key, data in payloads.items():
        stored = gcs_hook.download(TARGET, f"out/{key}")
        assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest(), key
    assert "-" in client.head_object(Bucket=SOURCE, Key="in/multipart.parquet")["ETag"]


def test_s3_stopping_mid_copy_fails_naming_the_object_and_leaves_nothing(hooks, local_s3):
    s3_hook, gcs_hook = hooks
    local_s3.client().put_object(Bucket=SOURCE, Key="in/doomed.parquet", Body=os.urandom(4 << 20))
    reads = []

    def stop_s3_after_two_reads(**_: object) -> None:
        reads.append(1)
        if len(reads) == 2:
            local_s3.stop()

    s3_hook.get_conn().meta.events.register("after-call.s3.GetObject", stop_s3_after_two_reads)
    copy = ObjectCopy(SOURCE, "in/doomed.parquet", TARGET, "out/doomed.parquet")
    try:
        with pytest.raises(S3CopyError, match=r"s3://rs2gcs-s3copy-src/in/doomed.parquet"):
            copy_objects(s3_hook, gcs_hook, [copy], chunk_size=256 << 10, range_size=256 << 10, attempts=2)
        assert len(reads) == 2
        assert not gcs_hook.exists(TARGET, "out/doomed.parquet")
        assert gcs_hook.list(TARGET, prefix="out/doomed") == []
    finally:
        local_s3.start()  # empty again, for any later test of the module
        local_s3.create_bucket(SOURCE)
