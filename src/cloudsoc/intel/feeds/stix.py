"""STIX 2.1: bundles, JSON lists of objects, or one bare object.

Indicators: the pattern is parsed with the ``stix2`` library and every non-negated ``=``/``IN`` comparison on a
value cloudsoc matches (``ipv4-addr:value``, ``domain-name:value``, ``url:value``, ``email-addr:value``,
``file:hashes.*`` …) becomes an indicator, across OR/AND and observation operators; ``MATCHES``/``LIKE``
comparisons and other properties (``file:name``, x509 fields) are skipped. Cyber observables (SCOs) are imported
too, with ``detect`` off: a bundle that says "this address was observed" does not say it is malicious.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar, Final

import orjson
from stix2 import patterns as sp
from stix2.pattern_visitor import create_pattern_object

from cloudsoc.errors import ParseError
from cloudsoc.intel.feeds.base import Importer, ImportResult
from cloudsoc.intel.indicator import TLP, Indicator, IndicatorType, classify_ip, normalise

T = IndicatorType
_IP: Final = "ip"
# (object type, property path) → cloudsoc type; ``ip`` means an address or a CIDR.
_PATHS: Final[dict[tuple[str, str], IndicatorType | str]] = {
    ("ipv4-addr", "value"): _IP,
    ("ipv6-addr", "value"): _IP,
    ("domain-name", "value"): T.DOMAIN,
    ("url", "value"): T.URL,
    ("email-addr", "value"): T.EMAIL,
    ("file", "hashes.md5"): T.MD5,
    ("file", "hashes.sha-1"): T.SHA1,
    ("file", "hashes.sha1"): T.SHA1,
    ("file", "hashes.sha-256"): T.SHA256,
    ("file", "hashes.sha256"): T.SHA256,
}
_SCO_HASHES: Final = {"md5": T.MD5, "sha-1": T.SHA1, "sha1": T.SHA1, "sha-256": T.SHA256, "sha256": T.SHA256}
# The TLP 2.0 / 1.0 marking definitions STIX 2.1 predefines.
_TLP_MARKINGS: Final = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": TLP.CLEAR,
    "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": TLP.CLEAR,
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": TLP.GREEN,
    "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": TLP.GREEN,
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": TLP.AMBER,
    "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": TLP.AMBER,
    "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": TLP.AMBER_STRICT,
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": TLP.RED,
    "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": TLP.RED,
}


def objects(doc: Any) -> list[dict[str, Any]]:
    """The objects of a bundle, a JSON list of objects, or one bare object."""
    if isinstance(doc, list):
        return [o for o in doc if isinstance(o, dict)]
    if isinstance(doc, dict):
        if doc.get("type") == "bundle":
            return [o for o in doc.get("objects") or () if isinstance(o, dict)]
        if "type" in doc:
            return [doc]
    raise ParseError("not STIX 2.1: expected a bundle, a list of STIX objects or one STIX object")


def _time(raw: Any) -> datetime | None:
    return datetime.fromisoformat(str(raw).replace("Z", "+00:00")) if raw else None


def comparisons(pattern: str) -> Iterator[tuple[str, str, str]]:
    """(object type, property path, value) of every positive equality in a STIX pattern."""
    yield from _walk(create_pattern_object(pattern, version="2.1"))


def _walk(node: Any) -> Iterator[tuple[str, str, str]]:
    if isinstance(node, sp.QualifiedObservationExpression):
        yield from _walk(node.observation_expression)
    elif isinstance(node, sp.ObservationExpression):
        yield from _walk(node.operand)
    elif isinstance(node, sp._CompoundObservationExpression | sp._BooleanExpression):
        for operand in node.operands:
            yield from _walk(operand)
    elif isinstance(node, sp.ParentheticalExpression):
        yield from _walk(node.expression)
    elif isinstance(node, sp.EqualityComparisonExpression | sp.InComparisonExpression) and not node.negated:
        path = ".".join(str(getattr(c, "property_name", c)) for c in node.lhs.property_path).lower()
        rhs = node.rhs.value if isinstance(node.rhs, sp.ListConstant) else [node.rhs]
        for const in rhs:
            yield node.lhs.object_type_name, path.replace("'", ""), str(const.value)


class Stix(Importer):
    name: ClassVar[str] = "stix"

    def parse(self, data: bytes, *, name: str, source: str, result: ImportResult | None = None) -> ImportResult:
        result = ImportResult() if result is None else result
        try:
            objs = objects(orjson.loads(data))
        except (orjson.JSONDecodeError, ParseError) as exc:
            result.error(name, str(exc))
            return result
        for obj in objs:
            where = f"{name}: {obj.get('id', obj.get('type', '?'))}"
            if obj.get("type") == "indicator":
                self._indicator(obj, where, source, result)
            elif (obj.get("type"), "value") in _PATHS or obj.get("type") == "file":
                self._observable(obj, where, source, result)
        return result

    def _indicator(self, obj: dict[str, Any], where: str, source: str, result: ImportResult) -> None:
        if obj.get("pattern_type", "stix") != "stix":
            result.skipped += 1  # snort, yara, sigma … patterns are not values
            return
        try:
            found = list(comparisons(str(obj.get("pattern", ""))))
            context: dict[str, Any] = {
                "intel_types": [str(t) for t in obj.get("indicator_types") or ()],
                "confidence": int(obj.get("confidence", 50)),
                "tlp": next(
                    (_TLP_MARKINGS[m] for m in obj.get("object_marking_refs") or () if m in _TLP_MARKINGS), None
                ),
                "tags": [str(t) for t in obj.get("labels") or ()],
                "description": obj.get("name") or obj.get("description"),
                "first_seen": _time(obj.get("valid_from")),
                "last_seen": _time(obj.get("modified")),
                "valid_until": _time(obj.get("valid_until")),
                "revoked": bool(obj.get("revoked", False)),
            }
        except (ValueError, TypeError) as exc:
            result.error(where, f"bad indicator: {exc}")
            return
        added = 0
        for obj_type, path, raw in found:
            kind = _PATHS.get((obj_type, path))
            if kind is None:
                continue
            try:
                result.add(Indicator(**self._typed(kind, raw), source=source, **context))
                added += 1
            except ParseError as exc:
                result.error(where, exc)
        if not added:
            result.skipped += 1

    def _observable(self, obj: dict[str, Any], where: str, source: str, result: ImportResult) -> None:
        pairs: list[tuple[IndicatorType | str | None, Any]]
        if obj["type"] == "file":
            pairs = [(_SCO_HASHES.get(k.lower()), v) for k, v in (obj.get("hashes") or {}).items()]
        else:
            pairs = [(_PATHS[(obj["type"], "value")], obj.get("value"))]
        added = 0
        for kind, raw in pairs:
            if kind is None or not isinstance(raw, str):
                continue
            try:
                result.add(Indicator(**self._typed(kind, raw), source=source, detect=False, tags=["stix:observed"]))
                added += 1
            except ParseError as exc:
                result.error(where, exc)
        if not added:
            result.skipped += 1

    @staticmethod
    def _typed(kind: IndicatorType | str, raw: str) -> dict[str, Any]:
        typed, value = classify_ip(raw) if kind == _IP else (T(kind), normalise(T(kind), raw))
        return {"type": typed, "value": value}
