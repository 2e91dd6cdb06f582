"""MISP event JSON: ``{"Event": …}``, a bare event, a REST search ``{"response": …}`` or a list of events.

Attributes and objects' attributes become indicators when their type is one cloudsoc matches on; composite types
(``ip-dst|port``, ``domain|ip``, ``filename|sha256`` …) give each matchable half. Event and attribute tags give the
TLP and intel types; ``to_ids`` is the detect flag; sightings of type 0/1/2 are sightings, false positives and an
expiry date.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import orjson

from cloudsoc.errors import ParseError
from cloudsoc.intel.feeds.base import Importer, ImportResult
from cloudsoc.intel.indicator import (
    BOTNET,
    C2,
    MALWARE,
    PHISHING,
    SCANNER,
    TLP,
    Indicator,
    IndicatorType,
    classify_ip,
    normalise,
)

T = IndicatorType
_IP: Final = "ip"
# MISP attribute type → cloudsoc type for each part of the (possibly composite) value; None: that part is context.
_TYPES: Final[dict[str, tuple[IndicatorType | str | None, ...]]] = {
    "ip-src": (_IP,),
    "ip-dst": (_IP,),
    "ip-src|port": (_IP, None),
    "ip-dst|port": (_IP, None),
    "domain": (T.DOMAIN,),
    "hostname": (T.DOMAIN,),
    "domain|ip": (T.DOMAIN, _IP),
    "hostname|port": (T.DOMAIN, None),
    "url": (T.URL,),
    "md5": (T.MD5,),
    "sha1": (T.SHA1,),
    "sha256": (T.SHA256,),
    "filename|md5": (None, T.MD5),
    "filename|sha1": (None, T.SHA1),
    "filename|sha256": (None, T.SHA256),
    "email": (T.EMAIL,),
    "email-src": (T.EMAIL,),
    "email-dst": (T.EMAIL,),
    "ja3-fingerprint-md5": (T.JA3,),
}
# Substrings of tag names that say what kind of threat an indicator is (MISP taxonomies vary: circl, ecsirt,
# kill-chain, malware_classification, plain words).
_INTEL_TAGS: Final = (
    ("command-and-control", C2),
    ("command and control", C2),
    ("c2", C2),
    ("botnet", BOTNET),
    ("phishing", PHISHING),
    ("scan", SCANNER),
    ("malware", MALWARE),
    ("ransomware", MALWARE),
)
_SIGHTING: Final = "0"
_FALSE_POSITIVE: Final = "1"
_EXPIRATION: Final = "2"


def _time(raw: Any) -> datetime | None:
    """MISP times: epoch seconds as a string or number, or ISO 8601."""
    if raw in (None, "", 0, "0"):
        return None
    text = str(raw)
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _tag_names(obj: dict[str, Any]) -> list[str]:
    return [str(t["name"]) for t in obj.get("Tag") or () if isinstance(t, dict) and t.get("name")]


def events(doc: Any) -> Iterator[dict[str, Any]]:
    """The events in any of MISP's JSON shapes."""
    if isinstance(doc, list):
        for item in doc:
            yield from events(item)
    elif isinstance(doc, dict):
        if "response" in doc:
            yield from events(doc["response"])
        elif "Event" in doc:
            yield doc["Event"]
        elif "Attribute" in doc or "Object" in doc:
            yield doc


class Misp(Importer):
    name: ClassVar[str] = "misp"

    def parse(self, data: bytes, *, name: str, source: str, result: ImportResult | None = None) -> ImportResult:
        result = ImportResult() if result is None else result
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            result.error(name, f"not JSON: {exc}")
            return result
        found = False
        for event in events(doc):
            found = True
            self.event(event, name=name, source=source, result=result)
        if not found:
            result.error(name, "no MISP event in it (expected {'Event': …}, an event, or {'response': …})")
        return result

    def event(self, event: dict[str, Any], *, name: str, source: str, result: ImportResult) -> None:
        """Add one event's indicators to ``result``."""
        tags = _tag_names(event)
        where = f"{name}: event {event.get('uuid') or event.get('id') or '?'}"
        for attr in event.get("Attribute") or ():
            self._attribute(attr, tags, None, where, source, result)
        for obj in event.get("Object") or ():
            for attr in obj.get("Attribute") or ():
                self._attribute(attr, tags, obj.get("name"), where, source, result)

    def _attribute(
        self,
        attr: dict[str, Any],
        event_tags: list[str],
        object_name: str | None,
        where: str,
        source: str,
        result: ImportResult,
    ) -> None:
        kinds = _TYPES.get(str(attr.get("type")))
        if kinds is None or attr.get("deleted"):
            result.skipped += 1
            return
        raw = str(attr.get("value", ""))
        parts = raw.split("|") if len(kinds) > 1 else [raw]
        where = f"{where} attribute {attr.get('uuid') or attr.get('id') or '?'}"
        if len(parts) != len(kinds):
            result.error(where, f"{attr.get('type')} value {raw!r} does not have {len(kinds)} parts")
            return
        tags = [*event_tags, *(t for t in _tag_names(attr) if t not in event_tags)]
        sightings = [s for s in attr.get("Sighting") or () if isinstance(s, dict)]
        seen = [_time(s.get("date_sighting")) for s in sightings if str(s.get("type", "0")) == _SIGHTING]
        expiry = [_time(s.get("date_sighting")) for s in sightings if str(s.get("type")) == _EXPIRATION]
        try:
            first_seen = _time(attr.get("first_seen"))
            last_seen = _time(attr.get("last_seen")) or max((t for t in seen if t), default=None)
            valid_until = min((t for t in expiry if t), default=None)
        except ValueError as exc:
            result.error(where, f"bad time: {exc}")
            return
        context = [p for p, k in zip(parts, kinds, strict=True) if k is None]
        description = " ".join(x for x in (object_name, attr.get("comment"), *(f"({c})" for c in context)) if x).strip()
        for part, kind in zip(parts, kinds, strict=True):
            if kind is None:
                continue
            try:
                typed, value = classify_ip(part) if kind == _IP else (T(kind), normalise(T(kind), part))
            except ParseError as exc:
                result.error(where, exc)
                continue
            result.add(
                Indicator(
                    type=typed,
                    value=value,
                    source=source,
                    intel_types=_intel_types(tags),
                    confidence=_confidence(tags),
                    tlp=next(
                        (tlp for t in tags if (tlp := TLP.parse(t)) is not None and t.lower()[:4] == "tlp:"), None
                    ),
                    tags=[t for t in tags if not t.lower().startswith("tlp:")],
                    description=description or None,
                    first_seen=first_seen,
                    last_seen=last_seen,
                    valid_until=valid_until,
                    detect=bool(attr.get("to_ids", False)),
                    sightings=len(seen),
                    false_positives=sum(1 for s in sightings if str(s.get("type")) == _FALSE_POSITIVE),
                )
            )


def _intel_types(tags: list[str]) -> list[str]:
    found: list[str] = []
    for tag in tags:
        low = tag.lower()
        for needle, kind in _INTEL_TAGS:
            if needle in low and kind not in found:
                found.append(kind)
    return found


def _confidence(tags: list[str]) -> int:
    """From an ``osint:certainty="93"`` tag when there is one; MISP has no confidence of its own."""
    for tag in tags:
        if tag.startswith('osint:certainty="'):
            digits = tag.removeprefix('osint:certainty="').rstrip('"')
            if digits.isdigit():
                return min(100, int(digits))
    return 50
