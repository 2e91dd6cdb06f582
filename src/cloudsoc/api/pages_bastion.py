"""The bastion pages: ``/bastion`` (command activity, high-risk commands, live sessions, the session list with
search by command) and ``/bastion/sessions/<id>`` (a session's facts, its commands and the replay player).

Both are drawn in the browser from ``/api/v1/bastion`` (``static/js/bastion.js``, ``static/js/bastion_player.js``);
the server renders the frame and the translated strings. Permission ``audit`` (admins and auditors); killing a
session needs ``admin`` and the page shows the button to admins only (the API refuses others anyway)."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, NavItem, get_console
from cloudsoc.api.pages_overview import script_strings
from cloudsoc.api.permissions import Permission

router = APIRouter(include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(get_console)]
Auditor = Annotated[Principal, Depends(require(Permission.AUDIT))]
NAV: Final = (NavItem("/bastion", "nav.bastion", Permission.AUDIT),)


@router.get("/bastion", response_class=HTMLResponse)
def bastion_page(request: Request, console: ConsoleDep, who: Auditor) -> Response:
    strings = script_strings(console, request, "bastion.js.")
    context = {"strings": strings, "can_kill": who.can(Permission.ADMIN)}
    return console.render(request, "bastion.html", context, principal=who)


@router.get("/bastion/sessions/{session_id}", response_class=HTMLResponse)
def session_page(session_id: str, request: Request, console: ConsoleDep, who: Auditor) -> Response:
    strings = script_strings(console, request, "bastion.js.")
    context = {"strings": strings, "session_id": session_id, "can_kill": who.can(Permission.ADMIN)}
    return console.render(request, "bastion_session.html", context, principal=who)
