"""A throwaway AIRFLOW_HOME (SQLite metadata DB) and a runner for the real ``airflow`` CLI in it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO_ROOT / "dags"


class AirflowCommandError(RuntimeError):
    """An ``airflow`` command exited non-zero; the message carries the tail of its output."""


class AirflowHome:
    """A temporary AIRFLOW_HOME with its own metadata DB, and the environment to run Airflow in it.

    :param extra_env: added to every command's environment (connections, STORAGE_EMULATOR_HOST, ...).
    :param dags_folder: the DAGs folder (default: this repository's ``dags/``).
    """

    def __init__(self, extra_env: Mapping[str, str] | None = None, dags_folder: Path = DAGS_FOLDER) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="rs2gcs-airflow-"))
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.path),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.path / "logs"),
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
        """Create the metadata DB."""
        self.run("db", "migrate")

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
