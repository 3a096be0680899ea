"""RedshiftToGCSOperator: a Redshift query into GCS objects plus a manifest, exactly once per interval."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias, BaseOperator

from airflow_rs2gcs.engine.paths import check_object_prefix, dataset_root
from airflow_rs2gcs.engine.settings import (
    SINGLE_NODE_MAX_FETCH,
    ExportSettings,
    check_fetch_method,
    check_format,
    check_verify,
)
from airflow_rs2gcs.sql import quote_identifier, windowed

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from airflow_rs2gcs.transfers.lineage import TableExport

DEFAULTS = ExportSettings()


class RedshiftToGCSOperator(BaseOperator):
    """Copy the result of a Redshift query into ``gs://<bucket>/<object_prefix>/``, then publish a manifest.

    Rows stream through a server-side cursor (``DECLARE``/``FETCH FORWARD``, memory bounded by one batch)
    and are decoded column by column into Arrow, encoded as Parquet, CSV or JSON Lines with one type
    mapping (see ``docs/type-mapping.md``), rolled into files of about ``max_file_bytes`` and
    uploaded while the next batches are read. ``<object_prefix>/_manifest.json`` is written last;
    objects of an earlier try in the same folder that the new manifest does not list are deleted, so
    re-running an interval never duplicates rows, and a failed try leaves no manifest.

    Lineage: the table's Asset is ``gs://<bucket>/<object_prefix without trailing key=value
    partition segments>``. Through each ``AssetAlias`` in ``outlets`` the task emits an event for
    that Asset (this is how mapped tasks get one Asset per table); on each ``Asset`` outlet it sets the
    event's extra. The extra holds rows, bytes, objects, the manifest URI and the data interval.

    OpenLineage (with the ``openlineage`` extra installed): the input is the Redshift table
    (``redshift://<cluster>.<region>:<port>``, ``<database>.<schema>.<table>``; the tables a custom
    query reads come from the openlineage provider's SQL parser), the output is ``gs://<bucket>`` with
    the table's folder as name, and on completion its rows, bytes and files (see ``docs/operator.md``).

    :param sql: the SELECT to export (templated; ``.sql`` files are read).
    :param bucket: target GCS bucket (templated).
    :param object_prefix: folder of this export inside the bucket, e.g.
        ``exports/acme/orders/dt={{ ds }}`` (templated). Absolute paths and ``..`` are refused.
    :param redshift_conn_id: Airflow connection of type ``redshift``.
    :param gcp_conn_id: Airflow connection of type ``google_cloud_platform``.
    :param export_format: ``parquet`` (default), ``csv`` or ``jsonl``.
    :param compression: Parquet: ``snappy`` (default), ``zstd``, ``gzip`` or ``none``; CSV and JSON
        Lines: ``none`` (default) or ``gzip``.
    :param incremental_column: when set, only rows with
        ``data_interval_start <= incremental_column < data_interval_end`` are exported (templated);
        when ``None`` the whole result is (full mode).
    :param fetch_size: rows per ``FETCH FORWARD``.
    :param single_node_cluster: the cluster is single-node, which allows at most 1000 rows per FETCH;
        ``fetch_size`` is capped accordingly.
    :param batch_rows: rows decoded at a time (Parquet row groups gather about 64k rows).
    :param max_file_bytes: size at which a data file is finished, uploaded, and a new one started.
    :param max_uploads_in_flight: uploads running or queued at once.
    :param impersonation_chain: optional service account(s) to impersonate for GCS (templated).
    :param fetch_method: how rows are read (templated): ``auto`` (default) reads through the fast
        path and falls back to the driver's public API, with one warning, when the installed
        ``redshift_connector`` lacks what the fast path needs; ``wire`` only the fast path (an
        unsupported driver fails the task); ``driver`` only the public API (slower). Both paths
        write the same schema and values.
    :param on_schema_change: ``evolve`` (default) exports and records in the manifest
        (``schema_change``) how the columns differ from the last manifest under the table's dataset
        root; ``fail`` exports nothing while they differ (templated).
    :param columns: export only these columns, in this order (``None``: every column).
    :param exclude_columns: export every column but these.
    :param hash_columns: columns whose values become the lowercase hex HMAC-SHA256 of their CSV text
        form (NULL stays NULL; the column becomes a string column).
    :param hash_key_conn_id: Airflow connection whose password is the HMAC key; needed with
        ``hash_columns``.
    :param verify: ``"count"`` counts the rows of the query as exported (windowed, with the column
        projection) in the export's own snapshot and fails the task, publishing nothing, when the
        export wrote another number; the manifest records ``source_rows``. ``None`` (default): no count.
    :param capture_deletes: also write the whole current set of ``primary_key`` values of ``sql``
        (not windowed, not projected), read in the same snapshot, as ``<object_prefix>/_keys/part-*``
        objects listed under the manifest's ``keys``; consumers find deleted rows by an anti-join.
        A key column in ``hash_columns`` is hashed there too, with the same key.
    :param primary_key: the key columns ``capture_deletes`` writes; each must be exported (not in
        ``exclude_columns``, and in ``columns`` when that is given).
    """

    template_fields: Sequence[str] = (
        "sql",
        "bucket",
        "object_prefix",
        "incremental_column",
        "impersonation_chain",
        "fetch_method",
        "on_schema_change",
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
        fetch_size: int = DEFAULTS.fetch_size,
        single_node_cluster: bool = False,
        batch_rows: int = DEFAULTS.batch_rows,
        max_file_bytes: int = DEFAULTS.max_file_bytes,
        max_uploads_in_flight: int = DEFAULTS.max_uploads_in_flight,
        impersonation_chain: str | Sequence[str] | None = None,
        fetch_method: str = DEFAULTS.fetch_method,
        on_schema_change: str = "evolve",
        columns: Sequence[str] | None = None,
        exclude_columns: Sequence[str] = (),
        hash_columns: Sequence[str] = (),
        hash_key_conn_id: str | None = None,
        verify: str | None = None,
        capture_deletes: bool = False,
        primary_key: Sequence[str] = (),
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
        self.fetch_size = min(fetch_size, SINGLE_NODE_MAX_FETCH) if single_node_cluster else fetch_size
        self.single_node_cluster = single_node_cluster
        self.batch_rows = batch_rows
        self.max_file_bytes = max_file_bytes
        self.max_uploads_in_flight = max_uploads_in_flight
        self.impersonation_chain = impersonation_chain
        self.fetch_method = fetch_method if "{{" in fetch_method else check_fetch_method(fetch_method)
        self.on_schema_change = on_schema_change
        self.columns = list(columns) if columns is not None else None
        self.exclude_columns = list(exclude_columns)
        self.hash_columns = list(hash_columns)
        self.hash_key_conn_id = hash_key_conn_id
        check_contract(
            self.task_id,
            on_schema_change,
            self.columns,
            self.exclude_columns,
            self.hash_columns,
            hash_key_conn_id,
        )
        self.verify = check_verify(verify)
        self.capture_deletes = capture_deletes
        self.primary_key = list(primary_key)
        check_capture_deletes(capture_deletes, self.primary_key)
        if capture_deletes:
            check_keys_exported(self.task_id, self.primary_key, self.columns, self.exclude_columns)

    def _query(self, context: Context) -> str:
        return windowed_query(self.sql, self.incremental_column, context)

    def settings(self) -> ExportSettings:
        """The engine settings of this task."""
        return ExportSettings(
            export_format=self.export_format,
            compression=self.compression,
            fetch_size=self.fetch_size,
            batch_rows=self.batch_rows,
            max_file_bytes=self.max_file_bytes,
            max_uploads_in_flight=self.max_uploads_in_flight,
            fetch_method=self.fetch_method,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        # Imported here: the hooks, numpy and pyarrow would cost every DAG parse seconds and memory.
        from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        from airflow_rs2gcs.engine.export import run_export

        object_prefix = check_object_prefix(self.object_prefix)
        sql = self._query(context)
        interval = run_interval(context)
        settings = self.settings()
        mode = f"incremental on {self.incremental_column}" if self.incremental_column else "full"
        self.log.info("exporting (%s) to gs://%s/%s as %s", mode, self.bucket, object_prefix, settings)
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
                contract=data_contract(
                    self.on_schema_change,
                    self.columns,
                    self.exclude_columns,
                    self.hash_columns,
                    self.hash_key_conn_id,
                ),
                verify=self.verify,
                key_query=key_query(self.sql, self.capture_deletes, self.primary_key),
            )
        finally:
            connection.close()
        outcome = export_outcome(asdict(result), self.bucket, object_prefix, interval)
        self._lineage_export = self._planned_export().exported(outcome, result.schema)
        emit_asset_events(self.outlets, context, self.bucket, outcome)
        return outcome

    # OpenLineage: called by the openlineage provider's listener, which logs and drops what they raise.
    # The lineage module is imported only when a task runs, never when a DAG is parsed.
    def _planned_export(self) -> TableExport:
        from airflow_rs2gcs.transfers.lineage import TableExport

        return TableExport(self.sql, self.bucket, self.object_prefix)

    def get_openlineage_facets_on_start(self) -> OperatorLineage | None:
        """The query's input tables and the folder it writes."""
        from airflow_rs2gcs.transfers.lineage import task_lineage

        return task_lineage(self.redshift_conn_id, [self._planned_export()])

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """As on start, with the columns and the rows, bytes and files published."""
        from airflow_rs2gcs.transfers.lineage import task_lineage

        export = getattr(self, "_lineage_export", None) or self._planned_export()
        return task_lineage(self.redshift_conn_id, [export])


def check_contract(
    where: str,
    on_schema_change: str,
    columns: Sequence[str] | None,
    exclude_columns: Sequence[str],
    hash_columns: Sequence[str],
    hash_key_conn_id: str | None,
) -> None:
    """Refuse a contract that is wrong whatever the table's columns (at DAG parse, not at run time)."""
    from airflow_rs2gcs.engine.contract import contract_problems

    templated = "{{" in str(on_schema_change)
    problems = contract_problems(
        "evolve" if templated else on_schema_change, columns, exclude_columns, hash_columns
    )
    if hash_columns and not hash_key_conn_id:
        problems.append("hash_columns needs hash_key_conn_id (a connection whose password is the HMAC key)")
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems))


def hash_key(conn_id: str | None) -> str | None:
    """The password of ``conn_id`` (the HMAC key), masked in every log Airflow prints from now on."""
    if not conn_id:
        return None
    from airflow.sdk import BaseHook
    from airflow.sdk.log import mask_secret

    key = BaseHook.get_connection(conn_id).password
    if not key:
        raise ValueError(f"connection {conn_id!r} has no password; hash_columns needs it as the HMAC key")
    mask_secret(key)
    return str(key)


def data_contract(
    on_schema_change: str,
    columns: Sequence[str] | None,
    exclude_columns: Sequence[str],
    hash_columns: Sequence[str],
    hash_key_conn_id: str | None,
) -> Any:
    """The engine's :class:`~airflow_rs2gcs.engine.contract.DataContract`, with the key read if needed."""
    from airflow_rs2gcs.engine.contract import DataContract

    return DataContract(
        on_schema_change=on_schema_change,  # type: ignore[arg-type]  # DataContract checks the value
        columns=tuple(columns) if columns is not None else None,
        exclude_columns=tuple(exclude_columns),
        hash_columns=tuple(hash_columns),
        hash_key=hash_key(hash_key_conn_id) if hash_columns else None,
    )


def windowed_query(sql: str, incremental_column: str | None, context: Context) -> str:
    """``sql`` itself, or (incremental) only its rows in the run's data interval."""
    if not incremental_column:
        return sql
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is None or end is None:
        raise ValueError(
            f"incremental export on {incremental_column!r} needs a data interval, and this run has "
            "none; trigger it with a logical date or run it as a full refresh"
        )
    if start >= end:
        # Unscheduled DAGs give manual runs a zero-length interval: the window would match no row.
        raise ValueError(
            f"incremental export on {incremental_column!r} needs a data interval of positive "
            f"length, and this run's is [{start.isoformat()}, {end.isoformat()}); a DAG without a "
            "schedule (a manual-only tenant) needs the interval given when triggered (REST API "
            "data_interval_start/end), else give it a schedule or run it as a full refresh"
        )
    return windowed(sql, incremental_column, start, end)


def check_capture_deletes(capture_deletes: bool, primary_key: Sequence[str]) -> None:
    """``capture_deletes`` needs key columns to write."""
    if capture_deletes and not primary_key:
        raise ValueError("capture_deletes needs primary_key: the columns of the key set it writes")


def check_keys_exported(
    where: str, primary_key: Sequence[str], columns: Sequence[str] | None, exclude_columns: Sequence[str]
) -> None:
    """Refuse a key column the contract leaves out of the data: the key set could not be anti-joined."""
    from airflow_rs2gcs.engine.contract import unexported_keys

    problem = unexported_keys(primary_key, columns, exclude_columns)
    if problem:
        raise ValueError(f"{where}: {problem}")


def key_query(sql: str, capture_deletes: bool, primary_key: Sequence[str]) -> str | None:
    """The query of the primary key set of ``sql`` (unwindowed: every current row), or ``None``.

    ``sql`` is the table's own query, not the contract's projection: the keys are read as stored
    (the export hashes the key columns the contract hashes).
    """
    if not capture_deletes:
        return None
    columns = ", ".join(quote_identifier(column) for column in primary_key)
    return f"SELECT {columns} FROM ({sql}) AS rs2gcs_keys"


def run_interval(context: Context) -> tuple[str | None, str | None]:
    """The run's data interval as ISO strings (``None`` where the run has none)."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    return (start.isoformat() if start else None, end.isoformat() if end else None)


def export_outcome(
    result: dict[str, Any], bucket: str, object_prefix: str, interval: tuple[str | None, str | None]
) -> dict[str, Any]:
    """What a table's export task returns: rows, bytes, objects, manifest, where, which interval."""
    return {
        **{key: value for key, value in result.items() if key != "schema"},  # the schema goes to lineage
        "bucket": bucket,
        "object_prefix": object_prefix,
        "data_interval_start": interval[0],
        "data_interval_end": interval[1],
    }


def emit_asset_events(outlets: Sequence[Any], context: Context, bucket: str, outcome: dict[str, Any]) -> None:
    """Attach the outcome to Asset outlets, and emit this table's Asset through AssetAlias outlets."""
    events = context.get("outlet_events")
    if events is None:  # run outside a task runner (e.g. the benchmark)
        return
    uri = f"gs://{bucket}/{dataset_root(outcome['object_prefix'])}"
    extra = {key: outcome[key] for key in ("rows", "bytes", "objects")}
    extra |= {
        "manifest": f"gs://{bucket}/{outcome['manifest']}",
        "data_interval_start": outcome["data_interval_start"],
        "data_interval_end": outcome["data_interval_end"],
    }
    for outlet in outlets:
        if isinstance(outlet, AssetAlias):
            events[outlet].add(Asset(uri), extra=extra)
        elif isinstance(outlet, Asset):
            events[outlet].extra.update(extra)
