"""``/api/v1/tokens``: API tokens for scripts. The secret is shown once, at creation.

Every signed-in user manages their own tokens (an analyst scripting ``/api/v1/ingest`` needs one without asking an
admin); scopes stay within the owner's own permissions (:meth:`ConsoleStore.create_token`). Another user's tokens
need ``admin``. Creating a token needs a log-in session: a leaked token must not mint itself fresh ones.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from cloudsoc.api.accounts import ApiToken
from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, get_console
from cloudsoc.api.paging import Page, Paging
from cloudsoc.api.permissions import Permission
from cloudsoc.errors import PermissionDenied

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])
Caller = Annotated[Principal, Depends(require())]
ConsoleDep = Annotated[Console, Depends(get_console)]


class TokenOut(BaseModel):
    id: str
    user: str
    name: str
    scopes: list[Permission]
    created: str
    last_used: str | None
    revoked: str | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls.model_validate(token.export())


class NewToken(BaseModel):
    user: str | None = Field(None, min_length=1, max_length=64, description="The owner (default: you; others: admin).")
    name: str = Field(min_length=1, max_length=100)
    scopes: list[Permission] = Field(min_length=1, description="A subset of the owner's permissions; not admin.")


class CreatedToken(BaseModel):
    token: TokenOut
    secret: str = Field(description="Send as `Authorization: Bearer <secret>`. Shown only now.")


def _deny(request: Request, console: Console, who: Principal, why: str) -> PermissionDenied:
    """The refusal ``require(Permission.ADMIN)`` would give, audited the same way."""
    target = f"{request.method} {request.url.path}"
    console.audit(request, who, "access.denied", target, outcome="denied",
                  detail={"missing": [Permission.ADMIN.value], "via": who.via, "why": why})  # fmt: skip
    return PermissionDenied(f"{target} needs permission admin for {why}, which your role ({who.role.value}) lacks")


@router.get("", response_model=Page[TokenOut])
def list_tokens(
    request: Request,
    who: Caller,
    console: ConsoleDep,
    paging: Annotated[Paging, Depends()],
    user: Annotated[str | None, Query(max_length=64, description="Only this owner's (admin: anyone's).")] = None,
    mine: Annotated[bool, Query(description="Only your own tokens (admins see everyone's otherwise).")] = False,
) -> Page[TokenOut]:
    """Your own tokens; an admin sees everyone's (or ``user``'s)."""
    if not who.can(Permission.ADMIN):
        if user not in (None, who.user):
            raise _deny(request, console, who, "another user's tokens")
        user = who.user
    elif mine:
        user = who.user
    tokens, total = console.store.tokens(user=user, limit=paging.limit, offset=paging.offset)
    return paging.page([TokenOut.of(t) for t in tokens], total)


@router.post("", response_model=CreatedToken, status_code=201)
def create_token(body: NewToken, request: Request, who: Caller, console: ConsoleDep) -> CreatedToken:
    owner = body.user or who.user
    if owner != who.user and not who.can(Permission.ADMIN):
        raise _deny(request, console, who, "another user's tokens")
    if who.via != "session":
        raise PermissionDenied("creating an API token needs a log-in session, not another token")
    secret, token = console.store.create_token(owner, body.name, body.scopes)
    console.audit(
        request, who, "token.create", token.id, detail={"user": token.user, "name": token.name,
                                                          "scopes": sorted(token.scopes)}
    )  # fmt: skip
    return CreatedToken(token=TokenOut.of(token), secret=secret)


@router.delete("/{token_id}", response_model=TokenOut)
def revoke_token(token_id: str, request: Request, who: Caller, console: ConsoleDep) -> TokenOut:
    if not who.can(Permission.ADMIN):
        found = console.store.get_token(token_id)
        # Unknown and someone else's answer alike, so ids of others' tokens cannot be probed.
        if found is None or found.user != who.user:
            raise _deny(request, console, who, "another user's tokens")
    token = console.store.revoke_token(token_id)
    console.audit(request, who, "token.revoke", token.id, detail={"user": token.user, "name": token.name})
    return TokenOut.of(token)
