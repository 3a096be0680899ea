"""rs2gcs: one sync DAG per tenant of the ``rs2gcs_tenants`` Variable (see the README)."""

from airflow_rs2gcs.loader import load_dags

globals().update(load_dags())
