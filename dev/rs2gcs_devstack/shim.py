"""The Redshift handshake shim: a loopback TCP proxy that lets ``redshift_connector`` talk to PostgreSQL.

Per client connection it reads the first packet(s):

* SSLRequest / GSSENCRequest: answers ``N`` (no encryption) and reads the next packet;
* CancelRequest: forwarded unchanged (its own short-lived upstream connection);
* StartupMessage (protocol 3.0): the parameters PostgreSQL rejects are dropped (``redshift_connector``
  sends ``client_protocol_version``, ``driver_version``, ``os_version``, ``driver_discovery_version``
  and, with IdP plugins, ``plugin_name``, ``idp_type``, ``provider_name``, ``identity_namespace``,
  ``token_type``, ``idc_client_display_name``: FATAL 42704 "unrecognized configuration parameter").
  The rule is an allowlist: protocol keys, ``_pq_.*``, dotted custom settings and the client settings
  listed in :data:`KEPT_SETTINGS`; everything else is dropped and logged once.

Then bytes are piped both ways with asyncio protocols (256 KiB reads, flow control through the
transports' write buffers, uvloop when installed). Run it as its own process so it never shares a GIL
with the code under test::

    python -m rs2gcs_devstack.shim --listen-port N --target-host 127.0.0.1 --target-port M
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import struct
import sys
from collections.abc import Callable, Iterable
from typing import Any

from rs2gcs_devstack.unload_session import UnloadSession

log = logging.getLogger("rs2gcs.shim")

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
MAX_STARTUP_LEN = 10_000
WRITE_HIGH_WATER = 4 * 1024 * 1024

PROTOCOL_KEYS = frozenset({"user", "database", "options", "replication"})
KEPT_SETTINGS = frozenset(
    key.lower()
    for key in (
        "application_name",
        "client_encoding",
        "DateStyle",
        "IntervalStyle",
        "TimeZone",
        "search_path",
        "extra_float_digits",
        "standard_conforming_strings",
        "statement_timeout",
        "lock_timeout",
        "idle_in_transaction_session_timeout",
        "idle_session_timeout",
        "default_transaction_isolation",
        "default_transaction_read_only",
        "default_transaction_deferrable",
        "bytea_output",
        "work_mem",
        "geqo",
        "jit",
        "role",
        "session_authorization",
        "lc_messages",
        "lc_monetary",
        "lc_numeric",
        "lc_time",
        "client_min_messages",
        "timezone_abbreviations",
        "row_security",
    )
)


def keep_param(key: str, extra_keep: frozenset[str] = frozenset()) -> bool:
    """True if PostgreSQL accepts startup parameter ``key`` (and we want to pass it on)."""
    low = key.lower()
    return (
        low in PROTOCOL_KEYS
        or low in KEPT_SETTINGS
        or low in extra_keep
        or low.startswith("_pq_.")
        or "." in low
    )


def parse_startup(packet: bytes) -> list[tuple[str, str]]:
    """The key/value pairs of a protocol-3 StartupMessage (``packet`` includes length and version)."""
    fields = bytes(packet[8:]).split(b"\x00")
    pairs = []
    for i in range(0, len(fields) - 1, 2):
        if not fields[i]:
            break
        pairs.append((fields[i].decode("utf-8", "replace"), fields[i + 1].decode("utf-8", "replace")))
    return pairs


def build_startup(pairs: Iterable[tuple[str, str]], version: int = PROTOCOL_3) -> bytes:
    """Encode a StartupMessage from key/value pairs."""
    body = b"".join(k.encode() + b"\x00" + v.encode() + b"\x00" for k, v in pairs) + b"\x00"
    return struct.pack("!ii", len(body) + 8, version) + body


def rewrite_startup(packet: bytes, extra_keep: frozenset[str] = frozenset()) -> tuple[bytes, list[str]]:
    """Drop the parameters PostgreSQL rejects; return the new packet and the dropped keys."""
    pairs = parse_startup(packet)
    kept = [(k, v) for k, v in pairs if keep_param(k, extra_keep)]
    dropped = [k for k, _ in pairs if not keep_param(k, extra_keep)]
    return build_startup(kept, struct.unpack("!i", packet[4:8])[0]), dropped


def error_response(message: str, code: str = "08006") -> bytes:
    """A FATAL ErrorResponse message, so the client sees why the shim gave up."""
    body = (
        b"".join(
            tag + value.encode() + b"\x00"
            for tag, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", code), (b"M", message))
        )
        + b"\x00"
    )
    return b"E" + struct.pack("!i", len(body) + 4) + body


class _Side(asyncio.Protocol):
    """One end of a piped pair: what it reads goes to ``peer``; backpressure pauses the reader."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    filter: Callable[[bytes], None] | None = None  # set on the upstream side while an UNLOAD is answered

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None and self.peer.transport is not None
        if self.filter is not None:
            self.filter(data)
        else:
            self.peer.transport.write(data)

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.closed:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.closed:
            self.peer.transport.resume_reading()

    def eof_received(self) -> bool:
        return False  # close our side; connection_lost closes the peer after it flushes

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.peer is not None and self.peer.transport is not None and not self.peer.closed:
            self.peer.transport.close()


class ClientSide(_Side):
    """The client's connection: handshake first, then a plain pipe to the upstream server."""

    def __init__(
        self,
        target: tuple[str, int],
        extra_keep: frozenset[str],
        on_dropped: Callable,
        s3_factory: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__()
        self.target = target
        self.s3_factory = s3_factory
        self.unloads: UnloadSession | None = None
        self.extra_keep = extra_keep
        self.on_dropped = on_dropped
        self.buffer = bytearray()
        self.pending: list[bytes] | None = None  # bytes queued while connecting upstream

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(self.unloads.from_client(data) if self.unloads else data)
        elif self.pending is not None:
            self.pending.append(data)
        else:
            self.buffer += data
            self._handshake()

    def _handshake(self) -> None:
        """Consume complete initial packets from the buffer until the startup/cancel packet arrives."""
        while len(self.buffer) >= 8:
            length, code = struct.unpack("!ii", self.buffer[:8])
            if not 8 <= length <= MAX_STARTUP_LEN:
                self._fail(f"invalid startup packet length {length}")
                return
            if len(self.buffer) < length:
                return
            packet, rest = bytes(self.buffer[:length]), bytes(self.buffer[length:])
            self.buffer.clear()
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                assert self.transport is not None
                self.transport.write(b"N")
                self.buffer += rest
                continue
            if code != CANCEL_REQUEST:
                if self.s3_factory is not None:
                    params = dict(parse_startup(packet))
                    self.unloads = UnloadSession(
                        self.target, params.get("user", ""), params.get("database", ""), self.s3_factory
                    )
                packet, dropped = rewrite_startup(packet, self.extra_keep)
                self.on_dropped(dropped)
            self.pending = [packet, rest] if rest else [packet]
            asyncio.get_running_loop().create_task(self._connect_upstream())
            return

    async def _connect_upstream(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await loop.create_connection(_Side, *self.target)
        except OSError as exc:
            self._fail(f"shim cannot reach PostgreSQL at {self.target[0]}:{self.target[1]}: {exc}")
            return
        assert upstream.transport is not None and self.pending is not None
        upstream.peer, self.peer = self, upstream
        if self.unloads is not None:
            self.unloads.attach(upstream, self)
        pending = [self.pending[0]] + [
            self.unloads.from_client(b) if self.unloads else b for b in self.pending[1:]
        ]
        upstream.transport.write(b"".join(pending))
        self.pending = None
        if self.closed:  # e.g. a CancelRequest client that hung up at once: deliver, then close
            upstream.transport.close()

    def _fail(self, message: str) -> None:
        log.warning("%s", message)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(error_response(message))
            self.transport.close()


class Shim:
    """The proxy server: ``await Shim(...).start()`` then ``serve_forever``; or run :func:`main`."""

    def __init__(
        self,
        listen_port: int,
        target_host: str,
        target_port: int,
        *,
        listen_host: str = "127.0.0.1",
        extra_keep: Iterable[str] = (),
        s3_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.s3_factory = s3_factory
        self.listen = (listen_host, listen_port)
        self.target = (target_host, target_port)
        self.extra_keep = frozenset(k.lower() for k in extra_keep)
        self.server: asyncio.Server | None = None
        self._seen_dropped: set[str] = set()

    def _log_dropped(self, keys: list[str]) -> None:
        new = sorted(set(keys) - self._seen_dropped)
        if new:
            self._seen_dropped.update(new)
            log.info("dropping startup parameters PostgreSQL rejects: %s", ", ".join(new))

    async def start(self) -> int:
        """Listen (IPv4) and return the bound port."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: ClientSide(self.target, self.extra_keep, self._log_dropped, self.s3_factory),
            host=self.listen[0],
            port=self.listen[1],
            family=socket.AF_INET,
            reuse_address=True,
            backlog=512,
        )
        return self.server.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        assert self.server is not None
        async with self.server:
            await self.server.serve_forever()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--listen-port", type=int, required=True, help="0 = any free port (printed)")
    parser.add_argument("--target-host", default="127.0.0.1")
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--keep-param", action="append", default=[], help="extra startup key to pass on")
    parser.add_argument(
        "--s3-endpoint",
        help="answer UNLOAD by writing to this S3 endpoint (credentials from AWS_ACCESS_KEY_ID/..."
        "SECRET_ACCESS_KEY; PostgreSQL password for the UNLOAD's own connection from PGPASSWORD)",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace) -> None:
    shim = Shim(
        args.listen_port,
        args.target_host,
        args.target_port,
        listen_host=args.listen_host,
        extra_keep=args.keep_param,
        s3_factory=_s3_factory(args.s3_endpoint) if args.s3_endpoint else None,
    )
    port = await shim.start()
    print(f"shim listening on {args.listen_host}:{port} -> {args.target_host}:{args.target_port}", flush=True)
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)  # type: ignore[union-attr]
    with contextlib.suppress(asyncio.CancelledError):
        await shim.serve_forever()


def _s3_factory(endpoint: str) -> Callable[[], Any]:
    """A boto3 S3 client maker for ``endpoint`` (credentials and region from the environment)."""

    def make() -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")

    return make


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop if installed (faster piping), else the default loop."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with asyncio.Runner(loop_factory=_new_loop) as runner:
        runner.run(_run(args))


if __name__ == "__main__":
    main()
