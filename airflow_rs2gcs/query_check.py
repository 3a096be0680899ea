"""Is a custom query ONE read-only SELECT? A small lexer that sees through strings and comments.

The rule: the query is one statement (no ``;`` but a trailing one) that starts with SELECT or WITH, and
no run of its tokens forms a data-modifying statement, a ``SELECT ... INTO``, a ``FOR UPDATE/SHARE``
locking clause or a call of a function that acts outside the query. Where a keyword stands decides
whether it is a statement or a name, so ``select id, comment, lock from t`` passes:

- COMMENT, LOCK, GRANT, DROP, VACUUM, SET and the other utility statements can only begin a statement,
  never be nested in a SELECT; the start and a ``;`` are checked, so nothing else about them is needed.
- INSERT, UPDATE, DELETE and MERGE can also begin a statement inside one (``WITH d AS (DELETE ...)``,
  ``WITH x AS (...) DELETE ...``), and then a name always follows them (``DELETE FROM t``). So they are
  names when followed by ``,``, ``)``, an operator, AS or the end, qualified (``t.update``), after AS,
  or an item of a list (after ``,`` or SELECT); anywhere else they are refused, with how to quote them.

This is the first gate; the second is the database itself: the configure step plans the query as
``SELECT * FROM (<query>) LIMIT 0`` in a transaction that is rolled back, reading no rows, and each
export runs in a read-only transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Statements that change data and can stand inside a query that starts with WITH: as a data-modifying
# CTE (WITH d AS (DELETE ...) SELECT ...) or as the statement the WITH clause leads to
# (WITH x AS (...) DELETE ...). Each is always followed by a name (INTO, FROM, ONLY or the table).
DATA_MODIFYING_KEYWORDS = frozenset({"insert", "update", "delete", "merge", "upsert"})
# FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE, FOR KEY SHARE: row locks taken by a SELECT.
LOCKING_CLAUSES = (("update",), ("share",), ("no", "key", "update"), ("key", "share"))
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
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_IDENTIFIER_CHAR = re.compile(r"[A-Za-z0-9_$\x80-\U0010ffff]")
_UNICODE_ESCAPE_IDENTIFIER = re.compile(r"u&\s*\"", re.IGNORECASE)
# Stands in for each character of a literal or quoted identifier: neither a word character nor a space.
_LITERAL = "\x00"
# The lexed query's tokens. A word is what the server reads as one identifier or keyword: every byte
# from 0x80 up is an identifier character to PostgreSQL (so a no-break space never splits a word), and
# only ASCII blanks separate tokens. A number is split from letters that follow it (``1delete``), as
# older servers read it.
_TOKEN = re.compile(
    r"[ \t\n\r\f\v]*(?:"
    r"(?P<literal>\x00+)"
    r"|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<word>[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*)"
    r"|(?P<other>.))",
    re.DOTALL,
)


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
    raise QueryNotAllowed(
        f"unterminated {quote} quote; close it (a {quote} inside it is written twice: {quote}{quote})"
    )


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
        raise QueryNotAllowed("unterminated /* comment; close it with */")
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
                raise QueryNotAllowed(f"unterminated dollar-quoted string; close it with {tag.group(0)}")
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
        raise QueryNotAllowed("unbalanced parentheses: close each '(' with a ')'")


@dataclass(frozen=True)
class _Token:
    kind: str  # literal (a string or quoted identifier), number, word, other (one character)
    text: str  # lower case for a word

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and (not words or self.text in words)


_END = _Token("end", "")


def _tokens(code: str) -> list[_Token]:
    tokens = []
    for match in _TOKEN.finditer(code.rstrip(" \t\n\r\f\v")):
        kind = match.lastgroup or "other"
        text = match.group(kind)
        tokens.append(_Token(kind, text.lower() if kind == "word" else text))
    return tokens


def _fix_hint(word: str) -> str:
    return f'if {word} is a column or alias there, quote it ("{word}") or qualify it (t.{word})'


def _is_name(before: _Token, after: _Token) -> bool:
    """Is a data-modifying keyword between these tokens a name rather than the start of a statement?

    A statement's keyword is always followed by a name (INSERT INTO, DELETE FROM, MERGE INTO,
    UPDATE [ONLY] t) and can stand only where a statement may start: after ``(`` (a CTE's body), after
    a WITH clause (its ``)`` or the last name or constant of a SEARCH/CYCLE clause). After ``,`` or
    SELECT comes a list item, after AS an alias or a type, next to ``.`` a qualified name.
    """
    if before.text == "." or after.text == "." or before.is_word("as"):
        return True
    if after.kind not in ("word", "literal") or after.is_word("as"):
        return True  # followed by ',', ')', an operator, a number or the end
    return before.text == "," or before.is_word("select")


def _check_tokens(tokens: list[_Token]) -> None:
    for index, token in enumerate(tokens):
        if token.kind != "word":
            continue
        before = tokens[index - 1] if index else _END
        after = tokens[index + 1] if index + 1 < len(tokens) else _END
        word = token.text
        if word in DATA_MODIFYING_KEYWORDS and not _is_name(before, after):
            raise QueryNotAllowed(
                f"it uses {word.upper()} as a statement keyword (a data-modifying statement); only a "
                f"read-only SELECT is allowed; {_fix_hint(word)}"
            )
        if word == "into" and not (before.text == "." or after.text == "." or before.is_word("as")):
            raise QueryNotAllowed(
                "it uses INTO (SELECT ... INTO creates a table); only a read-only SELECT is allowed: "
                f"remove the INTO clause; {_fix_hint(word)}"
            )
        if word == "for":
            for clause in LOCKING_CLAUSES:
                following = tokens[index + 1 : index + 1 + len(clause)]
                if len(following) == len(clause) and all(map(_Token.is_word, following, clause)):
                    shown = " ".join(("for", *clause)).upper()
                    raise QueryNotAllowed(
                        f"it uses the locking clause {shown}, which locks rows; only a read-only SELECT "
                        f"is allowed: remove it; {_fix_hint(clause[-1])}"
                    )


def _check_code(code: str, quoted: list[str]) -> None:
    if ";" in code:
        raise QueryNotAllowed(
            "more than one statement (';' inside the query); give exactly one SELECT (a ';' inside a "
            "quoted string is fine)"
        )
    tokens = _tokens(code)
    words = [t.text for t in tokens if t.kind == "word"]
    if not words or words[0] not in {"select", "with"}:
        found = f"it starts with {words[0].upper()}" if words else "it is empty"
        raise QueryNotAllowed(f"it must start with SELECT or WITH ({found}); give one read-only SELECT")
    _check_tokens(tokens)
    functions = sorted((set(words) | {q.lower() for q in quoted}) & SIDE_EFFECT_FUNCTIONS)
    if functions:
        raise QueryNotAllowed(
            f"it calls {', '.join(functions)}, which act(s) outside the query; only a read-only SELECT "
            "is allowed: remove the call"
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
