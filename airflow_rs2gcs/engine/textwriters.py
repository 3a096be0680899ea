"""CSV and JSON Lines writers: each column's text form (Arrow compute, no Python per row) joined into lines.

- CSV: a header line, RFC 4180 quoting, LF line ends, UTF-8; optional gzip (from the sink).
- JSON Lines: one JSON object per row, keys in column order, UTF-8; optional gzip (from the sink).
"""

from __future__ import annotations

import json

import pyarrow as pa

from airflow_rs2gcs.engine.textforms import csv_field, csv_values, joined_lines, json_values


class CsvWriter:
    """RFC 4180 CSV with a header line.

    :param sink: the output stream.
    :param schema: the schema of every batch.
    """

    def __init__(self, sink: pa.NativeFile, schema: pa.Schema) -> None:
        self.sink = sink
        sink.write(",".join(csv_field(name) for name in schema.names).encode("utf-8") + b"\n")

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Append the batch's rows."""
        if batch.num_rows == 0:
            return
        parts: list[pa.Array | str] = []
        for index, column in enumerate(batch.columns):
            parts += [",", csv_values(column)] if index else [csv_values(column)]
        self.sink.write(joined_lines([*parts, "\n"]))

    def close(self) -> None:
        """Nothing is buffered."""

    def abort(self) -> None:
        """Nothing is buffered."""


class JsonLinesWriter:
    """One JSON object per line.

    :param sink: the output stream.
    :param schema: the schema of every batch.
    """

    def __init__(self, sink: pa.NativeFile, schema: pa.Schema) -> None:
        self.sink = sink
        self.keys = [json.dumps(name, ensure_ascii=False) + ":" for name in schema.names]

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Append the batch's rows."""
        if batch.num_rows == 0:
            return
        parts: list[pa.Array | str] = []
        for index, (key, column) in enumerate(zip(self.keys, batch.columns, strict=True)):
            parts += [("," if index else "{") + key, json_values(column)]
        self.sink.write(joined_lines([*parts, "}\n"] if parts else ["{}\n"]))

    def close(self) -> None:
        """Nothing is buffered."""

    def abort(self) -> None:
        """Nothing is buffered."""
