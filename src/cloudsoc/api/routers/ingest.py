"""``POST /api/v1/ingest``: scripts send CloudTrail / ActionTrail records or ECS documents (NDJSON, a JSON array
or a CloudTrail ``{"Records": [...]}`` file, gzip allowed); they are parsed, enriched, run through detection and
stored, exactly as `cloudsoc ingest` does. Malformed records go to the dead-letter store with their bytes.

DuckDB lets one process write the store: while a `cloudsoc run` daemon holds it this answers 503 (send the
records to one of the daemon's inputs instead)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, get_console
from cloudsoc.api.estate import Estate, get_estate
from cloudsoc.api.permissions import Permission
from cloudsoc.detect.engine import latest_time
from cloudsoc.errors import ConsoleError
from cloudsoc.pipeline.processor import Processor

router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])
Ingester = Annotated[Principal, Depends(require(Permission.INGEST))]
EstateDep = Annotated[Estate, Depends(get_estate)]
ConsoleDep = Annotated[Console, Depends(get_console)]

# One request body at most this big (compressed size if gzip); larger batches are split by the sender.
MAX_BODY: Final = 32 * 1024 * 1024
INPUT: Final = "api"


class IngestOut(BaseModel):
    accepted: int  # records in the body
    stored: int  # new events stored
    duplicates: int  # events already stored (same cloud and event id)
    dead_letters: int  # records that could not be parsed or stored (see GET /api/v1/deadletters)
    alerts: int  # new alerts raised by these events
    batch: str  # the dead letters' path: api/<user>/<batch>


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ConsoleError(f"body too large: at most {MAX_BODY // (1024 * 1024)} MiB a request", status=413)
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > MAX_BODY:
            raise ConsoleError(f"body too large: at most {MAX_BODY // (1024 * 1024)} MiB a request", status=413)
    return bytes(chunks)


@router.post(
    "",
    response_model=IngestOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            },
        }
    },
)
async def ingest(request: Request, who: Ingester, estate: EstateDep, console: ConsoleDep) -> IngestOut:
    """Store a batch of records: one JSON object a line, a JSON array, or a CloudTrail file body."""
    data = await _body(request)
    if not data.strip():
        raise ConsoleError("empty body: send NDJSON records or a JSON array")
    batch = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"
    out = await asyncio.to_thread(_store, estate, data, f"{INPUT}/{who.user}/{batch}", batch)
    console.audit(
        request,
        who,
        "ingest",
        batch,
        detail={"accepted": out.accepted, "stored": out.stored, "dead_letters": out.dead_letters},
    )
    return out


def _store(estate: Estate, data: bytes, path: str, batch: str) -> IngestOut:
    processor = Processor("auto", accept_ecs=True)
    events, dead, records = processor.process(data, INPUT, path)
    docs = [e.fields for e in events]
    home = estate.home
    if home.intel_path.exists():
        from cloudsoc.enrichers.intel import intel_source

        enricher = intel_source(str(home.intel_path)).get()
        if enricher is not None:
            enricher.enrich(docs)
    with estate.writer() as storage:
        stage = home.detection_stage()
        try:
            matches = stage.select(docs) if stage is not None else []
            encoded = storage.encode(events, dead)
            # Alerts first (idempotent ids), then the events, as the pipeline does: a retry stores neither twice.
            alerts = stage.handle(matches, latest_time(docs)) if stage is not None else []
            result = storage.write_encoded(encoded, dead, [])
        finally:
            if stage is not None:
                stage.close()
    return IngestOut(
        accepted=records,
        stored=result.stored,
        duplicates=result.duplicates,
        dead_letters=result.dead_letters,
        alerts=len(alerts),
        batch=batch,
    )
