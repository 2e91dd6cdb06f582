"""The server-rendered pages of the foundation: log-in, log-out, language, API docs.

A page is a route returning ``console.render(request, "x.html", {...}, principal=who)``; it takes
``who: Principal = Depends(require(Permission.READ))`` like an API route, and an unauthenticated browser is
sent to ``/login?next=…`` by the error handler.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloudsoc.api.auth import Principal, authenticate, check_origin, require, session_token
from cloudsoc.api.console import LANG_COOKIE, LOGIN_CSRF_COOKIE, Console, get_console
from cloudsoc.errors import ConsoleError, NotAuthenticated
from cloudsoc.web.i18n import LANGUAGES

router = APIRouter(include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(get_console)]
_LOGIN_FORM_SECS = 3600


def safe_next(target: str | None) -> str:
    """A local path to go to after log-in; anything else (``//evil``, ``https://…``, ``/\\evil``) becomes ``/``."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or any(c in target for c in "\r\n\\")
    ):
        return "/"
    return target


def _current(request: Request) -> Principal | None:
    try:
        return authenticate(request)
    except NotAuthenticated:
        return None


def _login_form(
    request: Request, console: Console, *, next_path: str, username: str = "", error: str = "", status: int = 200
) -> Response:
    # Pre-session CSRF (double submit): the form's hidden token must match this cookie, which another site can
    # neither read nor, being SameSite=Strict, make the browser send with its own forged POST.
    token = console.new_csrf_token()
    response = console.render(
        request,
        "login.html",
        {"next": next_path, "username": username, "error": error},
        csrf_token=token,
        status=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, max_age=_LOGIN_FORM_SECS, path="/login", secure=True, httponly=True,
        samesite="strict",
    )  # fmt: skip
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, console: ConsoleDep, next: str | None = None) -> Response:
    if _current(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_form(request, console, next_path=safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    console: ConsoleDep,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    t = console.catalog.translator(console.language(request))
    target = safe_next(next)
    check_origin(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not csrf_token or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        return _login_form(request, console, next_path=target, username=username, error=t("login.expired_form"),
                           status=403)  # fmt: skip
    try:
        token, _ = console.login(request, username, password)
    except NotAuthenticated:
        return _login_form(request, console, next_path=target, username=username, error=t("login.failed"),
                           status=401)  # fmt: skip
    except ConsoleError as exc:
        key = "login.throttled" if "address" in exc.message else "login.locked"
        message = t(key, minutes=round(console.config.lockout_minutes))
        return _login_form(request, console, next_path=target, username=username, error=message,
                           status=exc.status)  # fmt: skip
    old = session_token(request)
    if old:
        console.store.end_session(old)
    response = RedirectResponse(target, status_code=303)
    console.set_session_cookie(response, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login", secure=True, httponly=True, samesite="strict")
    return response


@router.get("/logout", response_class=HTMLResponse)
def logout_page(request: Request, console: ConsoleDep, who: Annotated[Principal, Depends(require())]) -> Response:
    return console.render(request, "logout.html", principal=who)


@router.post("/logout")
def logout_submit(request: Request, console: ConsoleDep, who: Annotated[Principal, Depends(require())]) -> Response:
    token = session_token(request)
    if token:
        console.store.end_session(token)
    console.audit(request, who, "logout")
    response = RedirectResponse("/login", status_code=303)
    console.clear_session_cookie(response)
    return response


@router.post("/lang")
def set_language(
    request: Request,
    lang: Annotated[str, Form(max_length=8)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Switch the UI language (a cookie; it changes nothing on the server, so no session is needed)."""
    check_origin(request)
    if lang not in LANGUAGES:
        raise ConsoleError(f"lang: use one of {', '.join(LANGUAGES)}")
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path="/", secure=True, httponly=True, samesite="lax")
    return response


@router.get("/api/docs", response_class=HTMLResponse)
def api_docs(request: Request, console: ConsoleDep) -> Response:
    """Swagger UI from the npm package, started by our own script (the CSP allows no inline script)."""
    missing = bool(console.assets.missing_vendor())
    return console.render(request, "apidocs.html", {"missing": missing}, principal=_current(request))
