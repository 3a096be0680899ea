"""How each Arrow type is written as text in CSV and JSON Lines, vectorised with Arrow compute.

One text form per type, shared by both formats, with NULL kept distinct from the empty value; CSV
fields are quoted per RFC 4180. The table of every type's text form is ``docs/type-mapping.md``, its
only copy: change it together with this module.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NAN, INFINITY, MINUS_INFINITY = "NaN", "Infinity", "-Infinity"
_CSV_SPECIAL = r'[,"\r\n]'
_JSON_RARE_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"
_JSON_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))


def _float_text(array: pa.Array) -> pa.Array:
    # Arrow writes -0.0 as "-0", which JSON parsers (Python's among them) read as the integer 0.
    text = pc.replace_substring_regex(pc.cast(array, pa.string()), "^-0$", "-0.0")
    nan, infinite = pc.is_nan(array), pc.is_inf(array)
    if not pc.any(pc.or_(nan, infinite)).as_py():
        return text
    special = pc.if_else(nan, NAN, pc.if_else(pc.greater(array, 0), INFINITY, MINUS_INFINITY))
    return pc.if_else(pc.or_(nan, infinite), special, text)


def _decimal_text(array: pa.Array) -> pa.Array:
    """Plain notation: Arrow's own decimal -> string uses exponents (``1E-10``), so format the digits."""
    scale = array.type.scale
    unscaled = pa.Array.from_buffers(pa.decimal128(38, 0), len(array), array.buffers(), offset=array.offset)
    digits = pc.cast(unscaled, pa.string())
    if scale == 0:
        return digits
    negative = pc.starts_with(digits, "-")
    magnitude = pc.utf8_lpad(pc.utf8_ltrim(digits, "-"), scale + 1, "0")
    whole = pc.utf8_slice_codeunits(magnitude, 0, -scale)
    fraction = pc.utf8_slice_codeunits(magnitude, -scale)
    return pc.binary_join_element_wise(pc.if_else(negative, "-", ""), whole, ".", fraction, "")


def _timestamp_text(array: pa.Array) -> pa.Array:
    return pc.replace_substring(pc.cast(array, pa.string()), " ", "T", max_replacements=1)


def _binary_text(array: pa.Array) -> pa.Array:
    return pa.array(
        [None if value is None else base64.b64encode(value).decode("ascii") for value in array.to_pylist()],
        pa.string(),
    )


def text_values(array: pa.Array) -> pa.Array:
    """The text form of every value (NULLs stay NULL)."""
    kind = array.type
    if pa.types.is_floating(kind):
        return _float_text(array)
    if pa.types.is_decimal(kind):
        return _decimal_text(array)
    if pa.types.is_timestamp(kind):
        return _timestamp_text(array)
    if pa.types.is_binary(kind):
        return _binary_text(array)
    if pa.types.is_string(kind):
        return array
    return pc.cast(array, pa.string())


def _is_json_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_boolean(kind)


def _quoted(text: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise('"', text, '"', "")


def json_escaped(text: pa.Array) -> pa.Array:
    """Each string as a JSON string literal (quotes included); NULLs stay NULL."""
    escaped = text
    for raw, escape in _JSON_ESCAPES:
        escaped = pc.replace_substring(escaped, raw, escape)
    literal = _quoted(escaped)
    rare = pc.fill_null(pc.match_substring_regex(text, _JSON_RARE_CONTROL), False)
    if not pc.any(rare).as_py():
        return literal
    slow = [json.dumps(v, ensure_ascii=False) if v is not None else None for v in text.to_pylist()]
    return pc.if_else(rare, pa.array(slow, pa.string()), literal)


def json_values(array: pa.Array) -> pa.Array:
    """Each value as JSON (``null`` for NULL), per ``docs/type-mapping.md``."""
    kind = array.type
    text = text_values(array)
    if _is_json_number(kind):
        values = text
    elif pa.types.is_floating(kind):
        finite = pc.is_finite(array)
        values = pc.if_else(pc.fill_null(finite, True), text, _quoted(text))
    elif pa.types.is_string(kind):
        values = json_escaped(text)
    else:
        values = _quoted(text)
    return pc.fill_null(values, "null")


def csv_field(text: str) -> str:
    """One CSV field per RFC 4180 (used for the header)."""
    if text == "" or any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_values(array: pa.Array) -> pa.Array:
    """Each value as a CSV field (empty for NULL), quoted where RFC 4180 needs it."""
    text = text_values(array)
    if pa.types.is_string(array.type) or pa.types.is_binary(array.type):  # the types whose text can be ""
        special = pc.match_substring_regex(text, _CSV_SPECIAL)
        needs_quotes = pc.or_(special, pc.equal(pc.binary_length(text), 0))
        quoted = _quoted(pc.replace_substring(text, '"', '""'))
        text = pc.if_else(needs_quotes, quoted, text)
    return pc.fill_null(text, "")


def joined_lines(parts: list[pa.Array | str]) -> pa.Buffer:
    """Concatenate, row by row, the arrays and literal strings of ``parts`` and return all rows' bytes."""
    lines = pc.binary_join_element_wise(*parts, "")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    return lines.buffers()[2].slice(start, end - start)
