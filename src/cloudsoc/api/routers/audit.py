"""``GET /api/v1/audit``: the console's audit log, newest first (auditors and admins)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, get_console
from cloudsoc.api.paging import Page, Paging
from cloudsoc.api.permissions import Permission

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditOut(BaseModel):
    id: int
    time: str
    user: str
    action: str
    target: str
    ip: str
    outcome: str
    detail: dict[str, Any]


@router.get("", response_model=Page[AuditOut])
def audit_log(
    _: Annotated[Principal, Depends(require(Permission.AUDIT))],
    console: Annotated[Console, Depends(get_console)],
    paging: Annotated[Paging, Depends()],
    user: Annotated[str | None, Query(max_length=64, description="Only this user's actions.")] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="An action, or a prefix ending in * (user.*).")
    ] = None,
) -> Page[AuditOut]:
    entries, total = console.store.audit_entries(user=user, action=action, limit=paging.limit, offset=paging.offset)
    return paging.page([AuditOut.model_validate(e.export()) for e in entries], total)
