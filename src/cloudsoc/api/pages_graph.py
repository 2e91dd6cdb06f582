"""The investigation graph page (``/graph?q=&since=&until=``): who did what from where, drawn with Cytoscape.js.

The server renders the query form (the search page's, shared) with the request's values, so a graph is a link
to share; ``static/js/graph.js`` asks ``GET /api/v1/graph`` for the nodes and edges and ``/api/v1/intel/lookup``
when an address is looked up."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, get_console
from cloudsoc.api.pages_overview import script_strings
from cloudsoc.api.pages_search import query_form
from cloudsoc.api.permissions import Permission

router = APIRouter(include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(get_console)]
Reader = Annotated[Principal, Depends(require(Permission.READ))]


@router.get("/graph", response_class=HTMLResponse)
def graph_page(
    request: Request,
    console: ConsoleDep,
    who: Reader,
    q: Annotated[str, Query(max_length=4000)] = "",
    since: Annotated[str, Query(max_length=64)] = "",
    until: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    context = {
        **query_form(q, since, until),
        "form_action": "/graph",
        "strings": script_strings(console, request, "graph.js."),
    }
    return console.render(request, "graph.html", context, principal=who)
