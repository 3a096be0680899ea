"""One export: a query's rows streamed from Redshift into objects and a manifest under one GCS folder."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from airflow_rs2gcs.engine.encoders import CONTENT_TYPES, LocalFile, RollingFileWriter, file_extension
from airflow_rs2gcs.engine.manifest import build_manifest, publish_manifest, retract_manifest
from airflow_rs2gcs.engine.paths import data_object_name
from airflow_rs2gcs.engine.reader import CursorReader
from airflow_rs2gcs.engine.types import record_batch, schema_of
from airflow_rs2gcs.engine.uploader import BackgroundUploader

log = logging.getLogger(__name__)
PROGRESS_EVERY_SECONDS = 5.0


@dataclass(frozen=True)
class ExportSettings:
    """How to encode and roll the files of one export."""

    export_format: str = "parquet"
    compression: str = "snappy"
    fetch_size: int = 10_000
    max_file_bytes: int = 256 * 1024 * 1024
    max_uploads_in_flight: int = 2


@dataclass(frozen=True)
class ExportResult:
    """What one export published."""

    rows: int
    bytes: int
    objects: int
    manifest: str


class _Progress:
    def __init__(self) -> None:
        self.started = self.last = time.monotonic()
        self.rows = 0
        self.bytes = 0

    def add(self, rows: int, nbytes: int) -> None:
        self.rows += rows
        self.bytes += nbytes
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_SECONDS:
            self.last = now
            elapsed = now - self.started
            log.info(
                "progress: %d rows, %.1f MB in Arrow, %.0f rows/s",
                self.rows,
                self.bytes / 1e6,
                self.rows / elapsed if elapsed else 0.0,
            )


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
) -> ExportResult:
    """Stream ``sql`` into ``gs://bucket/object_prefix/part-*`` and publish its manifest last.

    An empty result still gets one data file with the schema and no rows, and a manifest with 0 rows.
    """
    retract_manifest(gcs_hook, bucket, object_prefix)
    uploader = BackgroundUploader(
        gcs_hook, bucket, CONTENT_TYPES[settings.export_format], settings.max_uploads_in_flight
    )
    extension = file_extension(settings.export_format, settings.compression)
    reader = CursorReader(connection, sql, settings.fetch_size)
    progress = _Progress()
    with tempfile.TemporaryDirectory(prefix="rs2gcs-") as workdir:
        writer: RollingFileWriter | None = None

        def upload(local: LocalFile) -> None:
            uploader.submit(local, data_object_name(object_prefix, local.index, extension))

        try:
            for rows in reader.batches():
                if writer is None:
                    schema = schema_of(reader.columns)
                    writer = RollingFileWriter(
                        workdir,
                        settings.export_format,
                        settings.compression,
                        schema,
                        settings.max_file_bytes,
                        upload,
                    )
                batch = record_batch(rows, reader.columns, writer.schema)
                writer.write(batch)
                progress.add(batch.num_rows, batch.nbytes)
            if writer is None:
                writer = RollingFileWriter(
                    workdir,
                    settings.export_format,
                    settings.compression,
                    schema_of(reader.columns),
                    settings.max_file_bytes,
                    upload,
                )
            writer.close(write_empty=True)
        except BaseException:
            uploader.abort()
            raise
        objects = uploader.wait()
    manifest = build_manifest(
        objects=objects,
        columns=reader.columns,
        source_query=sql,
        export_format=settings.export_format,
        compression=settings.compression,
        data_interval=data_interval,
        extra=manifest_extra,
    )
    name = publish_manifest(gcs_hook, bucket, object_prefix, manifest)
    log.info(
        "published %s: %d rows in %d objects, %d bytes",
        name,
        manifest["rows"],
        len(objects),
        manifest["bytes"],
    )
    return ExportResult(manifest["rows"], manifest["bytes"], len(objects), name)
