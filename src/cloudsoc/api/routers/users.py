"""``/api/v1/users``: console accounts (admin only). Every change is audited; passwords never echo back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from cloudsoc.api.accounts import User
from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, get_console
from cloudsoc.api.paging import Page, Paging
from cloudsoc.api.permissions import Permission, Role
from cloudsoc.errors import ConsoleError

router = APIRouter(prefix="/api/v1/users", tags=["users"])
Admin = Annotated[Principal, Depends(require(Permission.ADMIN))]
ConsoleDep = Annotated[Console, Depends(get_console)]


class UserOut(BaseModel):
    name: str
    role: Role
    disabled: bool
    failures: int
    locked_until: str | None
    created: str
    last_login: str | None

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls.model_validate(user.export())


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Role
    password: str = Field(min_length=1, max_length=1000)


class UserChange(BaseModel):
    role: Role | None = None
    disabled: bool | None = None
    password: str | None = Field(None, min_length=1, max_length=1000)


@router.get("", response_model=Page[UserOut])
def list_users(_: Admin, console: ConsoleDep, paging: Annotated[Paging, Depends()]) -> Page[UserOut]:
    users, total = console.store.users(limit=paging.limit, offset=paging.offset)
    return paging.page([UserOut.of(u) for u in users], total)


@router.post("", response_model=UserOut, status_code=201)
def create_user(body: NewUser, request: Request, who: Admin, console: ConsoleDep) -> UserOut:
    user = console.store.add_user(body.name, body.password, body.role)
    console.audit(request, who, "user.create", user.name, detail={"role": user.role.value})
    return UserOut.of(user)


@router.get("/{name}", response_model=UserOut)
def get_user(name: str, _: Admin, console: ConsoleDep) -> UserOut:
    return UserOut.of(console.store.user(name))


@router.patch("/{name}", response_model=UserOut)
def change_user(name: str, body: UserChange, request: Request, who: Admin, console: ConsoleDep) -> UserOut:
    store = console.store
    store.user(name)  # 404 before any change
    if name == who.user and (body.disabled or (body.role is not None and body.role is not Role.ADMIN)):
        raise ConsoleError("you cannot disable or demote yourself: ask another admin", status=409)
    if body.role is not None:
        store.set_role(name, body.role)
        console.audit(request, who, "user.role", name, detail={"role": body.role.value})
    if body.disabled is not None:
        store.set_disabled(name, body.disabled)
        console.audit(request, who, "user.disable" if body.disabled else "user.enable", name)
    if body.password is not None:
        store.set_password(name, body.password)
        console.audit(request, who, "user.passwd", name)
    return UserOut.of(store.user(name))


@router.post("/{name}/unlock", response_model=UserOut)
def unlock_user(name: str, request: Request, who: Admin, console: ConsoleDep) -> UserOut:
    console.store.unlock(name)
    console.audit(request, who, "user.unlock", name)
    return UserOut.of(console.store.user(name))
