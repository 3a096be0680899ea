"""Hashed columns: each value replaced by the lowercase hex HMAC-SHA256 of its text form.

The HMAC input is the value's text form as CSV writes it (``docs/type-mapping.md``; before CSV quoting),
encoded as UTF-8, so anyone holding the key can hash a known value and find its rows. NULL stays NULL.
The text forms use Arrow's compute kernels, so this module is imported only when a column is hashed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

import pyarrow as pa

from airflow_rs2gcs.engine.textforms import text_values


def hmac_hex(key: bytes, text: str) -> str:
    """The lowercase hex HMAC-SHA256 of ``text`` (UTF-8) keyed by ``key``."""
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def hashed_array(array: pa.Array, key: bytes) -> pa.Array:
    """Every value of ``array`` as the HMAC of its text form; NULLs stay NULL."""
    texts = text_values(array).to_pylist()
    return pa.array([None if t is None else hmac_hex(key, t) for t in texts], pa.string())


class BatchHasher:
    """Rewrites the hashed columns of each record batch; the output schema has them as strings.

    :param schema: the schema of the batches read.
    :param hash_columns: the names of the columns to hash.
    :param key: the HMAC key.
    """

    def __init__(self, schema: pa.Schema, hash_columns: Sequence[str], key: str) -> None:
        self.key = key.encode("utf-8")
        self.indexes = [schema.get_field_index(name) for name in hash_columns]
        fields = list(schema)
        for i in self.indexes:
            metadata = {**(fields[i].metadata or {}), b"rs2gcs.hashed": b"hmac-sha256"}
            fields[i] = pa.field(fields[i].name, pa.string(), nullable=True, metadata=metadata)
        self.schema = pa.schema(fields).with_metadata(schema.metadata or {})

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = list(batch.columns)
        for i in self.indexes:
            arrays[i] = hashed_array(arrays[i], self.key)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)
