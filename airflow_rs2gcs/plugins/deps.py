"""What the routes share: the signed-in user's :class:`Access`, the tenants Variable, a DB session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session

from airflow_rs2gcs.plugins.security import Access, current_user, refuse_cross_site
from airflow_rs2gcs.store import TenantsVariableError, load_tenants


async def get_access(user: Annotated[Any, Depends(current_user)]) -> Access:
    """The signed-in user's access (401 without a session)."""
    return Access(user)


async def get_mutating_access(request: Request, access: Annotated[Access, Depends(get_access)]) -> Access:
    """The user's access for a POST: 401 without a session first, then 403 if it looks cross-site."""
    await refuse_cross_site(request)
    return access


def read_tenants() -> dict[str, Any]:
    """Every tenant entry of ``rs2gcs_tenants``; 500 naming the problem if the Variable is not valid JSON."""
    try:
        return load_tenants()
    except TenantsVariableError as exc:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc)) from None


def db_session() -> Iterator[Session]:
    """A metadata-DB session for one request."""
    from airflow.utils.session import create_session

    with create_session(scoped=False) as session:
        yield session


AccessDep = Annotated[Access, Depends(get_access)]
MutatingAccessDep = Annotated[Access, Depends(get_mutating_access)]
SessionDep = Annotated[Session, Depends(db_session)]
