"""OpenLineage for the transfer operators: the Redshift tables a task read, the GCS folders it wrote.

Names follow the amazon and google providers (the OpenLineage naming spec): an input is namespace
``redshift://<cluster>.<region>:<port>``, name ``<database>.<schema>.<table>``, the namespace from
``RedshiftSQLHook.get_openlineage_database_info`` (the amazon provider's own Redshift lineage); an
output is namespace ``gs://<bucket>``, name the table's folder (the object prefix without its
``dt=``/``interval=`` partitions: the path of the table's Airflow Asset).

A whole-table export (``SELECT * FROM <table>``) names its table directly and gives it a schema facet
from the exported columns; any other query is read by the openlineage provider's ``SQLParser``, as the
common.sql operators do. After the export each output gets ``outputStatistics`` (rows, bytes, files)
and a schema facet (the files' columns).

The openlineage provider is optional (the ``openlineage`` extra): every import of it is inside a
function, so without it the operators run and report nothing, and parsing a DAG never loads it.
Lineage never fails a sync: whatever goes wrong building a table's facets is logged and that part left
out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_rs2gcs.engine.paths import check_object_prefix, dataset_root

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

log = logging.getLogger(__name__)

# SELECT * FROM <name>: one or two parts, each plain (folded to lower case, as Redshift does) or quoted
# (kept as written); select_table writes every part quoted, tenants write them as they like.
_PART = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_WHOLE_TABLE = re.compile(
    rf"\s*select\s+\*\s+from\s+(?P<first>{_PART})(?:\s*\.\s*(?P<second>{_PART}))?\s*;?\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class TableExport:
    """One export of a task as lineage sees it: its query, its folder, and what landed (once known).

    :param sql: the query without the incremental window.
    :param bucket: the target bucket.
    :param object_prefix: the export's folder (with its partitions).
    :param rows: rows published; ``None`` before (or without) the export.
    :param bytes: bytes of the data objects.
    :param objects: data objects.
    :param schema: the manifest's ``schema`` entries (``name``, ``arrow_type``, ``source_type``).
    """

    sql: str
    bucket: str
    object_prefix: str
    rows: int | None = None
    bytes: int | None = None
    objects: int | None = None
    schema: Sequence[Mapping[str, Any]] = field(default=())

    def exported(self, outcome: Mapping[str, Any], schema: Sequence[Mapping[str, Any]]) -> TableExport:
        """This export with what it published: an outcome's rows, bytes and objects, and its columns."""
        return TableExport(
            self.sql,
            self.bucket,
            self.object_prefix,
            int(outcome["rows"]),
            int(outcome["bytes"]),
            int(outcome["objects"]),
            tuple(schema),
        )


def _identifier(part: str) -> str:
    return part[1:-1].replace('""', '"') if part.startswith('"') else part.lower()


def whole_table(sql: str) -> tuple[str | None, str] | None:
    """``(schema, table)`` of the table ``sql`` copies whole (``SELECT * FROM <name>``), else ``None``."""
    match = _WHOLE_TABLE.fullmatch(sql)
    if match is None:  # a join, a WHERE, a subquery, columns: a query for the parser
        return None
    if match["second"] is None:
        return None, _identifier(match["first"])
    return _identifier(match["first"]), _identifier(match["second"])


class RedshiftSource:
    """The Redshift connection as lineage names it, through the amazon provider's hook methods.

    The current schema (for names without one) is asked of Redshift at most once, and only when needed.
    """

    def __init__(self, redshift_conn_id: str) -> None:
        from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
        from airflow.providers.openlineage.sqlparser import SQLParser

        self.hook = RedshiftSQLHook(redshift_conn_id=redshift_conn_id)
        self.connection = self.hook.get_connection(redshift_conn_id)
        self.database_info = self.hook.get_openlineage_database_info(self.connection)
        self.namespace = SQLParser.create_namespace(self.database_info)

    @cached_property
    def default_schema(self) -> str | None:
        return self.hook.get_openlineage_default_schema()

    def dataset_name(self, schema: str | None, table: str) -> str:
        parts = (self.database_info.database, schema or self.default_schema, table)
        return ".".join(part for part in parts if part)

    def parsed_inputs(self, sql: str) -> tuple[list[Any], dict[str, Any]]:
        """The tables a query reads, by the openlineage provider's SQL parser; its run facets (errors)."""
        from airflow.providers.openlineage.sqlparser import SQLParser

        dialect = self.hook.get_openlineage_database_dialect(self.connection)
        statements = SQLParser.split_sql_string(sql)
        meta = SQLParser(dialect=dialect).parse(statements)
        unqualified = meta is not None and any(t.schema is None for t in meta.in_tables)
        parser = SQLParser(dialect=dialect, default_schema=self.default_schema if unqualified else None)
        # use_connection=False: no catalog query per task; the folder's columns are on the output.
        lineage = parser.generate_openlineage_metadata_from_sql(
            sql=sql, hook=self.hook, database_info=self.database_info, use_connection=False
        )
        return list(lineage.inputs), dict(lineage.run_facets)


def _schema_facet(schema: Sequence[Mapping[str, Any]], type_key: str) -> Any:
    from airflow.providers.common.compat.openlineage.facet import SchemaDatasetFacet, SchemaDatasetFacetFields

    return SchemaDatasetFacet(
        fields=[SchemaDatasetFacetFields(name=str(c["name"]), type=str(c[type_key])) for c in schema]
    )


def input_datasets(source: RedshiftSource, export: TableExport) -> tuple[list[Any], dict[str, Any]]:
    """The export's inputs (with a schema facet when it copies one table whole) and run facets."""
    from airflow.providers.common.compat.openlineage.facet import InputDataset

    whole = whole_table(export.sql)
    if whole is None:
        parsed, run_facets = source.parsed_inputs(export.sql)
        return [InputDataset(namespace=d.namespace, name=d.name, facets=d.facets) for d in parsed], run_facets
    facets = {"schema": _schema_facet(export.schema, "source_type")} if export.schema else {}
    name = source.dataset_name(*whole)
    return [InputDataset(namespace=source.namespace, name=name, facets=facets)], {}


def output_dataset(export: TableExport) -> Any:
    """The export's folder, with its columns and (once exported) its rows, bytes and files."""
    from airflow.providers.common.compat.openlineage.facet import (
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
    )

    facets = {"schema": _schema_facet(export.schema, "arrow_type")} if export.schema else {}
    statistics: dict[str, Any] = {}
    if export.rows is not None:
        statistics["outputStatistics"] = OutputStatisticsOutputDatasetFacet(
            rowCount=export.rows, size=export.bytes, fileCount=export.objects
        )
    name = dataset_root(check_object_prefix(export.object_prefix))
    return OutputDataset(namespace=f"gs://{export.bucket}", name=name, facets=facets, outputFacets=statistics)


def task_lineage(redshift_conn_id: str, exports: Sequence[TableExport]) -> OperatorLineage | None:
    """The lineage of a task that ran ``exports``; ``None`` without the openlineage provider.

    A part that cannot be built (the connection, one table's inputs or output) is logged and left out.
    """
    try:
        from airflow.providers.common.compat.openlineage.facet import SQLJobFacet
        from airflow.providers.openlineage.extractors import OperatorLineage
        from airflow.providers.openlineage.sqlparser import SQLParser
    except ImportError:
        return None
    source: RedshiftSource | None = None
    try:
        source = RedshiftSource(redshift_conn_id)
    except Exception:
        log.warning(
            "lineage: cannot name Redshift connection %r; inputs left out", redshift_conn_id, exc_info=True
        )
    inputs: dict[tuple[str, str], Any] = {}
    outputs: list[Any] = []
    run_facets: dict[str, Any] = {}
    for export in exports:
        try:
            if source is not None:
                found, facets = input_datasets(source, export)
                run_facets |= facets
                for dataset in found:  # several queries may read one table: listed once, with its columns
                    key = (dataset.namespace, dataset.name)
                    if key not in inputs or not inputs[key].facets:
                        inputs[key] = dataset
        except Exception:
            log.warning("lineage: cannot read the inputs of %s", export.object_prefix, exc_info=True)
        try:
            outputs.append(output_dataset(export))
        except Exception:
            log.warning("lineage: cannot name the output %s", export.object_prefix, exc_info=True)
    job_facets = (
        {"sql": SQLJobFacet(query=SQLParser.normalize_sql([e.sql for e in exports]))} if exports else {}
    )
    return OperatorLineage(
        inputs=list(inputs.values()), outputs=outputs, run_facets=run_facets, job_facets=job_facets
    )
