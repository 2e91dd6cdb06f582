"""Turn the bytes of one file into events and dead letters. No I/O: the caller reads and stores."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cloudsoc.config.models import Format
from cloudsoc.errors import ParseError
from cloudsoc.event import DeadLetter, Event, Origin
from cloudsoc.parsers.base import Parser
from cloudsoc.parsers.framing import Framer
from cloudsoc.plugins import Registry

# --format value -> the parsers tried per record, in order.
FORMAT_PARSERS: dict[str, tuple[str, ...]] = {
    "auto": ("aws_cloudtrail", "aliyun_actiontrail"),
    "ndjson": ("aws_cloudtrail", "aliyun_actiontrail"),
    "cloudtrail": ("aws_cloudtrail",),
    "actiontrail": ("aliyun_actiontrail",),
    # ECS documents one a line, written by cloudsoc's own collectors (the bastion's journal) or another shipper.
    "ecs": ("aws_cloudtrail", "aliyun_actiontrail"),
}


class Processor:
    """Frames a file body, picks a parser per record and parses it; failures become dead letters."""

    def __init__(self, fmt: Format = "auto", *, accept_ecs: bool = False) -> None:
        registry = Registry("parsers")
        self.parsers: list[Parser] = [registry.load(n)() for n in FORMAT_PARSERS[fmt]]
        self.forced = fmt in ("cloudtrail", "actiontrail")
        self.framer = Framer(ndjson=fmt in ("ndjson", "ecs"))
        # Records that are already ECS documents (another collector normalised them) are taken as they are:
        # the HTTP ingest API and `ecs` files accept them; other files stay CloudTrail / ActionTrail only.
        self.accept_ecs = accept_ecs or fmt == "ecs"

    def process(self, data: bytes, input_name: str, path: str) -> tuple[list[Event], list[DeadLetter], int]:
        """Return (events, dead letters, number of records seen)."""
        framing = self.framer.frame(data)
        events: list[Event] = []
        dead: list[DeadLetter] = []
        if not framing.complete:
            # Keep the whole damaged file so nothing is lost even if the cut fell between two records.
            dead.append(
                DeadLetter(
                    raw=data,
                    reason="; ".join(framing.problems),
                    origin=Origin(input_name, path, -1, -1),
                    parser="framing",
                )
            )
        last = self.parsers[0]
        for rec in framing.records:
            origin = Origin(input_name, path, rec.index, rec.offset)
            if rec.error:
                dead.append(DeadLetter(raw=rec.raw_bytes(), reason=rec.error, origin=origin, parser="framing"))
                continue
            value: Any = rec.value
            if not isinstance(value, dict):
                reason = f"record is a JSON {type(value).__name__}, not an object"
                dead.append(DeadLetter(raw=rec.raw_bytes(), reason=reason, origin=origin, parser="framing"))
                continue
            parser = last if (self.forced or last.matches(value)) else self._detect(value)
            doc = _ecs(value) if parser is None and self.accept_ecs else None
            if doc is not None:
                events.append(Event(doc, origin))
                continue
            if parser is None:
                reason = "not a CloudTrail or ActionTrail event (unknown record shape; use --format to force one)"
                if self.accept_ecs:
                    reason = "neither a CloudTrail / ActionTrail event nor an ECS document with @timestamp and event.id"
                dead.append(DeadLetter(raw=rec.raw_bytes(), reason=reason, origin=origin, parser="auto"))
                continue
            last = parser
            try:
                events.append(Event(parser.parse(value), origin))
            except ParseError as exc:
                dead.append(DeadLetter(raw=rec.raw_bytes(), reason=exc.reason, origin=origin, parser=parser.name))
        return events, dead, len(framing.records)

    def _detect(self, record: dict[str, Any]) -> Parser | None:
        for parser in self.parsers:
            if parser.matches(record):
                return parser
        return None


def _ecs(record: dict[str, Any]) -> dict[str, Any] | None:
    """An ECS document with what the store needs (an ISO event time and an ``event`` object with an id: events
    are de-duplicated by it), its time written as the parsers write it (UTC, microseconds, ``Z``: stored times
    compare as text); None when it is not one."""
    event = record.get("event")
    timestamp = record.get("@timestamp")
    if not isinstance(event, dict) or not isinstance(timestamp, str) or not isinstance(event.get("id"), str):
        return None
    try:
        t = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    t = t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)
    return {**record, "@timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
