"""One export: a query's rows streamed from Redshift into objects and a manifest under one GCS folder.

row source (DECLARE/FETCH -> Arrow, fast or plain path) -> rolling file writer (Parquet/CSV/JSON Lines) ->
background uploader (bounded, retried) -> manifest (published last). A failed try leaves no manifest
and deletes the folder's data objects (the earlier manifest was retracted first, so nothing there
was complete any more).

Optional data-contract reads run in the same snapshot (:mod:`airflow_rs2gcs.engine.snapshot_reads`):
``verify="count"`` fails the export unless it wrote as many rows as the source counts, and
``key_query`` writes the table's primary key set as ``_keys/part-*`` objects beside the data, listed
in the manifest and deleted with the data on failure.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa

from airflow_rs2gcs.engine.encoders import LocalFile, RollingFileWriter
from airflow_rs2gcs.engine.manifest import build_manifest, delete_unlisted, publish_manifest, retract_manifest
from airflow_rs2gcs.engine.paths import data_object_name, keys_prefix
from airflow_rs2gcs.engine.progress import Progress
from airflow_rs2gcs.engine.rowsource import RowSource, open_row_source
from airflow_rs2gcs.engine.settings import CONTENT_TYPES, ExportSettings, check_verify, file_extension
from airflow_rs2gcs.engine.snapshot_reads import ContractReads, check_count
from airflow_rs2gcs.engine.types import Column
from airflow_rs2gcs.engine.uploader import BackgroundUploader, UploadedObject

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    """What one export published: rows, bytes and data objects, and the manifest's object name."""

    rows: int
    bytes: int
    objects: int
    manifest: str


class _Export:
    """The state of one export while its rows stream into files."""

    def __init__(
        self, gcs_hook: Any, bucket: str, object_prefix: str, settings: ExportSettings, workdir: str
    ):
        self.object_prefix = object_prefix
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
            s = self.settings
            self.writer = RollingFileWriter(
                self.workdir, s.export_format, s.compression, reader.schema, s.max_file_bytes, self._upload
            )
        return self.writer

    def stream(self, reader: RowSource, progress: Progress) -> None:
        for batch in reader.batches():
            writer = self.writer_for(reader)
            writer.write(batch)
            progress.update(reader.rows_read, reader.bytes_read, writer.files_done)
        self.writer_for(reader).close(write_empty=True)
        progress.update(reader.rows_read, reader.bytes_read, self.writer_for(reader).files_done)
        progress.finish()

    def write_all(self, reader: RowSource, batches: Iterator[pa.RecordBatch]) -> None:
        """Write every batch (the key set's), then finish the files; an empty set still gets one."""
        for batch in batches:
            self.writer_for(reader).write(batch)
        self.writer_for(reader).close(write_empty=True)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
        self.uploader.abort()


class _KeysExport(_Export):
    """The ``_keys/`` objects of an export: the primary key set, written like the data."""

    def __init__(
        self, gcs_hook: Any, bucket: str, object_prefix: str, settings: ExportSettings, workdir: str
    ):
        keys_dir = os.path.join(workdir, "keys")
        os.mkdir(keys_dir)
        super().__init__(gcs_hook, bucket, keys_prefix(object_prefix), settings, keys_dir)
        self.columns: list[Column] = []

    def consume(self, reader: RowSource, batches: Iterator[pa.RecordBatch]) -> None:
        self.write_all(reader, batches)
        self.columns = reader.columns

    def manifest_entry(self, objects: list[UploadedObject]) -> dict[str, Any]:
        """The manifest's ``keys``: the objects, their rows and the key columns."""
        return {
            "columns": [c.name for c in self.columns],
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
    verify: str | None = None,
    key_query: str | None = None,
) -> ExportResult:
    """Stream ``sql`` into ``gs://bucket/object_prefix/part-*`` and publish its manifest last.

    An empty result still gets one data file with the schema and no rows (Parquet: schema only; CSV:
    the header; JSON Lines: an empty file) and a manifest with 0 rows. ``table``, when given, starts
    every progress line (several exports may share one task log). ``verify="count"`` counts ``sql``
    in the same snapshot and fails the export (nothing published) when the rows written differ; the
    manifest records ``source_rows``. ``key_query`` (the table's primary key
    columns of every current row) is read in the same snapshot into
    ``_keys/part-*`` objects, listed under the manifest's ``keys``.
    """
    check_verify(verify)
    retract_manifest(gcs_hook, bucket, object_prefix)
    s = settings
    with tempfile.TemporaryDirectory(prefix="rs2gcs-") as workdir:
        export = _Export(gcs_hook, bucket, object_prefix, settings, workdir)
        keys = _KeysExport(gcs_hook, bucket, object_prefix, settings, workdir) if key_query else None
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
    contract: dict[str, Any] = {}
    if reads.source_rows is not None:
        contract["source_rows"] = reads.source_rows
    if keys is not None:
        contract["keys"] = keys.manifest_entry(key_objects)
    manifest = build_manifest(
        objects=objects,
        columns=reader.columns,
        source_query=sql,
        export_format=s.export_format,
        compression=s.compression,
        data_interval=data_interval,
        extra={**(manifest_extra or {}), **contract},
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
    return ExportResult(manifest["rows"], manifest["bytes"], len(objects), name)
