"""The README's main job (``make demo`` runs this module) exits 0 and leaves no process behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REPO_ROOT = Path(__file__).resolve().parents[2]

STACK_PROCESS = re.compile(r"bin/postgres|fake-gcs-server|rs2gcs_devstack\.shim|airflow dags test")


def _stack_processes() -> set[int]:
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if STACK_PROCESS.search(cmdline):
                pids.add(int(entry))
    return pids


def test_demo_exits_zero_with_matching_counts_and_stops_everything():
    before = _stack_processes()
    result = subprocess.run(
        [sys.executable, "-m", "rs2gcs_devstack.demo"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=840,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "demo ok: 4 tables, 125820 rows, row counts match" in result.stdout
    assert "MISMATCH" not in result.stdout
    assert _stack_processes() - before == set()
