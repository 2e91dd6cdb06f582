"""The detection engine: rules indexed by ``event.dataset`` and ``event.action``, selection per event, then
aggregation, realert and suppression in event-time order.

Selection is pure and may run where the events are parsed (worker processes); :meth:`Detector.process` runs in
one place, in order, because aggregators keep state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from cloudsoc.detect.alert import MAX_ALERT_EVENTS, Alert, Matched
from cloudsoc.detect.rule import Finding, Match, Rule
from cloudsoc.errors import ConfigError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Decides whether an alert is silenced by an analyst's suppression; returns the suppression's id or None.
Suppressor = Callable[[Alert], str | None]


def event_time(doc: Mapping[str, Any]) -> datetime:
    """The event's ``@timestamp`` as an aware UTC datetime (the epoch when missing or malformed)."""
    raw = doc.get("@timestamp")
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            return _EPOCH
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return _EPOCH


def latest_time(docs: Iterable[Mapping[str, Any]], since: str = "") -> str:
    """The latest ``@timestamp`` string of ``docs`` (parsers write one fixed ISO format, so strings sort as
    times): how far event time has advanced in a batch, for rules that fire on silence."""
    latest = since
    for doc in docs:
        ts = doc.get("@timestamp")
        if type(ts) is str and ts > latest:
            latest = ts
    return latest


def _event_id(doc: Mapping[str, Any]) -> str:
    event = doc.get("event")
    return str(event.get("id", "")) if isinstance(event, Mapping) else ""


def _by_time(match: Match) -> datetime:
    return match.time


class RuleIndex:
    """Rules by (dataset, action): each event meets only the rules that can match it."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules: list[Rule] = []
        seen: dict[str, Rule] = {}
        for rule in rules:
            if rule.id in seen:
                raise ConfigError(f"rule id {rule.id!r} is defined twice: {seen[rule.id].source} and {rule.source}")
            seen[rule.id] = rule
            self.rules.append(rule)
        self.by_id = seen
        self._index: dict[str | None, dict[str | None, list[int]]] = {}
        for position, rule in enumerate(self.rules):
            if not rule.enabled:
                continue
            for dataset in rule.datasets if rule.datasets is not None else (None,):
                by_action = self._index.setdefault(dataset, {})
                for action in rule.actions if rule.actions is not None else (None,):
                    by_action.setdefault(action, []).append(position)
        self._cache: dict[tuple[object, object], list[Rule]] = {}
        # Rules that act on time passing (flatline, window expiry), asked at every batch.
        self.tickers = [r for r in self.rules if r.enabled and type(r).tick is not Rule.tick]

    def candidates(self, doc: Mapping[str, Any]) -> list[Rule]:
        event = doc.get("event")
        dataset = action = None
        if isinstance(event, Mapping):
            dataset = event.get("dataset")
            action = event.get("action")
        key = (dataset, action)
        found = self._cache.get(key)
        if found is None:
            low = action.lower() if isinstance(action, str) else None
            positions: set[int] = set()
            for ds in {None, dataset} if isinstance(dataset, str) else {None}:
                by_action = self._index.get(ds, {})
                positions.update(by_action.get(None, ()))
                if low is not None:
                    positions.update(by_action.get(low, ()))
            found = [self.rules[p] for p in sorted(positions)]
            if len(self._cache) < 100_000:  # bounded: actions come from the data
                self._cache[key] = found
        return found

    def select(self, docs: Iterable[dict[str, Any]]) -> list[Match]:
        """Every (rule, event) pair where the rule's selector accepts the event, in event order."""
        out: list[Match] = []
        for doc in docs:
            rules = self.candidates(doc)
            if not rules:
                continue
            when: datetime | None = None
            for rule in rules:
                hits = rule.select(doc)
                if hits is None:
                    continue
                if when is None:
                    when = event_time(doc)
                out.append(Match(rule_id=rule.id, event_id=_event_id(doc), time=when, hits=hits, doc=doc))
        return out


class Detector:
    """Turns matches into alerts: aggregation, realert per (rule, group key), and analyst suppressions."""

    def __init__(self, index: RuleIndex, *, suppressor: Suppressor | None = None) -> None:
        self.index = index
        self.suppressor = suppressor
        self._last_raised: dict[tuple[str, str], datetime] = {}
        self.suppressed = 0
        self.realerted = 0
        self.watermark = _EPOCH
        self._last_time = _EPOCH  # the newest event time of the alert being built (for realert)

    def process(self, matches: Sequence[Match], now: datetime | None = None) -> list[Alert]:
        findings: list[tuple[Rule, Finding]] = []
        by_id = self.index.by_id
        # Files of several regions and accounts interleave in a batch; windows and first-seen baselines want
        # event order (stable sort: equal times keep arrival order).
        for match in sorted(matches, key=_by_time):
            rule = by_id[match.rule_id]
            if not rule.enabled:
                continue  # switched off in the console after a worker process built its index
            findings.extend((rule, f) for f in rule.observe(match))
            if match.time > self.watermark:
                self.watermark = match.time
        if now is not None and now > self.watermark:
            self.watermark = now
        tick_at = self.watermark
        if tick_at > _EPOCH:
            for rule in self.index.tickers:
                findings.extend((rule, f) for f in rule.tick(tick_at))
        return self._raise(findings)

    def finish(self) -> list[Alert]:
        """End of an offline run: what rules still hold (open percentage buckets, pending aggregations)."""
        findings: list[tuple[Rule, Finding]] = []
        for rule in self.index.rules:
            if rule.enabled:
                findings.extend((rule, f) for f in rule.flush(self.watermark if self.watermark > _EPOCH else None))
        return self._raise(findings)

    def _raise(self, findings: list[tuple[Rule, Finding]]) -> list[Alert]:
        alerts: list[Alert] = []
        created = datetime.now(UTC).isoformat() if findings else ""
        for rule, finding in findings:
            alert = self._alert(rule, finding, created)
            if self._silenced(rule, alert):
                continue
            alerts.append(alert)
        return alerts

    def _silenced(self, rule: Rule, alert: Alert) -> bool:
        if self.suppressor is not None and self.suppressor(alert) is not None:
            self.suppressed += 1
            return True
        if rule.realert_secs > 0:
            key = (rule.id, alert.group_key)
            at = self._last_time if alert.last_time else self.watermark
            last = self._last_raised.get(key)
            if last is not None and (at - last).total_seconds() < rule.realert_secs:
                self.realerted += 1
                return True
            self._last_raised[key] = at
        return False

    def _alert(self, rule: Rule, finding: Finding, created: str) -> Alert:
        matches = finding.matches
        times = [m.time for m in matches] or ([finding.time] if finding.time is not None else [])
        first = last = ""
        if times:
            lo, hi = min(times), max(times)
            self._last_time = hi
            first = lo.isoformat()
            last = first if hi == lo else hi.isoformat()
        first_id = matches[0].event_id if matches else ""
        digest = hashlib.sha1(orjson.dumps([rule.id, finding.group_key, first_id, first])).hexdigest()[:24]
        matched = finding.matched or [Matched(f, v) for m in matches[:1] for f, v in m.hits]
        return Alert(
            id=digest,
            rule_id=rule.id,
            rule_name=rule.title,
            rule_kind=rule.kind,
            rule_name_zh=rule.title_zh,
            severity=rule.severity,
            tags=list(rule.tags),
            description=rule.description,
            response=rule.response,
            description_zh=rule.description_zh,
            response_zh=rule.response_zh,
            matched=matched,
            event_ids=[m.event_id for m in matches],
            events=[m.doc for m in matches[:MAX_ALERT_EVENTS]],
            group_key=finding.group_key,
            count=finding.count or len(matches) or 1,
            first_time=first,
            last_time=last,
            created=created,
            text=finding.text,
            outputs=list(rule.outputs),
        )

    def reset(self) -> None:
        self._last_raised.clear()
        for rule in self.index.rules:
            rule.reset()
