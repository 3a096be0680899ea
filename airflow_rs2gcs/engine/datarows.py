"""Split a batch of DataRow message bodies into per-column field positions, vectorised with numpy.

A DataRow body is ``Int16 column count`` then, per column, ``Int32 length`` (-1 for NULL) and that
many bytes. The bodies of a batch are joined into one buffer; walking the columns left to right gives,
for every row at once, where each field's bytes start, how long they are and whether it is NULL.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

# Zero bytes after the joined rows, so that fixed-width gathers at a NULL field's position (which is
# where the next field begins) never read past the end. The widest gather is a DECIMAL's text: a sign,
# a leading zero, 38 digits and a point (:data:`airflow_rs2gcs.engine.decimals.MAX_DECIMAL_TEXT`).
PADDING = 48
_PAD = bytes(PADDING)
# Positions are int32 (half the memory of int64): a batch must stay below MAX_BATCH_BYTES.
MAX_BATCH_BYTES = 2**31 - 1 - PADDING
_OFFSETS = {width: np.arange(width, dtype=np.int32) for width in range(1, PADDING + 1)}


def arrow_buffer(values: np.ndarray) -> pa.Buffer:
    """An Arrow buffer over the memory of ``values`` (no copy)."""
    # pyarrow-stubs want an object with __buffer__, which numpy's stubs declare for Python 3.12+ only.
    return pa.py_buffer(values)  # type: ignore[arg-type]


class DataRowError(ValueError):
    """A batch of DataRow messages that does not match the row description."""


@dataclass(frozen=True)
class FieldRefs:
    """One column's fields in a :class:`RowBatch`: start offsets, lengths (0 for NULL) and NULL flags."""

    start: np.ndarray
    length: np.ndarray
    null: np.ndarray

    @property
    def null_count(self) -> int:
        """How many fields are NULL."""
        return int(np.count_nonzero(self.null))

    def validity(self) -> tuple[pa.Buffer | None, int]:
        """Arrow's validity bitmap of the fields (``None`` when none is NULL) and the NULL count."""
        return validity_bitmap(self.null)


def validity_bitmap(null: np.ndarray) -> tuple[pa.Buffer | None, int]:
    """Arrow's validity bitmap for these NULL flags (``None`` when none is NULL) and the NULL count."""
    nulls = int(np.count_nonzero(null))
    if not nulls:
        return None, 0
    return arrow_buffer(np.packbits(~null, bitorder="little")), nulls


@dataclass(frozen=True)
class RowBatch:
    """Undecoded rows: the joined message bodies (zero-padded) and each column's :class:`FieldRefs`.

    :param data: the joined bodies as ``uint8``, followed by :data:`PADDING` zero bytes.
    :param fields: per column, where its values are.
    """

    data: np.ndarray
    fields: list[FieldRefs]

    @property
    def num_rows(self) -> int:
        """Rows in the batch."""
        return len(self.fields[0].start) if self.fields else 0

    @property
    def nbytes(self) -> int:
        """Bytes of message bodies (the wire size of the batch, without message headers)."""
        return len(self.data) - PADDING


def gather(data: np.ndarray, start: np.ndarray, width: int) -> np.ndarray:
    """``width`` consecutive bytes at each ``start``: a ``(len(start), width)`` ``uint8`` array."""
    return data[start[:, None] + _OFFSETS[width]]


def field_text(batch: RowBatch, refs: FieldRefs, index: int) -> str:
    """One field as text (bytes that are not UTF-8 replaced): for error messages and rare slow paths."""
    start = int(refs.start[index])
    return bytes(batch.data[start : start + int(refs.length[index])]).decode("utf-8", "replace")


def _int32_be(data: np.ndarray, start: np.ndarray) -> np.ndarray:
    return gather(data, start, 4).view(">i4").ravel().astype(np.int32)


def split_rows(bodies: Sequence[bytes], num_columns: int) -> RowBatch:
    """Locate every field of ``bodies``; raise :class:`DataRowError` if a row does not fit."""
    count = len(bodies)
    sizes = np.fromiter(map(len, bodies), dtype=np.int64, count=count)
    if sizes.sum() > MAX_BATCH_BYTES:
        raise DataRowError(
            f"a batch of {int(sizes.sum())} bytes; at most {MAX_BATCH_BYTES} can be decoded at once"
        )
    sizes = sizes.astype(np.int32)
    row_start = np.zeros(count, dtype=np.int32)
    np.cumsum(sizes[:-1], out=row_start[1:])
    joined = b"".join(itertools.chain(bodies, (_PAD,)))
    data = np.frombuffer(joined, dtype=np.uint8)
    header = gather(data, row_start, 2).view(">i2").ravel()
    if count and np.any(header != num_columns):
        raise DataRowError(
            f"a DataRow has {int(header[header != num_columns][0])} columns, expected {num_columns}"
        )
    position = row_start + 2
    fields = []
    for _ in range(num_columns):
        length = _int32_be(data, position)
        null = length < 0
        length[null] = 0
        start = position + 4
        position = start + length
        fields.append(FieldRefs(start, length, null))
    if np.any(position != row_start + sizes):
        raise DataRowError("DataRow field lengths do not add up to the message length")
    return RowBatch(data, fields)


def text_fields(values: Sequence[str | None]) -> tuple[RowBatch, FieldRefs]:
    """One column of texts (``None`` for NULL) laid out as a :class:`RowBatch`, for the text decoders."""
    encoded = [b"" if value is None else value.encode("utf-8") for value in values]
    count = len(encoded)
    length = np.fromiter(map(len, encoded), dtype=np.int64, count=count)
    if length.sum() > MAX_BATCH_BYTES:
        raise DataRowError(f"a column of {int(length.sum())} bytes; at most {MAX_BATCH_BYTES} at once")
    length = length.astype(np.int32)
    start = np.zeros(count, dtype=np.int32)
    np.cumsum(length[:-1], out=start[1:])
    null = np.fromiter((value is None for value in values), dtype=bool, count=count)
    data = np.frombuffer(b"".join(itertools.chain(encoded, (_PAD,))), dtype=np.uint8)
    refs = FieldRefs(start, length, null)
    return RowBatch(data, [refs]), refs
