"""The account pages: users (``/admin/users``, admin), API tokens (``/tokens``: everyone their own, admins all)
and the audit log (``/admin/audit``, admin and auditor).

The tables are rendered here from the account store; changes go through ``/api/v1/users`` and ``/api/v1/tokens``
from ``static/js/users.js`` and ``static/js/tokens.js`` (so the API's checks are the only ones), which reload
the page after a change. The audit log is a plain GET form: its filters live in the URL, so a view can be linked.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Final, Literal
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloudsoc.api.accounts import MIN_PASSWORD_CHARS, TOKEN_SCOPES
from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, NavItem, get_console
from cloudsoc.api.estate import time_range
from cloudsoc.api.paging import MAX_LIMIT
from cloudsoc.api.permissions import Permission, Role
from cloudsoc.errors import ConsoleError

router = APIRouter(include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(get_console)]
Admin = Annotated[Principal, Depends(require(Permission.ADMIN))]
Auditor = Annotated[Principal, Depends(require(Permission.AUDIT))]
Anyone = Annotated[Principal, Depends(require())]

# The header links, each shown only to those who may open it (the server refuses the others anyway).
NAV: Final = (
    NavItem("/admin/users", "nav.users", Permission.ADMIN),
    NavItem("/tokens", "nav.tokens"),
    NavItem("/admin/audit", "nav.audit", Permission.AUDIT),
)
AUDIT_PAGE: Final = 50
OUTCOMES: Final = ("success", "failure", "denied", "locked", "throttled")
_USERS_JS: Final = ("admin.failed", "admin.done_created", "admin.done_password", "admin.copied", "admin.copy_manual",
                    "admin.confirm_disable")  # fmt: skip
_TOKENS_JS: Final = ("admin.failed", "admin.copied", "admin.copy_manual", "tokens.confirm_revoke")


def _strings(console: Console, request: Request, keys: tuple[str, ...]) -> str:
    t = console.catalog.translator(console.language(request))
    return orjson.dumps({k: t(k) for k in keys}).decode()


def _labels(console: Console, request: Request, prefix: str, values: Iterable[str]) -> dict[str, str]:
    """``{value: its label}`` from the catalog keys ``prefix + value`` (roles, scopes, outcomes), in order."""
    t = console.catalog.translator(console.language(request))
    return {v: t(prefix + v) for v in values}


def landing(who: Principal) -> str:
    """Where a signed-in user who may not read the estate goes instead of the overview."""
    return "/admin/audit" if who.can(Permission.AUDIT) else "/tokens"


def not_for_readers(who: Principal) -> Response | None:
    """The overview's fallback: a redirect to a page this user may see (the auditor reviews people, not events)."""
    return None if who.can(Permission.READ) else RedirectResponse(landing(who), status_code=303)


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, who: Admin, console: ConsoleDep) -> Response:
    users, total = console.store.users(limit=MAX_LIMIT)
    now = datetime.now(UTC)
    context = {
        "users": users,
        "total": total,
        "locked": {u.name for u in users if u.locked(now)},
        "roles": list(_labels(console, request, "role.", (r.value for r in Role)).items()),
        "min_password": MIN_PASSWORD_CHARS,
        "strings": _strings(console, request, _USERS_JS),
    }
    return console.render(request, "admin_users.html", context, principal=who)


@router.get("/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, who: Anyone, console: ConsoleDep) -> Response:
    everyone = who.can(Permission.ADMIN)
    tokens, total = console.store.tokens(user=None if everyone else who.user, limit=MAX_LIMIT)
    context = {
        "tokens": tokens,
        "total": total,
        "everyone": everyone,
        "scopes": list(
            _labels(console, request, "scope.", sorted(p.value for p in who.permissions & TOKEN_SCOPES)).items()
        ),
        "session": who.via == "session",
        "strings": _strings(console, request, _TOKENS_JS),
    }
    return console.render(request, "admin_tokens.html", context, principal=who)


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    who: Auditor,
    console: ConsoleDep,
    user: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    outcome: Annotated[Literal["", "success", "failure", "denied", "locked", "throttled"], Query()] = "",
    since: Annotated[str, Query(max_length=64)] = "",
    until: Annotated[str, Query(max_length=64)] = "",
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    chosen = {"user": user.strip(), "action": action.strip(), "outcome": outcome, "since": since.strip(),
              "until": until.strip()}  # fmt: skip
    error = ""
    entries: list[object] = []
    total = 0
    try:
        t0, t1 = time_range(chosen["since"], chosen["until"])
        found, total = console.store.audit_entries(
            user=chosen["user"] or None, action=chosen["action"] or None, outcome=outcome or None, since=t0,
            until=t1, limit=AUDIT_PAGE, offset=offset,
        )  # fmt: skip
        entries = [{**e.export(), "detail_text": orjson.dumps(e.detail).decode() if e.detail else ""} for e in found]
    except ConsoleError as exc:
        error = exc.message  # a bad time in the form: say so on the page, keep the filters to fix

    def page_link(at: int) -> str:
        return "/admin/audit?" + urlencode({**{k: v for k, v in chosen.items() if v}, "offset": at})

    context = {
        "entries": entries,
        "total": total,
        "chosen": chosen,
        "outcomes": _labels(console, request, "audit.outcome.", OUTCOMES),
        "error": error,
        "first": offset + 1 if entries else 0,
        "last": offset + len(entries),
        "prev": page_link(max(0, offset - AUDIT_PAGE)) if offset > 0 else None,
        "next": page_link(offset + AUDIT_PAGE) if offset + AUDIT_PAGE < total else None,
    }
    return console.render(request, "admin_audit.html", context, principal=who)
