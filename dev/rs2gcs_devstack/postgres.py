"""A throwaway PostgreSQL 16 server built from the ``pgserver`` wheel's binaries.

Why the wheel and not the system's PostgreSQL: ``redshift_connector`` crashes on Debian builds' version
string ("15.18 (Debian ...)"). Why md5: the driver fails SCRAM-SHA-256. Every start uses a fresh temp
dir and a free port, so a crashed earlier run can never break the next one (stale temp dirs whose
owner process is gone are removed on the next start).

As root, PostgreSQL refuses to run, so ``initdb`` and ``postgres`` run as an unprivileged system user
(``rs2gcs-pg``, created with ``useradd --system`` if missing, ``nobody`` as a fallback); if that user
cannot reach the wheel's binaries (e.g. a venv under ``/root``), the install tree is copied once to a
world-readable cache dir in the temp dir.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
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

PG_SYSTEM_USER = "rs2gcs-pg"
SUPERUSER = "postgres"
TEMP_PREFIX = "rs2gcs-pg-"


@dataclass(frozen=True)
class RunAs:
    """Unix identity the server runs as (``None`` fields: the current user)."""

    uid: int | None = None
    gid: int | None = None


def pgserver_install_dir() -> Path:
    """The wheel's ``pgserver/pginstall`` dir, found without importing (and starting) ``pgserver``."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise StackProcessError("the 'pgserver' package is not installed (pip install pgserver)")
    install = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (install / "bin" / "postgres").exists():
        raise StackProcessError(f"no PostgreSQL binaries under {install}")
    return install


def ensure_system_user(name: str = PG_SYSTEM_USER) -> RunAs:
    """Return (creating it if needed) an unprivileged system user; falls back to ``nobody``."""
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(name)
        return RunAs(entry.pw_uid, entry.pw_gid)
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    cmd = [
        useradd,
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        name,
    ]
    with contextlib.suppress(OSError):
        subprocess.run(cmd, check=False, capture_output=True, timeout=30)  # exit 9 = raced, exists
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(name)
        return RunAs(entry.pw_uid, entry.pw_gid)
    entry = pwd.getpwnam("nobody")
    return RunAs(entry.pw_uid, entry.pw_gid)


def _can_run(binary: Path, run_as: RunAs) -> bool:
    """True if ``run_as`` can execute ``binary`` (and load its libraries)."""
    try:
        result = subprocess.run(
            [str(binary), "--version"],
            user=run_as.uid,
            group=run_as.gid,
            extra_groups=[],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return result.returncode == 0


def _usable_cache(cache: Path) -> bool:
    """A cached copy we made ourselves and nobody else can write to."""
    try:
        info = cache.stat()
    except OSError:
        return False
    return (
        info.st_uid == os.geteuid()
        and not info.st_mode & 0o022
        and (cache / "pgserver" / "pginstall" / "bin" / "postgres").exists()
    )


def _copy_install(install: Path) -> Path:
    """Copy ``pgserver/pginstall`` and its ``pgserver.libs`` to a world-readable cache; return the copy.

    The copy keeps the wheel's layout, since the binaries find libpq via ``$ORIGIN/../../../pgserver.libs``.
    """
    stamp = f"{install}:{(install / 'bin' / 'postgres').stat().st_mtime_ns}"
    digest = hashlib.sha256(stamp.encode()).hexdigest()[:12]
    cache = Path(tempfile.gettempdir()) / f"rs2gcs-pginstall-{digest}"
    if _usable_cache(cache):
        return cache / "pgserver" / "pginstall"
    staging = Path(tempfile.mkdtemp(prefix="rs2gcs-pginstall-tmp-"))
    shutil.copytree(install, staging / "pgserver" / "pginstall", symlinks=True)
    libs = install.parent.parent / "pgserver.libs"
    if libs.is_dir():
        shutil.copytree(libs, staging / "pgserver.libs", symlinks=True)
    for path in [staging, *staging.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    try:
        staging.rename(cache)
        return cache / "pgserver" / "pginstall"
    except OSError:  # another run won the race (fine), or a stranger's dir is in the way (use ours)
        if _usable_cache(cache):
            shutil.rmtree(staging, ignore_errors=True)
            return cache / "pgserver" / "pginstall"
        return staging / "pgserver" / "pginstall"


def reachable_install(run_as: RunAs) -> Path:
    """The pginstall dir ``run_as`` can use: the wheel's own, or a copy of it."""
    install = pgserver_install_dir()
    if run_as.uid is None or all(_can_run(install / "bin" / exe, run_as) for exe in ("postgres", "initdb")):
        return install
    copy = _copy_install(install)
    if not _can_run(copy / "bin" / "postgres", run_as):
        raise StackProcessError(f"user uid={run_as.uid} cannot run {copy}/bin/postgres")
    return copy


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _clean_env(home: Path) -> dict[str, str]:
    """Environment for the server and psql: no PG* variables from the caller leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C", HOME=str(home))
    return env


@dataclass
class LocalPostgres:
    """A PostgreSQL 16 server on ``127.0.0.1:<free port>`` with a login role and a database.

    ``host``/``port``/``user``/``password``/``database`` are what a client (or the shim) connects to over
    TCP with md5 auth; :meth:`psql` runs SQL as superuser over the unix socket.
    """

    user: str = "rs2gcs"
    database: str = "dev"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    host: str = LOOPBACK
    port: int = 0
    start_timeout: float = 60.0
    base_dir: Path | None = field(default=None, init=False)
    child: Child | None = field(default=None, init=False)
    _bin: Path | None = field(default=None, init=False, repr=False)
    _run_as: RunAs = field(default_factory=RunAs, init=False, repr=False)
    _default_db: str = field(default="postgres", init=False, repr=False)

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while running."""
        return self.child.pid if self.child is not None else None

    @property
    def socket_dir(self) -> Path:
        """Directory holding the server's unix socket."""
        assert self.base_dir is not None, "not started"
        return self.base_dir / "sock"

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        assert self.base_dir is not None, "not started"
        return self.base_dir / "postgres.log"

    def start(self) -> LocalPostgres:
        """initdb a fresh cluster, run the server in the foreground as our child, create role and db."""
        self._run_as = ensure_system_user() if os.geteuid() == 0 else RunAs()
        self._bin = reachable_install(self._run_as) / "bin"
        self.base_dir = make_run_dir(TEMP_PREFIX)
        try:
            self._prepare_dirs()
            self._initdb()
            self._serve()
            self._create_role_and_db()
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare_dirs(self) -> None:
        assert self.base_dir is not None
        self.base_dir.chmod(0o711)  # the server user may traverse, not list
        for sub in ("data", "sock"):
            path = self.base_dir / sub
            path.mkdir(mode=0o700)
            if self._run_as.uid is not None:
                os.chown(path, self._run_as.uid, self._run_as.gid or -1)

    def _run_setup(self, argv: list[str]) -> None:
        """Run a setup command as the server user, output appended to the log; raise on failure."""
        assert self.base_dir is not None
        with open(self.log_path, "ab") as log:
            result = subprocess.run(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_clean_env(self.base_dir),
                user=self._run_as.uid,
                group=self._run_as.gid,
                extra_groups=[] if self._run_as.uid is not None else None,
                cwd=self.base_dir,
                timeout=120,
                check=False,
            )
        if result.returncode != 0:
            tail = self.log_path.read_text(errors="replace")[-4000:]
            raise StackProcessError(f"{argv[0]} failed with code {result.returncode}:\n{tail}")

    def _initdb(self) -> None:
        assert self.base_dir is not None and self._bin is not None
        self._run_setup(
            [
                str(self._bin / "initdb"),
                "-D",
                str(self.base_dir / "data"),
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=md5",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
        )

    def server_argv(self) -> list[str]:
        """The ``postgres`` command line (foreground, loopback only, durability off: it is a test DB)."""
        assert self.base_dir is not None and self._bin is not None
        settings = {
            "listen_addresses": LOOPBACK,
            "unix_socket_permissions": "0700",
            "password_encryption": "md5",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "TimeZone": "UTC",
            "max_connections": "100",
            "log_min_messages": "warning",
            "log_min_error_statement": "panic",
        }
        argv = [
            str(self._bin / "postgres"),
            "-D",
            str(self.base_dir / "data"),
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
        ]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def _serve(self) -> None:
        """Run the server until it accepts queries; retry on a fresh port if its port was taken."""
        fixed_port = bool(self.port)
        for attempt in range(3):
            self.port = self.port if fixed_port else free_port()
            self._run_server()
            try:
                self._wait_ready()
                return
            except StackProcessError as exc:
                if fixed_port or attempt == 2 or not is_port_clash(exc):
                    raise
                assert self.child is not None
                terminate(self.child)
                self.child = None

    def _run_server(self) -> None:
        assert self.base_dir is not None
        # SIGINT = PostgreSQL's "fast shutdown": disconnect clients, checkpoint-free with fsync off.
        self.child = spawn(
            "postgres",
            self.server_argv(),
            self.log_path,
            env=_clean_env(self.base_dir),
            cwd=self.base_dir,
            user=self._run_as.uid,
            group=self._run_as.gid,
            death_signal=signal.SIGINT,
            stop_signal=signal.SIGINT,
        )

    def _wait_ready(self) -> None:
        """Wait for the port, then until the server accepts queries (it rejects them while starting)."""
        assert self.child is not None
        deadline = time.monotonic() + self.start_timeout
        wait_for_port(self.port, self.child, timeout=self.start_timeout)
        while True:
            try:
                self.psql("select 1")
                return
            except StackProcessError:
                if not self.child.alive():
                    raise StackProcessError(
                        f"postgres exited with code {self.child.popen.returncode}; "
                        f"log {self.log_path}:\n{self.child.log_tail()}"
                    ) from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _create_role_and_db(self) -> None:
        role, pw = _quote_ident(self.user), _quote_literal(self.password)
        self.psql(
            f"SET password_encryption = 'md5';\nCREATE ROLE {role} LOGIN PASSWORD {pw};\n"
            f"CREATE DATABASE {_quote_ident(self.database)} OWNER {role};\n"
        )
        self._default_db = self.database

    def psql(self, sql: str, database: str | None = None, *, timeout: float = 300.0) -> str:
        """Run ``sql`` (one or more statements) as superuser over the unix socket; return stdout.

        Output is unaligned, tuples only, fields separated by ``|``. Raises :class:`StackProcessError`
        with psql's stderr on any error (``ON_ERROR_STOP``).
        """
        assert self.base_dir is not None and self._bin is not None, "not started"
        argv = [
            str(self._bin / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            database or self._default_db,
            "-f",
            "-",
        ]
        result = subprocess.run(
            argv,
            input=sql.encode(),
            capture_output=True,
            env=_clean_env(self.base_dir),
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            stderr = result.stderr.decode(errors="replace")
            raise StackProcessError(f"psql failed ({result.returncode}): {stderr}")
        return result.stdout.decode()

    def stop(self) -> None:
        """Stop the server (fast shutdown, SIGKILL after a timeout) and delete the temp dir."""
        if self.child is not None:
            terminate(self.child, timeout=15)
            self.child = None
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None
        self._default_db = "postgres"
