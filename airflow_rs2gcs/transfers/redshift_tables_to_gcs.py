"""RedshiftTablesToGCSOperator: several tables in one task, exported concurrently, one outcome each."""

from __future__ import annotations

import logging
import queue
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_rs2gcs.engine.paths import check_object_prefix
from airflow_rs2gcs.engine.settings import SINGLE_NODE_MAX_FETCH, ExportSettings, check_format, check_verify
from airflow_rs2gcs.transfers.redshift_to_gcs import (
    DEFAULTS,
    check_capture_deletes,
    check_contract,
    check_keys_exported,
    data_contract,
    emit_asset_events,
    export_outcome,
    key_query,
    run_interval,
    windowed_query,
)

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from airflow_rs2gcs.transfers.lineage import TableExport

log = logging.getLogger(__name__)

# The keys of one entry of ``tables``.
TABLE_KEYS = (
    "table",
    "sql",
    "object_prefix",
    "incremental_column",
    "fetch_method",
    # The data contract (optional; see RedshiftToGCSOperator).
    "on_schema_change",
    "columns",
    "exclude_columns",
    "hash_columns",
    # Checks (optional; see RedshiftToGCSOperator).
    "verify",
    "capture_deletes",
    "primary_key",
)


class TablesFailed(RuntimeError):
    """Some tables of a task failed; the others were exported and their outcomes kept."""


class TablesRefusedByContract(TablesFailed, AirflowFailException):
    """Every failed table was refused by its data contract (schema drift with ``fail``, an unknown
    column): a retry would be refused the same way, so the task fails without retrying."""


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
    naming the failed tables; when every failed table was refused by its data contract (schema drift
    with ``on_schema_change='fail'``, an unknown column) it fails without a retry, which would be
    refused the same way.

    A retry of the task (``try_number`` > 1) keeps a table whose folder already holds a manifest of
    this plan (same ``plan_id``, same query): it reports that manifest's outcome instead of exporting
    again, so a retry redoes only the tables that failed.

    OpenLineage (with the ``openlineage`` extra installed): every table is an input and its folder an
    output, named as by ``RedshiftToGCSOperator``; on completion (or failure) each exported table's
    output carries its rows, bytes and files.

    :param tables: the tables to export (templated): dicts with ``table`` (its name, for logs and
        outcomes), ``sql``, ``object_prefix``, ``incremental_column`` (``None``: full) and
        ``fetch_method``, as for ``RedshiftToGCSOperator``, and optionally its data contract:
        ``on_schema_change``, ``columns``, ``exclude_columns`` and ``hash_columns``, and its checks:
        ``verify``, ``capture_deletes`` and ``primary_key``.
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
    :param hash_key_conn_id: Airflow connection whose password is the HMAC key of every table's
        ``hash_columns`` (the tenant's ``hash_key_conn_id``).
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
        hash_key_conn_id: str | None = None,
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
        self.hash_key_conn_id = hash_key_conn_id
        if isinstance(tables, list):  # a mapped task gets its tables at run time, checked there
            for table in tables:
                self._contract_of(table)

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

    def _contract_of(self, table: dict[str, Any]) -> tuple[str, list[str] | None, list[str], list[str]]:
        """A table entry's contract keys, checked; (on_schema_change, columns, exclude, hash)."""
        columns = table.get("columns")
        keys = (
            str(table.get("on_schema_change") or "evolve"),
            list(columns) if columns is not None else None,
            list(table.get("exclude_columns") or ()),
            list(table.get("hash_columns") or ()),
        )
        where = f"{self.task_id}: table {table.get('table')!r}"
        check_contract(where, *keys, self.hash_key_conn_id)
        if table.get("capture_deletes"):
            check_keys_exported(where, table.get("primary_key") or (), keys[1], keys[2])
        return keys

    def workers(self) -> int:
        """Tables exported at once: ``concurrency``, else the pool slots this task holds."""
        return max(1, min(len(self.tables), self.concurrency or self.pool_slots or 1))

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        ti = context.get("ti")
        retry = bool(ti is not None and (ti.try_number or 1) > 1)
        gcs_hook = GCSHook(gcp_conn_id=self.gcp_conn_id, impersonation_chain=self.impersonation_chain)
        connections = _Connections(self.redshift_conn_id)
        self._lineage_exports: dict[str, TableExport] = {}
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
            if all(_refused_by_contract(exc) for exc in failed.values()):
                raise TablesRefusedByContract(
                    f"{len(failed)} of {len(names)} table(s) refused by their data contract ({details}); "
                    "the other tables' exports and manifests stand; not retried, as a retry would be "
                    "refused the same way"
                )
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
            kept, manifest = self._kept_outcome(gcs_hook, name, object_prefix, interval)
            if kept is not None:
                schema = manifest.get("schema") or ()
                self._lineage_exports[name] = self._planned_export(table).exported(kept, schema)
                return kept
        settings = self.settings(table.get("fetch_method") or DEFAULTS.fetch_method)
        verify = check_verify(table.get("verify"))
        capture_deletes, primary_key = bool(table.get("capture_deletes")), table.get("primary_key") or []
        check_capture_deletes(capture_deletes, primary_key)
        mode = f"incremental on {table['incremental_column']}" if table.get("incremental_column") else "full"
        self.log.info("%s: exporting (%s) to gs://%s/%s", name, mode, self.bucket, object_prefix)
        contract = data_contract(*self._contract_of(table), self.hash_key_conn_id)
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
                contract=contract,
                verify=verify,
                key_query=key_query(table["sql"], capture_deletes, primary_key),
            )
        except BaseException:
            connection.close()
            raise
        connections.give_back(connection)
        outcome = export_outcome(asdict(result), self.bucket, object_prefix, interval)
        self._lineage_exports[name] = self._planned_export(table).exported(outcome, result.schema)
        return {"table": name, **outcome}

    def _kept_outcome(
        self, gcs_hook: Any, name: str, object_prefix: str, interval: tuple[str | None, str | None]
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """The outcome of an earlier try of this plan that already published this table (if any), and
        the manifest read."""
        from airflow_rs2gcs.engine.manifest import read_manifest
        from airflow_rs2gcs.engine.paths import manifest_object_name

        manifest = read_manifest(gcs_hook, self.bucket, object_prefix)
        # The plan id pins the query, window and options of every try; the manifest's source_query
        # cannot be compared with ``sql``, since a column projection rewrites it at export time.
        if not manifest or self.plan_id is None or manifest.get("plan_id") != self.plan_id:
            return None, {}
        self.log.info("%s: kept gs://%s/%s/ (published by an earlier try)", name, self.bucket, object_prefix)
        result = {
            "rows": int(manifest.get("rows", 0)),
            "bytes": int(manifest.get("bytes", 0)),
            "objects": len(manifest.get("objects") or []),
            "manifest": manifest_object_name(object_prefix),
            "schema_change": manifest.get("schema_change"),
        }
        outcome = {
            "table": name,
            **export_outcome(result, self.bucket, object_prefix, interval),
            "kept": True,
        }
        return outcome, manifest

    # OpenLineage: called by the openlineage provider's listener, which logs and drops what they raise.
    # The lineage module is imported only when a task runs, never when a DAG is parsed.
    def _planned_export(self, table: dict[str, Any]) -> TableExport:
        from airflow_rs2gcs.transfers.lineage import TableExport

        return TableExport(str(table["sql"]), self.bucket, str(table["object_prefix"]))

    def _table_exports(self) -> list[TableExport]:
        """Per table, what it published if it was exported, else what was planned."""
        done = getattr(self, "_lineage_exports", {})
        return [done.get(str(t["table"])) or self._planned_export(t) for t in self.tables]

    def get_openlineage_facets_on_start(self) -> OperatorLineage | None:
        """Every table's input tables and the folder it writes."""
        from airflow_rs2gcs.transfers.lineage import task_lineage

        return task_lineage(self.redshift_conn_id, [self._planned_export(t) for t in self.tables])

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """As on start, with each exported table's columns and rows, bytes and files."""
        from airflow_rs2gcs.transfers.lineage import task_lineage

        return task_lineage(self.redshift_conn_id, self._table_exports())


def _refused_by_contract(exc: BaseException) -> bool:
    from airflow_rs2gcs.engine.contract import ContractError
    from airflow_rs2gcs.engine.drift import SchemaDrift

    return isinstance(exc, SchemaDrift | ContractError)


def _settle(name: str, future: Any) -> dict[str, Any] | BaseException:
    """A table's outcome, or the exception that failed it (logged here, with its traceback)."""
    try:
        result: dict[str, Any] = future.result()
    except Exception as exc:
        log.error("%s: failed: %s", name, exc, exc_info=exc)
        return exc
    return result
