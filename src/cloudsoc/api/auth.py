"""Who is calling and what they may do: sessions, API tokens, CSRF and the ``require`` dependency.

Every route that is not public declares what it needs::

    @router.post("/alerts/{id}/ack")
    def ack(id: str, who: Principal = Depends(require(Permission.TRIAGE))) -> ...

``require`` authenticates (bearer token first, else the session cookie), checks CSRF on state changes made with
the cookie, and refuses (403, audited) a caller without the permission. API answers are 401/403 JSON; pages
get a redirect to ``/login`` or an error page (see :mod:`cloudsoc.api.failures`).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit

from fastapi import Request

from cloudsoc.api.console import SESSION_COOKIE, get_console
from cloudsoc.api.permissions import Permission, Role
from cloudsoc.errors import NotAuthenticated, PermissionDenied

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER: Final = "x-csrf-token"
CSRF_FIELD: Final = "csrf_token"
_FORMS: Final = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a signed-in user (session) or a script (API token)."""

    user: str
    role: Role
    permissions: frozenset[Permission]
    via: Literal["session", "token"]
    csrf_token: str | None = None
    token_id: str | None = None

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


def session_token(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


def authenticate(request: Request) -> Principal:
    """The caller of this request, or :class:`NotAuthenticated`. Cached on the request."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    console = get_console(request)
    store = console.store
    principal: Principal | None = None
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        token = store.token_for(secret.strip()) if scheme.lower() == "bearer" else None
        owner = store.get_user(token.user) if token is not None else None
        if token is None or owner is None or owner.disabled:
            # No hint whether the token is unknown, revoked or its owner disabled.
            raise NotAuthenticated("invalid or revoked API token")
        # A token never does more than its owner's role allows today (roles can shrink after it was made).
        principal = Principal(owner.name, owner.role, token.scopes & owner.role.permissions, "token", None, token.id)
    else:
        cookie = session_token(request)
        session = store.session(cookie, idle=console.idle) if cookie else None
        owner = store.get_user(session.user) if session is not None else None
        if session is None or owner is None or owner.disabled:
            raise NotAuthenticated("not signed in (or the session expired): log in at /login or send a bearer token")
        principal = Principal(owner.name, owner.role, owner.role.permissions, "session", session.csrf_token)
    request.state.principal = principal
    return principal


def check_origin(request: Request) -> None:
    """Refuse a state change a browser says came from another site (``Origin`` / ``Sec-Fetch-Site``)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise PermissionDenied(f"cross-site request refused (Sec-Fetch-Site: {site[:20]})")
    origin = request.headers.get("origin")
    # "null" tells nothing: with our Referrer-Policy: no-referrer, Chromium sends it on its own same-origin form
    # posts. The CSRF token (and Sec-Fetch-Site, where sent) still decide.
    if origin is not None and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc.lower() != host.lower():
            raise PermissionDenied("cross-origin request refused (Origin does not match the console)")


async def check_csrf(request: Request, expected: str | None) -> None:
    """The request must carry the session's CSRF token (header ``X-CSRF-Token`` or form field ``csrf_token``)."""
    check_origin(request)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(_FORMS):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PermissionDenied("missing or wrong CSRF token (send the X-CSRF-Token header or the csrf_token field)")


def require(*permissions: Permission) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the caller, who must hold every permission given (none: any signed-in caller)."""

    async def dependency(request: Request) -> Principal:
        principal = authenticate(request)
        if principal.via == "session" and request.method not in SAFE_METHODS:
            try:
                await check_csrf(request, principal.csrf_token)
            except PermissionDenied as exc:
                # Either a forged request riding on a signed-in browser, or a front-end bug: both worth a trace.
                get_console(request).audit(
                    request, principal, "csrf.refused", f"{request.method} {request.url.path}", outcome="denied",
                    detail={"reason": exc.message},
                )  # fmt: skip
                raise
        missing = [p for p in permissions if p not in principal.permissions]
        if missing:
            get_console(request).audit(
                request,
                principal,
                "access.denied",
                f"{request.method} {request.url.path}",
                outcome="denied",
                detail={"missing": [p.value for p in missing], "via": principal.via},
            )
            what = "role" if principal.via == "session" else "token's scopes"
            raise PermissionDenied(
                f"{request.method} {request.url.path} needs permission {', '.join(missing)}, "
                f"which your {what} ({principal.role.value}) lacks"
            )
        return principal

    dependency.__name__ = f"require_{'_'.join(p.value for p in permissions) or 'login'}"
    return dependency
