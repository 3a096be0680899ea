"""One export: a query's rows streamed from Redshift into objects and a manifest under one GCS folder.

row source (DECLARE/FETCH -> Arrow, fast or plain path) -> rolling file writer (Parquet/CSV/JSON Lines) ->
background uploader (bounded, retried) -> manifest (published last). A failed try leaves no manifest
and deletes the folder's data objects (the earlier manifest was retracted first, so nothing there
was complete any more).

Optional data-contract reads run in the same snapshot (:mod:`airflow_rs2gcs.engine.snapshot_reads`):
``verify="count"`` fails the export unless it wrote as many rows as the source counts, and
``key_query`` writes the table's primary key set as ``_keys/part-*`` objects beside the data, listed
in the manifest and deleted with the data on failure. The data contract
(:mod:`airflow_rs2gcs.engine.contract`) wraps the query in its column projection first; the count is
of that projected query, the key set is read from the table and hashed like the data's key columns.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from airflow_rs2gcs.engine.contract import DataContract, hashed, probe_columns
from airflow_rs2gcs.engine.drift import SchemaDrift, latest_manifest, schema_diff
from airflow_rs2gcs.engine.encoders import LocalFile, RollingFileWriter
from airflow_rs2gcs.engine.manifest import (
    build_manifest,
    delete_unlisted,
    publish_manifest,
    retract_manifest,
    schema_entries,
)
from airflow_rs2gcs.engine.paths import data_object_name, dataset_root, keys_prefix
from airflow_rs2gcs.engine.progress import Progress
from airflow_rs2gcs.engine.rowsource import RowSource, open_row_source
from airflow_rs2gcs.engine.settings import CONTENT_TYPES, ExportSettings, check_verify, file_extension
from airflow_rs2gcs.engine.snapshot_reads import ContractReads, check_count
from airflow_rs2gcs.engine.types import Column
from airflow_rs2gcs.engine.uploader import BackgroundUploader, UploadedObject

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    """What one export published: rows, bytes and data objects, the manifest's object name, and the
    difference from the table's last manifest (``None``: none, or no earlier manifest), and the
    manifest's ``schema`` entries (for lineage; not part of a task's outcome)."""

    rows: int
    bytes: int
    objects: int
    manifest: str
    schema_change: dict[str, Any] | None = None
    schema: tuple[dict[str, Any], ...] = field(default=(), compare=False)


class _Export:
    """The state of one export while its rows stream into files."""

    def __init__(
        self,
        gcs_hook: Any,
        bucket: str,
        object_prefix: str,
        settings: ExportSettings,
        workdir: str,
        contract: DataContract,
    ):
        self.object_prefix = object_prefix
        self.contract = contract
        self.hasher: Any = None
        self.settings = settings
        self.workdir = workdir
        self.extension = file_extension(settings.export_format, settings.compression)
        content_type = CONTENT_TYPES[settings.export_format]
        self.uploader = BackgroundUploader(gcs_hook, bucket, content_type, settings.max_uploads_in_flight)
        self.writer: RollingFileWriter | None = None

    def _upload(self, local: LocalFile) -> None:
        self.uploader.submit(local, data_object_name(self.object_prefix, local.index, self.extension))

    def writer_for(self, reader: RowSource) -> RollingFileWriter:
        if self.writer is None:
            assert reader.schema is not None
            schema = reader.schema
            # The data has every hashed column; the key set only those of its key columns.
            to_hash = [name for name in self.contract.hash_columns if name in schema.names]
            if to_hash:
                # Imported only here: hashing needs Arrow's compute kernels, a Parquet export otherwise not.
                from airflow_rs2gcs.engine.hashing import BatchHasher

                assert self.contract.hash_key is not None  # DataContract refuses hash_columns without it
                self.hasher = BatchHasher(schema, to_hash, self.contract.hash_key)
                schema = self.hasher.schema
            s = self.settings
            self.writer = RollingFileWriter(
                self.workdir, s.export_format, s.compression, schema, s.max_file_bytes, self._upload
            )
        return self.writer

    def stream(self, reader: RowSource, progress: Progress) -> None:
        for batch in reader.batches():
            writer = self.writer_for(reader)
            writer.write(self.hasher(batch) if self.hasher else batch)
            progress.update(reader.rows_read, reader.bytes_read, writer.files_done)
        self.writer_for(reader).close(write_empty=True)
        progress.update(reader.rows_read, reader.bytes_read, self.writer_for(reader).files_done)
        progress.finish()

    def write_all(self, reader: RowSource, batches: Iterator[pa.RecordBatch]) -> None:
        """Write every batch (the key set's), then finish the files; an empty set still gets one."""
        for batch in batches:
            writer = self.writer_for(reader)
            writer.write(self.hasher(batch) if self.hasher else batch)
        self.writer_for(reader).close(write_empty=True)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
        self.uploader.abort()


class _KeysExport(_Export):
    """The ``_keys/`` objects of an export: the primary key set, written like the data.

    The key columns are read from the table itself, not from the contract's projection; a key column
    the contract hashes is hashed here with the same key, so the key set anti-joins against the
    exported rows (a key column is never excluded: :class:`~airflow_rs2gcs.tenants.TableSpec` refuses it).
    """

    def __init__(
        self,
        gcs_hook: Any,
        bucket: str,
        object_prefix: str,
        settings: ExportSettings,
        workdir: str,
        contract: DataContract,
    ):
        keys_dir = os.path.join(workdir, "keys")
        os.mkdir(keys_dir)
        super().__init__(gcs_hook, bucket, keys_prefix(object_prefix), settings, keys_dir, contract)
        self.columns: list[Column] = []

    def consume(self, reader: RowSource, batches: Iterator[pa.RecordBatch]) -> None:
        self.write_all(reader, batches)
        self.columns = reader.columns

    def manifest_entry(self, objects: list[UploadedObject]) -> dict[str, Any]:
        """The manifest's ``keys``: the objects, their rows and the key columns."""
        names = [c.name for c in self.columns]
        return {
            "columns": names,
            "hashed_columns": [name for name in self.contract.hash_columns if name in names],
            "rows": sum(o.rows for o in objects),
            "objects": [asdict(o) for o in objects],
        }


def _discard_partial(gcs_hook: Any, bucket: str, object_prefix: str) -> None:
    try:
        deleted = delete_unlisted(gcs_hook, bucket, object_prefix, keep=set())
        if deleted:
            log.info("failed try: deleted %d uploaded object(s) under %s", len(deleted), object_prefix)
    except Exception:
        log.warning("failed try: could not delete the objects under %s", object_prefix, exc_info=True)


def _previous_schema(gcs_hook: Any, bucket: str, object_prefix: str) -> tuple[str, list[Any]] | None:
    """The last published manifest of the table (any interval) and its schema, read before retracting."""
    found = latest_manifest(gcs_hook, bucket, dataset_root(object_prefix))
    if found is None or not isinstance(found[1].get("schema"), list):
        return None
    return f"gs://{bucket}/{found[0]}", found[1]["schema"]


def _contracted_query(connection: Any, sql: str, contract: DataContract) -> tuple[str, list[Any] | None]:
    """The query with the contract's projection, and its output columns when they had to be probed."""
    if not contract.needs_probe:
        return sql, None
    available = probe_columns(connection, sql)
    projected = contract.projection(sql, [c.name for c in available])
    by_name = {c.name: c for c in available}
    columns = [by_name[name] for name in contract.selected(list(by_name))]
    return projected, hashed(columns, contract.hash_columns)


def run_export(
    *,
    connection: Any,
    gcs_hook: Any,
    sql: str,
    bucket: str,
    object_prefix: str,
    settings: ExportSettings,
    data_interval: tuple[str | None, str | None],
    manifest_extra: dict[str, Any] | None = None,
    table: str | None = None,
    contract: DataContract | None = None,
    verify: str | None = None,
    key_query: str | None = None,
) -> ExportResult:
    """Stream ``sql`` into ``gs://bucket/object_prefix/part-*`` and publish its manifest last.

    An empty result still gets one data file with the schema and no rows (Parquet: schema only; CSV:
    the header; JSON Lines: an empty file) and a manifest with 0 rows. ``table``, when given, starts
    every progress line (several exports may share one task log). ``contract`` selects and hashes
    columns and says what a schema change does (see :mod:`airflow_rs2gcs.engine.contract`): with
    ``fail``, a changed schema raises :class:`~airflow_rs2gcs.engine.drift.SchemaDrift` before anything
    is retracted or written. ``verify="count"`` counts the query as exported (the contract's projection
    of ``sql``, same window) in the same snapshot and fails the export (nothing published) when the
    rows written differ; the manifest records ``source_rows``. ``key_query`` (the table's primary key
    columns of every current row, read from the table itself, not the projection) is read in the same
    snapshot into ``_keys/part-*`` objects, listed under the manifest's ``keys``; a key column the
    contract hashes is hashed there too, so the key set still anti-joins against the data.
    """
    check_verify(verify)
    contract = contract or DataContract()
    previous = _previous_schema(gcs_hook, bucket, object_prefix)
    sql, expected = _contracted_query(connection, sql, contract)
    if previous is not None and expected is not None and contract.on_schema_change == "fail":
        change = schema_diff(previous[1], schema_entries(expected))
        if change is not None:
            raise SchemaDrift(change, previous[0])
    retract_manifest(gcs_hook, bucket, object_prefix)
    s = settings
    with tempfile.TemporaryDirectory(prefix="rs2gcs-") as workdir:
        export = _Export(gcs_hook, bucket, object_prefix, settings, workdir, contract)
        keys = None
        if key_query:
            keys = _KeysExport(gcs_hook, bucket, object_prefix, settings, workdir, contract)
        # Counted: the query as exported (after the contract's projection), in the data's snapshot.
        reads = ContractReads(
            count_sql=sql if verify else None,
            keys_sql=key_query,
            consume_keys=keys.consume if keys is not None else None,
        )
        reader = open_row_source(connection, sql, settings, snapshot=reads if verify or keys else None)
        try:
            export.stream(reader, Progress(f"gs://{bucket}/{object_prefix}", table=table))
            objects = export.uploader.wait()
            key_objects = keys.uploader.wait() if keys is not None else []
            check_count(reads.source_rows, sum(o.rows for o in objects), table)
        except BaseException:
            export.abort()
            if keys is not None:
                keys.abort()
            _discard_partial(gcs_hook, bucket, object_prefix)
            raise
    columns = hashed(reader.columns, contract.hash_columns)
    contract_fields: dict[str, Any] = {"hashed_columns": list(contract.hash_columns)}
    if reads.source_rows is not None:
        contract_fields["source_rows"] = reads.source_rows
    if keys is not None:
        contract_fields["keys"] = keys.manifest_entry(key_objects)
    change = None
    if previous is not None:
        change = schema_diff(previous[1], schema_entries(columns))
        if change is not None:
            log.warning("%sschema changed since %s: %s", f"{table}: " if table else "", previous[0], change)
            contract_fields["schema_change"] = change
    manifest = build_manifest(
        objects=objects,
        columns=columns,
        source_query=sql,
        export_format=s.export_format,
        compression=s.compression,
        data_interval=data_interval,
        extra={**contract_fields, **(manifest_extra or {})},
    )
    name = publish_manifest(gcs_hook, bucket, object_prefix, manifest)
    log.info(
        "%spublished gs://%s/%s: %d rows in %d object(s), %d bytes (read through the %s path)",
        f"{table}: " if table else "",
        bucket,
        name,
        manifest["rows"],
        len(objects),
        manifest["bytes"],
        reader.method,
    )
    return ExportResult(
        manifest["rows"],
        manifest["bytes"],
        len(objects),
        name,
        schema_change=change,
        schema=tuple(manifest["schema"]),
    )
