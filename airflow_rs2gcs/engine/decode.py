"""Decode a :class:`~airflow_rs2gcs.engine.datarows.RowBatch` into an Arrow record batch, column by column.

Each wire type has one vectorised decoder (numpy over the whole column, then Arrow); no Python code
runs per value except for the rare DATE texts outside ``0001-01-01 .. 9999-12-31`` (BC dates, longer
years). No decoder needs Arrow's compute kernels: loading them would cost every export ~12 MB of RSS,
and a Parquet export uses no other kernel.
Binary fields are PostgreSQL's binary encoding (big-endian integers and IEEE floats, ``int64``
microseconds since 2000-01-01 for timestamps); text fields are the server's text output with
``DateStyle`` ISO. Anything that cannot be represented exactly raises :class:`DecodeError` naming
the column and the value, never a silently changed value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from airflow_rs2gcs.engine.datarows import FieldRefs, RowBatch, arrow_buffer, field_text, gather
from airflow_rs2gcs.engine.decimals import DecimalTextError, decimal_array
from airflow_rs2gcs.engine.types import Column, Oid, WireFormat

POSTGRES_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970-01-01
INT64_MIN = np.iinfo(np.int64).min
INT64_MAX = np.iinfo(np.int64).max
MICROS_PER_DAY = 86_400_000_000
_SIX = np.arange(6, dtype=np.int64)
_POW10 = 10 ** (5 - _SIX)
_DATE_TEXT = re.compile(r"^(\d{4,})-(\d{2})-(\d{2})( BC)?$")
_TIMESTAMP_TEXT = re.compile(
    r"^(?P<date>\d{4,}-\d{2}-\d{2}) (?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})(?:\.(?P<f>\d{1,6}))?"
    r"(?P<zone>\+00)?(?P<bc> BC)?$"
)
_DATE_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9])
_DATE_DIGIT_WEIGHTS = np.array([1000, 100, 10, 1, 10, 1, 10, 1])
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_HEX_VALUES = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX_VALUES[_c] = _i
for _i, _c in enumerate(b"ABCDEF", start=10):
    _HEX_VALUES[_c] = _i

Decoder = Callable[[RowBatch, FieldRefs, Column], pa.Array]


class DecodeError(ValueError):
    """A value that cannot be written exactly as its column's Arrow type."""


def _from_values(arrow_type: pa.DataType, values: np.ndarray, refs: FieldRefs) -> pa.Array:
    validity, nulls = refs.validity()
    return pa.Array.from_buffers(arrow_type, len(values), [validity, arrow_buffer(values)], nulls)


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
    validity, nulls = refs.validity()
    bits = arrow_buffer(np.packbits(values, bitorder="little"))
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


def _offsets(lengths: np.ndarray) -> np.ndarray:
    """Arrow's int32 offsets of values of these lengths (they fit: a batch is < 2 GiB, see datarows)."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _field_bytes(batch: RowBatch, refs: FieldRefs) -> tuple[np.ndarray, np.ndarray]:
    """The fields' bytes copied out of the batch, one after the other, and their offsets."""
    offsets = _offsets(refs.length)
    # the k-th byte of the result is at its field's start plus its distance from the field's offset
    at = np.repeat(refs.start - offsets[:-1], refs.length)
    at += np.arange(len(at), dtype=np.int32)
    return batch.data[at], offsets


def _variable_width(
    arrow_type: pa.DataType, offsets: np.ndarray, values: np.ndarray, refs: FieldRefs
) -> pa.Array:
    validity, nulls = refs.validity()
    buffers = [validity, arrow_buffer(offsets), arrow_buffer(values)]
    return pa.Array.from_buffers(arrow_type, len(refs.length), buffers, nulls)


def text_array(batch: RowBatch, refs: FieldRefs) -> pa.Array:
    """The fields as an Arrow string array (copied out of the batch), checked to be valid UTF-8."""
    values, offsets = _field_bytes(batch, refs)
    strings = _variable_width(pa.string(), offsets, values, refs)
    try:
        strings.validate(full=True)
    except pa.ArrowInvalid as exc:
        raise DecodeError(f"text that is not valid UTF-8 ({exc})") from exc
    return strings


def _string(batch: RowBatch, refs: FieldRefs, column: Column) -> pa.Array:
    return text_array(batch, refs)


def _decimal(batch: RowBatch, refs: FieldRefs, column: Column) -> pa.Array:
    arrow_type = column.arrow_type
    if not isinstance(arrow_type, pa.Decimal128Type):  # decimal_array writes 16-byte values only
        raise DecodeError(f"{arrow_type} is not decimal128")
    try:
        return decimal_array(batch, refs, arrow_type)
    except DecimalTextError as exc:
        raise DecodeError(f"not representable as {column.arrow_type}: {exc}") from exc


def civil_days(year: Any, month: Any, day: Any) -> Any:
    """Days from 1970-01-01 to a proleptic Gregorian date (astronomical years: 0 is 1 BC).

    Works on ints and, element-wise, on numpy integer arrays.
    """
    shifted = year - (month <= 2)
    era = shifted // 400
    year_of_era = shifted - era * 400
    day_of_year = (153 * (month + 9 - 12 * (month > 2)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def days_in_month(year: Any, month: Any) -> Any:
    """Days in ``month`` (1-12) of ``year`` (astronomical); ints or numpy arrays."""
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return _MONTH_DAYS[month] + (leap & (month == 2))


def date_text_days(text: str) -> int:
    """Days since 1970-01-01 of an ISO DATE text, ``YYYY-MM-DD`` with optional ``BC`` and longer years."""
    match = _DATE_TEXT.match(text)
    if match is None:
        raise DecodeError(f"the date {text!r} cannot be held by date32; cast or filter it in a custom query")
    year, month, day = int(match[1]), int(match[2]), int(match[3])
    year = 1 - year if match[4] else year
    if not 1 <= month <= 12 or not 1 <= day <= days_in_month(year, month):
        raise DecodeError(f"the date {text!r} does not exist")
    return int(civil_days(year, month, day))


def _date_values(batch: RowBatch, refs: FieldRefs) -> np.ndarray:
    """Days since 1970-01-01: ``YYYY-MM-DD`` vectorised; the rest (BC, longer years, infinity) one by one."""
    data, start = batch.data, refs.start
    digits = gather(data, start, 10)[:, _DATE_DIGITS].astype(np.int32) - ord("0")
    shape_ok = (refs.length == 10) & (data[start + 4] == ord("-")) & (data[start + 7] == ord("-"))
    shape_ok &= np.all((digits >= 0) & (digits <= 9), axis=1)
    weighted = digits * _DATE_DIGIT_WEIGHTS
    year, month, day = weighted[:, :4].sum(axis=1), weighted[:, 4:6].sum(axis=1), weighted[:, 6:].sum(axis=1)
    month_ok = (month >= 1) & (month <= 12)
    plain = shape_ok & month_ok & (day >= 1) & (day <= days_in_month(year, np.where(month_ok, month, 1)))
    values = np.where(plain, civil_days(year, month, day), 0).astype(np.int32)
    for index in np.flatnonzero(~plain & ~refs.null):
        values[index] = date_text_days(field_text(batch, refs, int(index)))
    return values


def _date(batch: RowBatch, refs: FieldRefs, column: Column) -> pa.Array:
    return _from_values(pa.date32(), _date_values(batch, refs), refs)


def _digits(data: np.ndarray, at: np.ndarray) -> np.ndarray:
    return data[at].astype(np.int64) - 48


def _time_values(batch: RowBatch, refs: FieldRefs) -> np.ndarray:
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
            f"the time {field_text(batch, refs, int(np.flatnonzero(bad)[0]))} is not HH:MM:SS[.ffffff]"
        )
    hours, minutes, seconds = clock[0] * 10 + clock[1], clock[2] * 10 + clock[3], clock[4] * 10 + clock[5]
    micros = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + fraction @ _POW10
    micros[refs.null] = 0
    if np.any(micros >= MICROS_PER_DAY):
        raise DecodeError("the time 24:00:00 cannot be held by time64[us]; cast it in a custom query")
    return micros


def _time(batch: RowBatch, refs: FieldRefs, column: Column) -> pa.Array:
    return _from_values(pa.time64("us"), _time_values(batch, refs), refs)


def timestamp_text_micros(text: str, zoned: bool) -> int:
    """Microseconds since 1970-01-01 of a TIMESTAMP(TZ) text in ``DateStyle`` ISO, time zone UTC.

    Takes the forms the vectorised decoder leaves over: BC, years past 9999, and refuses
    ``infinity`` and anything a ``timestamp[us]`` cannot hold, as the binary decoder does.
    """
    match = _TIMESTAMP_TEXT.match(text)
    if match is None or bool(match["zone"]) != zoned:
        raise DecodeError(
            f"the timestamp {text!r} cannot be held by timestamp[us]; cast or filter it in a custom query"
        )
    days = date_text_days(f"{match['date']}{match['bc'] or ''}")
    hours, minutes, seconds = int(match["h"]), int(match["m"]), int(match["s"])
    if hours > 23 or minutes > 59 or seconds > 59:
        raise DecodeError(f"the timestamp {text!r} does not exist")
    fraction = int((match["f"] or "").ljust(6, "0"))
    micros = days * MICROS_PER_DAY + ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + fraction
    if not INT64_MIN < micros <= INT64_MAX:
        raise DecodeError(f"the timestamp {text!r} cannot be held by timestamp[us]")
    return micros


def _timestamp_text(batch: RowBatch, refs: FieldRefs, column: Column) -> pa.Array:
    """``YYYY-MM-DD HH:MM:SS[.ffffff]`` (``+00`` after it for TIMESTAMPTZ) vectorised; the rest one by one.

    The binary wire form is the fast path's; this text form is what a plain driver read gets from a
    cast to VARCHAR, and decodes to the same microseconds.
    """
    zoned = getattr(column.arrow_type, "tz", None) is not None
    zone = 3 if zoned else 0
    data, start, length = batch.data, refs.start, refs.length
    end = start + length
    plain = ~refs.null & (length >= 19 + zone) & (length <= 26 + zone) & (data[start + 10] == ord(" "))
    if zoned:
        plain &= (data[end - 3] == ord("+")) & (data[end - 2] == ord("0")) & (data[end - 1] == ord("0"))
    else:
        plain &= (data[end - 1] >= ord("0")) & (data[end - 1] <= ord("9"))  # not `` BC``
    zero = np.zeros_like(length)
    days = _date_values(batch, FieldRefs(start, np.where(plain, 10, zero), ~plain))
    clock = _time_values(batch, FieldRefs(start + 11, np.where(plain, length - 11 - zone, zero), ~plain))
    micros = np.where(plain, days.astype(np.int64) * MICROS_PER_DAY + clock, 0)
    for index in np.flatnonzero(~plain & ~refs.null):
        micros[index] = timestamp_text_micros(field_text(batch, refs, int(index)), zoned)
    return _from_values(column.arrow_type, micros, refs)


def _hex_binary(batch: RowBatch, refs: FieldRefs, column: Column) -> pa.Array:
    """Hex text (``\\x`` prefixed as PostgreSQL's BYTEA, plain as Redshift's VARBYTE) -> bytes."""
    data, start, length = batch.data, refs.start, refs.length
    prefixed = (length >= 2) & (data[start] == ord("\\")) & (data[start + 1] == ord("x"))
    skip = np.where(prefixed, 2, 0)
    hex_length = length - skip
    if np.any(hex_length % 2):
        raise DecodeError("hex text of odd length")
    hex_text, text_offsets = _field_bytes(batch, refs)
    keep = np.ones(len(hex_text), dtype=bool)
    text_start = text_offsets[:-1]
    keep[text_start[prefixed]] = False
    keep[text_start[prefixed] + 1] = False
    nibbles = _HEX_VALUES[hex_text[keep]]
    if np.any(nibbles == 255):
        raise DecodeError("a character that is not a hex digit")
    values = (nibbles[0::2] << 4) | nibbles[1::2]
    return _variable_width(pa.binary(), _offsets(hex_length // 2), values, refs)


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
    # Timestamps come binary on the fast path; these read their text (the plain driver path's).
    Oid.TIMESTAMP: _timestamp_text,
    Oid.TIMESTAMPTZ: _timestamp_text,
}


def decoder_for(column: Column) -> Decoder:
    """The decoder of a column, from its wire format and Arrow type."""
    if column.wire_format == WireFormat.BINARY:
        return _BINARY_DECODERS[column.type_oid]
    return text_decoder_for(column)


def text_decoder_for(column: Column) -> Decoder:
    """The decoder of a column's values received as the server's text, whatever its wire format."""
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
