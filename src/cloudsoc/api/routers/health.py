"""``GET /api/v1/health`` (the pipeline's counters from ``status.json``, the store, alert deliveries),
``GET /api/v1/deadletters`` (records that could not be parsed or stored, raw bytes shown as text) and the
unauthenticated liveness probe ``GET /healthz``."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from cloudsoc.api.auth import Principal, require
from cloudsoc.api.estate import Estate, get_estate, iso
from cloudsoc.api.paging import Page, Paging
from cloudsoc.api.permissions import Permission
from cloudsoc.outputs.store import Outbox
from cloudsoc.pipeline.metrics import writer_running
from cloudsoc.storage.layout import StoreLayout

router = APIRouter(tags=["health"])
Reader = Annotated[Principal, Depends(require(Permission.READ))]
EstateDep = Annotated[Estate, Depends(get_estate)]

# A dead letter's bytes shown at most this long (a damaged file is kept whole; the CLI exports it all).
RAW_SHOWN: Final = 16_384
FAILED_SHOWN: Final = 20


class Delivery(BaseModel):
    id: int
    alert_id: str
    output: str
    attempts: int
    last_attempt: str | None
    error: str | None


class StoreHealth(BaseModel):
    events: int
    segments: int
    first: str | None
    last: str | None
    lag_seconds: float | None  # now minus the newest stored event's time


class PipelineHealth(BaseModel):
    running: bool
    pid: int | None
    started: str | None
    updated: str | None
    updated_seconds_ago: float | None
    queued: int | None
    events_per_second: float | None
    counters: dict[str, Any]
    inputs: dict[str, Any]


class Health(BaseModel):
    pipeline: PipelineHealth
    store: StoreHealth
    alerts: dict[str, int]
    deliveries: dict[str, int]
    failed_deliveries: list[Delivery]


class DeadLetterOut(BaseModel):
    id: int
    received: str | None
    input: str
    path: str
    index: int
    offset: int
    parser: str
    reason: str
    replayed: bool
    size: int
    raw_text: str  # the bytes as UTF-8 text, undecodable bytes as \\xNN escapes, cut at 16 KiB
    raw_base64: str  # the same (cut) bytes exactly
    truncated: bool


def _ago(text: str | None, now: datetime) -> float | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return round((now - (t if t.tzinfo else t.replace(tzinfo=UTC))).total_seconds(), 3)


def _run(path: Path, now: datetime) -> PipelineHealth:
    try:
        run: dict[str, Any] = orjson.loads(path.read_bytes()) if path.exists() else {}
    except (OSError, orjson.JSONDecodeError):
        run = {}  # being replaced this instant, or damaged: say nothing rather than fail the page
    pid = run.get("pid")
    counters = run.get("counters") or {}
    seconds = counters.get("seconds") or 0
    running = writer_running(pid)
    return PipelineHealth(
        running=running,
        pid=pid if isinstance(pid, int) else None,
        started=run.get("started"),
        updated=run.get("updated"),
        updated_seconds_ago=_ago(run.get("updated"), now),
        queued=run.get("queued"),
        events_per_second=round(counters.get("stored", 0) / seconds, 1) if seconds else None,
        counters=counters,
        inputs=run.get("inputs") or {},
    )


@router.get("/api/v1/health", response_model=Health)
def health(_: Reader, estate: EstateDep) -> Health:
    """Is the pipeline running and keeping up: its counters (events/s, dead letters, alerts), how far the
    newest stored event lags behind now, alert counts and deliveries that failed. Needs no lock on the store."""
    now = datetime.now(UTC)
    layout = StoreLayout.of(estate.home.store_path)
    segments = layout.read_manifest() if layout.manifest.exists() else []
    last = max((s["ts_max"] for s in segments), default=None)
    store = StoreHealth(
        events=sum(int(s["rows"]) for s in segments),
        segments=len(segments),
        first=min((s["ts_min"] for s in segments), default=None),
        last=last,
        lag_seconds=_ago(last.replace("Z", "+00:00") if last else None, now),
    )
    with estate.alerts() as alerts:
        outbox = Outbox(alerts.conn)
        counts, deliveries = alerts.counts(), outbox.counts()
        failed = [
            Delivery(
                id=d.id,
                alert_id=d.alert_id,
                output=d.output,
                attempts=d.attempts,
                last_attempt=iso(datetime.fromtimestamp(d.last_attempt_at, UTC)) if d.last_attempt_at else None,
                error=d.last_error,
            )
            for d in outbox.failed(FAILED_SHOWN)
        ]
    return Health(
        pipeline=_run(Path(estate.status_path), now),
        store=store,
        alerts=counts,
        deliveries=deliveries,
        failed_deliveries=failed,
    )


@router.get("/api/v1/deadletters", response_model=Page[DeadLetterOut])
def dead_letters(
    _: Reader,
    estate: EstateDep,
    paging: Annotated[Paging, Depends()],
    replayed: Annotated[bool, Query(description="Include those already replayed.")] = False,
) -> Page[DeadLetterOut]:
    """Dead letters, oldest first. Reading them needs the store's state file: while a `cloudsoc run` daemon holds
    it this answers 503 (`cloudsoc deadletters list` on that machine works the same way)."""
    with estate.state() as storage:
        rows = storage.dead_letters(limit=paging.offset + paging.limit, include_replayed=replayed)
        where = "" if replayed else " WHERE replayed = false"
        total = int(storage.state.execute(f"SELECT count(*) FROM dead_letters{where}").fetchall()[0][0])
    items = []
    for d in rows[paging.offset :]:
        raw = bytes(d.raw)
        shown = raw[:RAW_SHOWN]
        items.append(
            DeadLetterOut(
                id=d.id,
                received=iso(d.received),
                input=d.input,
                path=d.path,
                index=d.index,
                offset=d.offset,
                parser=d.parser,
                reason=d.reason,
                replayed=d.replayed,
                size=len(raw),
                raw_text=shown.decode("utf-8", "backslashreplace"),
                raw_base64=base64.b64encode(shown).decode(),
                truncated=len(raw) > RAW_SHOWN,
            )
        )
    return paging.page(items, total)


@router.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    """Liveness only (no login, says nothing about the estate): the process answers."""
    return {"status": "ok"}
