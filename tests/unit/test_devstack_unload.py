"""The local shim's UNLOAD parser, file naming, manifest types and file splitting (no processes)."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rs2gcs_devstack.unload import (
    MB,
    Unload,
    UnloadError,
    _split_parquet,
    file_key,
    is_unload,
    manifest_type,
    parse_unload,
)

HEAD = "UNLOAD ('select 1') TO 's3://bkt/p' "
PRODUCT_SQL = (
    "UNLOAD ('select * from s.t where note = ''it''''s''') TO 's3://staging-1/tenant/run/t_' "
    "IAM_ROLE 'arn:aws:iam::123456789012:role/unload' FORMAT PARQUET MANIFEST VERBOSE MAXFILESIZE 64 MB "
    "ALLOWOVERWRITE PARALLEL OFF;"
)


def test_parses_the_statement_the_product_sends():
    assert parse_unload(PRODUCT_SQL) == Unload(
        query="select * from s.t where note = 'it''s'",
        bucket="staging-1",
        prefix="tenant/run/t_",
        iam_role="arn:aws:iam::123456789012:role/unload",
        manifest=True,
        verbose=True,
        max_file_size=64 * MB,
        allow_overwrite=True,
        parallel=False,
    )


@pytest.mark.parametrize(
    ("sql", "message", "code"),
    [
        (HEAD + "FORMAT PARQUET", "IAM_ROLE", "42601"),
        (HEAD + "IAM_ROLE 'r' FORMAT CSV", "PARQUET only", "0A000"),
        (HEAD + "IAM_ROLE 'r'", "FORMAT PARQUET", "0A000"),
        (HEAD + "IAM_ROLE 'r' FORMAT PARQUET MAXFILESIZE 4 MB", "5 MB", "22023"),
        (HEAD + "IAM_ROLE 'r' FORMAT PARQUET MAXFILESIZE 7 GB", "6.2 GB", "22023"),
        (
            HEAD + "IAM_ROLE 'r' FORMAT PARQUET PARTITION BY (a)",
            "PARTITION",
            "0A000",
        ),
        (
            HEAD + "CREDENTIALS 'aws_access_key_id=x' FORMAT PARQUET",
            "IAM_ROLE",
            "0A000",
        ),
        ("UNLOAD ('select 1') TO '/tmp/x' IAM_ROLE 'r' FORMAT PARQUET", "s3://", "22023"),
        (HEAD + "IAM_ROLE 'r' IAM_ROLE 'r' FORMAT PARQUET", "redundant", "42601"),
        ("UNLOAD ('select 1' TO 's3://bkt/p' IAM_ROLE 'r' FORMAT PARQUET", "syntax error", "42601"),
        (
            HEAD + "IAM_ROLE 'r' FORMAT PARQUET ALLOWOVERWRITE CLEANPATH",
            "CLEANPATH and ALLOWOVERWRITE",
            "42601",
        ),
    ],
)
def test_refuses_what_it_does_not_reproduce(sql, message, code):
    with pytest.raises(UnloadError, match=message) as raised:
        parse_unload(sql)
    assert raised.value.code == code


def test_is_unload_skips_blanks_and_comments_but_not_other_statements():
    assert is_unload("  -- export\n unload ('x') to 's3://bkt/p'")
    assert not is_unload("select 'unload'")
    assert not is_unload("unloaded")


def test_file_names_follow_redshift():
    unload = parse_unload("UNLOAD ('select 1') TO 's3://bkt/p/t_' IAM_ROLE 'r' FORMAT PARQUET")
    assert [file_key(unload, i) for i in (0, 11)] == ["p/t_0000_part_00.parquet", "p/t_0000_part_11.parquet"]
    serial = parse_unload("UNLOAD ('select 1') TO 's3://bkt/p/t_' IAM_ROLE 'r' FORMAT PARQUET PARALLEL OFF")
    assert file_key(serial, 2) == "p/t_002.parquet"


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        ("integer", {"base": "integer"}),
        ("character varying(25)", {"base": "character varying", "max_length": 25}),
        ("numeric(8,2)", {"base": "numeric", "precision": 8, "scale": 2}),
        ("timestamp(3) without time zone", {"base": "timestamp without time zone", "precision": 3}),
    ],
)
def test_manifest_types(display, expected):
    assert manifest_type(display) == expected


def test_split_keeps_every_file_under_the_limit_and_every_row():
    schema = pa.schema([("id", pa.int64()), ("payload", pa.string())])
    batches = [
        pa.RecordBatch.from_pylist([{"id": i, "payload": f"{i:x}" * 500} for i in range(s, s + 100)], schema)
        for s in range(0, 2000, 100)
    ]
    limit = sum(b.nbytes for b in batches) // 3
    files = list(_split_parquet(iter(batches), schema, limit))
    assert len(files) >= 3
    assert all(len(body) <= limit for body, _ in files)
    ids = [i for body, _ in files for i in pq.read_table(io.BytesIO(body)).column("id").to_pylist()]
    assert ids == list(range(2000))
    assert [rows for _, rows in files] == [pq.read_metadata(io.BytesIO(b)).num_rows for b, _ in files]


def test_split_writes_one_empty_file_for_no_rows():
    schema = pa.schema([("id", pa.int64())])
    [(body, rows)] = list(_split_parquet(iter([]), schema, 5 * MB))
    assert rows == 0
    assert pq.read_table(io.BytesIO(body)).schema == schema


def test_session_rewrites_an_unload_parse_split_across_reads_and_passes_the_rest_on():
    from rs2gcs_devstack.unload_session import NOOP, UnloadSession, message

    session = UnloadSession(("127.0.0.1", 5432), "u", "dev", s3_factory=lambda: None)
    parse = message(b"P", b"s1\x00" + HEAD.encode() + b"IAM_ROLE 'r' FORMAT PARQUET\x00\x00\x00")
    copy_data = message(b"d", b"x" * 1000)
    query = message(b"Q", b"select 1\x00")
    stream = copy_data + parse + query
    out = session.from_client(stream[:1003]) + session.from_client(stream[1003:])
    assert out == copy_data + message(b"P", b"s1\x00" + NOOP.encode() + b"\x00\x00\x00") + query
    assert session.statements == {"s1": HEAD + "IAM_ROLE 'r' FORMAT PARQUET"}
    assert session.from_client(message(b"C", b"Ss1\x00")) == message(b"C", b"Ss1\x00")
    assert session.statements == {}
