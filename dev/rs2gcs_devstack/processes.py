"""Child processes that can never outlive us, plus port helpers.

Every child gets ``prctl(PR_SET_PDEATHSIG, sig)`` (Linux): when the thread that spawned it dies, even by
SIGKILL, the kernel sends ``sig`` to the child. PDEATHSIG is cleared on a credential change, so it is
set in ``preexec_fn``, which CPython runs *after* switching to ``user=``/``group=`` (checked by
``tests/integration/test_devstack.py``). Note the "parent" is the spawning *thread*: spawn from a
thread that lives as long as the children should (normally the main thread).

Each child runs in its own process group (Ctrl-C in a terminal does not reach it directly; we stop it
ourselves) with stdout and stderr appended to a log file.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1
LOOPBACK = "127.0.0.1"


class StackProcessError(RuntimeError):
    """A child process died or never became ready."""


def _load_prctl() -> Callable[..., int]:
    """Return libc's ``prctl``, looked up once in the parent (no dlopen after fork)."""
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_PRCTL = _load_prctl()


def set_parent_death_signal(sig: int) -> None:
    """Ask the kernel to send ``sig`` to the calling process when its parent thread dies."""
    if _PRCTL(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _make_preexec(death_signal: int) -> Callable[[], None]:
    """Build the ``preexec_fn``: set PDEATHSIG, then close the race where the parent already died."""
    parent_pid = os.getpid()

    def preexec() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, [])  # a caller may have blocked signals
        set_parent_death_signal(death_signal)
        if os.getppid() != parent_pid:  # parent died between fork and prctl: nobody would signal us
            os.kill(os.getpid(), death_signal)

    return preexec


@dataclass
class Child:
    """A spawned child: its ``Popen``, a display name and the log file holding its stdout/stderr."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    stop_signal: int = signal.SIGTERM

    @property
    def pid(self) -> int:
        """Process id (also its process group id)."""
        return self.popen.pid

    def alive(self) -> bool:
        """True while the process has not exited."""
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the child's log."""
        return log_tail(self.log_path, lines)


def spawn(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: int | str | None = None,
    group: int | str | None = None,
    death_signal: int = signal.SIGTERM,
    stop_signal: int = signal.SIGTERM,
) -> Child:
    """Start ``argv`` in its own process group with PDEATHSIG ``death_signal``, output to ``log_path``.

    ``stop_signal`` is the polite signal :func:`terminate` sends first (e.g. SIGINT for PostgreSQL's
    fast shutdown).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            user=user,
            group=group,
            extra_groups=[] if user is not None and os.geteuid() == 0 else None,
            process_group=0,
            preexec_fn=_make_preexec(death_signal),
            close_fds=True,
        )
    return Child(name=name, popen=popen, log_path=log_path, stop_signal=stop_signal)


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        data = path.read_bytes()[-64 * 1024 :]
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on ``host`` right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on IPv4 TCP ``port`` (from ``/proc/net/tcp``)."""
    inodes = set()
    with contextlib.suppress(OSError), open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                inodes.add(fields[9])
    return inodes


def listens_on(pid: int, port: int) -> bool:
    """True if process ``pid`` holds a socket listening on TCP ``port``.

    Tells our child apart from a stranger that grabbed the port after :func:`free_port` released it.
    Where ``/proc`` cannot be read it answers True (the plain port probe then decides).
    """
    inodes = _listening_inodes(port)
    try:
        links = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
    except OSError:
        return True
    return any(f"socket:[{inode}]" in links for inode in inodes)


def wait_for_port(
    port: int, child: Child | None = None, *, timeout: float = 30.0, host: str = LOOPBACK
) -> None:
    """Block until ``host:port`` accepts connections (and, given ``child``, it is the child listening).

    Raises :class:`StackProcessError` (with the tail of the child's log) if ``child`` exits first or
    the timeout passes.
    """
    deadline = time.monotonic() + timeout
    delay = 0.01
    while time.monotonic() < deadline:
        if port_open(port, host) and (child is None or listens_on(child.pid, port)):
            return
        if child is not None and not child.alive():
            raise StackProcessError(
                f"{child.name} (pid {child.pid}) exited with code {child.popen.returncode} before "
                f"listening on {host}:{port}; log {child.log_path}:\n{child.log_tail()}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)
    tail = f"; log {child.log_path}:\n{child.log_tail()}" if child is not None else ""
    name = child.name if child is not None else "process"
    raise StackProcessError(f"{name} did not listen on {host}:{port} within {timeout:.0f}s{tail}")


def is_port_clash(error: BaseException) -> bool:
    """True if a child failed because its (free a moment ago) port was taken meanwhile."""
    return "address already in use" in str(error).lower()


def _killpg(pgid: int, sig: int) -> None:
    """``killpg`` that ignores an already empty group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def terminate(child: Child, *, timeout: float = 10.0) -> int | None:
    """Stop ``child``: its stop signal, wait up to ``timeout``, then SIGKILL its whole process group.

    Leftover members of the group (e.g. PostgreSQL backends) are SIGKILLed too. Returns the exit code.
    """
    if child.alive():
        with contextlib.suppress(ProcessLookupError):
            child.popen.send_signal(child.stop_signal)
        try:
            child.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _killpg(child.pid, signal.SIGKILL)
            child.popen.wait(timeout=timeout)
    _killpg(child.pid, signal.SIGKILL)
    return child.popen.returncode


def pid_alive(pid: int) -> bool:
    """True if a process with ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def remove_stale_dirs(prefix: str) -> None:
    """Delete temp dirs named ``<prefix>*`` (ours) whose owner process is gone, e.g. SIGKILLed."""
    for path in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            if path.stat().st_uid != os.geteuid():
                continue
            owner = int((path / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if not pid_alive(owner):
            shutil.rmtree(path, ignore_errors=True)


def make_run_dir(prefix: str) -> Path:
    """A fresh temp dir ``<prefix>XXXX`` recording our pid; stale ones from dead runs are removed first."""
    remove_stale_dirs(prefix)
    path = Path(tempfile.mkdtemp(prefix=prefix))
    (path / "owner.pid").write_text(str(os.getpid()))
    return path
