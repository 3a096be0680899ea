"""Is a custom query ONE read-only SELECT? A small lexer that sees through strings and comments.

This is the first gate; the second is the database itself: the configure step plans the query as
``SELECT * FROM (<query>) LIMIT 0`` in a transaction that is rolled back, reading no rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
# Functions a SELECT can call that act outside the query: sleep, signal or end other sessions, change
# settings, advance sequences, take locks, reach other databases or the server's files, emit notifies.
# A read-only transaction stops writes but not these, so they are refused by name (in any schema, quoted
# or not). The list cannot be complete for user-defined functions: grant the connection's user SELECT only.
SIDE_EFFECT_FUNCTIONS = frozenset(
    {
        "pg_sleep",
        "pg_sleep_for",
        "pg_sleep_until",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "set_config",
        "nextval",
        "setval",
        "pg_advisory_lock",
        "pg_advisory_lock_shared",
        "pg_advisory_xact_lock",
        "pg_advisory_xact_lock_shared",
        "pg_try_advisory_lock",
        "pg_try_advisory_lock_shared",
        "pg_try_advisory_xact_lock",
        "pg_try_advisory_xact_lock_shared",
        "pg_advisory_unlock",
        "pg_advisory_unlock_all",
        "pg_advisory_unlock_shared",
        "dblink",
        "dblink_exec",
        "dblink_connect",
        "dblink_connect_u",
        "dblink_send_query",
        "dblink_open",
        "lo_import",
        "lo_export",
        "lo_unlink",
        "lo_create",
        "lo_creat",
        "lo_from_bytea",
        "lo_put",
        "lowrite",
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "pg_stat_file",
        "pg_file_write",
        "pg_notify",
        "pg_logical_emit_message",
        "query_to_xml",
        "query_to_xml_and_xmlschema",
        "query_to_xmlschema",
        "cursor_to_xml",
        "pg_switch_wal",
        "pg_create_restore_point",
        "pg_promote",
    }
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_IDENTIFIER_CHAR = re.compile(r"[A-Za-z0-9_$\x80-\U0010ffff]")
_UNICODE_ESCAPE_IDENTIFIER = re.compile(r"u&\s*\"", re.IGNORECASE)
# Stands in for each character of a literal or quoted identifier: neither a word character nor a space.
_LITERAL = "\x00"


class QueryNotAllowed(ValueError):
    """The query is not one read-only SELECT."""


@dataclass(frozen=True)
class _Lexing:
    """How the server reads literals and comments. Redshift and PostgreSQL differ (backslashes in
    '...' strings, nested block comments), so a query is lexed every way and must pass each time:
    a query that reads as one harmless SELECT one way cannot hide a second statement the other way."""

    backslash_escapes: bool
    nested_comments: bool


_LEXINGS = tuple(_Lexing(b, n) for b in (True, False) for n in (True, False))


def _skip_quoted(sql: str, i: int, quote: str, lexing: _Lexing) -> int:
    i += 1
    while i < len(sql):
        if sql[i] == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        if quote == "'" and lexing.backslash_escapes and sql[i] == "\\":
            i += 2
            continue
        i += 1
    raise QueryNotAllowed(f"unterminated {quote} quote")


def _skip_block_comment(sql: str, i: int, lexing: _Lexing) -> int:
    depth, i = 1, i + 2
    while i < len(sql) and depth:
        if lexing.nested_comments and sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    if depth:
        raise QueryNotAllowed("unterminated /* comment")
    return i


def _lex(sql: str, lexing: _Lexing) -> tuple[str, list[str]]:
    """The query with each literal and quoted identifier blanked by :data:`_LITERAL` characters and each
    comment by spaces (same length, so positions map back to ``sql``), and the quoted identifiers."""
    out: list[str] = []
    quoted: list[str] = []
    i = 0
    while i < len(sql):
        char = sql[i]
        if char in "'\"":
            end = _skip_quoted(sql, i, char, lexing)
            if char == '"':
                quoted.append(sql[i + 1 : end - 1].replace('""', '"'))
            out.append(_LITERAL * (end - i))
            i = end
        elif sql.startswith("--", i):
            # A line comment ends at LF or CR (the server's lexer treats both as a newline).
            ends = [e for e in (sql.find("\n", i), sql.find("\r", i)) if e >= 0]
            end = min(ends) if ends else len(sql)
            out.append(" " * (end - i))
            i = end
        elif sql.startswith("/*", i):
            end = _skip_block_comment(sql, i, lexing)
            out.append(" " * (end - i))
            i = end
        elif (tag := _DOLLAR_TAG.match(sql, i)) is not None and not (
            i and _IDENTIFIER_CHAR.match(sql[i - 1])
        ):
            # '$' right after an identifier character belongs to that identifier (x$a$ is a name).
            close = sql.find(tag.group(0), tag.end())
            if close < 0:
                raise QueryNotAllowed("unterminated dollar-quoted string")
            end = close + len(tag.group(0))
            out.append(_LITERAL * (end - i))
            i = end
        else:
            out.append(char)
            i += 1
    return "".join(out), quoted


def _statement_end(code: str) -> int:
    """Where the statement ends in the query: before a trailing ``;`` and trailing comments."""
    end = len(code.rstrip())
    if end and code[end - 1] == ";":
        end = len(code[: end - 1].rstrip())
    return end


def _check_parentheses(code: str) -> None:
    # Unbalanced parentheses could close the wrapper the sync puts around the query
    # (SELECT * FROM (<query>) AS ...) and change what the incremental window applies to.
    depth = 0
    for char in code:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            break
    if depth:
        raise QueryNotAllowed("unbalanced parentheses")


def _check_code(code: str, quoted: list[str]) -> None:
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
    functions = sorted((set(words) | {q.lower() for q in quoted}) & SIDE_EFFECT_FUNCTIONS)
    if functions:
        raise QueryNotAllowed(
            f"it calls {', '.join(functions)}, which act(s) outside the query; only a read-only SELECT "
            "is allowed"
        )
    _check_parentheses(code)


def check_read_only_select(sql: str) -> str:
    """Return the query without a trailing ``;`` or trailing comments; raise :class:`QueryNotAllowed`
    saying why otherwise."""
    if _UNICODE_ESCAPE_IDENTIFIER.search(sql):
        raise QueryNotAllowed('it uses a Unicode-escaped identifier (U&"..."); write the name plainly')
    statements = []
    for lexing in _LEXINGS:
        code, quoted = _lex(sql, lexing)
        end = _statement_end(code)
        _check_code(code[:end], quoted)
        statements.append(sql[:end].strip())
    return statements[0]
