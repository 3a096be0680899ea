"""``LocalRedis``: a real ``redis-server`` on ``127.0.0.1:<free port>``, the Celery broker of the tests.

Debian's ``redis-server`` (``make test``'s set-up installs it, see the Makefile), run in the
foreground as our child (PDEATHSIG, own process group: see :mod:`.processes`) in a fresh temp dir,
with persistence off: a broker that forgets everything on stop is what a test wants, and writing
snapshots would only cost the two cores time. Loopback only, no password (``protected-mode`` is left
on, so nothing but loopback clients could talk to it anyway)::

    with LocalRedis() as redis:
        env = {"AIRFLOW__CELERY__BROKER_URL": redis.url}
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from types import TracebackType

from rs2gcs_devstack.processes import (
    LOOPBACK,
    Child,
    StackProcessError,
    free_port,
    is_port_clash,
    make_run_dir,
    spawn,
    terminate,
    wait_for_port,
)

REDIS_SERVER = "/usr/bin/redis-server"
TEMP_PREFIX = "rs2gcs-redis-"


def redis_server_binary() -> str | None:
    """Debian's ``redis-server`` (the path ``make test`` installs), else one on ``PATH``, else None."""
    if Path(REDIS_SERVER).is_file():
        return REDIS_SERVER
    return shutil.which("redis-server")


class LocalRedis:
    """Starts ``redis-server`` on a free loopback port (no persistence); stops it and removes its dir.

    :param database: the database number in :attr:`url`.
    :param start_timeout: seconds until the server must answer ``PING``.
    """

    def __init__(self, *, database: int = 0, start_timeout: float = 30.0) -> None:
        self.database = database
        self.start_timeout = start_timeout
        self.port = 0
        self.child: Child | None = None
        self.base_dir: Path | None = None

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The broker URL Celery (and ``AIRFLOW__CELERY__BROKER_URL``) takes."""
        return f"redis://{LOOPBACK}:{self.port}/{self.database}"

    @property
    def pid(self) -> int | None:
        """The server's pid while running."""
        return self.child.pid if self.child is not None else None

    def argv(self, binary: str) -> list[str]:
        """The command line: foreground, loopback only, no RDB snapshots, no AOF, the dir ours."""
        assert self.base_dir is not None
        return [
            binary,
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--daemonize",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.base_dir),
            "--logfile",
            "",  # stdout, i.e. the child's log file
        ]

    def start(self) -> LocalRedis:
        """Start the server and wait until it answers ``PING`` (a fresh port if the first was taken)."""
        binary = redis_server_binary()
        if binary is None:
            raise StackProcessError(
                "redis-server is not installed (make test installs Debian's redis-server with apt-get)"
            )
        self.base_dir = make_run_dir(TEMP_PREFIX)
        try:
            for attempt in range(3):
                self.port = free_port()
                self.child = spawn(
                    "redis-server",
                    self.argv(binary),
                    self.base_dir / f"redis-{attempt}.log",
                    cwd=self.base_dir,
                )
                try:
                    wait_for_port(self.port, self.child, timeout=self.start_timeout)
                    break
                except StackProcessError as exc:
                    terminate(self.child)
                    self.child = None
                    if attempt == 2 or not is_port_clash(exc):
                        raise
            self.ping()
        except BaseException:
            self.stop()
            raise
        return self

    def ping(self) -> None:
        """Raise :class:`StackProcessError` unless the server answers ``PING`` with ``+PONG``."""
        with socket.create_connection((LOOPBACK, self.port), timeout=5) as sock:
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
        if not answer.startswith(b"+PONG"):
            raise StackProcessError(f"redis-server answered PING with {answer!r}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, SIGKILL after a timeout) and delete its temp dir."""
        if self.child is not None:
            terminate(self.child, timeout=10)
            self.child = None
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None
