"""Upload retries against a GCS endpoint where nothing listens: the client's own retries are bounded."""

from __future__ import annotations

import time

import pytest

from airflow_rs2gcs.engine.uploader import is_transient


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_dead_gcs_endpoint_fails_a_call_within_the_short_client_budget(monkeypatch):
    """Our tries bound the storage client's own retries (default 120 s), so a dead GCS fails a try soon."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook
    from rs2gcs_devstack.processes import free_port

    from airflow_rs2gcs.engine import uploader

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")  # nothing listens
    monkeypatch.setenv(
        "AIRFLOW_CONN_RS2GCS_DEAD_GCS",
        '{"conn_type": "google_cloud_platform", "extra": {"is_anonymous": true, "project": "p"}}',
    )
    monkeypatch.setattr(uploader, "UPLOAD_ATTEMPTS", 1)
    started = time.monotonic()
    with pytest.raises(Exception) as caught:
        uploader.delete_object(GCSHook(gcp_conn_id="rs2gcs_dead_gcs"), "bucket", "some/object")
    elapsed = time.monotonic() - started
    assert is_transient(caught.value), repr(caught.value)
    assert 1 < elapsed <= uploader.CLIENT_RETRY.timeout + 5, elapsed  # the client retried, briefly
