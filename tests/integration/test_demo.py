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


def _stack_processes() -> dict[int, int]:
    """Local-stack processes on this machine: pid -> parent pid."""
    pids = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if STACK_PROCESS.search(cmdline):
                pids[int(entry)] = parent
    return pids


def _left_behind(before: dict[int, int], after: dict[int, int]) -> set[int]:
    """New stack processes that were orphaned (their parent, the demo, is gone), and their children.

    Stacks of other test sessions on the same machine start and stop meanwhile; their processes keep a
    live parent, so only what the demo itself left behind counts.
    """
    new = {pid: parent for pid, parent in after.items() if pid not in before}
    leaked = {pid for pid, parent in new.items() if parent == 1}
    while grown := {pid for pid, parent in new.items() if parent in leaked} - leaked:
        leaked |= grown
    return leaked


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
    assert _left_behind(before, _stack_processes()) == set()
