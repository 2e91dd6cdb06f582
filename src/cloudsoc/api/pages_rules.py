"""The Rules page (``/rules``): every loaded rule with its severity, tags, kind, alert counts and switch, and a
rule tried on recent stored events (``static/js/rules.js`` calls ``/api/v1/rules``)."""

from __future__ import annotations

import fnmatch
from typing import Annotated, Final

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, get_console
from cloudsoc.api.estate import Estate, get_estate
from cloudsoc.api.paging import MAX_LIMIT, Paging
from cloudsoc.api.permissions import Permission
from cloudsoc.api.routers import rules as api
from cloudsoc.detect.alert import Severity

router = APIRouter(include_in_schema=False)
Reader = Annotated[Principal, Depends(require(Permission.READ))]
EstateDep = Annotated[Estate, Depends(get_estate)]
ConsoleDep = Annotated[Console, Depends(get_console)]
_JS_KEYS: Final = (
    "rules.test_running",
    "rules.test_summary",
    "rules.test_none",
    "rules.failed",
    "rules.on",
    "rules.off",
    *(f"alerts.severity.{s.value}" for s in Severity),
)


@router.get("/rules", response_class=HTMLResponse)
def rules_page(
    request: Request,
    who: Reader,
    estate: EstateDep,
    console: ConsoleDep,
    rule: Annotated[str | None, Query(max_length=200, description="Id, glob or words of the title.")] = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    severity: Annotated[str | None, Query(max_length=20)] = None,
    enabled: Annotated[str | None, Query(max_length=5)] = None,
) -> Response:
    switch = {"on": True, "off": False}.get(enabled or "")
    kind = kind or None
    severity = severity or None
    everything = api.list_rules(who, estate, Paging(limit=MAX_LIMIT), enabled=None, kind=None, severity=None).items
    chosen = [
        r
        for r in everything
        if (switch is None or r.enabled == switch)
        and (kind is None or r.kind == kind)
        and (severity is None or r.severity == severity)
    ]
    wanted = (rule or "").strip().lower()
    if wanted:
        chosen = [
            r
            for r in chosen
            if fnmatch.fnmatchcase(r.id.lower(), wanted)
            or wanted in r.id.lower()
            or wanted in r.title.lower()
            or wanted in r.title_zh
        ]
    t = console.catalog.translator(console.language(request))
    labels = {k: t(k) for k in _JS_KEYS}
    context = {
        "rules": chosen,
        "total": len(everything),
        "kinds": sorted({r.kind for r in everything}),
        "severities": [s.value for s in Severity],
        "chosen": {"rule": rule or "", "kind": kind or "", "severity": severity or "", "enabled": enabled or ""},
        "can_write": Permission.RULES_WRITE in who.permissions,
        "labels": labels,
        "strings": orjson.dumps(labels).decode(),
    }
    return console.render(request, "rules.html", context, principal=who)
