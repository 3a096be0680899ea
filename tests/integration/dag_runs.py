"""Shared by the lifecycle tests: several ``airflow dags test`` runs in ONE Python process.

Each run is the CLI's own ``dags test`` command (``airflow.cli`` parses the same arguments and calls
the same function: the DAG file is parsed again, synced to the metadata DB, and one DAG run executes
its real tasks), so a run sees the Variable the previous run wrote. Only the interpreter start and the
imports are shared: on two busy cores that saves 10-20 s per run. After each run the ``rs2gcs_tenants``
Variable is read back from the metadata DB.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from rs2gcs_devstack.airflow_home import AirflowHome

START, END = "=== rs2gcs-test run start ===", "=== rs2gcs-test run end === "

RUNNER = f"""
import json, sys, traceback
from airflow.cli import cli_parser
from airflow.models.variable import Variable

parser = cli_parser.get_parser()
for argv in json.load(open(sys.argv[1])):
    print({START!r}, flush=True)
    code = 0
    try:
        args = parser.parse_args(argv)
        args.func(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush(); sys.stderr.flush()
    text = Variable.get("rs2gcs_tenants", default_var=None)
    print({END!r} + json.dumps({{"code": code, "tenants": json.loads(text) if text else {{}}}}), flush=True)
"""


@dataclass
class Run:
    """One ``dags test`` run: its argv, exit code, output (task logs included) and the Variable after it."""

    argv: list[str]
    code: int
    output: str
    tenants: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.code == 0


def dags_test(dag_id: str, conf: dict[str, Any] | None = None, *extra: str) -> list[str]:
    """The argv of ``airflow dags test <dag_id> [extra] [--conf <conf>]``."""
    argv = ["dags", "test", dag_id, *extra]
    return [*argv, "--conf", json.dumps(conf)] if conf is not None else argv


def run_batch(home: AirflowHome, *argvs: list[str], timeout: float = 1500) -> list[Run]:
    """Run each argv in order in one process; one :class:`Run` each."""
    plan = home.path / "runs.json"
    plan.write_text(json.dumps(list(argvs)))
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(plan)],
        env=home.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    pieces = result.stdout.split(START)[1:]
    if len(pieces) != len(argvs) or result.returncode != 0:
        raise AssertionError(f"the runner stopped early (exit {result.returncode}):\n{result.stdout[-5000:]}")
    runs = []
    for argv, piece in zip(argvs, pieces, strict=True):
        output, _, summary = piece.rpartition(END)
        outcome = json.loads(summary.splitlines()[0])
        runs.append(Run(argv, outcome["code"], output, outcome["tenants"]))
    return runs
