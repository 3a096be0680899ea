"""What the three lifecycle operators share: their rules, input checks and webhook deletion.

The operators are the widget's buttons: Connect (:mod:`airflow_rs2gcs.operators.connect`), Configure
(:mod:`airflow_rs2gcs.operators.configure`) and Disconnect (:mod:`airflow_rs2gcs.operators.disconnect`).
Each reads and writes the tenant's entry in ``rs2gcs_tenants`` only through
:func:`airflow_rs2gcs.store.update_tenant`, so concurrent runs for different tenants never lose each
other's updates; a run whose tenant entry changed while it checked connections or the catalog writes
nothing and says so. Messages are the widget's: ``Activation successful for <source>`` and
``Deactivation completed for <tenant_id>`` (only when every webhook registration is gone).

Rules every operator follows (the control DAGs' docs repeat them):

- Text stays text: tenant ids, connection ids, buckets and prefixes must arrive as ``str``; a number,
  bool or ``None`` where text belongs (what ``render_template_as_native_obj=True`` makes of ``"123"``,
  ``"True"`` or ``"None"``) is refused, never converted back.
- Exact tenants: Configure and Disconnect act only on a tenant that has an entry; otherwise they fail
  naming the closest existing ids and write nothing.
- Partial updates: a field left empty (``None``, ``""``, ``[]``, ``{}``) keeps its stored value;
  clearing is explicit (Connect's ``clear``; ``null`` for one option of one table in Configure).
- A change of where a configured tenant's output goes (bucket, prefix, format) or of its time zone
  is refused unless the run sets ``confirm_output_change``.
- A webhook registration is deleted before its record is dropped; a record is dropped only when its
  registration is gone (2xx, 404 or 410 after bounded retries).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_rs2gcs.store import TENANTS_VARIABLE, parse_tenants_json, read_variable_text
from airflow_rs2gcs.tenants import (
    TENANT_ID_PATTERN,
    Tenant,
    TenantConfigError,
    Webhook,
    closest_ids,
    parse_tenant,
)
from airflow_rs2gcs.webhooks import (
    DELETE_ATTEMPTS,
    DELETE_DEADLINE_SECONDS,
    DELETE_FIRST_BACKOFF_SECONDS,
    Deletion,
    delete_registration,
)

if TYPE_CHECKING:
    pass

# The hooks (boto, google-cloud-storage) are imported inside execute: DAG files that use these
# operators are parsed often, and those imports cost seconds per parse process.

# A templated field holds a Jinja string, a plain value, or a callable that Airflow calls with
# ``context`` and ``jinja_env`` at run time (the control DAGs pass each Param's value that way).
FieldSource = Callable[..., Any]

PICKER_PREVIEW = 20  # relations named in the error of a Configure run with no tables selected
ACTIVE_STATUSES = frozenset({"connected", "configured"})
# What a Connect run may clear explicitly (its ``clear`` list); the rest is required or has a default.
CONNECT_CLEARABLE = ("prefix", "webhooks")
DEFAULT_SYNC_FREQUENCY = "daily"  # a first Configure run that names no frequency
CONFIRM_HINT = (
    "Objects already written and the incremental history stay where they are, and the next syncs "
    "start over at the new place. Nothing was changed. To do it anyway, trigger again with "
    "confirm_output_change: true; to keep the stored values, leave those fields empty."
)


class LifecycleError(ValueError):
    """A lifecycle step refused its input; the message says which check failed and what to do."""


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# --- what a run was given ---------------------------------------------------------------------------


def _empty(value: Any) -> bool:
    """Left empty: ``None``, blank text, or an empty list or object."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, list | tuple | dict) and not value)


def checked_tenant_id(value: Any) -> str:
    """The tenant id as given, refused unless it is text in the tenant id alphabet."""
    if not isinstance(value, str):
        raise LifecycleError(
            f"tenant id {value!r} arrived as {type(value).__name__}, not text: tenant ids are strings end "
            "to end. If your DAG renders templates as native objects (render_template_as_native_obj=True), "
            "'123', 'True' and 'None' turn into a number, a bool and None: pass the Param's value itself "
            "(see airflow_rs2gcs.control_dags.ParamValue) instead of a '{{ params.x }}' template."
        )
    if not TENANT_ID_PATTERN.fullmatch(value):
        raise LifecycleError(
            f"tenant id {value!r} is not allowed: 1-63 letters, digits, '_' or '-', starting with a "
            "letter or digit"
        )
    return value


def given_text(tenant_id: str, field: str, value: Any) -> str | None:
    """A text field as given: ``None`` when left empty; anything but text is refused, never converted."""
    if _empty(value):
        return None
    if not isinstance(value, str):
        raise LifecycleError(
            f"tenant {tenant_id!r}: field {field!r} must be text, got {type(value).__name__} {value!r} "
            "(with render_template_as_native_obj=True a template turns '2024' or 'None' into a number or "
            "None; pass the Param's value itself)"
        )
    return value


def given_json(tenant_id: str, field: str, value: Any, kind: type[list[Any]] | type[dict[str, Any]]) -> Any:
    """A list or object field as given (a JSON string is parsed): ``None`` when left empty."""
    if _empty(value):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise LifecycleError(
                f"tenant {tenant_id!r}: field {field!r} must be a JSON {kind.__name__}: {exc.msg}"
            ) from None
    if isinstance(value, tuple) and kind is list:
        value = list(value)
    if not isinstance(value, kind):
        what = "list" if kind is list else "object"
        raise LifecycleError(
            f"tenant {tenant_id!r}: field {field!r} must be a JSON {what}, got {type(value).__name__}"
        )
    return value or None


def given_flag(tenant_id: str, field: str, value: Any) -> bool:
    """A boolean field: a bool, or the text ``true``/``false`` a Jinja template renders."""
    if isinstance(value, bool):
        return value
    if _empty(value):
        return False
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise LifecycleError(f"tenant {tenant_id!r}: field {field!r} must be true or false, got {value!r}")


# --- the stored entry -------------------------------------------------------------------------------


def parsed_tenant(tenant_id: str, entry: Mapping[str, Any]) -> Tenant:
    """The entry as the tenant contract reads it; a problem becomes a :class:`LifecycleError`."""
    try:
        return parse_tenant(tenant_id, entry)
    except TenantConfigError as exc:
        raise LifecycleError(str(exc)) from None


def validated_entry(tenant_id: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """Check an entry against the tenant contract before it is stored; return it unchanged."""
    parsed_tenant(tenant_id, entry)
    return dict(entry)


def all_entries() -> dict[str, Any]:
    """Every tenant entry of the Variable."""
    return parse_tenants_json(read_variable_text())


def existing_entry(tenant_id: str, refusal: Callable[[str], str]) -> Any:
    """The tenant's stored entry. Without one: a :class:`LifecycleError` whose text ``refusal`` makes
    from a hint naming the closest existing ids (Configure and Disconnect never create a tenant)."""
    tenants = all_entries()
    if tenant_id not in tenants:
        raise LifecycleError(refusal(closest_hint(tenant_id, tenants)))
    return tenants[tenant_id]


def closest_hint(tenant_id: str, tenants: Mapping[str, Any]) -> str:
    close = closest_ids(tenant_id, tenants)
    if close:
        return f"closest existing ids: {', '.join(repr(t) for t in close)}"
    if not tenants:
        return f"{TENANTS_VARIABLE!r} holds no tenant yet"
    shown = sorted(tenants)[:10]
    more = f", ... ({len(tenants)} in all)" if len(tenants) > len(shown) else ""
    return f"no existing id is close; existing ids: {', '.join(repr(t) for t in shown)}{more}"


def check_unchanged(
    tenant_id: str, before: Mapping[str, Any] | None, stored: Mapping[str, Any] | None
) -> None:
    """Refuse to write over an entry another run changed while this one was checking."""
    if stored != before:
        raise LifecycleError(
            f"tenant {tenant_id!r} was changed by another run while this one was checking it; "
            "nothing was written. Trigger this run again."
        )


def _show(value: Any) -> str:
    return repr(value) if value not in (None, "") else "(none)"


def refuse_unconfirmed(
    tenant_id: str, stored: Mapping[str, Any], new: Tenant, fields: Sequence[str], confirmed: bool
) -> None:
    """Refuse changing ``fields`` of a configured tenant (they split its history) unless confirmed.

    Values are compared as the tenant contract reads them (``/a//b/`` and ``a/b`` are one prefix).
    """
    if stored.get("status") != "configured" or confirmed:
        return
    try:
        old: Mapping[str, Any] = parse_tenant(tenant_id, stored).model_dump()
    except TenantConfigError:  # written by hand and invalid: compare the raw values
        old = stored
    changes = [(f, old.get(f), getattr(new, f)) for f in fields if old.get(f) != getattr(new, f)]
    if changes:
        listed = "; ".join(f"{field} {_show(old)} -> {_show(new)}" for field, old, new in changes)
        raise LifecycleError(
            f"tenant {tenant_id!r} is configured and this run changes where its output goes or how its "
            f"runs are windowed: {listed}. {CONFIRM_HINT}"
        )


def webhook_for_deletion(raw: Any) -> Webhook:
    """The id and registration URL of a stored webhook record, however malformed the rest is."""
    record = raw if isinstance(raw, Mapping) else {}
    url = record.get("registration_url")
    return Webhook.model_construct(
        id=str(record.get("id") or f"(record {raw!r})"),
        url=str(record.get("url") or ""),
        registration_url=None if url in (None, "") else str(url),
    )


def webhook_key(raw: Any) -> tuple[str, str | None]:
    webhook = webhook_for_deletion(raw)
    return webhook.id, webhook.registration_url


@dataclass(frozen=True)
class DeleteBounds:
    """How hard a lifecycle run tries to delete one webhook registration (see ``delete_registration``)."""

    attempts: int = DELETE_ATTEMPTS
    first_backoff: float = DELETE_FIRST_BACKOFF_SECONDS
    deadline_seconds: float = DELETE_DEADLINE_SECONDS


def delete_webhooks(
    log: Any, tenant_id: str, records: Iterable[Any], bounds: DeleteBounds
) -> list[tuple[Any, Deletion]]:
    """Delete each record's registration within ``bounds``, logging each outcome on ``log``."""
    outcomes = []
    for raw in records:
        deletion = delete_registration(
            webhook_for_deletion(raw),
            attempts=bounds.attempts,
            first_backoff=bounds.first_backoff,
            deadline_seconds=bounds.deadline_seconds,
        )
        if deletion.deleted:
            log.info("tenant %s: deleted %s", tenant_id, deletion.describe())
        else:
            log.error("tenant %s: NOT deleted: %s", tenant_id, deletion.describe())
        outcomes.append((raw, deletion))
    return outcomes


def not_deleted(outcomes: Iterable[tuple[Any, Deletion]]) -> list[Deletion]:
    return [deletion for _, deletion in outcomes if not deletion.deleted]


# --- Connect ----------------------------------------------------------------------------------------
