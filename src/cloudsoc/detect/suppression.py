"""Analyst suppressions: "rule X for AccessKey K from 198.51.100.0/24, for 7 days".

A suppression names a rule (a glob over rule ids) and conditions on fields of the alert's events: a value that
parses as a network is a CIDR test on IP fields, anything else a case-insensitive glob. Every condition must hold
on one of the alert's events (or on its matched fields). Expired suppressions stop applying but stay listed.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from cloudsoc.detect.alert import Alert
from cloudsoc.errors import CloudsocError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _values(doc: Any, keys: list[str]) -> Iterable[object]:
    if not keys:
        if isinstance(doc, list):
            yield from doc
        else:
            yield doc
        return
    if isinstance(doc, list):
        for item in doc:
            yield from _values(item, keys)
    elif isinstance(doc, Mapping) and keys[0] in doc:
        yield from _values(doc[keys[0]], keys[1:])


class Condition:
    def __init__(self, field: str, pattern: str) -> None:
        if not field or not pattern:
            raise CloudsocError(f"suppression condition {field}={pattern!r}: give field=value")
        self.field = field
        self.keys = field.split(".")
        self.pattern = pattern
        self.network: Network | None = None
        if "/" in pattern or _is_ip(pattern):
            try:
                self.network = ipaddress.ip_network(pattern, strict=False)
            except ValueError:
                self.network = None
        self.glob = pattern.lower()

    def holds(self, doc: Mapping[str, Any], matched: Mapping[str, object]) -> bool:
        candidates = list(_values(doc, self.keys))
        if self.field in matched:
            candidates.append(matched[self.field])
        return any(self._test(v) for v in candidates if v is not None)

    def _test(self, value: object) -> bool:
        if self.network is not None:
            try:
                return ipaddress.ip_address(str(value)) in self.network
            except ValueError:
                return False
        return fnmatch.fnmatchcase(str(value).lower(), self.glob)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class Suppression:
    def __init__(
        self, sid: int, rule: str, conditions: Mapping[str, str], reason: str = "", expires: str | None = None
    ) -> None:
        self.id = sid
        self.rule = rule or "*"
        self.conditions = [Condition(f, p) for f, p in conditions.items()]
        self.reason = reason
        self.expires = datetime.fromisoformat(expires) if expires else None

    def applies(self, alert: Alert, now: datetime) -> bool:
        if self.expires is not None and now >= self.expires:
            return False
        if not fnmatch.fnmatchcase(alert.rule_id, self.rule):
            return False
        if not self.conditions:
            return True
        matched = {m.field: m.value for m in alert.matched}
        docs = alert.events or [{}]
        return any(all(c.holds(doc, matched) for c in self.conditions) for doc in docs)


class Suppressions:
    """The active suppressions, as the engine's suppressor; counts what each one silenced."""

    def __init__(self, items: Iterable[Suppression] = ()) -> None:
        self.items = list(items)
        self.hits: Counter[int] = Counter()

    def __call__(self, alert: Alert) -> str | None:
        if not self.items:  # the usual case, asked for every alert
            return None
        now = datetime.now(UTC)
        for s in self.items:
            if s.applies(alert, now):
                self.hits[s.id] += 1
                return str(s.id)
        return None

    def take_hits(self) -> dict[int, int]:
        hits = dict(self.hits)
        self.hits.clear()
        return hits


def parse_conditions(pairs: Iterable[str]) -> dict[str, str]:
    """``field=value`` pairs from the command line."""
    out: dict[str, str] = {}
    for pair in pairs:
        field, sep, value = pair.partition("=")
        if not sep or not field.strip() or not value.strip():
            raise CloudsocError(f"{pair!r}: write a condition as field=value, e.g. source.ip=198.51.100.0/24")
        Condition(field.strip(), value.strip())
        out[field.strip()] = value.strip()
    return out
