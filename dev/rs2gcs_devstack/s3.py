"""A local Amazon S3: moto's server mode (``python -m moto.server``, from the ``moto[server]`` wheel).

A real HTTP endpoint on loopback that boto3, the amazon provider's ``S3Hook`` and Airflow's ``aws``
connections talk to with ``endpoint_url``. Objects live in the server's memory: :meth:`LocalS3.stop`
loses them (the fault tests that need S3 to vanish mid-copy stop it on purpose). Any access key is
accepted; the stack uses the fixed test credentials below.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

ACCESS_KEY_ID = "rs2gcs-local"
SECRET_ACCESS_KEY = "rs2gcs-local-secret"
REGION = "us-east-1"
PORT_ATTEMPTS = 3


@dataclass
class LocalS3:
    """moto's S3 on ``http://127.0.0.1:<port>``; a run directory holds its log."""

    port: int = 0
    start_timeout: float = 60.0
    base_dir: Path | None = field(default=None, init=False)
    child: Child | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        """The endpoint URL (boto3's ``endpoint_url``, the ``aws`` connection's ``endpoint_url`` extra)."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's pid while running."""
        return self.child.pid if self.child is not None else None

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> LocalS3:
        """Start the server (again after :meth:`stop`: on the same port, empty)."""
        if self.child is not None and self.child.alive():
            return self
        if self.base_dir is None:
            self.base_dir = make_run_dir("rs2gcs-s3-")
        if self.port:
            return self._start_on_port()
        for attempt in range(PORT_ATTEMPTS):  # a free port can be taken before the server binds it
            self.port = free_port()
            try:
                return self._start_on_port()
            except StackProcessError as exc:
                if attempt == PORT_ATTEMPTS - 1 or not is_port_clash(exc):
                    raise
        raise AssertionError("unreachable")

    def _start_on_port(self) -> LocalS3:
        assert self.base_dir is not None
        argv = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)]
        self.child = spawn(
            "moto-s3", argv, self.base_dir / "moto.log", cwd=self.base_dir, stop_signal=signal.SIGTERM
        )
        try:
            wait_for_port(self.port, self.child, timeout=self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server; its objects are gone (they lived in its memory)."""
        if self.child is not None:
            terminate(self.child, timeout=10)
            self.child = None

    def close(self) -> None:
        """Stop the server and delete its run directory."""
        self.stop()
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None

    def client(self) -> Any:
        """A boto3 S3 client for this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name=REGION,
        )

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (no error if this server already has it)."""
        client = self.client()
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name)

    def aws_connection(self) -> dict[str, Any]:
        """An Airflow ``aws`` connection (as ``AIRFLOW_CONN_*`` JSON fields) that reaches this server."""
        return {
            "conn_type": "aws",
            "login": ACCESS_KEY_ID,
            "password": SECRET_ACCESS_KEY,
            "extra": {"endpoint_url": self.url, "region_name": REGION},
        }

    def aws_connection_json(self) -> str:
        """:meth:`aws_connection` as the JSON an ``AIRFLOW_CONN_<ID>`` variable takes."""
        return json.dumps(self.aws_connection())
