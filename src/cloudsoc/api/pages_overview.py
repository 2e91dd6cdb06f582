"""The overview page (``/``): the estate at a glance, drawn in the browser from ``GET /api/v1/overview``.

The page itself carries no data: ``static/js/overview.js`` fetches the dashboard for the chosen time range, so
the range picker reloads without a page load and the numbers are the API's own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from cloudsoc.api import pages_admin
from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, get_console

router = APIRouter(include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(get_console)]


def script_strings(console: Console, request: Request, prefix: str) -> dict[str, str]:
    """The catalog entries under ``prefix`` in the page's language, for its script (keys without the prefix)."""
    lang = console.language(request)
    t = console.catalog.translator(lang)
    return {key.removeprefix(prefix): t(key) for key in console.catalog.texts["en"] if key.startswith(prefix)}


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, console: ConsoleDep, who: Annotated[Principal, Depends(require())]) -> Response:
    """The dashboard; a signed-in user who may not read the estate (the auditor) goes to a page they may see."""
    elsewhere = pages_admin.not_for_readers(who)
    if elsewhere is not None:
        return elsewhere
    strings = script_strings(console, request, "overview.js.")
    return console.render(request, "overview.html", {"strings": strings}, principal=who)
