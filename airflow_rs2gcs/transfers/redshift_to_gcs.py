"""RedshiftToGCSOperator: a Redshift query into GCS objects plus a manifest, exactly once per interval."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
from airflow.providers.google.cloud.hooks.gcs import GCSHook
from airflow.sdk import BaseOperator

from airflow_rs2gcs.engine.encoders import check_format
from airflow_rs2gcs.engine.export import ExportSettings, run_export
from airflow_rs2gcs.engine.paths import check_object_prefix
from airflow_rs2gcs.sql import windowed

if TYPE_CHECKING:
    from airflow.sdk import Context


class RedshiftToGCSOperator(BaseOperator):
    """Copy the result of a Redshift query into ``gs://<bucket>/<object_prefix>/``, then publish a manifest.

    Rows are streamed through a server-side cursor (bounded memory), encoded as Parquet, CSV or JSON
    Lines, rolled into files of at most ``max_file_bytes`` and uploaded while the next batch is read.
    ``<object_prefix>/_manifest.json`` is written last; an earlier try's objects in the same folder
    that the new manifest does not list are deleted, so re-running an interval never duplicates rows.

    :param sql: the SELECT to export (templated; ``.sql`` files are read).
    :param bucket: target GCS bucket (templated).
    :param object_prefix: folder of this export inside the bucket, e.g.
        ``exports/acme/orders/dt={{ ds }}`` (templated). Absolute paths and ``..`` are refused.
    :param redshift_conn_id: Airflow connection of type ``redshift``.
    :param gcp_conn_id: Airflow connection of type ``google_cloud_platform``.
    :param export_format: ``parquet`` (default), ``csv`` or ``jsonl``.
    :param compression: ``snappy`` (Parquet default), ``zstd``, ``gzip`` or ``none``.
    :param incremental_column: when set, only rows with
        ``data_interval_start <= incremental_column < data_interval_end`` are exported (templated).
    :param fetch_size: rows per FETCH FORWARD (at most 1000 on single-node Redshift clusters).
    :param max_file_bytes: size at which a new data file is started.
    :param max_uploads_in_flight: uploads running or queued at once.
    :param impersonation_chain: optional service account(s) to impersonate for GCS (templated).
    """

    template_fields: Sequence[str] = (
        "sql",
        "bucket",
        "object_prefix",
        "incremental_column",
        "impersonation_chain",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql"}
    ui_color = "#a3c9f1"

    def __init__(
        self,
        *,
        sql: str,
        bucket: str,
        object_prefix: str,
        redshift_conn_id: str = "redshift_default",
        gcp_conn_id: str = "google_cloud_default",
        export_format: str = "parquet",
        compression: str | None = None,
        incremental_column: str | None = None,
        fetch_size: int = 10_000,
        max_file_bytes: int = 256 * 1024 * 1024,
        max_uploads_in_flight: int = 2,
        impersonation_chain: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sql = sql
        self.bucket = bucket
        self.object_prefix = object_prefix
        self.redshift_conn_id = redshift_conn_id
        self.gcp_conn_id = gcp_conn_id
        self.export_format = export_format
        self.compression = check_format(export_format, compression)
        self.incremental_column = incremental_column
        self.fetch_size = fetch_size
        self.max_file_bytes = max_file_bytes
        self.max_uploads_in_flight = max_uploads_in_flight
        self.impersonation_chain = impersonation_chain

    def _query(self, context: Context) -> str:
        if not self.incremental_column:
            return self.sql
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is None or end is None:
            raise ValueError(
                f"incremental export on {self.incremental_column!r} needs a data interval, and this run has "
                "none; trigger it with a logical date or run it as a full refresh"
            )
        return windowed(self.sql, self.incremental_column, start, end)

    def execute(self, context: Context) -> dict[str, Any]:
        object_prefix = check_object_prefix(self.object_prefix)
        sql = self._query(context)
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        interval = (start.isoformat() if start else None, end.isoformat() if end else None)
        settings = ExportSettings(
            export_format=self.export_format,
            compression=self.compression,
            fetch_size=self.fetch_size,
            max_file_bytes=self.max_file_bytes,
            max_uploads_in_flight=self.max_uploads_in_flight,
        )
        gcs_hook = GCSHook(gcp_conn_id=self.gcp_conn_id, impersonation_chain=self.impersonation_chain)
        connection = RedshiftSQLHook(redshift_conn_id=self.redshift_conn_id).get_conn()
        try:
            result = run_export(
                connection=connection,
                gcs_hook=gcs_hook,
                sql=sql,
                bucket=self.bucket,
                object_prefix=object_prefix,
                settings=settings,
                data_interval=interval,
                manifest_extra={"dag_id": self.dag_id, "task_id": self.task_id},
            )
        finally:
            connection.close()
        return {
            **asdict(result),
            "bucket": self.bucket,
            "object_prefix": object_prefix,
            "data_interval_start": interval[0],
            "data_interval_end": interval[1],
        }
