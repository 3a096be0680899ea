"""Redshift's ``UNLOAD`` for the local stack: a strict parser and a Parquet writer to the local S3.

The shim (:mod:`rs2gcs_devstack.shim`) hands every statement that starts with ``UNLOAD`` here. Only
the form the product sends is accepted::

    UNLOAD ('<select>') TO 's3://<bucket>/<prefix>' IAM_ROLE '<arn>' FORMAT [AS] PARQUET
        [MANIFEST [VERBOSE]] [MAXFILESIZE [AS] <n> [MB|GB]] [ALLOWOVERWRITE] [CLEANPATH]
        [PARALLEL [ON|OFF|TRUE|FALSE]]

Anything else is an error (:class:`UnloadError`) rather than a silent approximation. What is and is
not reproduced of Redshift is listed in docs/development.md, "The shim's UNLOAD".
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

MB = 1024 * 1024
MIN_MAXFILESIZE = 5 * MB
MAX_MAXFILESIZE = int(6.2 * 1024 * MB)
ROWS_PER_BATCH = 1000
NOT_EMPTY_MESSAGE = (
    "Specified unload destination on S3 is not empty. Consider using a different bucket / prefix, "
    "manually removing the target files in S3, or using the ALLOWOVERWRITE option."
)
MISSING_CREDENTIALS_MESSAGE = "UNLOAD requires IAM_ROLE or credentials (the local shim accepts IAM_ROLE only)"


class UnloadError(Exception):
    """An UNLOAD the shim refuses or that failed; ``code`` is the SQLSTATE sent to the client."""

    def __init__(self, message: str, code: str = "XX000") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Unload:
    """A parsed UNLOAD statement."""

    query: str
    bucket: str
    prefix: str
    iam_role: str
    manifest: bool = False
    verbose: bool = False
    max_file_size: int = MAX_MAXFILESIZE
    allow_overwrite: bool = False
    clean_path: bool = False
    parallel: bool = True


def is_unload(sql: str) -> bool:
    """True if ``sql`` is an UNLOAD statement (leading blanks and ``--`` comments skipped)."""
    return re.match(r"(?:\s|--[^\n]*\n)*unload\b", sql, re.IGNORECASE) is not None


_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>\d+(?:\.\d+)?)|(?P<word>[A-Za-z_]+)|(?P<punct>[();]))",
)


def _tokens(sql: str) -> list[tuple[str, str]]:
    """(kind, text) tokens; string literals are unquoted (``''`` -> ``'``)."""
    out: list[tuple[str, str]] = []
    pos = 0
    sql = sql.rstrip()
    while pos < len(sql):
        match = _TOKEN.match(sql, pos)
        if match is None or match.end() == pos:
            raise UnloadError(f"syntax error at or near {sql[pos : pos + 20].strip()!r}", "42601")
        kind = match.lastgroup or ""
        text = match.group(kind)
        if kind == "string":
            text = text[1:-1].replace("''", "'")
        elif kind == "word":
            text = text.upper()
        out.append((kind, text))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, sql: str) -> None:
        self.tokens = _tokens(sql)
        if self.tokens and self.tokens[-1] == ("punct", ";"):
            self.tokens.pop()
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str, text: str | None = None) -> str:
        token = self.peek()
        if token is None or token[0] != kind or (text is not None and token[1] != text):
            near = "end of input" if token is None else repr(token[1])
            raise UnloadError(f"syntax error at or near {near}: expected {text or kind}", "42601")
        self.pos += 1
        return token[1]

    def accept(self, word: str) -> bool:
        if self.peek() == ("word", word):
            self.pos += 1
            return True
        return False


def parse_unload(sql: str) -> Unload:
    """Parse ``sql`` strictly; :class:`UnloadError` names what is wrong or not supported."""
    p = _Parser(sql)
    p.take("word", "UNLOAD")
    p.take("punct", "(")
    query = p.take("string")
    p.take("punct", ")")
    p.take("word", "TO")
    target = p.take("string")
    match = re.fullmatch(r"s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(.*)", target)
    if match is None:
        raise UnloadError(f"invalid S3 path {target!r}: expected s3://<bucket>/<prefix>", "22023")
    options: dict[str, Any] = {}
    while p.peek() is not None:
        word = p.take("word")
        if word in options:
            raise UnloadError(f"conflicting or redundant options: {word}", "42601")
        if word == "IAM_ROLE":
            options[word] = p.take("string")
        elif word == "FORMAT":
            p.accept("AS")
            fmt = p.take("word")
            if fmt != "PARQUET":
                raise UnloadError(f"the local shim's UNLOAD writes FORMAT PARQUET only, not {fmt}", "0A000")
            options[word] = fmt
        elif word == "MANIFEST":
            options[word] = True
            options["VERBOSE"] = p.accept("VERBOSE")
        elif word == "MAXFILESIZE":
            p.accept("AS")
            size = float(p.take("number"))
            unit = MB
            if p.accept("GB"):
                unit = 1024 * MB
            else:
                p.accept("MB")
            options[word] = int(size * unit)
        elif word in ("ALLOWOVERWRITE", "CLEANPATH"):
            options[word] = True
        elif word == "PARALLEL":
            options[word] = not (p.accept("OFF") or p.accept("FALSE"))
            if options[word]:
                p.accept("ON") or p.accept("TRUE")
        elif word in ("CREDENTIALS", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN"):
            raise UnloadError(f"the local shim's UNLOAD accepts IAM_ROLE only, not {word}", "0A000")
        else:
            raise UnloadError(f"UNLOAD option {word} is not supported by the local shim", "0A000")
    if "IAM_ROLE" not in options:
        raise UnloadError(MISSING_CREDENTIALS_MESSAGE, "42601")
    if "FORMAT" not in options:
        raise UnloadError("the local shim's UNLOAD needs FORMAT PARQUET (it does not write text)", "0A000")
    size = options.get("MAXFILESIZE", MAX_MAXFILESIZE)
    if not MIN_MAXFILESIZE <= size <= MAX_MAXFILESIZE:
        raise UnloadError("MAXFILESIZE must be between 5 MB and 6.2 GB", "22023")
    if options.get("ALLOWOVERWRITE") and options.get("CLEANPATH"):
        raise UnloadError("CLEANPATH and ALLOWOVERWRITE cannot be used together", "42601")
    return Unload(
        query=query,
        bucket=match.group(1),
        prefix=match.group(2),
        iam_role=options["IAM_ROLE"],
        manifest=options.get("MANIFEST", False),
        verbose=options.get("VERBOSE", False),
        max_file_size=size,
        allow_overwrite=options.get("ALLOWOVERWRITE", False),
        clean_path=options.get("CLEANPATH", False),
        parallel=options.get("PARALLEL", True),
    )


def file_key(unload: Unload, index: int) -> str:
    """Redshift's names: ``<prefix>0000_part_NN.parquet`` (one slice, PARALLEL ON) or
    ``<prefix>NNN.parquet`` (PARALLEL OFF)."""
    if unload.parallel:
        return f"{unload.prefix}0000_part_{index:02d}.parquet"
    return f"{unload.prefix}{index:03d}.parquet"


def manifest_type(type_display: str) -> dict[str, Any]:
    """A manifest ``type`` from PostgreSQL's type text: ``character varying(25)`` -> base + max_length."""
    match = re.fullmatch(r"([a-z ]+?)\s*\((\d+)(?:,\s*(\d+))?\)(.*)", type_display)
    if match is None:
        return {"base": type_display}
    base = (match.group(1) + match.group(4)).strip()
    if match.group(3) is not None:
        return {"base": base, "precision": int(match.group(2)), "scale": int(match.group(3))}
    if base in ("character varying", "character"):
        return {"base": base, "max_length": int(match.group(2))}
    return {"base": base, "precision": int(match.group(2))}


@dataclass
class WrittenFile:
    key: str
    size: int
    rows: int


def _split_parquet(batches: Iterator[Any], schema: Any, limit: int) -> Iterator[tuple[bytes, int]]:
    """Parquet files (bytes, rows) of at most about ``limit`` bytes: a file is closed before the
    batch whose in-memory size would take it past the limit (compressed Parquet is smaller)."""
    import pyarrow.parquet as pq

    buffer, writer, rows, estimate = io.BytesIO(), None, 0, 0
    for batch in batches:
        if writer is not None and rows and estimate + batch.nbytes > limit:
            writer.close()
            yield buffer.getvalue(), rows
            buffer, writer, rows, estimate = io.BytesIO(), None, 0, 0
        if writer is None:
            writer = pq.ParquetWriter(buffer, schema)
        writer.write_batch(batch)
        rows += batch.num_rows
        estimate = max(buffer.tell(), estimate) + batch.nbytes
    if writer is None:  # Redshift writes one file even for zero rows
        writer = pq.ParquetWriter(buffer, schema)
    writer.close()
    yield buffer.getvalue(), rows


def run_unload(unload: Unload, connect: Callable[[], Any], s3: Any) -> int:
    """Run the UNLOAD's query (``connect()`` gives a psycopg connection), write Parquet files and the
    manifest (last) to ``s3`` (a boto3 client); return the number of rows unloaded."""
    existing = _existing_keys(s3, unload)
    if existing and not unload.allow_overwrite and not unload.clean_path:
        raise UnloadError(NOT_EMPTY_MESSAGE)
    if unload.clean_path:
        for key in existing:
            s3.delete_object(Bucket=unload.bucket, Key=key)
    with connect() as conn, conn.cursor(name="rs2gcs_unload") as cur:
        try:
            cur.execute(unload.query)
            first = cur.fetchmany(ROWS_PER_BATCH)
        except Exception as exc:  # the query's own error, as PostgreSQL words it
            raise UnloadError(str(exc).strip(), getattr(exc, "sqlstate", None) or "XX000") from exc
        columns = _sql_types(conn, cur)
        batches, schema = _record_batches(cur, [name for name, _ in columns], first)
        written = []
        for index, (body, rows) in enumerate(_split_parquet(batches, schema, unload.max_file_size)):
            key = file_key(unload, index)
            s3.put_object(Bucket=unload.bucket, Key=key, Body=body)
            written.append(WrittenFile(key, len(body), rows))
    if unload.manifest:
        s3.put_object(
            Bucket=unload.bucket,
            Key=f"{unload.prefix}manifest",
            Body=json.dumps(manifest(unload, written, columns), indent=2).encode(),
        )
    return sum(f.rows for f in written)


def _record_batches(cur: Any, names: list[str], first: list[tuple]) -> tuple[Iterator[Any], Any]:
    """Arrow batches of the cursor's rows, and their schema: the types pyarrow infers from the first
    batch (as PostgreSQL's values convert to Python; a column NULL throughout it becomes string)."""
    import pyarrow as pa

    def records(rows: list[tuple]) -> list[dict[str, Any]]:
        return [dict(zip(names, row, strict=True)) for row in rows]

    sample = pa.Table.from_pylist(records(first)).schema if first else None
    schema = pa.schema(
        [
            pa.field(
                n,
                pa.string()
                if sample is None or pa.types.is_null(sample.field(n).type)
                else sample.field(n).type,
            )
            for n in names
        ]
    )

    def batches() -> Iterator[Any]:
        rows = first
        while rows:
            yield pa.RecordBatch.from_pylist(records(rows), schema=schema)
            rows = cur.fetchmany(ROWS_PER_BATCH)

    return batches(), schema


def _sql_types(conn: Any, cur: Any) -> list[tuple[str, str]]:
    """(name, SQL type as ``format_type`` spells it: ``character varying(40)``) of each result column."""
    result = cur.pgresult
    names = [col.name for col in cur.description or []]
    types = [
        conn.execute("select format_type(%s, %s)", (result.ftype(i), result.fmod(i))).fetchone()[0]
        for i in range(len(names))
    ]
    return list(zip(names, types, strict=True))


def _existing_keys(s3: Any, unload: Unload) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=unload.bucket, Prefix=unload.prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def manifest(unload: Unload, files: list[WrittenFile], columns: list[tuple[str, str]]) -> dict[str, Any]:
    """The manifest Redshift writes: ``entries`` (+ ``schema``, ``meta``, ``author`` when VERBOSE)."""
    entries: list[dict[str, Any]] = []
    for f in files:
        entry: dict[str, Any] = {"url": f"s3://{unload.bucket}/{f.key}"}
        if unload.verbose:
            entry["meta"] = {"content_length": f.size, "record_count": f.rows}
        entries.append(entry)
    doc: dict[str, Any] = {"entries": entries}
    if unload.verbose:
        doc["schema"] = {"elements": [{"name": n, "type": manifest_type(t)} for n, t in columns]}
        doc["meta"] = {
            "content_length": sum(f.size for f in files),
            "record_count": sum(f.rows for f in files),
        }
        doc["author"] = {"name": "Amazon Redshift", "version": "1.0.0"}
    return doc
