"""The settings of one export and their validation (pure: no pyarrow, safe to import at DAG parse time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

FORMATS = ("parquet", "csv", "jsonl")
COMPRESSIONS = {
    "parquet": ("snappy", "zstd", "gzip", "none"),
    "csv": ("none", "gzip"),
    "jsonl": ("none", "gzip"),
}
DEFAULT_COMPRESSION = {"parquet": "snappy", "csv": "none", "jsonl": "none"}
CONTENT_TYPES = {
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
}
SINGLE_NODE_MAX_FETCH = 1000
# How rows are read (see airflow_rs2gcs.engine.rowsource): the fast path, the driver's public API, or
# the fast path with a fallback to the driver's API when the installed driver does not support it.
FetchMethod = Literal["auto", "wire", "driver"]
FETCH_METHODS: tuple[str, ...] = get_args(FetchMethod)
# Reconciliation of an export against its source (airflow_rs2gcs.engine.snapshot_reads).
VERIFY_MODES = ("count",)


def file_extension(export_format: str, compression: str) -> str:
    """The object name's extension, e.g. ``parquet``, ``csv.gz``, ``jsonl``."""
    ext = export_format
    if export_format != "parquet" and compression == "gzip":
        ext += ".gz"
    return ext


def check_format(export_format: str, compression: str | None) -> str:
    """Validate a format/compression pair and return the effective compression."""
    if export_format not in FORMATS:
        raise ValueError(f"export format {export_format!r} is not supported; allowed: {', '.join(FORMATS)}")
    compression = compression or DEFAULT_COMPRESSION[export_format]
    if compression not in COMPRESSIONS[export_format]:
        allowed = ", ".join(COMPRESSIONS[export_format])
        raise ValueError(f"compression {compression!r} does not apply to {export_format}; allowed: {allowed}")
    return compression


def check_verify(verify: str | None) -> str | None:
    """Validate a reconciliation mode (:data:`VERIFY_MODES`, or ``None``: off) and return it."""
    if verify is not None and verify not in VERIFY_MODES:
        raise ValueError(f"verify {verify!r} is not supported; allowed: {', '.join(VERIFY_MODES)} or None")
    return verify


def check_fetch_method(fetch_method: str) -> str:
    """Validate a fetch method (:data:`FETCH_METHODS`) and return it."""
    if fetch_method not in FETCH_METHODS:
        raise ValueError(
            f"fetch_method {fetch_method!r} is not supported; allowed: {', '.join(FETCH_METHODS)}"
        )
    return fetch_method


@dataclass(frozen=True)
class ExportSettings:
    """How to read, encode, roll and upload the files of one export.

    :param export_format: ``parquet``, ``csv`` or ``jsonl``.
    :param compression: a compression valid for the format (see :data:`COMPRESSIONS`); empty for the
        format's default (:data:`DEFAULT_COMPRESSION`).
    :param fetch_size: rows per FETCH FORWARD (at most :data:`SINGLE_NODE_MAX_FETCH` on single-node
        Redshift clusters).
    :param batch_rows: rows decoded at a time (Parquet row groups gather several batches).
    :param batch_bytes: wire bytes at which a decode batch ends early (wide rows).
    :param max_file_bytes: size at which a data file is finished and uploaded.
    :param max_uploads_in_flight: uploads running or queued at once.
    :param fetch_method: how rows are read: ``auto`` (default), ``wire`` or ``driver`` (see
        :data:`FETCH_METHODS`).
    """

    export_format: str = "parquet"
    compression: str = ""
    fetch_size: int = 10_000
    batch_rows: int = 10_000
    batch_bytes: int = 8 * 1024 * 1024
    max_file_bytes: int = 32 * 1024 * 1024
    max_uploads_in_flight: int = 2
    fetch_method: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "compression", check_format(self.export_format, self.compression))
        check_fetch_method(self.fetch_method)
        for name in ("fetch_size", "batch_rows", "batch_bytes", "max_file_bytes", "max_uploads_in_flight"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
