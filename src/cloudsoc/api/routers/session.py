"""``/api/v1/auth/login``, ``/api/v1/auth/logout`` and ``/api/v1/me``: sessions for scripts and the front end."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from cloudsoc.api.auth import Principal, check_origin, require, session_token
from cloudsoc.api.console import Console, get_console
from cloudsoc.errors import ConsoleError

router = APIRouter(prefix="/api/v1", tags=["session"])


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class Me(BaseModel):
    name: str
    role: str
    permissions: list[str]
    via: str
    csrf_token: str | None = Field(None, description="Send it as X-CSRF-Token on state changes made with the cookie.")


class LoginResponse(BaseModel):
    user: Me
    expires: str


def _me(principal: Principal) -> Me:
    return Me(
        name=principal.user,
        role=principal.role.value,
        permissions=sorted(p.value for p in principal.permissions),
        via=principal.via,
        csrf_token=principal.csrf_token,
    )


@router.post("/auth/login", response_model=LoginResponse)
def login(
    body: LoginRequest, request: Request, response: Response, console: Annotated[Console, Depends(get_console)]
) -> LoginResponse:
    """Start a session: sets the ``cloudsoc_session`` cookie and returns the CSRF token for later changes."""
    check_origin(request)
    old = session_token(request)
    token, session = console.login(request, body.username, body.password)
    if old:  # a new id at every log-in: a session id planted before it is worth nothing after
        console.store.end_session(old)
    console.set_session_cookie(response, token)
    user = console.store.user(session.user)
    me = Me(
        name=user.name,
        role=user.role.value,
        permissions=sorted(p.value for p in user.role.permissions),
        via="session",
        csrf_token=session.csrf_token,
    )
    return LoginResponse(user=me, expires=session.expires)


@router.post("/auth/logout", status_code=204)
def logout(
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require())],
    console: Annotated[Console, Depends(get_console)],
) -> None:
    """End this session (the cookie's). API tokens are revoked with ``DELETE /api/v1/tokens/{id}`` instead."""
    token = session_token(request)
    if principal.via != "session" or token is None:
        raise ConsoleError("log-out ends a browser session; revoke an API token with DELETE /api/v1/tokens/{id}")
    console.store.end_session(token)
    console.audit(request, principal, "logout")
    console.clear_session_cookie(response)


@router.get("/me", response_model=Me)
def me(principal: Annotated[Principal, Depends(require())]) -> Me:
    """Who you are: user, role, permissions (scopes, for a token) and the session's CSRF token."""
    return _me(principal)
