"""``AirflowServices``: real Airflow 3.3 services (api-server, scheduler, dag-processor) on loopback.

What ``airflow dags test`` hides (a scheduler that honours schedules and pools, a dag-processor that
reads Variables from the metadata DB, an executor running tasks in parallel, the REST API and the UI)
is what these services show. One throwaway AIRFLOW_HOME (:class:`~.airflow_home.AirflowHome`), the
``LocalExecutor``, and a metadata database of its own on the local stack's PostgreSQL 16 (Airflow 3.3
also accepts LocalExecutor on SQLite, but four processes writing one SQLite file lock each other
out; PostgreSQL is what a deployment uses)::

    with LocalStack() as stack, AirflowServices(stack) as airflow:
        airflow.set_variable("rs2gcs_tenants", tenants)
        airflow.create_pool("rs2gcs_redshift__rs2gcs_redshift", 4)
        airflow.wait_for_dag("rs2gcs_sync__demo")
        run = airflow.trigger("rs2gcs_sync__demo", {"full_refresh": True})
        airflow.wait_for_run("rs2gcs_sync__demo", run["dag_run_id"])

For a browser test: :attr:`AirflowServices.base_url` is the UI, :attr:`AirflowServices.username` /
:attr:`AirflowServices.password` log in on its form (simple auth manager, role admin).

Every process is spawned with PDEATHSIG and in its own process group (see :mod:`.processes`), so
nothing outlives the test even if it is SIGKILLed; :meth:`AirflowServices.stop` also drops the
metadata database and removes the home. Logs: ``<home>/services/*.log`` (the three services) and
``<home>/logs`` (task logs), kept until stop; failures quote their tails.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from rs2gcs_devstack.airflow_home import AirflowHome
from rs2gcs_devstack.processes import (
    LOOPBACK,
    Child,
    StackProcessError,
    free_port,
    is_port_clash,
    spawn,
    terminate,
    wait_for_port,
)
from rs2gcs_devstack.stack import LocalStack

FINISHED_STATES = frozenset({"success", "failed"})


class AirflowApiError(RuntimeError):
    """A REST call answered with an unexpected status; the message holds method, path, status, body."""


class RunDidNotSucceed(AssertionError):
    """A DAG run failed or did not finish in time; the message holds task states and the failed logs."""


class AirflowApi:
    """A small client for Airflow's public REST API v2, authenticated like the UI.

    The token comes from ``POST /auth/token`` with the user's name and password (the simple auth
    manager's login form posts the same body) and is sent as ``Authorization: Bearer``; it is fetched
    again once if the server answers 401.

    :param base_url: the api-server, e.g. ``http://127.0.0.1:8080``.
    :param username: a user of ``[core] simple_auth_manager_users``.
    :param password: that user's password.
    :param timeout: seconds per request.
    """

    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url
        self._credentials = {"username": username, "password": password}
        self._client = httpx.Client(base_url=base_url, timeout=timeout)
        self._token: str | None = None

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def token(self) -> str:
        """A JWT for the user, as the UI gets it (``POST /auth/token``)."""
        response = self._client.post("/auth/token", json=self._credentials)
        _raise_for_status(response, {201, 200})
        self._token = response.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, *, expect: set[int] | None = None, **kwargs: Any) -> Any:
        """``method path`` (relative to ``/api/v2``), return the decoded JSON (or ``None`` if empty).

        Raises :class:`AirflowApiError` unless the status is in ``expect`` (default: any 2xx).
        """
        response = self.response(method, path, **kwargs)
        _raise_for_status(response, expect)
        return response.json() if response.content else None

    def response(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The raw response of ``method /api/v2/<path>`` (the token is fetched again once on a 401)."""
        url = f"/api/v2/{path.lstrip('/')}"
        response = self._send(method, url, **kwargs)
        if response.status_code == 401:  # expired or never fetched
            self.token()
            response = self._send(method, url, **kwargs)
        return response

    def exists(self, path: str) -> bool:
        """True if ``GET /api/v2/<path>`` answers 200 (False on 404; other statuses raise)."""
        response = self.response("GET", path)
        _raise_for_status(response, {200, 404})
        return response.status_code == 200

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token or self.token()}", **kwargs.pop("headers", {})}
        return self._client.request(method, url, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        """``GET /api/v2/<path>``; ``params=`` for the query string."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> Any:
        """``POST /api/v2/<path>`` with a JSON body."""
        return self.request("POST", path, json=body, **kwargs)

    def patch(self, path: str, body: Any, **kwargs: Any) -> Any:
        """``PATCH /api/v2/<path>`` with a JSON body."""
        return self.request("PATCH", path, json=body, **kwargs)


def _raise_for_status(response: httpx.Response, expect: set[int] | None) -> None:
    ok = response.status_code in expect if expect else response.is_success
    if not ok:
        raise AirflowApiError(
            f"{response.request.method} {response.request.url.path} -> {response.status_code}: "
            f"{response.text[:2000]}"
        )


def _q(segment: str) -> str:
    """A path segment (DAG id, run id, pool name) quoted for a URL."""
    return quote(segment, safe="")


class AirflowServices:
    """Starts ``airflow api-server``, ``airflow scheduler`` and ``airflow dag-processor``; stops them.

    :param stack: the running local stack; its connections (``stack.airflow_env()``) and
        ``STORAGE_EMULATOR_HOST`` reach every process, and its PostgreSQL server holds the metadata
        database (a fresh database and role per instance, dropped on stop).
    :param extra_env: more environment for every Airflow process (``AIRFLOW__SECTION__KEY`` settings,
        ``AIRFLOW_CONN_*``); wins over the defaults below.
    :param dags_folder: the DAGs folder (default: the checkout's ``dags/``, see
        :func:`~.airflow_home.default_dags_folder`).
    :param parallelism: ``[core] parallelism``, the LocalExecutor's number of task slots (default 8).
    :param parse_interval: seconds between two parses of a DAG file and between two looks at the
        folder (``[dag_processor] min_file_process_interval`` and ``refresh_interval``; Airflow's
        defaults, 30 s and 300 s, make a test wait minutes for a Variable change to show).
    :param username: the admin user created in the simple auth manager (the password is random,
        see :attr:`password`).
    :param start_timeout: seconds for the metadata DB migration and for the services to be healthy.

    Attributes: ``home`` (:class:`AirflowHome`; ``home.run(...)`` runs the CLI against the same
    metadata DB), ``api`` (:class:`AirflowApi`), ``base_url``, ``username``, ``password``, ``port``,
    ``children`` (the three :class:`~.processes.Child` by name).
    """

    def __init__(
        self,
        stack: LocalStack,
        *,
        extra_env: Mapping[str, str] | None = None,
        dags_folder: Path | None = None,
        parallelism: int = 8,
        parse_interval: int = 5,
        username: str = "admin",
        start_timeout: float = 300.0,
    ) -> None:
        self.stack = stack
        self.username = username
        self.password = secrets.token_urlsafe(12)
        self.start_timeout = start_timeout
        self.port = 0
        self.children: dict[str, Child] = {}
        self.api: AirflowApi | None = None
        self._db_name = f"airflow_{secrets.token_hex(4)}"
        self._db_password = secrets.token_hex(16)
        self._extra_env = dict(extra_env or {})
        self._dags_folder = dags_folder
        self._parallelism = parallelism
        self._parse_interval = parse_interval
        self.home: AirflowHome | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------
    def __enter__(self) -> AirflowServices:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> AirflowServices:
        """Create the metadata DB, migrate it, start the three services and wait until they are healthy."""
        try:
            self._create_database()
            self.port = free_port()
            self.home = AirflowHome(self._environment(), dags_folder=self._dags_folder)
            self._write_password_file()
            self.home.run("db", "migrate", timeout=self.start_timeout)
            self._start_api_server()
            self.api = AirflowApi(self.base_url, self.username, self.password)
            self._start_service("scheduler", "--skip-serve-logs")  # logs are read from local files
            self._start_service("dag-processor")
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the services (scheduler first, api-server last), drop the metadata DB, remove the home."""
        for name in ("scheduler", "dag-processor", "api-server"):
            child = self.children.pop(name, None)
            if child is not None:
                terminate(child, timeout=20)
        if self.api is not None:
            self.api.close()
            self.api = None
        if self.stack.postgres.child is not None and self.stack.postgres.child.alive():
            self.stack.postgres.psql(
                f"DROP DATABASE IF EXISTS {self._db_name} WITH (FORCE); DROP ROLE IF EXISTS {self._db_name};"
            )
        if self.home is not None:
            self.home.close()
            self.home = None

    # -- what clients need -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The api-server (REST API under ``/api/v2``, the UI at ``/``)."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def sql_alchemy_conn(self) -> str:
        """The metadata database's SQLAlchemy URL."""
        pg = self.stack.postgres
        return (
            f"postgresql+psycopg2://{self._db_name}:{self._db_password}@{pg.host}:{pg.port}/{self._db_name}"
        )

    def set_variable(self, key: str, value: Any, description: str | None = None) -> None:
        """Create or replace a Variable through the REST API (a dict or list is stored as JSON text)."""
        text = value if isinstance(value, str) else json.dumps(value)
        body = {"key": key, "value": text, "description": description}
        if self._api.exists(f"variables/{_q(key)}"):
            self._api.patch(f"variables/{_q(key)}", body)
        else:
            self._api.post("variables", body)

    def create_pool(self, name: str, slots: int, description: str = "") -> dict[str, Any]:
        """Create the pool, or set its slots if it exists (``POST``/``PATCH /api/v2/pools``)."""
        body = {"name": name, "slots": slots, "description": description, "include_deferred": False}
        if self._api.exists(f"pools/{_q(name)}"):
            return self._api.patch(f"pools/{_q(name)}", body)
        return self._api.post("pools", body)

    def create_connection(self, connection: Mapping[str, Any]) -> None:
        """Create or replace a connection through the REST API (a dict like ``stack.redshift_connection``).

        ``extra`` may be a dict (it is sent as JSON text).
        """
        body = {**connection}
        if isinstance(body.get("extra"), Mapping):
            body["extra"] = json.dumps(body["extra"])
        conn_id = body["connection_id"] = body.pop("conn_id")
        if self._api.exists(f"connections/{_q(conn_id)}"):
            self._api.patch(f"connections/{_q(conn_id)}", body)
        else:
            self._api.post("connections", body)

    def wait_for_dag(self, dag_id: str, *, timeout: float = 180.0) -> dict[str, Any]:
        """Wait until the dag-processor has serialized ``dag_id``; return its details (incl. ``params``)."""
        deadline = time.monotonic() + timeout
        while True:
            details = self._api.request("GET", f"dags/{_q(dag_id)}/details", expect={200, 404})
            if details is not None and "dag_id" in details and not details.get("is_stale"):
                return details
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{dag_id} was not parsed within {timeout:.0f}s; dag-processor log:\n"
                    f"{self.children['dag-processor'].log_tail(60)}"
                )
            time.sleep(1)

    def trigger_form_conf(self, dag_id: str) -> dict[str, Any]:
        """The conf the UI's Trigger form starts with: each Param's default value."""
        params = self._api.get(f"dags/{_q(dag_id)}/details").get("params") or {}
        return {name: param.get("value") for name, param in params.items()}

    def trigger(
        self, dag_id: str, conf: Mapping[str, Any] | None = None, *, logical_date: dt.datetime | None = None
    ) -> dict[str, Any]:
        """Trigger a run as the UI's Trigger button does; return the new run (``dag_run_id``, ...).

        The body is what the 3.3 UI sends: ``conf`` = the form's Param values (their defaults, updated
        with ``conf``), ``logical_date`` = now (the form's default) unless given, no run id, no data
        interval (Airflow infers it from the timetable).
        """
        when = logical_date or dt.datetime.now(dt.UTC)
        body = {
            "conf": {**self.trigger_form_conf(dag_id), **(conf or {})},
            "logical_date": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "data_interval_start": None,
            "data_interval_end": None,
        }
        return self._api.post(f"dags/{_q(dag_id)}/dagRuns", body)

    def runs(self, dag_id: str, **params: Any) -> list[dict[str, Any]]:
        """The DAG's runs (``GET .../dagRuns``; ``params`` filter, e.g. ``run_type=["scheduled"]``)."""
        return self._api.get(f"dags/{_q(dag_id)}/dagRuns", params={"limit": 100, **params})["dag_runs"]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        """Pause or unpause a DAG (``PATCH /api/v2/dags/{dag_id}``)."""
        self._api.patch(f"dags/{_q(dag_id)}", {"is_paused": paused})

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run, mapped ones included, page by page.

        The API caps a page at ``[api] maximum_page_limit`` (100 by default) whatever ``limit`` asks.
        """
        path = f"dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances"
        found: list[dict[str, Any]] = []
        while True:
            page = self._api.get(path, params={"limit": 100, "offset": len(found)})
            found.extend(page["task_instances"])
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return found

    def task_log(self, dag_id: str, run_id: str, ti: Mapping[str, Any]) -> str:
        """The log of a task instance's latest try, one line per record."""
        try_number = max(int(ti.get("try_number") or 0), 1)
        path = f"dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(ti['task_id'])}/logs/{try_number}"
        params = {"map_index": ti.get("map_index", -1), "full_content": True}
        content = self._api.get(path, params=params, headers={"Accept": "application/json"})["content"]
        return "\n".join(_log_line(record) for record in content)

    def wait_for_run(
        self, dag_id: str, run_id: str, *, timeout: float = 300.0, expect: str = "success"
    ) -> dict[str, Any]:
        """Wait until the run finishes; return it if its state is ``expect``.

        Otherwise (or after ``timeout`` seconds) raise :class:`RunDidNotSucceed` with every task
        instance's state and the logs of those that did not succeed, plus the scheduler log's tail.
        """
        deadline = time.monotonic() + timeout
        path = f"dags/{_q(dag_id)}/dagRuns/{_q(run_id)}"
        while True:
            run = self._api.get(path)
            if run["state"] in FINISHED_STATES or time.monotonic() > deadline:
                break
            time.sleep(1)
        if run["state"] == expect:
            return run
        raise RunDidNotSucceed(self._run_report(dag_id, run_id, run["state"], timeout))

    def run_report(self, dag_id: str, run_id: str) -> str:
        """Where a run stands, for a failure message: task states, logs of the tasks that did not
        succeed, the scheduler log's tail."""
        run = self._api.get(f"dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")
        return self._run_report(dag_id, run_id, run["state"], 0)

    def _run_report(self, dag_id: str, run_id: str, state: str, timeout: float) -> str:
        """Why a run did not succeed: task states, logs of the ones that did not, the scheduler's tail."""
        headline = f"{dag_id} run {run_id}: state {state}" + (
            "" if state in FINISHED_STATES else f" after {timeout:.0f}s"
        )
        parts = [headline]
        tis = self.task_instances(dag_id, run_id)
        for ti in tis:
            parts.append(
                f"  {ti['task_id']}[{ti.get('map_index', -1)}]: {ti['state']} try {ti['try_number']}"
            )
        for ti in tis:
            if ti["state"] not in ("success", "skipped", None, "scheduled", "queued"):
                try:
                    log = self.task_log(dag_id, run_id, ti)
                except AirflowApiError as exc:
                    log = f"(no log: {exc})"
                parts.append(f"--- log of {ti['task_id']}[{ti.get('map_index', -1)}] ---\n{log[-8000:]}")
        parts.append(f"--- scheduler log tail ---\n{self.children['scheduler'].log_tail(40)}")
        return "\n".join(parts)

    # -- internals ---------------------------------------------------------------------------------------
    @property
    def _api(self) -> AirflowApi:
        if self.api is None:
            raise RuntimeError("AirflowServices is not started")
        return self.api

    def _create_database(self) -> None:
        """A login role and a database of the same (random, ``[a-z0-9_]``) name on the stack's server."""
        name, password = self._db_name, self._db_password
        self.stack.postgres.psql(
            f"SET password_encryption = 'md5'; CREATE ROLE {name} LOGIN PASSWORD '{password}';"
            f" CREATE DATABASE {name} OWNER {name};"
        )

    def _environment(self) -> dict[str, str]:
        """Every setting the services share (one JWT secret, one DB, fast parsing, loopback only)."""
        interval = str(self._parse_interval)
        return {
            **self.stack.airflow_env(),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self._parallelism),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
            "AIRFLOW__API__HOST": LOOPBACK,
            "AIRFLOW__API__WORKERS": "1",  # two cores
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),  # scheduler signs, api-server checks
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": interval,
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": interval,
            "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "1",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "0",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),  # 8793 may be someone else's
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            **self._port_settings(),
            **self._extra_env,
        }

    def _port_settings(self) -> dict[str, str]:
        return {
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
        }

    def _write_password_file(self) -> None:
        """Write the admin password where the simple auth manager looks (it only adds missing users)."""
        assert self.home is not None
        path = self.home.path / "simple_auth_manager_passwords.json"
        path.write_text(json.dumps({self.username: self.password}))
        path.chmod(0o600)
        self.home.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(path)

    def _argv(self, command: str, *args: str) -> list[str]:
        return [sys.executable, "-m", "airflow", command, *args]

    def _start_service(self, name: str, *args: str) -> Child:
        assert self.home is not None
        log_path = self.home.path / "services" / f"{name}.log"
        child = spawn(name, self._argv(name, *args), log_path, env=self.home.env, cwd=self.home.path)
        self.children[name] = child
        return child

    def _start_api_server(self) -> None:
        """Start the api-server on a free port; on a port clash pick another (and tell the others)."""
        assert self.home is not None
        for attempt in range(3):
            if attempt:
                self.port = free_port()
                self.home.env.update(self._port_settings())
            child = self._start_service("api-server", "--port", str(self.port), "--host", LOOPBACK)
            try:
                wait_for_port(self.port, child, timeout=self.start_timeout)
                return
            except StackProcessError as exc:
                terminate(self.children.pop("api-server"))
                if attempt == 2 or not is_port_clash(exc):
                    raise

    def _wait_healthy(self) -> None:
        """Until ``/api/v2/monitor/health`` reports the scheduler and the dag-processor healthy."""
        deadline = time.monotonic() + self.start_timeout
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            for child in self.children.values():
                if not child.alive():
                    raise StackProcessError(
                        f"{child.name} exited with code {child.popen.returncode}; log {child.log_path}:\n"
                        f"{child.log_tail(60)}"
                    )
            try:
                health = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=10).json()
            except (httpx.HTTPError, ValueError):
                health = {}
            components = ("metadatabase", "scheduler", "dag_processor")
            if all((health.get(c) or {}).get("status") == "healthy" for c in components):
                return
            time.sleep(1)
        tails = "\n".join(f"--- {c.name} ---\n{c.log_tail(30)}" for c in self.children.values())
        raise StackProcessError(
            f"Airflow services not healthy after {self.start_timeout:.0f}s: {health}\n{tails}"
        )


def _log_line(record: Any) -> str:
    """One structured log record of the log API as a text line."""
    if not isinstance(record, dict):
        return str(record)
    head = " ".join(str(record[k]) for k in ("timestamp", "level") if record.get(k))
    rest = {k: v for k, v in record.items() if k not in ("timestamp", "level", "event")}
    return f"{head} {record.get('event', '')}" + (f" {json.dumps(rest, default=str)}" if rest else "")
