"""Is a custom query ONE read-only SELECT? A small lexer that sees through strings and comments.

This is the first gate; the second is the database itself: the configure step plans the query as
``SELECT * FROM (<query>) LIMIT 0`` in a transaction that is rolled back, reading no rows.
"""

from __future__ import annotations

import re

FORBIDDEN_KEYWORDS = frozenset(
    {
        "insert",
        "update",
        "delete",
        "merge",
        "upsert",
        "create",
        "drop",
        "alter",
        "truncate",
        "grant",
        "revoke",
        "copy",
        "unload",
        "call",
        "execute",
        "exec",
        "vacuum",
        "analyze",
        "lock",
        "into",
        "set",
        "reset",
        "comment",
        "refresh",
        "prepare",
        "deallocate",
        "listen",
        "notify",
        "do",
        "begin",
        "commit",
        "rollback",
        "savepoint",
        "release",
        "cluster",
        "reindex",
        "import",
        "export",
    }
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


class QueryNotAllowed(ValueError):
    """The query is not one read-only SELECT."""


def _skip_quoted(sql: str, i: int, quote: str) -> int:
    i += 1
    while i < len(sql):
        if sql[i] == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        if quote == "'" and sql[i] == "\\":
            i += 2
            continue
        i += 1
    raise QueryNotAllowed(f"unterminated {quote} quote")


def _skip_block_comment(sql: str, i: int) -> int:
    depth, i = 1, i + 2
    while i < len(sql) and depth:
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    if depth:
        raise QueryNotAllowed("unterminated /* comment")
    return i


def code_outside_literals(sql: str) -> str:
    """The query with string literals, quoted identifiers and comments replaced by spaces."""
    out, i = [], 0
    while i < len(sql):
        char = sql[i]
        if char in "'\"":
            i = _skip_quoted(sql, i, char)
            out.append(" ")
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
            out.append(" ")
        elif (tag := _DOLLAR_TAG.match(sql, i)) is not None:
            end = sql.find(tag.group(0), tag.end())
            if end < 0:
                raise QueryNotAllowed("unterminated dollar-quoted string")
            i = end + len(tag.group(0))
            out.append(" ")
        else:
            out.append(char)
            i += 1
    return "".join(out)


def check_read_only_select(sql: str) -> str:
    """Return the query without a trailing ``;``; raise :class:`QueryNotAllowed` saying why otherwise."""
    code = code_outside_literals(sql).strip()
    if code.endswith(";"):
        code = code[:-1].rstrip()
        sql = sql.rstrip()[:-1].rstrip()
    if ";" in code:
        raise QueryNotAllowed("more than one statement (';' inside the query); give exactly one SELECT")
    words = [w.lower() for w in _WORD.findall(code)]
    if not words or words[0] not in {"select", "with"}:
        raise QueryNotAllowed("it must start with SELECT or WITH")
    bad = sorted(set(words) & FORBIDDEN_KEYWORDS)
    if bad:
        raise QueryNotAllowed(
            f"it uses {', '.join(k.upper() for k in bad)}; only a read-only SELECT is allowed"
        )
    return sql.strip()
