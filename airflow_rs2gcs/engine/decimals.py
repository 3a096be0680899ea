"""Exact DECIMAL(p,s) text -> Arrow ``decimal128(p, s)``, vectorised with numpy.

The server prints a NUMERIC(p,s) as ``-?digits[.digits]``. Each value becomes its unscaled integer
(``12.30`` in DECIMAL(5,2) is 1230) as two's-complement 128 bits, the layout of ``decimal128``:
the digits of weight ``10**0 .. 10**18`` and ``10**19 .. 10**37`` are summed in two ``uint64``
limbs (each below ``10**19 < 2**64``), which are then combined with 32-bit partial products.

Arrow's own text -> decimal cast would do the same, but it lives in Arrow's compute kernels, and
loading those costs every export process ~12 MB of RSS; a Parquet export needs no other kernel (see
``bench/sync_bench.py``). A value with more fraction digits than ``s`` or more than ``p`` significant
digits is refused, never rounded.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from airflow_rs2gcs.engine.datarows import FieldRefs, RowBatch, arrow_buffer, field_text, gather

MAX_DECIMAL_TEXT = 41  # a sign, a leading zero (``-0.5`` in DECIMAL(1,1)), 38 digits and a point
LIMB_DIGITS = 19
_POW10 = np.array([10**k for k in range(LIMB_DIGITS)], dtype=np.uint64)
_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_LIMB = 10**LIMB_DIGITS
_LIMB_LOW32, _LIMB_HIGH32 = np.uint64(_LIMB & 0xFFFFFFFF), np.uint64(_LIMB >> 32)


class DecimalTextError(ValueError):
    """A DECIMAL text that does not hold a value of the column's type exactly."""


def _refuse(batch: RowBatch, refs: FieldRefs, bad: np.ndarray, reason: str) -> None:
    if np.any(bad):
        raise DecimalTextError(f"{field_text(batch, refs, int(np.flatnonzero(bad)[0]))!r} {reason}")


def _point_positions(batch: RowBatch, refs: FieldRefs) -> np.ndarray:
    """Where each field's decimal point is (its length if it has none)."""
    length = refs.length
    _refuse(
        batch, refs, ~refs.null & ((length == 0) | (length > MAX_DECIMAL_TEXT)), "is not a decimal number"
    )
    width = int(length.max(initial=1))
    point = (gather(batch.data, refs.start, width) == ord(".")) & (np.arange(width) < length[:, None])
    points = point.sum(axis=1)
    _refuse(batch, refs, points > 1, "is not a decimal number")
    return np.where(points == 1, point.argmax(axis=1), length).astype(np.int32)


def _aligned_digits(
    batch: RowBatch, refs: FieldRefs, precision: int, scale: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each field's digits in a grid whose column ``c`` holds the digit of weight ``10**weights[c]``.

    The grid has as many columns before the point as the batch's longest integer part (with its
    sign), the point, and ``scale`` fraction columns. Each field is placed so that its point (or its
    end) falls on the point's column, so missing fraction digits read as 0. Returns the digits, the
    column weights (-1 for the point) and which fields are negative.
    """
    length, valid = refs.length, ~refs.null
    point_at = _point_positions(batch, refs)  # 0 for NULLs (their length is 0)
    # at most a sign, a leading zero and ``precision - scale`` digits before the point
    _refuse(batch, refs, point_at > precision - scale + 2, f"has more than {precision} digits")
    _refuse(batch, refs, length - point_at - 1 > scale, f"has more than {scale} digits after the point")
    whole = int(point_at.max(initial=0))
    chars = gather(batch.data, refs.start + point_at - whole, whole + 1 + scale)
    column = np.arange(whole + 1 + scale, dtype=np.int32)
    first = (whole - point_at)[:, None]
    inside = (column >= first) & (column < first + length[:, None])
    values = chars - np.uint8(ord("0"))
    digit = inside & (values < 10)
    sign = (column == first) & (chars == ord("-"))
    malformed = np.any(inside & ~(digit | sign) & (column != whole), axis=1) | (valid & ~digit.any(axis=1))
    _refuse(batch, refs, malformed, "is not a decimal number")
    values[~digit] = 0
    weights = np.where(column < whole, scale + whole - 1 - column, scale + whole - column)
    weights[whole] = -1
    _refuse(
        batch, refs, np.any(values[:, weights >= precision] > 0, axis=1), f"has more than {precision} digits"
    )
    return values, weights, np.any(sign, axis=1)


def _limb(values: np.ndarray, weights: np.ndarray, first: int) -> np.ndarray:
    """The sum of ``digit * 10**(weight - first)`` over the columns of weight ``first .. first+18``."""
    mine = (weights >= first) & (weights < first + LIMB_DIGITS)
    return values[:, mine].astype(np.uint64) @ _POW10[weights[mine] - first]


def _times_limb_plus(high: np.ndarray, low: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``high * 10**19 + low`` as (low 64 bits, high 64 bits), all unsigned."""
    h0, h1 = high & _LOW32, high >> _SHIFT32
    p00, p01, p10, p11 = h0 * _LIMB_LOW32, h0 * _LIMB_HIGH32, h1 * _LIMB_LOW32, h1 * _LIMB_HIGH32
    middle = (p00 >> _SHIFT32) + (p01 & _LOW32) + (p10 & _LOW32)
    bottom = (p00 & _LOW32) | ((middle & _LOW32) << _SHIFT32)
    top = p11 + (p01 >> _SHIFT32) + (p10 >> _SHIFT32) + (middle >> _SHIFT32)
    total = bottom + low
    return total, top + (total < bottom)


def decimal_array(batch: RowBatch, refs: FieldRefs, arrow_type: pa.Decimal128Type) -> pa.Array:
    """The fields, DECIMAL texts, as an exact ``decimal128`` array; :class:`DecimalTextError` otherwise."""
    precision, scale = arrow_type.precision, arrow_type.scale
    values, weights, negative = _aligned_digits(batch, refs, precision, scale)
    low = _limb(values, weights, 0)
    high = _limb(values, weights, LIMB_DIGITS) if precision > LIMB_DIGITS else np.zeros_like(low)
    low, high = _times_limb_plus(high, low)
    # two's complement of the negative values: invert, add one, carry into the high word
    low = np.where(negative, ~low + np.uint64(1), low)
    high = np.where(negative, ~high + (low == 0), high)
    words = np.empty((len(low), 2), dtype="<u8")
    words[:, 0], words[:, 1] = low, high
    words[refs.null] = 0
    validity, nulls = refs.validity()
    return pa.Array.from_buffers(arrow_type, len(low), [validity, arrow_buffer(words)], nulls)
