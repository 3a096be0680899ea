"""One shim connection's UNLOAD handling: spots UNLOAD in the client's messages and answers it like Redshift.

The client's stream is split into messages (cheap: a client sends little). A simple-protocol Query or
an extended-protocol Parse whose SQL is an UNLOAD is rewritten to :data:`NOOP`, so PostgreSQL keeps
its prepared-statement/portal/transaction bookkeeping; the UNLOAD itself starts (in a thread) when the
client's Query or Execute arrives. PostgreSQL's ``DO`` CommandComplete for the NOOP is then replaced
by Redshift's answer: a NoticeResponse ``UNLOAD completed, N record(s) unloaded successfully.`` and
CommandComplete ``UNLOAD``, or an ErrorResponse (and the next ReadyForQuery says "failed transaction"
if PostgreSQL said "in transaction"). The server's stream is parsed only while an UNLOAD is pending:
the data path stays a plain pipe. This relies on the client waiting for ReadyForQuery before sending
the UNLOAD (redshift_connector and psql do), so the server's stream is at a message boundary.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import Callable
from typing import Any

from rs2gcs_devstack.unload import UnloadError, is_unload, parse_unload, run_unload

log = logging.getLogger("rs2gcs.shim.unload")

NOOP = "DO $rs2gcs_unload$BEGIN END$rs2gcs_unload$"
_WATCHED = frozenset((b"Q", b"P", b"B", b"E", b"C"))


def message(kind: bytes, body: bytes) -> bytes:
    """One protocol message."""
    return kind + struct.pack("!i", len(body) + 4) + body


def _fields(fields: tuple[tuple[bytes, str], ...]) -> bytes:
    return b"".join(tag + value.encode() + b"\x00" for tag, value in fields) + b"\x00"


def error_message(text: str, code: str) -> bytes:
    """An ERROR-level ErrorResponse."""
    return message(b"E", _fields(((b"S", "ERROR"), (b"V", "ERROR"), (b"C", code), (b"M", text))))


def success_messages(rows: int) -> bytes:
    """What Redshift sends for a finished UNLOAD: an INFO notice with the row count, then ``UNLOAD``."""
    notice = f"UNLOAD completed, {rows} record(s) unloaded successfully."
    return message(
        b"N", _fields(((b"S", "INFO"), (b"V", "INFO"), (b"C", "00000"), (b"M", notice)))
    ) + message(b"C", b"UNLOAD\x00")


def _cstring(body: bytes, start: int) -> tuple[str, int]:
    end = body.index(b"\x00", start)
    return body[start:end].decode("utf-8", "replace"), end + 1


class UnloadSession:
    """Per-connection state: UNLOAD statements/portals and the answers still to be sent."""

    def __init__(
        self, target: tuple[str, int], user: str, database: str, s3_factory: Callable[[], Any]
    ) -> None:
        self.target, self.user, self.database, self.s3_factory = target, user, database, s3_factory
        self.client_buffer = bytearray()
        self.server_buffer = bytearray()
        self.statements: dict[str, str] = {}
        self.portals: dict[str, str] = {}
        self.answers: deque[asyncio.Future[int]] = deque()
        self.failed = False
        self.upstream: Any = None
        self.client: Any = None

    def attach(self, upstream: Any, client: Any) -> None:
        """Remember both protocol objects (``_Side`` instances of the shim)."""
        self.upstream, self.client = upstream, client

    # -- client -> server ------------------------------------------------------------------------------
    def from_client(self, data: bytes) -> bytes:
        """The bytes to forward for ``data``: complete messages, UNLOADs rewritten to the NOOP.

        Only Query/Parse/Bind/Execute/Close are looked at; other messages (CopyData, ...) are passed on
        as slices, and the buffer is trimmed once per call, so a big chunk costs one copy.
        """
        self.client_buffer += data
        buffer, out, pos = self.client_buffer, bytearray(), 0
        while len(buffer) - pos >= 5:
            kind = bytes(buffer[pos : pos + 1])
            length = struct.unpack_from("!i", buffer, pos + 1)[0]
            if len(buffer) - pos < length + 1:
                break
            end = pos + length + 1
            if kind in _WATCHED:
                out += self._client_message(kind, bytes(buffer[pos + 5 : end]), bytes(buffer[pos:end]))
            else:
                out += buffer[pos:end]
            pos = end
        del buffer[:pos]
        return bytes(out)

    def _client_message(self, kind: bytes, body: bytes, raw: bytes) -> bytes:
        if kind == b"Q":
            sql, _ = _cstring(body, 0)
            if is_unload(sql):
                self._start(sql)
                return message(b"Q", NOOP.encode() + b"\x00")
        elif kind == b"P":
            name, pos = _cstring(body, 0)
            sql, _ = _cstring(body, pos)
            self.statements.pop(name, None)
            if is_unload(sql):
                self.statements[name] = sql
                return message(b"P", name.encode() + b"\x00" + NOOP.encode() + b"\x00" + struct.pack("!h", 0))
        elif kind == b"B":
            portal, pos = _cstring(body, 0)
            statement, _ = _cstring(body, pos)
            self.portals.pop(portal, None)
            if statement in self.statements:
                self.portals[portal] = self.statements[statement]
        elif kind == b"E":
            portal, _ = _cstring(body, 0)
            if portal in self.portals:
                self._start(self.portals[portal])
        elif kind == b"C" and body[:1] == b"S":
            self.statements.pop(_cstring(body, 1)[0], None)
        return raw

    def _start(self, sql: str) -> None:
        """Run the UNLOAD in a thread now; its answer replaces the NOOP's CommandComplete later."""
        loop = asyncio.get_running_loop()
        try:
            unload = parse_unload(sql)
        except UnloadError as exc:
            future: asyncio.Future[int] = loop.create_future()
            future.set_exception(exc)
        else:
            future = asyncio.ensure_future(
                asyncio.to_thread(run_unload, unload, self._connect, self.s3_factory())
            )
        self.answers.append(future)
        if self.upstream is not None:
            self.upstream.filter = self.from_server

    def _connect(self) -> Any:
        """The UNLOAD's own PostgreSQL connection, as the session's user (password from PGPASSWORD)."""
        import psycopg

        return psycopg.connect(host=self.target[0], port=self.target[1], user=self.user, dbname=self.database)

    # -- server -> client ------------------------------------------------------------------------------
    def from_server(self, data: bytes) -> None:
        """Forward the server's messages, swapping the NOOP's ``DO`` for the UNLOAD's answer."""
        self.server_buffer += data
        self._drain()

    def _drain(self) -> None:
        out = bytearray()
        while len(self.server_buffer) >= 5:
            length = struct.unpack("!i", self.server_buffer[1:5])[0]
            if len(self.server_buffer) < length + 1:
                break
            kind, body = self.server_buffer[:1], bytes(self.server_buffer[5 : length + 1])
            if kind == b"C" and body == b"DO\x00" and self.answers:
                future = self.answers[0]
                if not future.done():
                    self._write(out)
                    self.upstream.transport.pause_reading()
                    future.add_done_callback(lambda _: self._resume())
                    return
                self.answers.popleft()
                del self.server_buffer[: length + 1]
                out += self._answer(future)
                continue
            if kind == b"Z" and self.failed:
                self.failed = False
                if body == b"T":
                    body = b"E"
            out += message(bytes(kind), body)
            del self.server_buffer[: length + 1]
        self._write(out)
        if not self.answers and not self.server_buffer and not self.failed:
            self.upstream.filter = None  # back to a plain pipe

    def _answer(self, future: asyncio.Future[int]) -> bytes:
        exc = future.exception()
        if exc is None:
            return success_messages(future.result())
        self.failed = True
        if isinstance(exc, UnloadError):
            return error_message(str(exc), exc.code)
        log.exception("UNLOAD failed", exc_info=exc)
        return error_message(f"UNLOAD failed in the local shim: {exc}", "XX000")

    def _resume(self) -> None:
        if self.upstream.closed:
            return
        self.upstream.transport.resume_reading()
        self._drain()

    def _write(self, out: bytearray) -> None:
        if out and not self.client.closed:
            self.client.transport.write(bytes(out))
