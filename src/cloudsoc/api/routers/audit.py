"""``GET /api/v1/audit``: the console's audit log, newest first (auditors and admins)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, get_console
from cloudsoc.api.estate import time_range
from cloudsoc.api.paging import Page, Paging
from cloudsoc.api.permissions import Permission

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


Outcome = Literal["success", "failure", "denied", "locked", "throttled"]


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
    outcome: Annotated[Outcome | None, Query(description="Only entries with this outcome.")] = None,
    since: Annotated[str | None, Query(max_length=64, description="Start: 24h, 7d or an ISO time.")] = None,
    until: Annotated[
        str | None, Query(max_length=64, description="End (exclusive): a duration or an ISO time.")
    ] = None,
) -> Page[AuditOut]:
    t0, t1 = time_range(since, until)
    entries, total = console.store.audit_entries(
        user=user or None, action=action or None, outcome=outcome, since=t0, until=t1,
        limit=paging.limit, offset=paging.offset,
    )  # fmt: skip
    return paging.page([AuditOut.model_validate(e.export()) for e in entries], total)
