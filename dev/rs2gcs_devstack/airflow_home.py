"""A throwaway AIRFLOW_HOME (SQLite metadata DB) and a runner for the real ``airflow`` CLI in it."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT_ENV = "RS2GCS_REPO_ROOT"


class AirflowCommandError(RuntimeError):
    """An ``airflow`` command exited non-zero; the message carries the tail of its output."""


class RepoNotFoundError(RuntimeError):
    """The provider's checkout (with its ``dags/``) cannot be found from here; the message says how."""


def repo_root() -> Path:
    """The airflow-provider-rs2gcs checkout: ``$RS2GCS_REPO_ROOT``, else the one this package lives in.

    ``make`` installs this package editable from ``<checkout>/dev``, so its source sits two levels
    below the checkout. Installed any other way (a wheel in site-packages, a container) it cannot know
    where a checkout is: set ``RS2GCS_REPO_ROOT``. Checked by the file the demo and the tests need.
    """
    configured = os.environ.get(REPO_ROOT_ENV)
    root = Path(configured).resolve() if configured else Path(__file__).resolve().parents[2]
    if not (root / "dags" / "rs2gcs.py").is_file():
        found_by = f"${REPO_ROOT_ENV}" if configured else f"the location of {Path(__file__).parent}"
        raise RepoNotFoundError(
            f"{root} (from {found_by}) is not an airflow-provider-rs2gcs checkout: it has no dags/rs2gcs.py. "
            f"Install rs2gcs-devstack editable from the checkout (`make` does: uv pip install -e '.[test]') "
            f"or set {REPO_ROOT_ENV} to the checkout."
        )
    return root


def default_dags_folder() -> Path:
    """The checkout's ``dags/`` (the one DAG file that calls the factory)."""
    return repo_root() / "dags"


def _migrated_template() -> Path:
    """Where this process keeps a freshly migrated SQLite metadata DB (removed at exit)."""
    global _TEMPLATE_DIR
    if _TEMPLATE_DIR is None:
        _TEMPLATE_DIR = Path(tempfile.mkdtemp(prefix="rs2gcs-migrated-"))
        atexit.register(shutil.rmtree, _TEMPLATE_DIR, ignore_errors=True)
    return _TEMPLATE_DIR / "airflow.db"


_TEMPLATE_DIR: Path | None = None
_TEMPLATE_LOCK = threading.Lock()


class AirflowHome:
    """A temporary AIRFLOW_HOME with its own metadata DB, and the environment to run Airflow in it.

    :param extra_env: added to every command's environment (connections, STORAGE_EMULATOR_HOST, ...).
    :param dags_folder: the DAGs folder (default: the checkout's ``dags/``, see :func:`default_dags_folder`).
    """

    def __init__(self, extra_env: Mapping[str, str] | None = None, dags_folder: Path | None = None) -> None:
        folder = dags_folder if dags_folder is not None else default_dags_folder()
        self.path = Path(tempfile.mkdtemp(prefix="rs2gcs-airflow-"))
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.path),
            "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.path / "logs"),
            # The DAG file parses in about 5 s here; Airflow's 30 s limit is too tight when the test
            # suite's two workers each run several Airflow processes on two cores.
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
            **(extra_env or {}),
        }

    def __enter__(self) -> AirflowHome:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the home directory and everything in it."""
        shutil.rmtree(self.path, ignore_errors=True)

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` with this home; raise :class:`AirflowCommandError` on failure."""
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-60:])
            raise AirflowCommandError(f"`airflow {' '.join(args)}` exited {result.returncode}:\n{tail}")
        return result

    def migrate(self) -> None:
        """Create the metadata DB: migrated once per process, then copied (``db migrate`` costs seconds).

        Only the default SQLite DB (``$AIRFLOW_HOME/airflow.db``) is copied; a home given another
        ``sql_alchemy_conn`` is migrated each time.
        """
        db = self.path / "airflow.db"
        if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in self.env:
            self.run("db", "migrate")
            return
        with _TEMPLATE_LOCK:
            template = _migrated_template()
            if not template.exists():
                self.run("db", "migrate")
                shutil.copy2(db, template)
                return
        shutil.copy2(template, db)

    def set_variable(self, key: str, value: Any) -> None:
        """Write a Variable to the metadata DB (JSON-encoded unless already a string).

        Through ``variables import`` of a file: one command-line argument is capped at 128 KiB, which
        a few hundred tenants exceed.
        """
        text = value if isinstance(value, str) else json.dumps(value)
        path = self.path / f"variable-{key}.json"
        path.write_text(json.dumps({key: {"value": text}}))
        try:
            self.run("variables", "import", str(path))
        finally:
            path.unlink(missing_ok=True)
