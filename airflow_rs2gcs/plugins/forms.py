"""The page's forms: each button's JSON body, checked before anything is triggered, turned into DAG conf.

A body is checked where that is cheap and needs no database or Redshift (the tenant model, the table
name parser, the read-only SELECT check, the syncFrequency table, time zones); what needs the catalog
(does the table exist, is the cursor column a date) is left to the control DAG's run, whose error the
page shows. A refused body raises :class:`FormError` with one message per field, keyed as the page's
form names them (``bucket``, ``tables.2.cursor_column``, ``queries.0.sql``, ``syncFrequency``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from airflow_rs2gcs.identifiers import InvalidTableName, parse_table_name
from airflow_rs2gcs.plugins.masking import MASK
from airflow_rs2gcs.schedules import frequency_option, normalise_frequency
from airflow_rs2gcs.tenants import SOURCE, TENANT_ID_PATTERN, TenantConfigError, parse_tenant

Conf = dict[str, Any]


class FormError(ValueError):
    """A body the page must correct; ``errors`` maps each field to its message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.errors.items()))


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ConnectBody(_Body):
    """Connect: the connections, bucket, prefix and webhooks (``None`` keeps what is stored)."""

    redshift_conn_id: str | None = None
    gcp_conn_id: str | None = None
    bucket: str | None = None
    prefix: str | None = None
    webhooks: list[dict[str, Any]] | None = None
    confirm_output_change: bool = False


class ContractChoice(_Body):
    """A table's data contract as the page edits it; a key the body leaves out keeps its stored value."""

    on_schema_change: Literal["evolve", "fail"] | None = None
    columns: list[str] | None = None
    exclude_columns: list[str] | None = None
    hash_columns: list[str] | None = None

    def contract(self) -> dict[str, Any]:
        """The contract keys the body gave (``columns: null`` given means every column)."""
        return {key: getattr(self, key) for key in CONTRACT_KEYS if key in self.model_fields_set}


CONTRACT_KEYS = ("on_schema_change", "columns", "exclude_columns", "hash_columns")


class TableChoice(ContractChoice):
    """A picked relation: its name as the catalog lists it, its mode and cursor column, its contract,
    and its checks (verify, capture_deletes, primary_key): those not sent keep their stored values, and
    ``null`` clears one."""

    name: str
    mode: Literal["full", "incremental"] = "full"
    cursor_column: str | None = None
    verify: str | None = None
    capture_deletes: bool | None = None
    primary_key: list[str] | None = None


class QueryChoice(ContractChoice):
    """A custom query and the output name its files are written under, and its contract."""

    name: str
    sql: str


class ConfigureBody(_Body):
    """Configure: tables, custom queries, sync frequency, format and time zone."""

    tables: list[str | TableChoice] = []
    queries: list[QueryChoice] = []
    syncFrequency: str | None = None
    format: str | None = None
    timezone: str | None = None
    hash_key_conn_id: str | None = None
    confirm_output_change: bool = False


class SyncBody(_Body):
    """Sync now: optionally some of the tenant's tables, optionally a full refresh."""

    tables: list[str] | None = None
    full_refresh: bool = False


class DisconnectBody(_Body):
    """Disconnect: optionally only some webhooks (the tenant then stays connected)."""

    webhookIds: list[str] | None = None


BODIES: dict[str, type[_Body]] = {
    "connect": ConnectBody,
    "configure": ConfigureBody,
    "sync": SyncBody,
    "disconnect": DisconnectBody,
}


def check_tenant_id(tenant_id: str) -> None:
    """Refuse an id that cannot name a tenant (it becomes a DAG id and a GCS folder)."""
    if not TENANT_ID_PATTERN.fullmatch(tenant_id):
        raise FormError({"tenant_id": "1-63 letters, digits, '_' or '-', starting with a letter or digit"})


def parse_body(action: str, body: Any) -> _Body:
    """The body as the action's model; a shape error becomes a :class:`FormError`."""
    if not isinstance(body, Mapping):
        raise FormError({"(body)": "must be a JSON object"})
    try:
        return BODIES[action].model_validate(body)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"] if not str(p).startswith(("str", "TableChoice")))
            errors.setdefault(field or "(body)", str(error["msg"]).removeprefix("Value error, "))
        raise FormError(errors) from None


def _tenant_problems(tenant_id: str, entry: Mapping[str, Any]) -> dict[str, str]:
    """The tenant model's complaints about ``entry``, by field (``{}`` when it is valid)."""
    try:
        parse_tenant(tenant_id, entry)
    except TenantConfigError as exc:
        problems: dict[str, str] = {}
        for field, message in exc.problems:
            problems.setdefault(field, message)
        return problems
    return {}


# --- Connect ------------------------------------------------------------------------------------------


def _unmasked_webhooks(webhooks: list[dict[str, Any]], stored: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The webhooks with each ``***`` secret (as the page was shown it) put back from the stored entry."""
    known = {w.get("id"): w for w in stored.get("webhooks") or [] if isinstance(w, Mapping)}
    result, errors = [], {}
    for index, webhook in enumerate(webhooks):
        hook = dict(webhook)
        if hook.get("secret") == MASK:
            secret = (known.get(hook.get("id")) or {}).get("secret")
            if secret:
                hook["secret"] = secret
            else:
                errors[f"webhooks.{index}.secret"] = "give the secret (no secret is stored for this id)"
        result.append(hook)
    if errors:
        raise FormError(errors)
    return result


def connect_conf(tenant_id: str, body: ConnectBody, stored: Mapping[str, Any] | None) -> Conf:
    """``rs2gcs_connect``'s conf; a new tenant needs both connections and a bucket."""
    previous = dict(stored or {})
    given = {k: v for k, v in body.model_dump(exclude={"confirm_output_change"}).items() if v is not None}
    clear = [f for f in ("prefix", "webhooks") if f in given and not given[f] and previous.get(f)]
    given = {k: v for k, v in given.items() if v not in ("", [])}
    if "webhooks" in given:
        given["webhooks"] = _unmasked_webhooks(given["webhooks"], previous)
    candidate = {k: v for k, v in previous.items() if k not in clear} | given
    errors = {
        field: "is required for a new tenant"
        for field in ("redshift_conn_id", "gcp_conn_id", "bucket")
        if not candidate.get(field)
    }
    candidate.pop("status", None)
    problems = _tenant_problems(tenant_id, candidate)
    errors |= {f: m for f, m in problems.items() if f.split(".")[0] in given}
    if errors:
        raise FormError(errors)
    return {
        "tenant_id": tenant_id,
        "source": SOURCE,
        **given,
        "clear": clear or None,
        "confirm_output_change": body.confirm_output_change,
    }


# --- Configure ----------------------------------------------------------------------------------------


CHECK_KEYS = ("verify", "capture_deletes", "primary_key")


def _table_spec(choice: str | TableChoice) -> dict[str, Any]:
    if isinstance(choice, str):
        choice = TableChoice(name=choice)
    incremental = choice.mode == "incremental"
    return {
        "name": choice.name,
        "mode": choice.mode,
        "cursor_column": choice.cursor_column if incremental else None,
        "query": None,
        **choice.contract(),
    } | {key: getattr(choice, key) for key in CHECK_KEYS if key in choice.model_fields_set}


def _name_errors(body: ConfigureBody) -> dict[str, str]:
    errors = {}
    for index, choice in enumerate(body.tables):
        name = choice if isinstance(choice, str) else choice.name
        try:
            parse_table_name(name)
        except InvalidTableName as exc:
            errors[f"tables.{index}.name"] = f"{name!r} is not a table name: {exc}"
    return errors


def _configure_field(field: str, table_count: int) -> str:
    """A tenant-model field path (``tables.5.query``) as the form names it (``queries.1.sql``)."""
    parts = field.split(".")
    if parts[0] != "tables" or len(parts) < 2 or not parts[1].isdigit() or int(parts[1]) < table_count:
        return field
    rest = {"query": "sql"}.get(parts[2], parts[2]) if len(parts) > 2 else None
    return ".".join(p for p in ("queries", str(int(parts[1]) - table_count), rest) if p)


def _schedule(body: ConfigureBody) -> tuple[dict[str, Any], dict[str, str]]:
    """The conf keys of the sync frequency: a named option or a cron expression."""
    if not body.syncFrequency:
        return {}, {}
    try:
        value = normalise_frequency(body.syncFrequency)
    except ValueError as exc:
        return {}, {"syncFrequency": str(exc)}
    key = "syncFrequency" if frequency_option(value) is not None else "cron"
    return {key: value}, {}


def configure_conf(tenant_id: str, body: ConfigureBody, stored: Mapping[str, Any] | None) -> Conf:
    """``rs2gcs_configure``'s conf: the full selection (tables, then queries) and the settings."""
    errors = _name_errors(body)
    if not body.tables and not body.queries:
        errors["tables"] = "select at least one table or add a query"
    specs = [_table_spec(choice) for choice in body.tables]
    specs += [
        {"name": q.name, "mode": "full", "cursor_column": None, "query": q.sql, **q.contract()}
        for q in body.queries
    ]
    schedule, schedule_errors = _schedule(body)
    given = {"format": body.format, "timezone": body.timezone, "hash_key_conn_id": body.hash_key_conn_id}
    settings = {k: v for k, v in given.items() if v}
    candidate = {**(stored or {}), "tables": [_present(s) for s in specs], **settings}
    candidate.pop("status", None)
    if not errors:
        problems = _tenant_problems(tenant_id, candidate)
        wanted = {"tables", "format", "timezone", "hash_key_conn_id"}
        errors |= {
            _configure_field(f, len(body.tables)): m for f, m in problems.items() if f.split(".")[0] in wanted
        }
    errors |= schedule_errors
    if errors:
        raise FormError(errors)
    return {
        "tenant_id": tenant_id,
        "tables": specs,
        **schedule,
        **settings,
        "confirm_output_change": body.confirm_output_change,
    }


def _present(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if v is not None}


# --- Sync and Disconnect ------------------------------------------------------------------------------


def sync_conf(tenant_id: str, body: SyncBody, stored: Mapping[str, Any] | None) -> Conf:
    """The sync DAG's conf (its Params: source, tables, full_refresh); tables must be the tenant's."""
    names = [t.get("name") for t in (stored or {}).get("tables") or [] if isinstance(t, Mapping)]
    unknown = [name for name in body.tables or [] if name not in names]
    if unknown:
        raise FormError({"tables": f"not tables of tenant {tenant_id!r}: {unknown}; its tables: {names}"})
    return {"source": SOURCE, "tables": body.tables or None, "full_refresh": body.full_refresh}


def disconnect_conf(tenant_id: str, body: DisconnectBody, stored: Mapping[str, Any] | None) -> Conf:
    """``rs2gcs_disconnect``'s conf; named webhooks must be the tenant's."""
    ids = [w.get("id") for w in (stored or {}).get("webhooks") or [] if isinstance(w, Mapping)]
    unknown = [i for i in body.webhookIds or [] if i not in ids]
    if unknown:
        raise FormError(
            {"webhookIds": f"not webhooks of tenant {tenant_id!r}: {unknown}; its webhooks: {ids}"}
        )
    return {"tenant_id": tenant_id, "webhookIds": body.webhookIds or None}


def action_conf(action: str, tenant_id: str, body: Any, stored: Mapping[str, Any] | None) -> Conf:
    """Check ``body`` for ``action`` on ``tenant_id`` and return the conf of the run it triggers."""
    check_tenant_id(tenant_id)
    parsed = parse_body(action, body)
    if isinstance(parsed, ConnectBody):
        return connect_conf(tenant_id, parsed, stored)
    if isinstance(parsed, ConfigureBody):
        return configure_conf(tenant_id, parsed, stored)
    if isinstance(parsed, SyncBody):
        return sync_conf(tenant_id, parsed, stored)
    assert isinstance(parsed, DisconnectBody)
    return disconnect_conf(tenant_id, parsed, stored)
