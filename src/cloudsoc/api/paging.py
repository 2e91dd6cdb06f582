"""Pagination of list endpoints: ``?limit=&offset=`` in, ``{"items", "total", "limit", "offset"}`` out."""

from __future__ import annotations

from typing import Annotated, Final, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

MAX_LIMIT: Final = 500
T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; ``total`` counts every match, so a client knows when to stop."""

    items: list[T]
    total: int
    limit: int
    offset: int


class Paging:
    """The paging parameters; a route takes ``paging: Annotated[Paging, Depends()]``."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = 50,
        offset: Annotated[int, Query(ge=0, description="Items to skip.")] = 0,
    ) -> None:
        self.limit = limit
        self.offset = offset

    def page(self, items: list[T], total: int) -> Page[T]:
        return Page[T](items=items, total=total, limit=self.limit, offset=self.offset)
