"""``/api/v1/alerts``: the triage queue (list, detail, ack / resolve / false-positive / reopen, assign, comment,
history), analyst suppressions, and new alerts live as Server-Sent Events."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, get_console
from cloudsoc.api.estate import Estate, get_estate, parse_when
from cloudsoc.api.paging import Page, Paging
from cloudsoc.api.permissions import Permission
from cloudsoc.detect.alert import Severity, Status
from cloudsoc.detect.suppression import parse_conditions
from cloudsoc.errors import CloudsocError, ConsoleError
from cloudsoc.storage.alerts import AlertStore, StoredAlert

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
Reader = Annotated[Principal, Depends(require(Permission.READ))]
Triager = Annotated[Principal, Depends(require(Permission.TRIAGE))]
EstateDep = Annotated[Estate, Depends(get_estate)]
ConsoleDep = Annotated[Console, Depends(get_console)]

# How often the stream looks for new alerts, and how often it says it is alive when there are none (proxies
# close connections that stay silent).
POLL_SECS: Final = 1.0
KEEPALIVE_SECS: Final = 15.0


class MatchedOut(BaseModel):
    field: str
    value: Any


class RuleRef(BaseModel):
    id: str
    name: str
    name_zh: str
    kind: str
    tags: list[str]


class AlertOut(BaseModel):
    id: str
    rule: RuleRef
    severity: str
    status: str
    assignee: str | None
    matched: list[MatchedOut]
    event_ids: list[str]
    group_key: str
    count: int
    first_time: str
    last_time: str
    created: str
    updated: str
    text: str
    retro: bool
    description: str
    response: str
    description_zh: str
    response_zh: str


class HistoryOut(BaseModel):
    at: str
    actor: str
    action: str
    old: str | None
    new: str | None
    comment: str | None


class AlertDetail(AlertOut):
    events: list[dict[str, Any]]
    history: list[HistoryOut]


class TriageIn(BaseModel):
    comment: str | None = Field(default=None, max_length=4000, description="Why (kept in the history).")


class AssignIn(BaseModel):
    assignee: str | None = Field(max_length=64, description="A user name, or null to unassign.")


class CommentIn(BaseModel):
    text: str = Field(min_length=1, max_length=4000)


class SuppressionIn(BaseModel):
    rule: str = Field(min_length=1, max_length=200, description="Rule id or glob, e.g. access_key_new_source.aws.")
    conditions: dict[str, str] = Field(
        default_factory=dict, description="field -> value: a CIDR for IP fields, else a glob (cloudsoc.access_key_id)."
    )
    reason: str = Field(default="", max_length=1000)
    days: float | None = Field(default=None, gt=0, le=3650, description="Expire after this many days (default: never).")


class SuppressionOut(BaseModel):
    id: int
    rule: str
    conditions: dict[str, str]
    reason: str
    created_by: str
    created: str
    expires: str | None
    hits: int


def alert_out(stored: StoredAlert) -> dict[str, Any]:
    doc = stored.alert.export()
    doc["event_ids"] = doc.pop("event")["ids"]
    doc["updated"] = stored.updated
    return doc


def _found(store: AlertStore, alert_id: str) -> StoredAlert:
    try:
        found = store.get(alert_id)
    except CloudsocError as exc:  # an ambiguous prefix
        raise ConsoleError(str(exc)) from None
    if found is None:
        raise ConsoleError(f"no alert {alert_id[:80]!r}", status=404)
    return found


@router.get("", response_model=Page[AlertOut])
def list_alerts(
    _: Reader,
    estate: EstateDep,
    paging: Annotated[Paging, Depends()],
    status: Annotated[list[Status] | None, Query(description="Only these statuses (repeat the parameter).")] = None,
    severity: Annotated[Severity | None, Query(description="At least this severity.")] = None,
    rule: Annotated[str | None, Query(max_length=200, description="Rule id or glob.")] = None,
    assignee: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[str | None, Query(max_length=64, description="Raised since: 24h, 7d or an ISO time.")] = None,
) -> Page[AlertOut]:
    """Alerts, newest first."""
    filters: dict[str, Any] = {
        "status": status or (),
        "min_severity": severity,
        "rule": rule,
        "assignee": assignee,
        "since": parse_when(since, "since"),
    }
    with estate.alerts() as store:
        rows = store.query(**filters, limit=paging.limit, offset=paging.offset)
        total = store.count(**filters)
    return paging.page([AlertOut.model_validate(alert_out(r)) for r in rows], total)


@router.get("/stream")
async def stream(
    request: Request,
    _: Reader,
    estate: EstateDep,
) -> StreamingResponse:
    """New alerts as they are stored, as Server-Sent Events (``event: alert``, ``id``: a sequence number; send it
    back as ``Last-Event-ID`` to resume). A comment line every 15 s keeps proxies from closing the connection."""
    resume = request.headers.get("last-event-id", "")

    async def events() -> AsyncIterator[bytes]:
        # The store is opened here, not in the route: a generator that never starts then holds nothing.
        store = await asyncio.to_thread(estate.home.open_alerts)
        # A client that goes away cancels the await below, not the query running in its worker thread: the
        # store must not be closed under that query (SQLite would read freed memory), so both take this lock.
        using = threading.Lock()

        def added_after(seq: int) -> list[tuple[int, StoredAlert]]:
            with using:
                return store.added_after(seq)

        def last_seq() -> int:
            with using:
                return store.last_seq()

        try:
            seq = int(resume) if resume.isdigit() else await asyncio.to_thread(last_seq)
            quiet = 0.0
            yield b"retry: 3000\n: stream open\n\n"
            while not await request.is_disconnected():
                added = await asyncio.to_thread(added_after, seq)
                for number, stored in added:
                    seq = number
                    data = orjson.dumps(alert_out(stored))
                    yield b"id: %d\nevent: alert\ndata: %s\n\n" % (number, data)
                if added:
                    quiet = 0.0
                    continue
                await asyncio.sleep(POLL_SECS)
                quiet += POLL_SECS
                if quiet >= KEEPALIVE_SECS:
                    quiet = 0.0
                    yield b": keep-alive\n\n"
        finally:
            with using:
                store.close()

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no", "Cache-Control": "no-store"}
    )


@router.get("/suppressions", response_model=Page[SuppressionOut])
def suppressions(
    _: Reader,
    estate: EstateDep,
    paging: Annotated[Paging, Depends()],
    active: Annotated[bool, Query(description="Only those not expired.")] = False,
) -> Page[SuppressionOut]:
    """Analyst suppressions, with how many alerts each silenced."""
    with estate.alerts() as store:
        rows = store.suppressions(active_at=datetime.now(UTC) if active else None)
    items = [SuppressionOut.model_validate(r, from_attributes=True) for r in rows]
    return paging.page(items[paging.offset : paging.offset + paging.limit], len(items))


@router.post("/suppressions", response_model=SuppressionOut, status_code=201)
def suppress(
    body: SuppressionIn, request: Request, who: Triager, estate: EstateDep, console: ConsoleDep
) -> SuppressionOut:
    """Silence future alerts of a rule that match the conditions (the daemon picks it up within a minute)."""
    try:
        conditions = parse_conditions(f"{k}={v}" for k, v in body.conditions.items())
    except CloudsocError as exc:
        raise ConsoleError(f"conditions: {exc}") from None
    if not conditions and body.rule.strip() in ("*", ""):
        raise ConsoleError("refusing to suppress every alert of every rule: name a rule or give conditions")
    expires = datetime.now(UTC) + timedelta(days=body.days) if body.days else None
    with estate.alerts() as store:
        sid = store.add_suppression(body.rule, conditions, body.reason, actor=who.user, expires=expires)
        row = next(r for r in store.suppressions() if r.id == sid)
    console.audit(request, who, "alert.suppress", str(sid), detail={"rule": body.rule, "conditions": conditions})
    return SuppressionOut.model_validate(row, from_attributes=True)


@router.delete("/suppressions/{suppression_id}", status_code=204)
def unsuppress(suppression_id: int, request: Request, who: Triager, estate: EstateDep, console: ConsoleDep) -> None:
    """Remove a suppression."""
    with estate.alerts() as store:
        if not store.remove_suppression(suppression_id):
            raise ConsoleError(f"no suppression {suppression_id}", status=404)
    console.audit(request, who, "alert.unsuppress", str(suppression_id))


@router.get("/{alert_id}", response_model=AlertDetail)
def alert(alert_id: str, _: Reader, estate: EstateDep) -> AlertDetail:
    """One alert: what matched, the events it carries (up to 20, in full) and its triage history."""
    with estate.alerts() as store:
        found = _found(store, alert_id)
        history = store.history(found.alert.id)
    doc = alert_out(found)
    doc["events"] = found.alert.events
    doc["history"] = [HistoryOut.model_validate(h, from_attributes=True) for h in history]
    return AlertDetail.model_validate(doc)


@router.get("/{alert_id}/history", response_model=list[HistoryOut])
def history(alert_id: str, _: Reader, estate: EstateDep) -> list[HistoryOut]:
    with estate.alerts() as store:
        found = _found(store, alert_id)
        return [HistoryOut.model_validate(h, from_attributes=True) for h in store.history(found.alert.id)]


def _set_status(
    alert_id: str,
    status: Status,
    body: TriageIn | None,
    request: Request,
    who: Principal,
    estate: Estate,
    console: Console,
) -> AlertOut:
    comment = body.comment if body is not None and body.comment else None
    with estate.alerts() as store:
        found = _found(store, alert_id)
        try:
            changed = store.set_status(found.alert.id, status, actor=who.user, comment=comment)
        except CloudsocError as exc:
            raise ConsoleError(str(exc), status=409) from None
    action = {
        Status.ACKNOWLEDGED: "alert.ack",
        Status.RESOLVED: "alert.resolve",
        Status.FALSE_POSITIVE: "alert.false_positive",
        Status.NEW: "alert.reopen",
    }[status]
    console.audit(request, who, action, found.alert.id, detail={"from": found.status.value})
    return AlertOut.model_validate(alert_out(changed))


@router.post("/{alert_id}/ack", response_model=AlertOut)
def ack(
    alert_id: str, request: Request, who: Triager, estate: EstateDep, console: ConsoleDep, body: TriageIn | None = None
) -> AlertOut:
    return _set_status(alert_id, Status.ACKNOWLEDGED, body, request, who, estate, console)


@router.post("/{alert_id}/resolve", response_model=AlertOut)
def resolve(
    alert_id: str, request: Request, who: Triager, estate: EstateDep, console: ConsoleDep, body: TriageIn | None = None
) -> AlertOut:
    return _set_status(alert_id, Status.RESOLVED, body, request, who, estate, console)


@router.post("/{alert_id}/false-positive", response_model=AlertOut)
def false_positive(
    alert_id: str, request: Request, who: Triager, estate: EstateDep, console: ConsoleDep, body: TriageIn | None = None
) -> AlertOut:
    return _set_status(alert_id, Status.FALSE_POSITIVE, body, request, who, estate, console)


@router.post("/{alert_id}/reopen", response_model=AlertOut)
def reopen(
    alert_id: str, request: Request, who: Triager, estate: EstateDep, console: ConsoleDep, body: TriageIn | None = None
) -> AlertOut:
    return _set_status(alert_id, Status.NEW, body, request, who, estate, console)


@router.post("/{alert_id}/assign", response_model=AlertOut)
def assign(
    alert_id: str, body: AssignIn, request: Request, who: Triager, estate: EstateDep, console: ConsoleDep
) -> AlertOut:
    assignee = body.assignee.strip() if body.assignee and body.assignee.strip() else None
    if assignee is not None and console.store.get_user(assignee) is None:
        raise ConsoleError(f"assignee: no console user {assignee!r}")
    with estate.alerts() as store:
        found = _found(store, alert_id)
        changed = store.assign(found.alert.id, assignee, actor=who.user)
    console.audit(request, who, "alert.assign", found.alert.id, detail={"assignee": assignee})
    return AlertOut.model_validate(alert_out(changed))


@router.post("/{alert_id}/comment", response_model=AlertOut)
def comment(
    alert_id: str, body: CommentIn, request: Request, who: Triager, estate: EstateDep, console: ConsoleDep
) -> AlertOut:
    with estate.alerts() as store:
        found = _found(store, alert_id)
        try:
            changed = store.comment(found.alert.id, body.text, actor=who.user)
        except CloudsocError as exc:
            raise ConsoleError(str(exc)) from None
    console.audit(request, who, "alert.comment", found.alert.id)
    return AlertOut.model_validate(alert_out(changed))
