"""One export through the engine with the real hooks, as ``RedshiftToGCSOperator`` runs it.

Shared by the engine and fault tests; it needs the stack's connections in the environment (the
``stack_env`` fixture, or ``stack.airflow_env()``).
"""

from __future__ import annotations

from typing import Any


def export_through_engine(
    sql: str,
    bucket: str,
    prefix: str,
    data_interval: tuple[str, str],
    dag_id: str,
    contract: Any = None,
    verify: str | None = None,
    key_query: str | None = None,
    **settings: Any,
) -> Any:
    """Run ``sql`` into ``gs://bucket/prefix/`` with ``ExportSettings(**settings)``, an optional
    ``DataContract`` and run_export's ``verify`` and ``key_query``; the ExportResult."""
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    from airflow_rs2gcs.engine.export import run_export
    from airflow_rs2gcs.engine.settings import ExportSettings

    connection = RedshiftSQLHook(redshift_conn_id="rs2gcs_redshift").get_conn()
    try:
        return run_export(
            connection=connection,
            gcs_hook=GCSHook(gcp_conn_id="rs2gcs_gcs"),
            sql=sql,
            bucket=bucket,
            object_prefix=prefix,
            settings=ExportSettings(**settings),
            data_interval=data_interval,
            manifest_extra={"dag_id": dag_id, "task_id": "t"},
            contract=contract,
            verify=verify,
            key_query=key_query,
        )
    finally:
        connection.close()
