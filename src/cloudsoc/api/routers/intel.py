"""``/api/v1/intel``: look a value up (matches, allow-list verdict, whois from the cache), list indicators and
feeds, import a feed file, mark a false positive — what ``cloudsoc intel`` does, over HTTP."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import msgspec
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from pydantic import BaseModel, Field

from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, get_console
from cloudsoc.api.estate import Estate, get_estate
from cloudsoc.api.paging import Page, Paging
from cloudsoc.api.permissions import Permission
from cloudsoc.errors import CloudsocError, ConsoleError, ParseError
from cloudsoc.intel.indicator import IndicatorType
from cloudsoc.intel.store import StoredIndicator

router = APIRouter(prefix="/api/v1/intel", tags=["intel"])
Reader = Annotated[Principal, Depends(require(Permission.READ))]
Writer = Annotated[Principal, Depends(require(Permission.INTEL_WRITE))]
EstateDep = Annotated[Estate, Depends(get_estate)]
ConsoleDep = Annotated[Console, Depends(get_console)]

# A feed file sent to the console at most this big (IPsum's full list is ~3 MiB; bigger feeds belong in
# `cloudsoc intel import` or a configured feed).
MAX_UPLOAD: Final = 64 * 1024 * 1024
_FORMATS: Final = ("auto", "stix", "misp", "csv_map", "plain", "ipsum", "maltrail", "feodo")


class IndicatorOut(BaseModel):
    type: str
    value: str
    source: str
    intel_types: list[str]
    confidence: int | None
    tlp: str | None
    tags: list[str]
    description: str | None
    first_seen: str | None
    last_seen: str | None
    expires: str
    active: bool
    revoked: bool
    sightings: int


class WhoisOut(BaseModel):
    domain: str
    cached: bool  # False: not in the cache yet (the daemon fetches wanted names; `cloudsoc intel lookup` asks now)
    record: dict[str, Any] | None


class LookupOut(BaseModel):
    value: str
    type: str | None
    allowed: str | None
    matches: list[IndicatorOut]
    whois: WhoisOut | None


class FeedOut(BaseModel):
    name: str
    configured: bool
    type: str | None
    url: str | None
    status: dict[str, Any] | None


class ImportOut(BaseModel):
    source: str
    format: str
    indicators: int
    by_type: dict[str, int]
    skipped: int
    errors: list[str]
    retro_hunt: dict[str, Any] | None
    seconds: float


class FalsePositiveIn(BaseModel):
    value: str = Field(min_length=1, max_length=2048)
    reason: str = Field(default="", max_length=1000)
    undo: bool = Field(default=False, description="Remove the local allow entry again.")


class FalsePositiveOut(BaseModel):
    value: str
    type: str
    rows_changed: int | None
    allowed: bool


def indicator_out(found: StoredIndicator, now: datetime) -> IndicatorOut:
    ind = found.indicator
    return IndicatorOut(
        type=ind.type.value,
        value=ind.value,
        source=ind.source,
        intel_types=list(ind.intel_types),
        confidence=ind.confidence,
        tlp=ind.tlp.value if ind.tlp else None,
        tags=list(ind.tags),
        description=ind.description,
        first_seen=ind.first_seen.isoformat() if ind.first_seen else None,
        last_seen=ind.last_seen.isoformat() if ind.last_seen else None,
        expires=found.expires.isoformat(),
        active=found.active(now),
        revoked=bool(ind.revoked),
        sightings=ind.sightings,
    )


def _named(value: str) -> bool:
    """A domain, URL or e-mail address (whois has something to say), not an address or a hash."""
    from cloudsoc.intel.indicator import guess

    found = guess(value)
    return found is not None and found[0] in (IndicatorType.DOMAIN, IndicatorType.URL, IndicatorType.EMAIL)


@router.get("/lookup", response_model=LookupOut)
def lookup(
    _: Reader,
    estate: EstateDep,
    value: Annotated[str, Query(min_length=1, max_length=2048, description="An IP, CIDR, domain, URL, hash …")],
) -> LookupOut:
    """Every active indicator matching ``value`` (covering networks and parent domains included), whether an allow
    list calls it benign, and whois for names from the cache only (a miss is queued for the daemon to fetch: a
    console request never waits on a registry)."""
    from cloudsoc.intel.indicator import guess
    from cloudsoc.intel.whois import domains_of

    now = datetime.now(UTC)
    found = guess(value)
    with estate.matcher_lock:
        matcher = estate.matcher()
        matches = matcher.lookup(value) if matcher is not None else []
        allowed = matcher.allowed(value) if matcher is not None else None
    whois = None
    names = domains_of([value.rsplit("@", 1)[-1]]) if _named(value) else []
    service = estate.home.whois() if names else None
    if service is not None:
        try:
            record = service.lookup(names[0], now=now, fetch=False)
            if record is None:
                service.cache.want(names[:1], now=now)
        finally:
            service.cache.close()
        whois = WhoisOut(domain=names[0], cached=record is not None, record=record.summary() if record else None)
    return LookupOut(
        value=value,
        type=found[0].value if found else None,
        allowed=allowed,
        matches=[indicator_out(m, now) for m in matches],
        whois=whois,
    )


@router.get("/indicators", response_model=Page[IndicatorOut])
def indicators(
    _: Reader,
    estate: EstateDep,
    paging: Annotated[Paging, Depends()],
    type: Annotated[list[IndicatorType] | None, Query(description="Only these types (repeat the parameter).")] = None,
    source: Annotated[str | None, Query(max_length=200)] = None,
    active: Annotated[bool, Query(description="Only those that match now (not revoked, not expired).")] = True,
) -> Page[IndicatorOut]:
    """Indicators by type, value and source."""
    now = datetime.now(UTC)
    types = type or []
    with estate.intel() as store:
        rows = store.query(
            types=types, source=source, active_at=now if active else None, limit=paging.offset + paging.limit
        )
        total = store.count(types=types, source=source, active_at=now if active else None)
    return paging.page([indicator_out(r, now) for r in rows[paging.offset :]], total)


@router.get("/feeds", response_model=Page[FeedOut])
def feeds(_: Reader, estate: EstateDep, paging: Annotated[Paging, Depends()]) -> Page[FeedOut]:
    """Configured feeds and every feed with a recorded sync: last attempt, last success, counts, last error."""
    from cloudsoc.intel.sync import FeedSync

    with estate.intel() as store:
        statuses = FeedSync(store).statuses()
    configured = estate.home.config.feeds
    out = []
    for name in sorted(set(configured) | set(statuses)):
        cfg = configured.get(name)
        status = statuses.get(name)
        out.append(
            FeedOut(
                name=name,
                configured=cfg is not None,
                type=getattr(cfg, "type", None) or (status.type if status else None),
                url=getattr(cfg, "url", None) or (status.url if status else None),
                status=_builtins(status) if status is not None else None,
            )
        )
    return paging.page(out[paging.offset : paging.offset + paging.limit], len(out))


def _builtins(value: Any) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(value)
    return out


@router.post("/import", response_model=ImportOut)
async def import_feed(
    request: Request,
    who: Writer,
    estate: EstateDep,
    console: ConsoleDep,
    file: Annotated[UploadFile, File(description="A feed file: STIX, MISP JSON, IPsum, Maltrail, Feodo, CSV, list.")],
    source: Annotated[str | None, Form(max_length=200, description="Source name (default: the file name).")] = None,
    format: Annotated[str, Form(description="auto, stix, misp, csv_map, plain, ipsum, maltrail or feodo.")] = "auto",
    confidence: Annotated[int, Form(ge=0, le=100, description="Confidence of values in plain lists.")] = 50,
    hunt_days: Annotated[int, Form(ge=0, le=365, description="Retro-hunt this many days of events; 0: off.")] = 30,
) -> ImportOut:
    """Import indicators from an uploaded file into the indicator store, then retro-hunt recent stored events
    for the imported addresses (as `cloudsoc intel import`)."""
    import asyncio

    if format not in _FORMATS:
        raise ConsoleError(f"format: one of {', '.join(_FORMATS)}")
    data = await file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise ConsoleError(f"file: larger than {MAX_UPLOAD // (1024 * 1024)} MiB", status=413)
    name = (file.filename or "upload").replace("/", "_").replace("\\", "_")[:200] or "upload"
    result = await asyncio.to_thread(_import, estate, data, name, source or name, format, confidence, hunt_days)
    console.audit(request, who, "intel.import", result.source, detail={"indicators": result.indicators, "file": name})
    return result


def _import(
    estate: Estate, data: bytes, name: str, source: str, fmt: str, confidence: int, hunt_days: int
) -> ImportOut:
    from cloudsoc.intel.feeds.detect import ListOptions, detect, importer

    started = time.perf_counter()
    imported_at = datetime.now(UTC)
    try:
        kind = detect(data, name) if fmt == "auto" else fmt
        result = importer(kind, ListOptions(confidence=confidence)).parse(data, name=name, source=source)
    except ParseError as exc:
        raise ConsoleError(f"file: not a feed cloudsoc reads ({exc.reason})") from None
    except CloudsocError as exc:
        raise ConsoleError(f"file: {exc}") from None
    with estate.intel() as store:
        store.upsert(result.indicators)
    estate.forget_matcher()
    by_type: Counter[str] = Counter(result.by_type())
    hunted = _retro_hunt(estate, imported_at, hunt_days, by_type) if hunt_days else None
    return ImportOut(
        source=source,
        format=kind,
        indicators=len(result.indicators),
        by_type=dict(by_type.most_common()),
        skipped=result.skipped,
        errors=result.errors[:100],
        retro_hunt=hunted,
        seconds=round(time.perf_counter() - started, 3),
    )


def _retro_hunt(estate: Estate, imported_at: datetime, days: int, by_type: Counter[str]) -> dict[str, Any] | None:
    from cloudsoc.intel.hunt import HUNTED_TYPES, RetroHunt

    if not any(by_type.get(t.value) for t in HUNTED_TYPES) or not estate.home.store_path.exists():
        return None
    hunt = RetroHunt(estate.home)
    summary = hunt.run(hunt.indicators(updated_since=imported_at), since=datetime.now(UTC) - timedelta(days=days))
    return _builtins(summary)


@router.post("/fp", response_model=FalsePositiveOut)
def false_positive(
    body: FalsePositiveIn, request: Request, who: Writer, estate: EstateDep, console: ConsoleDep
) -> FalsePositiveOut:
    """Mark a value a false positive: its indicators' confidence is halved and counted, and it gets a local allow
    entry so it no longer enriches events or raises alerts (the daemon picks it up within a minute)."""
    from cloudsoc.intel.indicator import guess

    found = guess(body.value)
    if found is None:
        raise ConsoleError(f"value: {body.value[:80]!r} is not an IP, CIDR, domain, URL, e-mail or hash")
    kind, normal = found
    with estate.intel() as store:
        if body.undo:
            removed = store.remove_allow(normal)
            out = FalsePositiveOut(value=normal, type=kind.value, rows_changed=None, allowed=not removed)
        else:
            changed = store.false_positive(kind, normal, reason=body.reason or "marked false positive", actor=who.user)
            out = FalsePositiveOut(value=normal, type=kind.value, rows_changed=changed, allowed=True)
    estate.forget_matcher()
    console.audit(request, who, "intel.fp_undo" if body.undo else "intel.fp", normal, detail={"reason": body.reason})
    return out
