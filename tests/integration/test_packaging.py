"""The provider is installable and registered with Airflow."""

from __future__ import annotations

import pytest

from rs2gcs_devstack.airflow_home import AirflowHome


@pytest.mark.integration
def test_airflow_providers_list_shows_the_provider():
    with AirflowHome() as home:
        output = home.run("providers", "list").stdout
    assert "airflow-provider-rs2gcs" in output
