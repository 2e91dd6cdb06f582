"""``/api/v1/rules``: the loaded detection rules with their alert counts, switching them on and off (kept in
``alerts.db``; the daemon applies it within 30 s), and trying a rule on recent stored events."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, get_console
from cloudsoc.api.estate import Estate, get_estate
from cloudsoc.api.paging import Page, Paging
from cloudsoc.api.permissions import Permission
from cloudsoc.detect.engine import Detector, RuleIndex
from cloudsoc.detect.loader import load_rules
from cloudsoc.detect.rule import Rule
from cloudsoc.errors import CloudsocError, ConsoleError

router = APIRouter(prefix="/api/v1/rules", tags=["rules"])
Reader = Annotated[Principal, Depends(require(Permission.READ))]
Writer = Annotated[Principal, Depends(require(Permission.RULES_WRITE))]
EstateDep = Annotated[Estate, Depends(get_estate)]
ConsoleDep = Annotated[Console, Depends(get_console)]

# A rule test reads at most this many events (newest window first is not needed: rules want event order).
MAX_TEST_EVENTS: Final = 200_000
MAX_TEST_ALERTS: Final = 100


class RuleOut(BaseModel):
    id: str
    title: str
    title_zh: str
    kind: str
    severity: str
    tags: list[str]
    enabled: bool
    switched_in_console: bool  # enabled/disabled from the console (wins over `detection.disabled`)
    stateful: bool
    datasets: list[str] | None
    actions: list[str] | None
    source: str
    description: str
    description_zh: str
    alerts: int
    open_alerts: int
    last_alert: str | None


class RuleDetail(RuleOut):
    response: str
    response_zh: str
    limits: str


class RuleTestIn(BaseModel):
    hours: float = Field(default=24, gt=0, le=24 * 90, description="How far back to read stored events.")
    max_events: int = Field(default=100_000, ge=1, le=MAX_TEST_EVENTS, description="Read at most this many.")


class RuleTestOut(BaseModel):
    rule: str
    since: str
    scanned: int
    selected: int  # events the rule's selector accepted
    truncated: bool  # max_events was reached before the window's end
    alerts: list[dict[str, Any]]  # what the rule would raise (not stored), at most 100
    seconds: float


def _rules(estate: Estate) -> tuple[list[Rule], dict[str, bool]]:
    try:
        loaded = load_rules(estate.home.config.detection)
    except CloudsocError as exc:
        raise ConsoleError(f"the rules cannot be loaded: {exc}", status=500) from None
    with estate.alerts() as store:
        settings = store.rule_settings()
    for rule in loaded.rules:
        if rule.id in settings:
            rule.enabled = settings[rule.id]
    return loaded.rules, settings


def _out(rule: Rule, settings: dict[str, bool], hits: dict[str, tuple[int, int, str]]) -> dict[str, Any]:
    alerts, open_alerts, last = hits.get(rule.id, (0, 0, ""))
    return {
        "id": rule.id,
        "title": rule.title,
        "title_zh": rule.title_zh,
        "kind": rule.kind,
        "severity": rule.severity.value,
        "tags": list(rule.tags),
        "enabled": rule.enabled,
        "switched_in_console": rule.id in settings,
        "stateful": rule.stateful,
        "datasets": sorted(rule.datasets) if rule.datasets is not None else None,
        "actions": sorted(rule.actions) if rule.actions is not None else None,
        "source": rule.source,
        "description": rule.description,
        "description_zh": rule.description_zh,
        "alerts": alerts,
        "open_alerts": open_alerts,
        "last_alert": last or None,
    }


def _find(rules: list[Rule], rule_id: str) -> Rule:
    for rule in rules:
        if rule.id == rule_id:
            return rule
    raise ConsoleError(f"no rule {rule_id[:120]!r}", status=404)


@router.get("", response_model=Page[RuleOut])
def list_rules(
    _: Reader,
    estate: EstateDep,
    paging: Annotated[Paging, Depends()],
    enabled: Annotated[bool | None, Query(description="Only enabled (true) or disabled (false) rules.")] = None,
    kind: Annotated[str | None, Query(max_length=40, description="builtin, sigma, elastalert …")] = None,
    severity: Annotated[str | None, Query(max_length=20)] = None,
) -> Page[RuleOut]:
    """Every loaded rule with how many alerts it raised (and how many are still open)."""
    rules, settings = _rules(estate)
    with estate.alerts() as store:
        hits = store.rule_hits()
    chosen = [
        r
        for r in rules
        if (enabled is None or r.enabled == enabled)
        and (kind is None or r.kind == kind)
        and (severity is None or r.severity.value == severity)
    ]
    items = [RuleOut.model_validate(_out(r, settings, hits)) for r in chosen]
    return paging.page(items[paging.offset : paging.offset + paging.limit], len(items))


@router.get("/{rule_id}", response_model=RuleDetail)
def rule(rule_id: str, _: Reader, estate: EstateDep) -> RuleDetail:
    rules, settings = _rules(estate)
    found = _find(rules, rule_id)
    with estate.alerts() as store:
        hits = store.rule_hits()
    return RuleDetail.model_validate(
        {
            **_out(found, settings, hits),
            "response": found.response,
            "response_zh": found.response_zh,
            "limits": found.limits,
        }
    )


def _switch(rule_id: str, enabled: bool, request: Request, who: Principal, estate: Estate, console: Console) -> RuleOut:
    rules, _settings = _rules(estate)
    found = _find(rules, rule_id)
    with estate.alerts() as store:
        store.set_rule_enabled(found.id, enabled, actor=who.user)
        settings = store.rule_settings()
        hits = store.rule_hits()
    found.enabled = enabled
    console.audit(request, who, "rule.enable" if enabled else "rule.disable", found.id)
    return RuleOut.model_validate(_out(found, settings, hits))


@router.post("/{rule_id}/enable", response_model=RuleOut)
def enable(rule_id: str, request: Request, who: Writer, estate: EstateDep, console: ConsoleDep) -> RuleOut:
    """Run this rule (the daemon picks the change up within 30 s; `cloudsoc detect` and ingest at their start)."""
    return _switch(rule_id, True, request, who, estate, console)


@router.post("/{rule_id}/disable", response_model=RuleOut)
def disable(rule_id: str, request: Request, who: Writer, estate: EstateDep, console: ConsoleDep) -> RuleOut:
    """Stop running this rule (kept in alerts.db, so every process of this home agrees)."""
    return _switch(rule_id, False, request, who, estate, console)


@router.post("/{rule_id}/test", response_model=RuleTestOut)
def test_rule(rule_id: str, who: Writer, estate: EstateDep, body: RuleTestIn | None = None) -> RuleTestOut:
    """Run one rule, fresh (no saved state), over the stored events of the last ``hours`` and return what it
    would raise. Nothing is stored or sent."""
    body = body or RuleTestIn()
    started = time.perf_counter()
    rules, _settings = _rules(estate)
    found = _find(rules, rule_id)
    found.enabled = True
    found.reset()
    index = RuleIndex([found])
    detector = Detector(index)
    since = datetime.now(UTC) - timedelta(hours=body.hours)
    storage = estate.events()
    scanned = selected = 0
    truncated = False
    alerts = []
    for batch in storage.scan(since=since, actions=found.actions, batch_rows=10_000):
        if scanned + len(batch) > body.max_events:
            batch = batch[: body.max_events - scanned]
            truncated = True
        scanned += len(batch)
        matches = index.select(batch)
        selected += len(matches)
        alerts.extend(detector.process(matches))
        if truncated:
            break
    alerts.extend(detector.finish())
    return RuleTestOut(
        rule=found.id,
        since=since.isoformat(),
        scanned=scanned,
        selected=selected,
        truncated=truncated,
        alerts=[a.export(with_events=True) for a in alerts[:MAX_TEST_ALERTS]],
        seconds=round(time.perf_counter() - started, 3),
    )
