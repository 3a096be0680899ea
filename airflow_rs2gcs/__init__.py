"""Apache Airflow provider: self-service, scheduled Amazon Redshift to Google Cloud Storage syncs."""

from __future__ import annotations

__version__ = "0.1.0"


def get_provider_info() -> dict:
    """Describe this provider to Airflow's ProvidersManager (``apache_airflow_provider`` entry point)."""
    return {
        "package-name": "airflow-provider-rs2gcs",
        "name": "Redshift to GCS (rs2gcs)",
        "description": "Per-tenant, scheduled Amazon Redshift to Google Cloud Storage syncs built from "
        "the ``rs2gcs_tenants`` Airflow Variable.",
        "versions": [__version__],
    }
