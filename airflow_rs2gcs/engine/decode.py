"""Decode a :class:`~airflow_rs2gcs.engine.datarows.RowBatch` into an Arrow record batch, column by column.

Each wire type has one vectorised decoder (numpy over the whole column, then Arrow); no Python code
runs per value except for the rare DATE texts Arrow cannot parse (BC dates, years after 9999).
Binary fields are PostgreSQL's binary encoding (big-endian integers and IEEE floats, ``int64``
microseconds since 2000-01-01 for timestamps); text fields are the server's text output with
``DateStyle`` ISO. Anything that cannot be represented exactly raises :class:`DecodeError` naming
the column and the value, never a silently changed value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_rs2gcs.engine.datarows import FieldRefs, RowBatch, gather
from airflow_rs2gcs.engine.types import Column, Oid, WireFormat

POSTGRES_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970-01-01
INT64_MIN = np.iinfo(np.int64).min
INT64_MAX = np.iinfo(np.int64).max
MAX_VIEW_BUFFER = 2**31 - 1
MICROS_PER_DAY = 86_400_000_000
_TWELVE = np.arange(12, dtype=np.int64)
_SIX = np.arange(6, dtype=np.int64)
_POW10 = 10 ** (5 - _SIX)
_DATE_TEXT = re.compile(r"^(\d{4,})-(\d{2})-(\d{2})( BC)?$")
_HEX_VALUES = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX_VALUES[_c] = _i
for _i, _c in enumerate(b"ABCDEF", start=10):
    _HEX_VALUES[_c] = _i

Decoder = Callable[[RowBatch, FieldRefs, Column], pa.Array]


class DecodeError(ValueError):
    """A value that cannot be written exactly as its column's Arrow type."""


def _validity(refs: FieldRefs) -> tuple[pa.Buffer | None, int]:
    nulls = refs.null_count
    if not nulls:
        return None, 0
    return pa.py_buffer(np.packbits(~refs.null, bitorder="little")), nulls


def _from_values(arrow_type: pa.DataType, values: np.ndarray, refs: FieldRefs) -> pa.Array:
    validity, nulls = _validity(refs)
    return pa.Array.from_buffers(arrow_type, len(values), [validity, pa.py_buffer(values)], nulls)


def _binary_values(batch: RowBatch, refs: FieldRefs, big_endian: str) -> np.ndarray:
    dtype = np.dtype(big_endian)
    wrong = (refs.length != dtype.itemsize) & ~refs.null
    if np.any(wrong):
        size = int(refs.length[wrong][0])
        raise DecodeError(f"a binary field of {size} bytes where {dtype.itemsize} were expected")
    values = (
        gather(batch.data, refs.start, dtype.itemsize).view(dtype).ravel().astype(dtype.newbyteorder("="))
    )
    values[refs.null] = 0
    return values


def _fixed(big_endian: str) -> Decoder:
    def decode(batch: RowBatch, refs: FieldRefs, column: Column) -> pa.Array:
        return _from_values(column.arrow_type, _binary_values(batch, refs, big_endian), refs)

    return decode


def _bool(batch: RowBatch, refs: FieldRefs, column: Column) -> pa.Array:
    values = _binary_values(batch, refs, "u1") != 0
    validity, nulls = _validity(refs)
    bits = pa.py_buffer(np.packbits(values, bitorder="little"))
    return pa.Array.from_buffers(pa.bool_(), len(values), [validity, bits], nulls)


def _timestamp(batch: RowBatch, refs: FieldRefs, column: Column) -> pa.Array:
    values = _binary_values(batch, refs, ">i8")
    unrepresentable = (values == INT64_MIN) | (values > INT64_MAX - POSTGRES_EPOCH_US)
    if np.any(unrepresentable):
        raise DecodeError(
            "a timestamp of 'infinity' or after the year 294246 cannot be held by timestamp[us]; "
            "cast or filter it in a custom query"
        )
    values += POSTGRES_EPOCH_US
    values[refs.null] = 0
    return _from_values(column.arrow_type, values, refs)


def _views(batch: RowBatch, refs: FieldRefs, view_type: pa.DataType) -> pa.Array:
    """A string/binary view array whose views point into the batch buffer (no copy of the values)."""
    if len(batch.data) > MAX_VIEW_BUFFER:
        raise DecodeError("a batch of 2 GiB or more; lower fetch_size")
    count = len(refs.start)
    views = np.zeros((count, 16), dtype=np.uint8)
    views[:, :4] = refs.length.astype("<i4").view(np.uint8).reshape(count, 4)
    head = gather(batch.data, refs.start, 12)
    head[refs.length[:, None] <= _TWELVE] = 0  # short values are inlined, zero-padded
    views[:, 4:] = head
    long = refs.length > 12
    if np.any(long):  # long values: 4-byte prefix (already there), buffer 0, offset
        views[long, 8:12] = 0
        views[long, 12:] = refs.start[long].astype("<i4").view(np.uint8).reshape(-1, 4)
    validity, nulls = _validity(refs)
    return pa.Array.from_buffers(view_type, count, [validity, pa.py_buffer(views), batch.buffer], nulls)


def text_array(batch: RowBatch, refs: FieldRefs) -> pa.StringArray:
    """The fields as an Arrow string array (copied out of the batch), checked to be valid UTF-8."""
    strings = _views(batch, refs, pa.string_view()).cast(pa.string())
    try:
        strings.validate(full=True)
    except pa.ArrowInvalid as exc:
        raise DecodeError(f"text that is not valid UTF-8 ({exc})") from exc
    return strings


def _string(batch: RowBatch, refs: FieldRefs, column: Column) -> pa.Array:
    return text_array(batch, refs)


def _decimal(batch: RowBatch, refs: FieldRefs, column: Column) -> pa.Array:
    try:
        return pc.cast(text_array(batch, refs), column.arrow_type)
    except pa.ArrowInvalid as exc:
        raise DecodeError(f"not representable as {column.arrow_type}: {exc}") from exc


def civil_days(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (astronomical years: 0 is 1 BC)."""
    shifted = year - (month <= 2)
    era = shifted // 400
    year_of_era = shifted - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def date_text_days(text: str) -> int:
    """Days since 1970-01-01 of an ISO DATE text, ``YYYY-MM-DD`` with optional ``BC`` and longer years."""
    match = _DATE_TEXT.match(text)
    if match is None:
        raise DecodeError(f"the date {text!r} cannot be held by date32; cast or filter it in a custom query")
    year = int(match[1])
    return civil_days(1 - year if match[4] else year, int(match[2]), int(match[3]))


def _date(batch: RowBatch, refs: FieldRefs, column: Column) -> pa.Array:
    strings = text_array(batch, refs)
    unusual = (refs.length != 10) & ~refs.null  # BC, years after 9999, infinity
    if not np.any(unusual):
        return pc.cast(strings, pa.date32())
    mask = pa.array(unusual)
    days = pc.cast(pc.if_else(mask, None, strings), pa.date32()).cast(pa.int32())
    values = days.fill_null(0).to_numpy(zero_copy_only=False).copy()
    for index in np.flatnonzero(unusual):
        values[index] = date_text_days(strings[int(index)].as_py())
    return _from_values(pa.date32(), values, refs)


def _digits(data: np.ndarray, at: np.ndarray) -> np.ndarray:
    return data[at].astype(np.int64) - 48


def _time(batch: RowBatch, refs: FieldRefs, column: Column) -> pa.Array:
    """``HH:MM:SS[.f{1,6}]`` -> microseconds since midnight."""
    data, start, length, valid = batch.data, refs.start, refs.length, ~refs.null
    fraction_digits = np.clip(length - 9, 0, 6)
    shape_ok = (length == 8) | ((length >= 10) & (length <= 15))
    separators_ok = (data[start + 2] == ord(":")) & (data[start + 5] == ord(":"))
    separators_ok &= (length == 8) | (data[start + 8] == ord("."))
    clock = [_digits(data, start + k) for k in (0, 1, 3, 4, 6, 7)]
    fraction = gather(data, start + 9, 6).astype(np.int64) - 48
    fraction[fraction_digits[:, None] <= _SIX] = 0
    digits_ok = np.all(np.stack(clock) <= 9, axis=0) & np.all(np.stack(clock) >= 0, axis=0)
    digits_ok &= np.all((fraction >= 0) & (fraction <= 9), axis=1)
    bad = valid & ~(shape_ok & separators_ok & digits_ok)
    if np.any(bad):
        raise DecodeError(
            f"the time {text_array(batch, refs)[int(np.flatnonzero(bad)[0])]!s} is not HH:MM:SS[.ffffff]"
        )
    hours, minutes, seconds = clock[0] * 10 + clock[1], clock[2] * 10 + clock[3], clock[4] * 10 + clock[5]
    micros = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + fraction @ _POW10
    micros[refs.null] = 0
    if np.any(micros >= MICROS_PER_DAY):
        raise DecodeError("the time 24:00:00 cannot be held by time64[us]; cast it in a custom query")
    return _from_values(pa.time64("us"), micros, refs)


def _hex_binary(batch: RowBatch, refs: FieldRefs, column: Column) -> pa.Array:
    """Hex text (``\\x`` prefixed as PostgreSQL's BYTEA, plain as Redshift's VARBYTE) -> bytes."""
    data, start, length = batch.data, refs.start, refs.length
    prefixed = (length >= 2) & (data[start] == ord("\\")) & (data[start + 1] == ord("x"))
    skip = np.where(prefixed, 2, 0)
    hex_length = length - skip
    if np.any(hex_length % 2):
        raise DecodeError("hex text of odd length")
    text_buffer = _views(batch, refs, pa.binary_view()).cast(pa.binary()).buffers()[2]
    hex_text = np.frombuffer(text_buffer or b"", dtype=np.uint8)[: int(length.sum())]
    keep = np.ones(len(hex_text), dtype=bool)
    text_start = np.zeros(len(length), dtype=np.int64)
    np.cumsum(length[:-1], out=text_start[1:])
    keep[text_start[prefixed]] = False
    keep[text_start[prefixed] + 1] = False
    nibbles = _HEX_VALUES[hex_text[keep]]
    if np.any(nibbles == 255):
        raise DecodeError("a character that is not a hex digit")
    values = (nibbles[0::2] << 4) | nibbles[1::2]
    offsets = np.zeros(len(length) + 1, dtype=np.int32)
    np.cumsum(hex_length // 2, out=offsets[1:])
    validity, nulls = _validity(refs)
    buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(values)]
    return pa.Array.from_buffers(pa.binary(), len(length), buffers, nulls)


_BINARY_DECODERS: dict[int, Decoder] = {
    Oid.BOOL: _bool,
    Oid.INT2: _fixed(">i2"),
    Oid.INT4: _fixed(">i4"),
    Oid.INT8: _fixed(">i8"),
    Oid.FLOAT4: _fixed(">f4"),
    Oid.FLOAT8: _fixed(">f8"),
    Oid.TIMESTAMP: _timestamp,
    Oid.TIMESTAMPTZ: _timestamp,
}
_TEXT_DECODERS: dict[int, Decoder] = {
    Oid.DATE: _date,
    Oid.TIME: _time,
    Oid.BYTEA: _hex_binary,
    Oid.VARBYTE: _hex_binary,
}


def decoder_for(column: Column) -> Decoder:
    """The decoder of a column, from its wire format and Arrow type."""
    if column.wire_format == WireFormat.BINARY:
        return _BINARY_DECODERS[column.type_oid]
    if pa.types.is_decimal(column.arrow_type):
        return _decimal
    return _TEXT_DECODERS.get(column.type_oid, _string)


def decode_batch(batch: RowBatch, columns: Sequence[Column], schema: pa.Schema) -> pa.RecordBatch:
    """The Arrow record batch of ``batch``; :class:`DecodeError` names the column of a bad value."""
    arrays = []
    for column, refs in zip(columns, batch.fields, strict=True):
        try:
            arrays.append(decoder_for(column)(batch, refs, column))
        except (DecodeError, pa.ArrowInvalid) as exc:
            raise DecodeError(f"column {column.name!r} ({column.type_name}): {exc}") from exc
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
