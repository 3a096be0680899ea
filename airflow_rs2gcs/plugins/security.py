"""Who is asking and what they may do: authentication, authorization and the cross-site check.

Airflow mounts a plugin's FastAPI app without its own auth dependencies, so every route here asks for
:func:`current_user` (the ``_token`` session cookie or an ``Authorization: Bearer`` token, checked by
Airflow's own ``get_user``) and answers 401 without one. Airflow's security helpers live in internal
modules: if they cannot be imported, every route fails closed with 503 instead of serving anyone.

Authorization goes through Airflow's auth manager, by DAG (:class:`Access`):

- reading tenant X needs GET on DAG ``rs2gcs_sync__X`` (the id works before that DAG exists);
- a button needs permission to trigger its DAG (POST on the DAG's runs: ``rs2gcs_connect``,
  ``rs2gcs_configure``, ``rs2gcs_disconnect``, or the sync DAG for Sync) and PUT on ``rs2gcs_sync__X``.

Mutating requests must carry ``X-Rs2gcs-Request: 1`` (a header a cross-site form or image cannot send
and a cross-site ``fetch`` cannot send without a CORS preflight, which Airflow does not grant) and, when
the browser sends ``Origin``, it must be this server (:func:`cross_site_refusal`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, status

from airflow_rs2gcs.factory import sync_dag_id
from airflow_rs2gcs.plugins.widget import action_dag_id

CSRF_HEADER = "X-Rs2gcs-Request"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class _Helpers:
    """The Airflow modules the checks use, imported on first use (internal modules: they may move)."""

    security: ModuleType
    app: ModuleType
    resources: ModuleType


_HELPERS: list[_Helpers] = []


def airflow_helpers() -> _Helpers:
    """Airflow's security modules; 503 (fail closed) if this Airflow does not have them."""
    if not _HELPERS:
        try:
            _HELPERS.append(
                _Helpers(
                    security=importlib.import_module("airflow.api_fastapi.core_api.security"),
                    app=importlib.import_module("airflow.api_fastapi.app"),
                    resources=importlib.import_module(
                        "airflow.api_fastapi.auth.managers.models.resource_details"
                    ),
                )
            )
        except Exception as exc:  # any import problem: serve nobody
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"the rs2gcs plugin cannot check who you are on this Airflow ({type(exc).__name__}: {exc}); "
                "refusing every request",
            ) from None
    return _HELPERS[0]


async def current_user(request: Request) -> Any:
    """The signed-in Airflow user, from the session cookie or a Bearer token; 401 without a valid one."""
    helpers = airflow_helpers()
    credentials = await helpers.security.bearer_scheme(request)
    try:
        return await helpers.security.get_user(request, None, credentials)
    except HTTPException as exc:
        # Airflow answers 403 to a token that does not verify; to this page it is no session at all.
        if exc.status_code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"Not authenticated: {exc.detail}") from None
        raise
    except Exception as exc:  # no auth manager, a broken one: fail closed
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the rs2gcs plugin cannot check who you are ({type(exc).__name__}: {exc}); refusing the request",
        ) from None


def _netloc(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def cross_site_refusal(method: str, headers: Mapping[str, str], own_origins: Iterable[str]) -> str | None:
    """Why a request looks cross-site (``None`` when it does not): header missing or foreign Origin.

    ``headers`` must be case-insensitive (Starlette's are); ``own_origins`` are ``scheme://host[:port]``
    of this server as the browser sees it.
    """
    if method.upper() in SAFE_METHODS:
        return None
    if headers.get(CSRF_HEADER) != "1":
        return f"missing header {CSRF_HEADER}: 1 (the page sends it; a cross-site request cannot)"
    origin = headers.get("origin")
    if origin is None:
        return None
    allowed = {o.lower().rstrip("/") for o in own_origins if o}
    if _netloc(origin) not in allowed:
        return f"Origin {origin!r} is not this server ({', '.join(sorted(allowed)) or 'unknown'})"
    return None


def own_origins(request: Request) -> set[str]:
    """This server's origins: as the request reached it, as forwarded by a proxy, and ``[api] base_url``."""
    origins = {_netloc(str(request.base_url))}
    host = request.headers.get("host")
    if host:
        origins |= {f"http://{host}", f"https://{host}"}
    forwarded = request.headers.get("x-forwarded-host")
    if forwarded:
        proto = request.headers.get("x-forwarded-proto", "https")
        origins.add(f"{proto}://{forwarded.split(',')[0].strip()}")
    try:
        from airflow.configuration import conf

        origins.add(_netloc(conf.get("api", "base_url", fallback="") or ""))
    except Exception:  # no base_url configured: the request's own origins stand
        pass
    return {o.lower() for o in origins if o}


async def refuse_cross_site(request: Request) -> None:
    """403 for a mutating request without the page's header or from a foreign Origin."""
    reason = cross_site_refusal(request.method, request.headers, own_origins(request))
    if reason is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"cross-site request refused: {reason}")


@dataclass
class Access:
    """What one user may do with tenants, asked of Airflow's auth manager (answers cached per request)."""

    user: Any
    _cache: dict[tuple[str, str, str], bool] = field(default_factory=dict)

    def _allowed(self, method: str, dag_id: str, entity: str | None = None) -> bool:
        key = (method, dag_id, entity or "")
        if key not in self._cache:
            helpers = airflow_helpers()
            resources = helpers.resources
            access_entity = resources.DagAccessEntity[entity] if entity else None
            self._cache[key] = bool(
                helpers.app.get_auth_manager().is_authorized_dag(
                    method=method,
                    access_entity=access_entity,
                    details=resources.DagDetails(id=dag_id),
                    user=self.user,
                )
            )
        return self._cache[key]

    @property
    def name(self) -> str:
        """The user's name as Airflow shows it (and records as a run's triggering user)."""
        return str(self.user.get_name())

    def can_read(self, tenant_id: str) -> bool:
        """GET on the tenant's sync DAG."""
        return self._allowed("GET", sync_dag_id(tenant_id))

    def readable(self, tenant_ids: Iterable[str]) -> set[str]:
        """The tenants among ``tenant_ids`` the user may read, asked in one batch of the auth manager."""
        by_dag = {sync_dag_id(t): t for t in tenant_ids}
        helpers = airflow_helpers()
        allowed = helpers.app.get_auth_manager().filter_authorized_dag_ids(
            dag_ids=set(by_dag), user=self.user, method="GET"
        )
        return {by_dag[dag_id] for dag_id in allowed if dag_id in by_dag}

    def can_act(self, tenant_id: str, action: str) -> bool:
        """Trigger the action's DAG (POST on its runs) and edit the tenant's sync DAG (PUT)."""
        return self._allowed("POST", action_dag_id(action, tenant_id), "RUN") and self._allowed(
            "PUT", sync_dag_id(tenant_id)
        )

    def can_post(self) -> bool:
        """Whether any button can work for this user (may trigger ``rs2gcs_connect``)."""
        return self._allowed("POST", action_dag_id("connect", ""), "RUN")


def require_read(access: Access, tenant_id: str) -> None:
    """403 unless the user may read the tenant."""
    if not access.can_read(tenant_id):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"no read access to tenant {tenant_id!r} (DAG {sync_dag_id(tenant_id)})",
        )


def require_action(access: Access, tenant_id: str, action: str) -> None:
    """403 unless the user may run ``action`` on the tenant."""
    if not access.can_act(tenant_id, action):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{access.name} may not {action} tenant {tenant_id!r}: needs to trigger "
            f"{action_dag_id(action, tenant_id)} and edit {sync_dag_id(tenant_id)}",
        )
