"""RedshiftTablesToGCSOperator: several tables in one task, exported concurrently, one outcome each."""

from __future__ import annotations

import logging
import queue
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_rs2gcs.engine.paths import check_object_prefix
from airflow_rs2gcs.engine.settings import SINGLE_NODE_MAX_FETCH, ExportSettings, check_format, check_verify
from airflow_rs2gcs.transfers.redshift_to_gcs import (
    DEFAULTS,
    check_capture_deletes,
    emit_asset_events,
    export_outcome,
    key_query,
    run_interval,
    windowed_query,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

# The keys of one entry of ``tables``.
TABLE_KEYS = (
    "table",
    "sql",
    "object_prefix",
    "incremental_column",
    "fetch_method",
    "verify",
    "capture_deletes",
    "primary_key",
)


class TablesFailed(RuntimeError):
    """Some tables of a task failed; the others were exported and their outcomes kept."""


class _Connections:
    """Redshift connections handed from one table's export to the next, one per thread at a time.

    A connection is reused only after an export that succeeded (the reader rolls its transaction back,
    leaving it clean); after a failure it is closed, as its session state is unknown.
    """

    def __init__(self, redshift_conn_id: str) -> None:
        self.redshift_conn_id = redshift_conn_id
        self.idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.opened: list[Any] = []

    def take(self) -> Any:
        try:
            return self.idle.get_nowait()
        except queue.Empty:
            from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

            connection = RedshiftSQLHook(redshift_conn_id=self.redshift_conn_id).get_conn()
            self.opened.append(connection)
            return connection

    def give_back(self, connection: Any) -> None:
        self.idle.put(connection)

    def close_all(self) -> None:
        for connection in self.opened:
            try:
                connection.close()
            except Exception:  # already closed after a failure, or the server went away
                log.debug("closing a Redshift connection failed", exc_info=True)


class RedshiftTablesToGCSOperator(BaseOperator):
    """Export each of ``tables`` as :class:`~airflow_rs2gcs.transfers.redshift_to_gcs.RedshiftToGCSOperator`
    would, up to ``concurrency`` at once, each into its own folder with its own manifest.

    The sync DAG maps this operator over groups of tables: a large table gets a task of its own, small
    ones share one (see :mod:`airflow_rs2gcs.grouping`). Every table is tried, whatever happens to the
    others: the task returns one outcome per table (rows, bytes, objects, manifest, folder, interval,
    and ``table``) and emits one Asset event per table through each ``AssetAlias`` outlet. When a table
    fails, the task pushes the outcomes of the tables that succeeded as its return value, then fails
    naming the failed tables.

    A retry of the task (``try_number`` > 1) keeps a table whose folder already holds a manifest of
    this plan (same ``plan_id``, same query): it reports that manifest's outcome instead of exporting
    again, so a retry redoes only the tables that failed.

    :param tables: the tables to export (templated): dicts with ``table`` (its name, for logs and
        outcomes), ``sql``, ``object_prefix``, ``incremental_column`` (``None``: full),
        ``fetch_method``, and optionally ``verify``, ``capture_deletes`` and ``primary_key``, as for
        ``RedshiftToGCSOperator``.
    :param bucket: target GCS bucket (templated).
    :param redshift_conn_id: Airflow connection of type ``redshift``.
    :param gcp_conn_id: Airflow connection of type ``google_cloud_platform``.
    :param export_format: ``parquet`` (default), ``csv`` or ``jsonl``.
    :param compression: as for ``RedshiftToGCSOperator``.
    :param fetch_size: rows per ``FETCH FORWARD``.
    :param single_node_cluster: caps ``fetch_size`` at 1000 rows.
    :param batch_rows: rows decoded at a time.
    :param max_file_bytes: size at which a data file is finished and uploaded.
    :param max_uploads_in_flight: uploads running or queued at once, per table.
    :param impersonation_chain: optional service account(s) to impersonate for GCS (templated).
    :param plan_id: the id of the plan that made ``tables``, recorded in each manifest; a retry keeps
        only manifests of the same plan (a new run, or a whole run cleared, plans anew and re-exports).
    :param tables_label: how the task is named in the UI (its rendered map index).
    :param concurrency: tables exported at once; default: the pool slots the task holds.
    """

    template_fields: Sequence[str] = ("tables", "bucket", "impersonation_chain")
    template_fields_renderers = {"tables": "json"}
    ui_color = "#a3c9f1"

    def __init__(
        self,
        *,
        tables: list[dict[str, Any]],
        bucket: str,
        redshift_conn_id: str = "redshift_default",
        gcp_conn_id: str = "google_cloud_default",
        export_format: str = "parquet",
        compression: str | None = None,
        fetch_size: int = DEFAULTS.fetch_size,
        single_node_cluster: bool = False,
        batch_rows: int = DEFAULTS.batch_rows,
        max_file_bytes: int = DEFAULTS.max_file_bytes,
        max_uploads_in_flight: int = DEFAULTS.max_uploads_in_flight,
        impersonation_chain: str | Sequence[str] | None = None,
        plan_id: str | None = None,
        tables_label: str = "",
        concurrency: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tables = tables
        self.bucket = bucket
        self.redshift_conn_id = redshift_conn_id
        self.gcp_conn_id = gcp_conn_id
        self.export_format = export_format
        self.compression = check_format(export_format, compression)
        self.fetch_size = min(fetch_size, SINGLE_NODE_MAX_FETCH) if single_node_cluster else fetch_size
        self.single_node_cluster = single_node_cluster
        self.batch_rows = batch_rows
        self.max_file_bytes = max_file_bytes
        self.max_uploads_in_flight = max_uploads_in_flight
        self.impersonation_chain = impersonation_chain
        self.plan_id = plan_id
        self.tables_label = tables_label
        self.concurrency = concurrency

    def settings(self, fetch_method: str) -> ExportSettings:
        """The engine settings of one table's export."""
        return ExportSettings(
            export_format=self.export_format,
            compression=self.compression,
            fetch_size=self.fetch_size,
            batch_rows=self.batch_rows,
            max_file_bytes=self.max_file_bytes,
            max_uploads_in_flight=self.max_uploads_in_flight,
            fetch_method=fetch_method,
        )

    def workers(self) -> int:
        """Tables exported at once: ``concurrency``, else the pool slots this task holds."""
        return max(1, min(len(self.tables), self.concurrency or self.pool_slots or 1))

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        ti = context.get("ti")
        retry = bool(ti is not None and (ti.try_number or 1) > 1)
        gcs_hook = GCSHook(gcp_conn_id=self.gcp_conn_id, impersonation_chain=self.impersonation_chain)
        connections = _Connections(self.redshift_conn_id)
        names = [str(t["table"]) for t in self.tables]
        self.log.info("exporting %d table(s), %d at a time: %s", len(names), self.workers(), ", ".join(names))
        try:
            with ThreadPoolExecutor(self.workers(), thread_name_prefix="rs2gcs-table") as pool:
                futures = [
                    pool.submit(self._sync_table, table, context, gcs_hook, connections, retry)
                    for table in self.tables
                ]
                settled = [(name, _settle(name, future)) for name, future in zip(names, futures, strict=True)]
        finally:
            connections.close_all()
        outcomes = [result for _, result in settled if isinstance(result, dict)]
        for outcome in outcomes:
            emit_asset_events(self.outlets, context, self.bucket, outcome)
        failed = {name: result for name, result in settled if isinstance(result, BaseException)}
        if failed:
            if ti is not None:  # the return value a failed task never gets: the others' outcomes
                ti.xcom_push(key="return_value", value=outcomes)
            details = "; ".join(f"{name}: {type(exc).__name__}: {exc}" for name, exc in failed.items())
            raise TablesFailed(
                f"{len(failed)} of {len(names)} table(s) failed ({details}); the other tables' "
                "exports and manifests stand, and a retry exports only the failed ones"
            )
        return outcomes

    def _sync_table(
        self, table: dict[str, Any], context: Context, gcs_hook: Any, connections: _Connections, retry: bool
    ) -> dict[str, Any]:
        from airflow_rs2gcs.engine.export import run_export

        name = str(table["table"])
        object_prefix = check_object_prefix(table["object_prefix"])
        sql = windowed_query(table["sql"], table.get("incremental_column"), context)
        interval = run_interval(context)
        if retry:
            kept = self._kept_outcome(gcs_hook, name, object_prefix, sql, interval)
            if kept is not None:
                return kept
        settings = self.settings(table.get("fetch_method") or DEFAULTS.fetch_method)
        verify = check_verify(table.get("verify"))
        capture_deletes, primary_key = bool(table.get("capture_deletes")), table.get("primary_key") or []
        check_capture_deletes(capture_deletes, primary_key)
        mode = f"incremental on {table['incremental_column']}" if table.get("incremental_column") else "full"
        self.log.info("%s: exporting (%s) to gs://%s/%s", name, mode, self.bucket, object_prefix)
        connection = connections.take()
        try:
            result = run_export(
                connection=connection,
                gcs_hook=gcs_hook,
                sql=sql,
                bucket=self.bucket,
                object_prefix=object_prefix,
                settings=settings,
                data_interval=interval,
                manifest_extra={"dag_id": self.dag_id, "task_id": self.task_id, "plan_id": self.plan_id},
                table=name,
                verify=verify,
                key_query=key_query(table["sql"], capture_deletes, primary_key),
            )
        except BaseException:
            connection.close()
            raise
        connections.give_back(connection)
        return {"table": name, **export_outcome(asdict(result), self.bucket, object_prefix, interval)}

    def _kept_outcome(
        self, gcs_hook: Any, name: str, object_prefix: str, sql: str, interval: tuple[str | None, str | None]
    ) -> dict[str, Any] | None:
        """The outcome of an earlier try of this plan that already published this table, if any."""
        from airflow_rs2gcs.engine.manifest import read_manifest
        from airflow_rs2gcs.engine.paths import manifest_object_name

        manifest = read_manifest(gcs_hook, self.bucket, object_prefix)
        if not manifest or self.plan_id is None or manifest.get("plan_id") != self.plan_id:
            return None
        if manifest.get("source_query") != sql:
            return None
        self.log.info("%s: kept gs://%s/%s/ (published by an earlier try)", name, self.bucket, object_prefix)
        result = {
            "rows": int(manifest.get("rows", 0)),
            "bytes": int(manifest.get("bytes", 0)),
            "objects": len(manifest.get("objects") or []),
            "manifest": manifest_object_name(object_prefix),
        }
        return {"table": name, **export_outcome(result, self.bucket, object_prefix, interval), "kept": True}


def _settle(name: str, future: Any) -> dict[str, Any] | BaseException:
    """A table's outcome, or the exception that failed it (logged here, with its traceback)."""
    try:
        result: dict[str, Any] = future.result()
    except Exception as exc:
        log.error("%s: failed: %s", name, exc, exc_info=exc)
        return exc
    return result
