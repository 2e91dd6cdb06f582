"""The Health page (``/health``): the pipeline's counters (events/s, queue, lag, dead letters, output failures),
the store, alert and delivery counts, and the dead letters themselves."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, get_console
from cloudsoc.api.estate import Estate, get_estate
from cloudsoc.api.paging import Paging
from cloudsoc.api.permissions import Permission
from cloudsoc.api.routers import health as api
from cloudsoc.errors import ConsoleError

router = APIRouter(include_in_schema=False)
Reader = Annotated[Principal, Depends(require(Permission.READ))]
EstateDep = Annotated[Estate, Depends(get_estate)]
ConsoleDep = Annotated[Console, Depends(get_console)]
PAGE_SIZE: Final = 20
# Counters of the pipeline's status.json shown first (the rest follow by name).
_FIRST: Final = ("records", "stored", "duplicates", "dead_letters", "alerts", "files", "bytes", "batches", "seconds")


@router.get("/health", response_class=HTMLResponse)
def health_page(
    request: Request,
    who: Reader,
    estate: EstateDep,
    console: ConsoleDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    replayed: Annotated[bool, Query()] = False,
) -> Response:
    state = api.health(who, estate)
    counters = state.pipeline.counters
    ordered: list[tuple[str, Any]] = [(k, counters[k]) for k in _FIRST if k in counters]
    ordered += sorted((k, v) for k, v in counters.items() if k not in _FIRST and not isinstance(v, dict | list))
    letters = None
    letters_error = ""
    try:
        letters = api.dead_letters(who, estate, Paging(limit=PAGE_SIZE, offset=offset), replayed=replayed)
    except ConsoleError as exc:  # 503 while a daemon holds the store's state file: say so, show the rest
        letters_error = exc.message
    context = {
        "h": state,
        "counters": ordered,
        "letters": letters,
        "letters_error": letters_error,
        "replayed": replayed,
        "dead": counters.get("dead_letters", 0),
        "failed": state.deliveries.get("failed", 0),
        "pending": state.deliveries.get("pending", 0),
    }
    return console.render(request, "health.html", context, principal=who)
