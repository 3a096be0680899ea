"""Table names as a tenant writes them: ``schema.table`` or ``table``, each part plain or double-quoted.

One parser for every place that reads a table name (the tenant model, the SQL text, the catalog, the
object names), so that what the catalog prints is exactly what ``tables`` accepts:

- a plain part is letters, digits, ``_`` or ``$``, starting with a letter or ``_``, at most 127
  characters; like Redshift, it is folded to lower case (``Public.Orders`` is ``public.orders``);
- a quoted part is ``"..."`` with ``"`` written ``""`` inside: 1 to 127 bytes of UTF-8, printable
  characters only (spaces allowed; no NUL, control or format characters), kept as written
  (``analytics."Mixed Case Table"``). A part that needs no quotes (a plain lower-case name such as
  ``"orders"``) is refused with the spelling to use, so each relation has exactly one spelling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_IDENTIFIER_BYTES = 127
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_SIMPLE = re.compile(r"[a-z_][a-z0-9_$]*")


class InvalidTableName(ValueError):
    """A table name that the grammar above refuses; the message says why."""


@dataclass(frozen=True)
class TableName:
    """A parsed table name: the catalog's values of its parts, and whether any part was quoted.

    :param schema: the schema as stored in the catalog, or ``None`` when the name is unqualified.
    :param table: the relation's name as stored in the catalog.
    :param quoted: whether the name as written has a quoted part.
    """

    schema: str | None
    table: str
    quoted: bool

    @property
    def canonical(self) -> str:
        """The one spelling of this name, as the catalog lists it (``analytics."Mixed Case Table"``)."""
        return format_table_name(self.schema, self.table)


def is_simple(value: str) -> bool:
    """Whether ``value`` can be written without quotes and mean itself (a plain lower-case name)."""
    return len(value) <= MAX_IDENTIFIER_BYTES and _SIMPLE.fullmatch(value) is not None


def format_identifier(value: str) -> str:
    """``orders`` -> ``orders``; ``Mixed Case`` -> ``"Mixed Case"`` (``"`` doubled inside)."""
    return value if is_simple(value) else '"' + value.replace('"', '""') + '"'


def format_table_name(schema: str | None, table: str) -> str:
    """What ``tables`` accepts for a relation: ``schema.name``, each part quoted only if it needs it."""
    name = format_identifier(table)
    return name if schema is None else f"{format_identifier(schema)}.{name}"


def _check_quoted(value: str, text: str) -> None:
    if not value:
        raise InvalidTableName(f"{text!r} has an empty quoted part")
    if len(value.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        raise InvalidTableName(f"{text!r} has a part longer than {MAX_IDENTIFIER_BYTES} bytes")
    if any(not (ch.isprintable() or ch == " ") for ch in value):
        raise InvalidTableName(f"{text!r} has a control or non-printable character in a quoted part")
    if is_simple(value):
        raise InvalidTableName(f"{text!r} quotes {value!r}, which needs no quotes; write it {value}")


def _parts(text: str) -> list[tuple[str, bool]]:
    parts: list[tuple[str, bool]] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            j, chars = i + 1, []
            while True:
                if j >= n:
                    raise InvalidTableName(f"{text!r} has an unterminated quoted part")
                if text[j] == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        chars.append('"')
                        j += 2
                        continue
                    break
                chars.append(text[j])
                j += 1
            value = "".join(chars)
            _check_quoted(value, text)
            parts.append((value, True))
            i = j + 1
        else:
            match = _PLAIN.match(text, i)
            if match is None:
                raise InvalidTableName(f"{text!r} has a part that is neither a plain name nor quoted")
            if len(match.group()) > MAX_IDENTIFIER_BYTES:
                raise InvalidTableName(f"{text!r} has a part longer than {MAX_IDENTIFIER_BYTES} characters")
            parts.append((match.group().lower(), False))
            i = match.end()
        if i == n:
            return parts
        if text[i] != ".":
            raise InvalidTableName(f"{text!r} has {text[i]!r} where only '.' or the end may follow a part")
        i += 1


def parse_table_name(text: str) -> TableName:
    """``analytics."Mixed Case Table"`` -> ``TableName("analytics", "Mixed Case Table", quoted=True)``.

    Raises :class:`InvalidTableName` for anything else than one or two parts as described above.
    """
    parts = _parts(text)
    if len(parts) > 2:
        raise InvalidTableName(f"{text!r} has {len(parts)} parts; at most schema.table")
    quoted = any(q for _, q in parts)
    if len(parts) == 1:
        return TableName(None, parts[0][0], quoted)
    return TableName(parts[0][0], parts[1][0], quoted)
