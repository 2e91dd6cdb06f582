"""The search page (``/search?q=&since=&until=``): the query language of ``cloudsoc search`` in the browser.

The server renders the form with the request's values (so a search is a link to share); ``static/js/search.js``
asks ``/api/v1/events`` (results, histogram, field values, one event) and ``/api/v1/intel/lookup`` for the
data, and shows a bad query's error with its position as the API reports it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, get_console
from cloudsoc.api.pages_overview import script_strings
from cloudsoc.api.permissions import Permission

router = APIRouter(include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(get_console)]
Reader = Annotated[Principal, Depends(require(Permission.READ))]
# The fields of the side bar: what an analyst narrows a cloud audit search by first.
FIELDS = (
    "event.action",
    "event.outcome",
    "user.name",
    "source.ip",
    "cloud.provider",
    "cloud.account.id",
    "cloud.region",
    "event.provider",
)


def query_form(q: str, since: str, until: str) -> dict[str, str]:
    """What the shared query form (templates/query_form.html) shows: the query and the range, 7 days by default."""
    return {"q": q, "since": since or ("" if until else "7d"), "until": until}


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    console: ConsoleDep,
    who: Reader,
    q: Annotated[str, Query(max_length=4000)] = "",
    since: Annotated[str, Query(max_length=64)] = "",
    until: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    context = {
        **query_form(q, since, until),
        "fields": FIELDS,
        "graph_link": True,
        "strings": script_strings(console, request, "search.js."),
    }
    return console.render(request, "search.html", context, principal=who)
