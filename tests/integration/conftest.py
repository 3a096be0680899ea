"""Integration tests: the local stack (PostgreSQL + Redshift shim + fake-gcs-server), shared by the
session, and the ``integration`` marker on every test in this folder."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects, so `-m "not integration"` sees the marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``integration`` (the hook sees the whole session's items)."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack():
    """The real local stack (PostgreSQL + Redshift shim + fake-gcs-server), shared by the session."""
    from rs2gcs_devstack.stack import LocalStack  # imported here: the unit tests never need the devstack

    with LocalStack() as local_stack:
        yield local_stack


@pytest.fixture
def stack_env(stack, monkeypatch):
    """Point in-process hooks at the local stack (connections and STORAGE_EMULATOR_HOST)."""
    for key, value in stack.airflow_env().items():
        monkeypatch.setenv(key, value)
    return stack
