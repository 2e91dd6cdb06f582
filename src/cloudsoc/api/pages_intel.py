"""The Intel page (``/intel``): look a value up (matches, allow-list verdict, cached whois), the indicators with
filters, the feeds and their last sync, and importing a feed file (``static/js/intel.js`` posts it to
``/api/v1/intel/import``)."""

from __future__ import annotations

from typing import Annotated, Final

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, get_console
from cloudsoc.api.estate import Estate, get_estate
from cloudsoc.api.paging import MAX_LIMIT, Paging
from cloudsoc.api.permissions import Permission
from cloudsoc.api.routers import intel as api
from cloudsoc.intel.indicator import IndicatorType

router = APIRouter(include_in_schema=False)
Reader = Annotated[Principal, Depends(require(Permission.READ))]
EstateDep = Annotated[Estate, Depends(get_estate)]
ConsoleDep = Annotated[Console, Depends(get_console)]
PAGE_SIZE: Final = 50
_JS_KEYS: Final = ("intel.import_running", "intel.import_done", "intel.failed")


@router.get("/intel", response_class=HTMLResponse)
def intel_page(
    request: Request,
    who: Reader,
    estate: EstateDep,
    console: ConsoleDep,
    value: Annotated[str | None, Query(max_length=2048)] = None,
    type: Annotated[list[IndicatorType] | None, Query()] = None,
    source: Annotated[str | None, Query(max_length=200)] = None,
    active: Annotated[str, Query(max_length=5)] = "on",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    value = (value or "").strip()
    source = (source or "").strip() or None
    found = api.lookup(who, estate, value) if value else None
    only_active = active != "all"
    page = api.indicators(
        who, estate, Paging(limit=PAGE_SIZE, offset=offset), type=type, source=source, active=only_active
    )
    feeds = api.feeds(who, estate, Paging(limit=MAX_LIMIT)).items
    query: list[tuple[str, str]] = [("type", t.value) for t in type or ()]
    query += [(k, v) for k, v in (("source", source), ("active", "all" if not only_active else None)) if v]
    t = console.catalog.translator(console.language(request))
    context = {
        "value": value,
        "found": found,
        "page": page,
        "feeds": feeds,
        "types": [t.value for t in IndicatorType],
        "chosen": {"type": {x.value for x in type or ()}, "source": source or "", "active": only_active},
        "query": query,
        "can_write": Permission.INTEL_WRITE in who.permissions,
        "strings": orjson.dumps({k: t(k) for k in _JS_KEYS}).decode(),
    }
    return console.render(request, "intel.html", context, principal=who)
