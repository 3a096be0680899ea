"""Shared fixtures: one local stack per session, and a throwaway AIRFLOW_HOME for in-process Airflow."""

from __future__ import annotations

import os
import tempfile

# In-process Airflow (hooks, DagBag) must never touch ~/airflow: give this session its own home
# before anything imports airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="rs2gcs-test-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

import pytest


@pytest.fixture(scope="session")
def stack():
    """The real local stack (PostgreSQL + Redshift shim + fake-gcs-server), shared by the session."""
    from rs2gcs_devstack.stack import LocalStack  # only tests that need the stack need the devstack

    with LocalStack() as local_stack:
        yield local_stack


@pytest.fixture
def stack_env(stack, monkeypatch):
    """Point in-process hooks at the local stack (connections and STORAGE_EMULATOR_HOST)."""
    for key, value in stack.airflow_env().items():
        monkeypatch.setenv(key, value)
    return stack
