"""``CeleryServices``: docker-compose.yaml's CeleryExecutor stack, run on loopback on this machine.

The Airflow settings come from the file the compose stack reads (``airflow.env`` at the checkout's
root, see :func:`compose_settings`): only the values that name a compose host (the metadata DB, the
broker, the api-server: :data:`ADDRESS_SETTINGS`) are replaced by this machine's loopback addresses.
So what the test runs is what ``docker compose up`` runs, and the compose file cannot drift from it.

On top of :class:`~.services.AirflowServices` (api-server, scheduler, dag-processor, a metadata
database of its own on the stack's PostgreSQL) it starts ``airflow celery worker`` processes, each
with its own Celery node name and its own Airflow hostname (task instances record it, so a test can
tell which worker ran what), on a real Redis broker (:class:`~.broker.LocalRedis`)::

    with LocalStack() as stack, LocalRedis() as redis, CeleryServices(stack, redis) as airflow:
        airflow.workers["worker-a"].pid
        airflow.kill_worker("worker-a")       # SIGKILL its whole process tree, as a lost machine

Worker logs: ``<home>/services/worker-*.log``; failures quote their tails.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rs2gcs_devstack.airflow_home import repo_root
from rs2gcs_devstack.broker import LocalRedis
from rs2gcs_devstack.processes import Child, StackProcessError, spawn, terminate
from rs2gcs_devstack.services import AirflowServices
from rs2gcs_devstack.stack import LocalStack

SETTINGS_FILE = "airflow.env"
# The settings of airflow.env whose values name compose hosts; every other line is used as it is.
ADDRESS_SETTINGS = frozenset(
    {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    }
)
WORKER_HOSTNAME_ENV = "RS2GCS_WORKER_HOSTNAME"
DEFAULT_WORKERS = ("worker-a", "worker-b")
_ENV_LINE = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")


def read_env_file(path: Path) -> dict[str, str]:
    """The ``KEY=VALUE`` lines of a Compose ``env_file`` (blank lines and ``#`` comments skipped).

    Only the subset ``airflow.env`` uses: no quotes, no ``export``, no ``${...}`` interpolation, which
    are refused rather than read differently from Compose.
    """
    settings: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        value = match.group("value") if match else ""
        if match is None or value[:1] in {"'", '"'} or "${" in value:
            raise ValueError(f"{path}:{number}: not a plain KEY=VALUE line: {line!r}")
        settings[match.group("key")] = value
    return settings


def compose_settings(root: Path | None = None) -> dict[str, str]:
    """The Airflow settings docker-compose.yaml gives every Airflow service (``airflow.env``)."""
    return read_env_file((root or repo_root()) / SETTINGS_FILE)


def loopback_settings(settings: Mapping[str, str], addresses: Mapping[str, str]) -> dict[str, str]:
    """``settings`` with exactly the :data:`ADDRESS_SETTINGS` replaced by ``addresses``.

    Raises ``ValueError`` if ``addresses`` is not that set of keys, or one of them is not in
    ``settings`` (the file changed: the test would otherwise run something compose does not).
    """
    if set(addresses) != ADDRESS_SETTINGS or not set(settings) >= ADDRESS_SETTINGS:
        raise ValueError(
            f"address settings: given {sorted(addresses)}, expected {sorted(ADDRESS_SETTINGS)}, "
            f"the file has {sorted(ADDRESS_SETTINGS & set(settings))}"
        )
    return {**settings, **addresses}


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the test's workers: the name its environment gives it.

    Two workers on one machine would otherwise record the same FQDN on every task instance.
    """
    import socket

    return os.environ.get(WORKER_HOSTNAME_ENV) or socket.getfqdn()


class CeleryServices(AirflowServices):
    """:class:`AirflowServices` with compose's CeleryExecutor settings and ``airflow celery worker``\\ s.

    :param stack: the running local stack (connections, PostgreSQL for the metadata DB).
    :param redis: the running broker.
    :param workers: one worker per name; the name is its Airflow hostname and its Celery node name's
        first part (``worker-a@<machine>``).
    :param concurrency: task slots per worker (``--concurrency``).
    :param extra_env: more settings for every process (wins over ``airflow.env``), e.g. a shorter
        ``[scheduler] task_instance_heartbeat_timeout``.
    :param worker_timeout: seconds for a worker to report ready.
    :param kwargs: the other arguments of :class:`AirflowServices` (``parallelism``, ...).

    Attributes beyond :class:`AirflowServices`: ``workers`` (the :class:`~.processes.Child` of each
    running worker, by name), ``settings`` (what was taken from ``airflow.env``, after substitution).
    """

    def __init__(
        self,
        stack: LocalStack,
        redis: LocalRedis,
        *,
        workers: Sequence[str] = DEFAULT_WORKERS,
        concurrency: int = 2,
        extra_env: Mapping[str, str] | None = None,
        worker_timeout: float = 180.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(stack, extra_env=extra_env, **kwargs)
        self.redis = redis
        self.worker_names = list(workers)
        self.concurrency = concurrency
        self.worker_timeout = worker_timeout
        self.workers: dict[str, Child] = {}
        self.settings: dict[str, str] = {}

    def start(self) -> CeleryServices:
        """Start the api-server, scheduler and dag-processor, then the workers; wait until all are ready."""
        super().start()
        try:
            for name in self.worker_names:
                self.start_worker(name)
            for name in self.worker_names:
                self._wait_worker_ready(self.workers[name])
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the workers first (they hold tasks), then the services; drop the DB, remove the home."""
        for name in list(self.workers):
            terminate(self.workers.pop(name), timeout=20)
        super().stop()

    def start_worker(self, name: str) -> Child:
        """Start ``airflow celery worker`` named ``name`` (its Airflow hostname and Celery node name)."""
        assert self.home is not None
        env = {
            **self.home.env,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
            WORKER_HOSTNAME_ENV: name,
        }
        # --skip-serve-logs: two workers on one machine would fight over the log server's port, and
        # every process here writes its task logs to the same local folder the api-server reads.
        argv = self._argv(
            "celery",
            "worker",
            "--celery-hostname",
            f"{name}@%h",
            "--concurrency",
            str(self.concurrency),
            "--skip-serve-logs",
        )
        log_path = self.home.path / "services" / f"{name}.log"
        child = spawn(name, argv, log_path, env=env, cwd=self.home.path)
        self.workers[name] = child
        return child

    def kill_worker(self, name: str) -> list[int]:
        """SIGKILL worker ``name`` and every process under it, as when its machine dies; return the pids.

        The whole tree, not only the worker's process group: Airflow's supervisor puts each task
        runner in a group of its own, which would survive a ``killpg`` of the worker and go on
        exporting. The tree is listed first, then every member is SIGKILLed: SIGKILL cannot be
        caught, so none of them can clean up (or publish) in between.
        """
        child = self.workers.pop(name)
        pids = [child.pid, *descendants(child.pid)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        child.popen.wait(timeout=30)
        return pids

    def _environment(self) -> dict[str, str]:
        """:meth:`AirflowServices._environment`, then compose's ``airflow.env`` with loopback addresses."""
        env = super()._environment()
        self.settings = loopback_settings(
            compose_settings(),
            {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
                # Compose's value is db+postgresql://; Celery's database backend takes any SQLAlchemy URL.
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.sql_alchemy_conn}",
                "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            },
        )
        return {**env, **self.settings, **self._extra_env}

    def _wait_worker_ready(self, child: Child) -> None:
        """Until the worker's log says Celery is ready (it connected to the broker and the queue)."""
        deadline = time.monotonic() + self.worker_timeout
        while time.monotonic() < deadline:
            if not child.alive():
                raise StackProcessError(
                    f"{child.name} exited with code {child.popen.returncode}; log {child.log_path}:\n"
                    f"{child.log_tail(60)}"
                )
            with contextlib.suppress(OSError):
                if re.search(rb"@\S+ ready\.", child.log_path.read_bytes()):
                    return
            time.sleep(0.5)
        raise StackProcessError(
            f"{child.name} not ready after {self.worker_timeout:.0f}s; log {child.log_path}:\n"
            f"{child.log_tail(60)}"
        )


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found
