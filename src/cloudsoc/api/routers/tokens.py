"""``/api/v1/tokens``: API tokens for scripts (admin only). The secret is shown once, at creation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from cloudsoc.api.accounts import ApiToken
from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, get_console
from cloudsoc.api.paging import Page, Paging
from cloudsoc.api.permissions import Permission

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])
Admin = Annotated[Principal, Depends(require(Permission.ADMIN))]
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
    user: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=100)
    scopes: list[Permission] = Field(min_length=1, description="A subset of the user's permissions; not admin.")


class CreatedToken(BaseModel):
    token: TokenOut
    secret: str = Field(description="Send as `Authorization: Bearer <secret>`. Shown only now.")


@router.get("", response_model=Page[TokenOut])
def list_tokens(
    _: Admin,
    console: ConsoleDep,
    paging: Annotated[Paging, Depends()],
    user: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[TokenOut]:
    tokens, total = console.store.tokens(user=user, limit=paging.limit, offset=paging.offset)
    return paging.page([TokenOut.of(t) for t in tokens], total)


@router.post("", response_model=CreatedToken, status_code=201)
def create_token(body: NewToken, request: Request, who: Admin, console: ConsoleDep) -> CreatedToken:
    secret, token = console.store.create_token(body.user, body.name, body.scopes)
    console.audit(
        request, who, "token.create", token.id, detail={"user": token.user, "name": token.name,
                                                          "scopes": sorted(token.scopes)}
    )  # fmt: skip
    return CreatedToken(token=TokenOut.of(token), secret=secret)


@router.delete("/{token_id}", response_model=TokenOut)
def revoke_token(token_id: str, request: Request, who: Admin, console: ConsoleDep) -> TokenOut:
    token = console.store.revoke_token(token_id)
    console.audit(request, who, "token.revoke", token.id, detail={"user": token.user, "name": token.name})
    return TokenOut.of(token)
