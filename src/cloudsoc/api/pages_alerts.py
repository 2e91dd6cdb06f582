"""The Alerts pages: the triage queue (``/alerts``) and one alert explained (``/alerts/{id}``).

Server-rendered from the same functions the API answers with (so a page shows exactly what a script would get);
``static/js/alerts.js`` does the triage through ``/api/v1/alerts`` and adds alerts arriving on the SSE stream.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, get_console
from cloudsoc.api.estate import Estate, get_estate
from cloudsoc.api.paging import MAX_LIMIT, Paging
from cloudsoc.api.permissions import Permission
from cloudsoc.api.routers import alerts as api
from cloudsoc.detect.alert import Severity, Status
from cloudsoc.storage.query import Value

router = APIRouter(include_in_schema=False)
Reader = Annotated[Principal, Depends(require(Permission.READ))]
EstateDep = Annotated[Estate, Depends(get_estate)]
ConsoleDep = Annotated[Console, Depends(get_console)]
PAGE_SIZE: Final = 50
# Strings the page script needs for rows it builds itself (alerts arriving live).
_JS_KEYS: Final = (
    "alerts.live_new",
    "alerts.triage_failed",
    *(f"alerts.status.{s.value}" for s in Status),
    *(f"alerts.severity.{s.value}" for s in Severity),
    *(f"alerts.history.{a}" for a in ("raised", "status", "assign", "comment")),
)


def _dig(doc: dict[str, Any], dotted: str) -> Any:
    # ECS documents nest ("source": {"ip": …}); some producers keep dotted names flat.
    if dotted in doc:
        return doc[dotted]
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


_SUMMARY: Final = ("@timestamp", "event.action", "event.outcome", "source.ip", "user.name", "cloud.account.id")


def term(field: str, value: object) -> str:
    """``field:value`` in the query language, the value quoted when it needs to be."""
    return f"{field}:{Value.literal(str(value))}"


def search_link(query: str) -> str:
    return "/search?" + urlencode({"q": query})


def _when(text: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _graph_link(found: api.AlertDetail) -> str | None:
    """The graph of the alert's identities and source addresses over its activity ± one day."""
    terms: dict[str, None] = {}
    for event in found.events:
        for field in ("user.name", "source.ip"):
            value = _dig(event, field)
            if isinstance(value, str) and value:
                terms[term(field, value)] = None
    for m in found.matched:
        if m.field in ("user.name", "source.ip") and isinstance(m.value, str) and m.value:
            terms[term(m.field, m.value)] = None
    first, last = _when(found.first_time), _when(found.last_time)
    if not terms or first is None or last is None:
        return None
    day = timedelta(days=1)
    window = {"since": (first - day).isoformat(), "until": (last + day).isoformat()}
    return "/graph?" + urlencode({"q": " OR ".join(terms), **window})


def _told(entry: api.HistoryOut, labels: dict[str, str]) -> dict[str, Any]:
    """A history entry with its change in words of the page's language ("Status: New → Acknowledged")."""

    def status(value: str | None) -> str:
        return labels.get(f"alerts.status.{value}", value or "-")

    what = labels.get(f"alerts.history.{entry.action}", entry.action)
    if entry.action in ("raised", "status"):
        what += ": " + (f"{status(entry.old)} → " if entry.old else "") + status(entry.new)
    elif entry.action == "assign":
        what += f": {entry.old or '-'} → {entry.new or '-'}"
    return {"at": entry.at, "actor": entry.actor, "action": entry.action, "what": what, "comment": entry.comment}


def _can_triage(who: Principal) -> bool:
    return Permission.TRIAGE in who.permissions


def _labels(console: Console, request: Request) -> dict[str, str]:
    """Status and severity names (and the script's few strings) in the page's language, by catalog key."""
    t = console.catalog.translator(console.language(request))
    return {k: t(k) for k in _JS_KEYS}


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    who: Reader,
    estate: EstateDep,
    console: ConsoleDep,
    status: Annotated[list[Status] | None, Query()] = None,
    severity: Annotated[Severity | None, Query()] = None,
    rule: Annotated[str | None, Query(max_length=200)] = None,
    assignee: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    rule = rule.strip() or None if rule else None
    assignee = assignee.strip() or None if assignee else None
    page = api.list_alerts(
        who, estate, Paging(limit=PAGE_SIZE, offset=offset), status=status, severity=severity, rule=rule,
        assignee=assignee,
    )  # fmt: skip
    users, _ = console.store.users()
    labels = _labels(console, request)
    suppressions = api.suppressions(who, estate, Paging(limit=MAX_LIMIT), active=True)
    query: list[tuple[str, str]] = [("status", s.value) for s in status or ()]
    query += [(k, v) for k, v in (("severity", severity), ("rule", rule), ("assignee", assignee)) if v]
    context: dict[str, Any] = {
        "page": page,
        "statuses": [s.value for s in Status],
        "severities": [s.value for s in Severity],
        "chosen": {
            "status": {s.value for s in status or ()},
            "severity": severity.value if severity else "",
            "rule": rule or "",
            "assignee": assignee or "",
        },
        "filtered": bool(query),
        "query": query,
        "users": [u.name for u in users],
        "labels": labels,
        # escaped into a data- attribute: the page script reads it as JSON, nothing is executed
        "strings": orjson.dumps(labels).decode(),
        # New alerts arrive as "new" and unassigned: show them live where the filters would list them.
        "suppressions": suppressions.items,
        "can_triage": _can_triage(who),
        "live": offset == 0 and not rule and not assignee and (not status or Status.NEW in status),
    }
    return console.render(request, "alerts.html", context, principal=who)


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(request: Request, alert_id: str, who: Reader, estate: EstateDep, console: ConsoleDep) -> Response:
    found = api.alert(alert_id, who, estate)
    users, _ = console.store.users()
    labels = _labels(console, request)
    pretty = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    events = [
        {
            "summary": [(f, _dig(e, f)) for f in _SUMMARY],
            "json": orjson.dumps(e, option=pretty).decode(),
            "search": search_link(term("event.id", _dig(e, "event.id"))) if _dig(e, "event.id") else None,
        }
        for e in found.events
    ]
    matched_links = [
        search_link(term(m.field, m.value)) if type(m.value) in (str, int) else None for m in found.matched
    ]
    suggested = "\n".join(f"{m.field}={m.value}" for m in found.matched if isinstance(m.value, str | int))
    context = {
        "a": found,
        "history": [_told(h, labels) for h in found.history],
        "events": events,
        "users": [u.name for u in users],
        "can_triage": _can_triage(who),
        "suggested": suggested,
        "matched_links": matched_links,
        "graph_link": _graph_link(found),
        "labels": labels,
        # escaped into a data- attribute: the page script reads it as JSON, nothing is executed
        "strings": orjson.dumps(labels).decode(),
    }
    return console.render(request, "alert.html", context, principal=who)
