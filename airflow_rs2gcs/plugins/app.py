"""The FastAPI app Airflow mounts at ``/rs2gcs``: the page, its static files and the JSON API ``api/v1``.

Every route needs a signed-in Airflow user (:mod:`airflow_rs2gcs.plugins.security`); the page and its
files too, so nothing of the widget is served to an anonymous visitor. Errors are JSON
``{"detail": ...}``; a form the user must correct answers 422 with ``"errors": {field: message}``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse

from airflow_rs2gcs.plugins import actions_api, catalog_api, meta_api, runs_api, tenants_api
from airflow_rs2gcs.plugins.deps import get_access
from airflow_rs2gcs.plugins.forms import FormError

STATIC_DIR = Path(__file__).parent / "static"
API_PREFIX = "/api/v1"
# The page loads only its own files and talks only to its own origin; no inline script or style, no
# eval; framed only by Airflow's own pages (same origin). Its links out are followed from Airflow's
# document (see static/links.js), so no navigate-to or frame rule is needed for them.
CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' data:; frame-ancestors 'self'"
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}

page_router = APIRouter(dependencies=[Depends(get_access)])


def static_file(name: str) -> Path:
    """A file directly in ``static/`` (no sub-paths, no dot-files); 404 for anything else."""
    path = STATIC_DIR / name
    if "/" in name or "\\" in name or name.startswith(".") or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no file {name!r}")
    return path


@page_router.get("/", include_in_schema=False)
def index() -> FileResponse:
    """The widget page."""
    return FileResponse(
        static_file("index.html"),
        media_type="text/html",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": CONTENT_SECURITY_POLICY},
    )


@page_router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> FileResponse:
    """One of the page's files (``app.js`` and its modules, ``app.css`` ...)."""
    path = static_file(name)
    return FileResponse(path, media_type=_MEDIA_TYPES.get(path.suffix), headers={"Cache-Control": "no-cache"})


async def form_error(request: Request, exc: Exception) -> JSONResponse:
    """422 with one message per field."""
    errors = exc.errors if isinstance(exc, FormError) else {}
    return JSONResponse(
        {"detail": f"invalid request: {exc}", "errors": errors},
        status_code=422,
    )


async def query_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own 422 (query parameters) in the same shape."""
    problems = exc.errors() if isinstance(exc, RequestValidationError) else []
    errors = {str(p["loc"][-1]): str(p["msg"]) for p in problems if p.get("loc")}
    detail = "; ".join(f"{field}: {message}" for field, message in errors.items())
    return JSONResponse(
        {"detail": f"invalid request: {detail}", "errors": errors},
        status_code=422,
    )


def create_app() -> FastAPI:
    """The plugin's app (Airflow mounts it at ``/rs2gcs``)."""
    app = FastAPI(
        title="rs2gcs widget API",
        description="The Redshift → GCS widget's JSON API (docs/plugin-api.md).",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_exception_handler(FormError, form_error)
    app.add_exception_handler(RequestValidationError, query_error)
    app.include_router(page_router)
    for module in (meta_api, tenants_api, catalog_api, runs_api, actions_api):
        app.include_router(module.router, prefix=API_PREFIX)
    return app


app = create_app()
