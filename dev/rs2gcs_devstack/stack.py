"""``LocalStack``: PostgreSQL ("Redshift"), the handshake shim in front of it, and fake-gcs-server.

One implementation shared by the demo and the tests::

    with LocalStack() as stack:
        env = stack.airflow_env()            # AIRFLOW_CONN_RS2GCS_REDSHIFT, ..._GCS, STORAGE_EMULATOR_HOST
        stack.postgres.psql("create table t(i int)")
        stack.gcs.create_bucket("landing")

Everything is stopped on exit, on an exception, on SIGTERM/SIGINT (turned into ``KeyboardInterrupt``
while the stack runs, previous handlers restored afterwards), at interpreter exit, and by the kernel
(PDEATHSIG) if this process is SIGKILLed. ``python -m rs2gcs_devstack.stack`` runs it for
humans: prints ``export`` lines and blocks until Ctrl-C.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from rs2gcs_devstack.gcs import PROJECT, LocalGCS
from rs2gcs_devstack.postgres import LocalPostgres
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
from rs2gcs_devstack.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, LocalS3

DEFAULT_REDSHIFT_CONN_ID = "rs2gcs_redshift"
DEFAULT_GCP_CONN_ID = "rs2gcs_gcs"
DEFAULT_S3_CONN_ID = "rs2gcs_s3"
_HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """Signal handler: unwind like Ctrl-C so ``with``/``finally`` blocks stop the stack."""
    raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")


def env_var_name(conn_id: str) -> str:
    """The environment variable Airflow reads connection ``conn_id`` from."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def connection_json(connection: dict[str, Any]) -> str:
    """A connection dict as the JSON value of an ``AIRFLOW_CONN_*`` variable (``conn_id`` left out)."""
    return json.dumps({k: v for k, v in connection.items() if k != "conn_id"})


class LocalStack:
    """Starts PostgreSQL, the shim and fake-gcs-server on free loopback ports; stops them all.

    Attributes for tests: ``postgres`` (:class:`LocalPostgres`), ``gcs`` (:class:`LocalGCS`),
    ``shim`` (:class:`Child`), ``shim_port``, ``s3`` (:class:`LocalS3`, started on first use: moto's
    server costs seconds and most users of the stack never touch S3; its port is reserved up front so
    the shim, which answers UNLOAD by writing there, and ``airflow_env()`` know the endpoint).
    """

    def __init__(
        self,
        *,
        user: str = "rs2gcs",
        database: str = "dev",
        project: str = PROJECT,
        handle_signals: bool = True,
    ) -> None:
        self.postgres = LocalPostgres(user=user, database=database)
        self.gcs = LocalGCS(project=project)
        self._s3 = LocalS3()
        self.shim: Child | None = None
        self.shim_port = 0
        self.handle_signals = handle_signals
        self._run_dir: Path | None = None
        self._previous_handlers: dict[int, Any] = {}

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> LocalStack:
        """Start all three processes (stopping whatever started if one fails)."""
        self._install_signal_handlers()
        atexit.register(self.stop)
        try:
            self._run_dir = make_run_dir("rs2gcs-stack-")
            self._s3.port = free_port()
            self.postgres.start()
            self._start_shim()
            self.gcs.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_shim(self) -> None:
        """Run the shim as its own process (no GIL shared with the code under test) on a free port."""
        assert self._run_dir is not None
        for attempt in range(3):  # a free port can be taken before the shim binds it
            self.shim_port = free_port()
            argv = [
                sys.executable,
                "-m",
                "rs2gcs_devstack.shim",
                "--listen-port",
                str(self.shim_port),
                "--target-host",
                LOOPBACK,
                "--target-port",
                str(self.postgres.port),
                "--s3-endpoint",
                self._s3.url,
            ]
            env = {
                **os.environ,
                "PGPASSWORD": self.postgres.password,  # the UNLOAD's own connection to PostgreSQL
                "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
                "AWS_DEFAULT_REGION": REGION,
            }
            self.shim = spawn("shim", argv, self._run_dir / f"shim-{attempt}.log", env=env, cwd=self._run_dir)
            try:
                wait_for_port(self.shim_port, self.shim, timeout=30)
                return
            except StackProcessError as exc:
                terminate(self.shim)
                self.shim = None
                if attempt == 2 or not is_port_clash(exc):
                    raise

    def stop(self) -> None:
        """Stop everything, remove temp dirs, restore signal handlers. Idempotent."""
        with _signals_deferred():
            if self.shim is not None:
                terminate(self.shim, timeout=5)
                self.shim = None
            self.gcs.close()
            self._s3.close()
            self.postgres.stop()
            if self._run_dir is not None:
                shutil.rmtree(self._run_dir, ignore_errors=True)
                self._run_dir = None
            self._restore_signal_handlers()
            atexit.unregister(self.stop)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _install_signal_handlers(self) -> None:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return
        for sig in _HANDLED_SIGNALS:
            if signal.getsignal(sig) is not signal.SIG_IGN:  # e.g. SIGINT in a background job: keep ignoring
                self._previous_handlers[sig] = signal.signal(sig, _raise_interrupt)

    def _restore_signal_handlers(self) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous_handlers.clear()

    # -- what clients need -------------------------------------------------------------------------------
    @property
    def s3(self) -> LocalS3:
        """The local S3 the shim's UNLOAD writes to, started on first use (on its reserved port)."""
        return self._s3.start()

    @property
    def pids(self) -> dict[str, int]:
        """Pids of the running processes: ``postgres``, ``shim``, ``fake-gcs-server``."""
        pids = {
            "postgres": self.postgres.pid,
            "shim": self.shim.pid if self.shim else None,
            "fake-gcs-server": self.gcs.pid,
            "moto-s3": self._s3.pid,
        }
        return {name: pid for name, pid in pids.items() if pid is not None}

    @property
    def ports(self) -> dict[str, int]:
        """Ports: ``postgres`` (direct, the driver cannot use it), ``redshift`` (the shim), ``gcs``."""
        return {
            "postgres": self.postgres.port,
            "redshift": self.shim_port,
            "gcs": self.gcs.port,
            "s3": self._s3.port,
        }

    def redshift_connection(self, conn_id: str = DEFAULT_REDSHIFT_CONN_ID) -> dict[str, Any]:
        """Airflow ``redshift`` connection through the shim.

        ``conn_id`` is included, so ``airflow.models.Connection(**d)`` works; :func:`connection_json`
        leaves it out.
        """
        return {
            "conn_id": conn_id,
            "conn_type": "redshift",
            "host": LOOPBACK,
            "port": self.shim_port,
            "login": self.postgres.user,
            "password": self.postgres.password,
            "schema": self.postgres.database,
            "extra": {"ssl": False},
        }

    def gcp_connection(self, conn_id: str = DEFAULT_GCP_CONN_ID) -> dict[str, Any]:
        """Airflow ``google_cloud_platform`` connection for the emulator (anonymous credentials)."""
        return {
            "conn_id": conn_id,
            "conn_type": "google_cloud_platform",
            "extra": {"is_anonymous": True, "project": self.gcs.project},
        }

    def airflow_env(
        self,
        redshift_conn_id: str = DEFAULT_REDSHIFT_CONN_ID,
        gcp_conn_id: str = DEFAULT_GCP_CONN_ID,
        s3_conn_id: str = DEFAULT_S3_CONN_ID,
    ) -> dict[str, str]:
        """Environment for Airflow processes: the three connections and ``STORAGE_EMULATOR_HOST``.

        The ``aws`` connection points at :attr:`s3`'s reserved port; touch :attr:`s3` to start it.
        """
        return {
            env_var_name(redshift_conn_id): connection_json(self.redshift_connection(redshift_conn_id)),
            env_var_name(gcp_conn_id): connection_json(self.gcp_connection(gcp_conn_id)),
            env_var_name(s3_conn_id): self._s3.aws_connection_json(),
            "STORAGE_EMULATOR_HOST": self.gcs.url,
        }


@contextlib.contextmanager
def _signals_deferred():
    """Hold SIGTERM/SIGINT while stopping, so a second Ctrl-C cannot leave half-stopped processes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def main() -> None:
    """CLI: start the stack, print ``export`` lines and ports, block until Ctrl-C/SIGTERM."""
    with LocalStack() as stack:
        for key, value in stack.airflow_env().items():
            print(f"export {key}={shlex.quote(value)}")
        print(f"# ports: {json.dumps(stack.ports)}  pids: {json.dumps(stack.pids)}")
        print(
            f"# psql: PGPASSWORD={shlex.quote(stack.postgres.password)} psql -h {LOOPBACK} "
            f"-p {stack.postgres.port} -U {stack.postgres.user} {stack.postgres.database}"
        )
        print("# Ctrl-C to stop", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
