"""The tenant contract: one entry of the ``rs2gcs_tenants`` Variable, as a validated, typed model.

A tenant entry is validated with pydantic (shipped with Airflow). Any problem becomes a
:class:`TenantConfigError` whose message names the tenant, the field, the bad value and what is
allowed; an unknown key is reported with the closest valid key. Parsing never touches Airflow, the
network or the database: it is safe to call at DAG-parse time for every tenant.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

import pendulum
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from airflow_rs2gcs.engine.contract import OnSchemaChange, contract_problems, unexported_keys
from airflow_rs2gcs.engine.paths import table_folder
from airflow_rs2gcs.engine.settings import VERIFY_MODES, FetchMethod
from airflow_rs2gcs.identifiers import InvalidTableName, parse_table_name
from airflow_rs2gcs.query_check import QueryNotAllowed, check_read_only_select
from airflow_rs2gcs.schedules import normalise_frequency

SOURCE = "redshift_to_gcs"

# Tenant ids become DAG ids and GCS path segments: keep them to a safe, readable alphabet.
TENANT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
# Unquoted Redshift identifiers (table names: airflow_rs2gcs.identifiers, which also reads quoted parts).
IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_$]{0,126}"
COLUMN_PATTERN = re.compile(rf"^{IDENTIFIER}$")
# Columns a contract names (columns, exclude_columns, hash_columns) are quoted in SQL: any printable name.
COLUMN_NAME_PATTERN = re.compile(r"^[^\x00-\x1f\x7f]+$")
# GCS bucket names (https://cloud.google.com/storage/docs/buckets#naming), without dotted domains.
BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$")
PREFIX_SEGMENT_PATTERN = re.compile(r"^[A-Za-z0-9_=-][A-Za-z0-9._=-]{0,127}$")

# "disconnecting": a Disconnect run could not delete every webhook; the entry keeps their records and
# gets no sync DAG until a re-run of rs2gcs_disconnect deletes them and finishes.
Status = Literal["connected", "configured", "disconnecting", "disconnected"]
INACTIVE_STATUSES: frozenset[str] = frozenset({"disconnecting", "disconnected"})
Format = Literal["parquet", "csv", "jsonl"]
FORMATS: tuple[str, ...] = get_args(Format)
Mode = Literal["full", "incremental"]


# Grouping small tables (airflow_rs2gcs.grouping): the defaults and bounds of the tenant keys.
DEFAULT_SMALL_TABLE_ROWS = 100_000
DEFAULT_SMALL_TABLE_SLOTS = 2
MAX_SMALL_TABLE_SLOTS = 16
MAX_ROWS_SETTING = 10**15


def _check_count(value: Any, low: int, high: int) -> int:
    """``value`` as a whole number in ``[low, high]``; JSON true/false and "10" are refused."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{value!r} is not allowed; allowed: a whole number from {low} to {high}")
    return value


class TenantConfigError(ValueError):
    """A tenant entry that does not satisfy the contract; ``problems`` holds (field, message) pairs."""

    def __init__(self, tenant_id: str, problems: list[tuple[str, str]]) -> None:
        self.tenant_id = tenant_id
        self.problems = problems
        lines = "; ".join(f"field {field!r}: {message}" for field, message in problems)
        super().__init__(f"tenant {tenant_id!r}: {lines}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, str_strip_whitespace=True)


class TableSpec(_Strict):
    """One table (or named query) to sync.

    :param name: ``schema.table`` to copy, or the output name of ``query``; a part that is not a plain
        lower-case name is double-quoted, as the catalog lists it (``analytics."Mixed Case Table"``).
        Output lands in the folder :func:`~airflow_rs2gcs.engine.paths.table_folder` gives.
    :param query: optional custom read-only SELECT; ``name`` is then only the output name.
    :param mode: ``full`` (default) copies everything each run; ``incremental`` copies the rows whose
        ``cursor_column`` falls in the run's data interval.
    :param cursor_column: the column an incremental table is windowed on.
    :param fetch_method: how rows are read: ``auto`` (default: the fast path, or the driver's public
        API when the installed driver lacks what the fast path needs), ``wire`` or ``driver``.
    :param expected_rows: optional hint of the rows a run exports, used instead of the catalog's
        estimate to decide whether the table may share a sync task with other small tables; a custom
        query without it counts as large (see :mod:`airflow_rs2gcs.grouping`).
    :param on_schema_change: ``evolve`` (default: export and record the difference from the table's
        last manifest) or ``fail`` (export nothing while the columns differ).
    :param columns: export only these columns, in this order (``None``: every column).
    :param exclude_columns: export every column but these.
    :param hash_columns: columns whose values are replaced by their HMAC-SHA256 (the tenant's
        ``hash_key_conn_id`` holds the key).
    :param verify: ``"count"`` counts the source rows of the same query and window in the export's
        snapshot and fails the table when the export wrote another number; ``None`` (default): off.
    :param capture_deletes: an incremental table also writes its whole current primary key set as
        ``_keys/`` objects beside each interval's data, so consumers can find deleted rows.
    :param primary_key: the columns of the primary key (needed by ``capture_deletes``); each
        must be exported (not excluded), and one in ``hash_columns`` is hashed in the key set too.
    """

    name: str
    query: str | None = None
    mode: Mode = "full"
    cursor_column: str | None = None
    fetch_method: FetchMethod = "auto"
    expected_rows: int | None = None
    # The data contract (airflow_rs2gcs.engine.contract): column selection, hashing, schema drift.
    on_schema_change: OnSchemaChange = "evolve"
    columns: tuple[str, ...] | None = None
    exclude_columns: tuple[str, ...] = ()
    hash_columns: tuple[str, ...] = ()

    @field_validator("columns", "exclude_columns", "hash_columns", mode="before")
    @classmethod
    def _check_column_list(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{value!r} is not allowed; allowed: a list of column names")
        bad = [v for v in value if not COLUMN_NAME_PATTERN.fullmatch(v) or len(v.encode("utf-8")) > 127]
        if bad:
            raise ValueError(
                f"{bad} are not column names; allowed: 1-127 bytes of printable characters, spelled as the "
                "catalog lists them (plain names in lower case)"
            )
        return value

    @model_validator(mode="after")
    def _check_contract(self) -> TableSpec:
        problems = contract_problems(
            self.on_schema_change, self.columns, self.exclude_columns, self.hash_columns
        )
        if problems:
            raise ValueError(f"table {self.name!r}: " + "; ".join(problems))
        return self

    # Data contract: reconciliation and delete capture (docs/tenant-contract.md).
    verify: Literal["count"] | None = None
    capture_deletes: bool = False
    primary_key: tuple[str, ...] = ()

    @field_validator("verify", mode="before")
    @classmethod
    def _check_verify(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and value not in VERIFY_MODES:
            allowed = ", ".join(repr(mode) for mode in VERIFY_MODES)
            raise ValueError(
                f"table {info.data.get('name')!r}: {value!r} is not allowed; allowed: {allowed} or null"
            )
        return value

    @field_validator("capture_deletes", mode="before")
    @classmethod
    def _check_capture_deletes(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, bool):
            raise ValueError(
                f"table {info.data.get('name')!r}: {value!r} is not allowed; allowed: true or false"
            )
        return value

    @field_validator("primary_key", mode="before")
    @classmethod
    def _check_primary_key(cls, value: Any, info: ValidationInfo) -> Any:
        table = info.data.get("name")
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"table {table!r}: {value!r} is not allowed; allowed: a list of column names")
        bad = [c for c in value if not isinstance(c, str) or not COLUMN_PATTERN.fullmatch(c)]
        if bad:
            raise ValueError(
                f"table {table!r}: {bad!r} are not column names; allowed: letters, digits, '_' or '$'"
            )
        duplicates = sorted({c for c in value if value.count(c) > 1})
        if duplicates:
            raise ValueError(f"table {table!r}: columns {duplicates} appear twice; list each column once")
        return value

    @model_validator(mode="after")
    def _capture_deletes_needs_keys(self) -> TableSpec:
        if self.capture_deletes and (self.mode != "incremental" or not self.primary_key):
            raise ValueError(
                f"table {self.name!r}: capture_deletes needs mode 'incremental' and a primary_key "
                f"(mode is {self.mode!r}, primary_key is {list(self.primary_key)})"
            )
        keys = self.primary_key if self.capture_deletes else ()
        problem = unexported_keys(keys, self.columns, self.exclude_columns)
        if problem:
            raise ValueError(f"table {self.name!r}: {problem}")
        return self

    @field_validator("expected_rows", mode="before")
    @classmethod
    def _check_expected_rows(cls, value: Any) -> Any:
        if value is not None:
            _check_count(value, 0, MAX_ROWS_SETTING)
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        try:
            parse_table_name(value)
        except InvalidTableName as exc:
            raise ValueError(
                f"{value!r} is not a table name ({exc}); allowed: schema.table or table, each part either "
                "letters, digits, '_' or '$' starting with a letter or '_' (folded to lower case), or "
                "double-quoted: 1-127 bytes of printable characters, '\"' doubled inside, e.g. "
                'analytics."Mixed Case Table"'
            ) from None
        return value

    @property
    def folder(self) -> str:
        """The folder of this table's output under the tenant's prefix (see ``table_folder``)."""
        return table_folder(self.name)

    @field_validator("cursor_column")
    @classmethod
    def _check_cursor_column(cls, value: str | None) -> str | None:
        if value is not None and not COLUMN_PATTERN.fullmatch(value):
            raise ValueError(f"{value!r} is not a column name; allowed: letters, digits, '_' or '$'")
        return value

    @field_validator("query")
    @classmethod
    def _check_query(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("an empty query; give a SELECT or leave the key out")
        # The same gate as rs2gcs_configure: an entry written by hand must not run anything else.
        try:
            return check_read_only_select(value)
        except QueryNotAllowed as exc:
            raise ValueError(f"{value!r} is not allowed: {exc}") from None

    @model_validator(mode="after")
    def _incremental_needs_cursor(self) -> TableSpec:
        if self.mode == "incremental" and not self.cursor_column:
            raise ValueError("mode 'incremental' needs a cursor_column")
        return self


class Webhook(_Strict):
    """A webhook that receives each sync's outcome.

    :param id: the tenant's id for this webhook (deleted on disconnect).
    :param url: where outcomes are POSTed.
    :param secret: optional inline signing secret (masked in logs).
    :param secret_conn_id: optional Airflow connection whose password is the signing secret.
    :param registration_url: optional remote registration, sent a DELETE on disconnect.
    """

    id: str = Field(min_length=1, max_length=128)
    url: str
    secret: str | None = None
    secret_conn_id: str | None = None
    registration_url: str | None = None

    @field_validator("url", "registration_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


class LastWebhook(_Strict):
    """A webhook a disconnected tenant had, without its secret: what a reconnect is prefilled with.

    :param id: the webhook's id.
    :param url: where its outcomes were POSTed.
    :param secret_conn_id: the connection that held its signing secret, if any.
    :param registration_url: its remote registration (already sent a DELETE).
    :param signed: it had an inline secret, which is not kept: a reconnect must give it again.
    """

    id: str = Field(min_length=1, max_length=128)
    url: str
    secret_conn_id: str | None = None
    registration_url: str | None = None
    signed: bool = False


class LastConnection(_Strict):
    """Where a disconnected tenant was connected, kept so a reconnect starts prefilled. Never a secret.

    :param redshift_conn_id: the Redshift connection it used.
    :param gcp_conn_id: the GCP connection it used.
    :param bucket: the bucket its data went to (and still is).
    :param prefix: the prefix inside that bucket.
    :param webhooks: its webhooks, without secrets.
    """

    redshift_conn_id: str | None = None
    gcp_conn_id: str | None = None
    bucket: str | None = None
    prefix: str = ""
    webhooks: tuple[LastWebhook, ...] = ()


class Tenant(_Strict):
    """One tenant of ``rs2gcs_tenants``; ``docs/tenant-contract.md`` describes every key."""

    tenant_id: str
    source: str = SOURCE
    status: Status | None = None
    redshift_conn_id: str | None = None
    gcp_conn_id: str | None = None
    bucket: str | None = None
    prefix: str = ""
    sync_frequency: str | None = Field(default=None, alias="syncFrequency")
    timezone: str = "UTC"
    format: Format = "parquet"
    tables: tuple[TableSpec, ...] = ()
    webhooks: tuple[Webhook, ...] = ()
    catchup: bool = False
    single_node_cluster: bool = False
    group_small_tables: bool = True
    small_table_rows: int = DEFAULT_SMALL_TABLE_ROWS
    small_table_slots: int = DEFAULT_SMALL_TABLE_SLOTS
    owner: str = "rs2gcs"
    connected_at: str | None = None
    configured_at: str | None = None
    disconnecting_at: str | None = None
    disconnected_at: str | None = None
    last_connection: LastConnection | None = None
    # The Airflow connection whose password keys the tables' hash_columns (never stored here).
    hash_key_conn_id: str | None = None

    @field_validator("tenant_id", mode="before")
    @classmethod
    def _check_tenant_id(cls, value: Any) -> Any:
        # Before the model strips whitespace: " acme" must not pass as "acme" and share its DAG and folder.
        if not isinstance(value, str) or not TENANT_ID_PATTERN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a tenant id; allowed: 1-63 letters, digits, '_' or '-', "
                "starting with a letter or digit"
            )
        return value

    @field_validator("group_small_tables", mode="before")
    @classmethod
    def _check_group_small_tables(cls, value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} is not allowed; allowed: true or false")
        return value

    @field_validator("small_table_rows", mode="before")
    @classmethod
    def _check_small_table_rows(cls, value: Any) -> Any:
        return _check_count(value, 0, MAX_ROWS_SETTING)

    @field_validator("small_table_slots", mode="before")
    @classmethod
    def _check_small_table_slots(cls, value: Any) -> Any:
        # A task that holds more slots than its pool has is never scheduled: keep this within the pool.
        return _check_count(value, 1, MAX_SMALL_TABLE_SLOTS)

    @field_validator("source")
    @classmethod
    def _check_source(cls, value: str) -> str:
        if value != SOURCE:
            raise ValueError(f"{value!r} is not a supported source; allowed: {SOURCE!r}")
        return value

    @field_validator("bucket")
    @classmethod
    def _check_bucket(cls, value: str | None) -> str | None:
        if value is not None and not BUCKET_PATTERN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a GCS bucket name; allowed: 3-63 lowercase letters, digits, '-' or '_', "
                "starting and ending with a letter or digit"
            )
        return value

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        segments = [s for s in value.strip("/").split("/") if s]
        for segment in segments:
            if segment in {".", ".."} or not PREFIX_SEGMENT_PATTERN.fullmatch(segment):
                raise ValueError(
                    f"{value!r} is not an object prefix; allowed: '/'-separated segments of letters, digits, "
                    "'.', '_', '=' or '-' (no '.' or '..' segments)"
                )
        return "/".join(segments)

    @field_validator("sync_frequency")
    @classmethod
    def _check_frequency(cls, value: str | None) -> str | None:
        return None if value is None else normalise_frequency(value)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            pendulum.timezone(value)
        except Exception:
            raise ValueError(
                f"{value!r} is not an IANA time zone; allowed: names such as 'UTC', "
                "'Europe/Berlin', 'America/New_York'"
            ) from None
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> Tenant:
        # Plain parts fold to lower case: Sales.Orders and sales.orders are one table.
        names = [parse_table_name(table.name).canonical for table in self.tables]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"tables: duplicate table names {duplicates}; each name must be unique")
        folders = [table.folder.lower() for table in self.tables]
        clashes = sorted({t.name for t in self.tables if folders.count(t.folder.lower()) > 1})
        if clashes:
            raise ValueError(f"tables: {clashes} would share an output folder; rename one of them")
        return self

    @model_validator(mode="after")
    def _hashing_needs_a_key(self) -> Tenant:
        hashing = [t.name for t in self.tables if t.hash_columns]
        if hashing and not self.hash_key_conn_id:
            raise ValueError(
                f"hash_key_conn_id: tables {hashing} have hash_columns; allowed: the id of an Airflow "
                "connection whose password is the HMAC key"
            )
        return self

    @property
    def is_complete(self) -> bool:
        """Connections, bucket, at least one table and a sync frequency are all present."""
        return bool(
            self.redshift_conn_id and self.gcp_conn_id and self.bucket and self.tables and self.sync_frequency
        )

    @property
    def is_ready(self) -> bool:
        """A ready tenant gets a sync DAG: complete, and neither disconnecting nor disconnected."""
        return self.is_complete and self.status not in INACTIVE_STATUSES


def closest_ids(wanted: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The known ids closest to ``wanted`` (a typo, another case), best first; ``[]`` when none is close."""
    by_folded: dict[str, list[str]] = {}
    for key in known:
        by_folded.setdefault(key.casefold(), []).append(key)
    same_case_folded = sorted(by_folded.get(wanted.casefold(), []))
    close = difflib.get_close_matches(wanted.casefold(), list(by_folded), n=n, cutoff=0.6)
    ranked = same_case_folded + [key for folded in close for key in sorted(by_folded[folded])]
    return list(dict.fromkeys(k for k in ranked if k != wanted))[:n]


def _known_keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items() if name != "tenant_id"]


def _field_path(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(entry)"


def _describe(error: Mapping[str, Any]) -> str:
    loc = error["loc"]
    if error["type"] == "extra_forbidden":
        owner = TableSpec if "tables" in loc else Webhook if "webhooks" in loc else Tenant
        suggestion = difflib.get_close_matches(str(loc[-1]), _known_keys(owner), n=1)
        hint = f"did you mean {suggestion[0]!r}? " if suggestion else ""
        return f"unknown key {loc[-1]!r}; {hint}allowed keys: {', '.join(_known_keys(owner))}"
    if error["type"] == "missing":
        return "is required"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in {"value_error", "assertion_error"}:
        return message
    return f"{error.get('input')!r}: {message}"


def parse_tenant(tenant_id: str, entry: Any) -> Tenant:
    """Validate one entry of the Variable; raise :class:`TenantConfigError` listing every problem."""
    if not isinstance(entry, Mapping):
        raise TenantConfigError(
            tenant_id, [("(entry)", f"must be a JSON object, got {type(entry).__name__}")]
        )
    if "tenant_id" in entry:
        raise TenantConfigError(tenant_id, [("tenant_id", "is the entry's key in the Variable, not a field")])
    try:
        return Tenant.model_validate({**entry, "tenant_id": tenant_id})
    except ValidationError as exc:
        problems = [_problem(err) for err in exc.errors()]
        raise TenantConfigError(tenant_id, problems) from None


def _problem(error: Mapping[str, Any]) -> tuple[str, str]:
    """(field, message) of one validation error; entry-wide checks name their field as 'field: ...'."""
    field, message = _field_path(Tenant, error["loc"]), _describe(error)
    head, _, rest = message.partition(": ")
    if not error["loc"] and rest and head in _known_keys(Tenant):
        return head, rest
    return field, message
