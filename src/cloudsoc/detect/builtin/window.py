"""Bursts: a group (one identity) doing the same kind of thing many times within a short window of event time.

Each group keeps the selected events of the last ``window_secs`` and the distinct values they counted (denied
API names, secret names, event ids when every event counts). When a group reaches ``threshold`` distinct values
the rule reports the events and starts the group's window afresh, so one burst is one alert. Windows of groups
that went quiet are dropped, so state stays as small as the current bursts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from cloudsoc.detect.alert import Matched, Severity
from cloudsoc.detect.builtin.base import BuiltinRule, Detection
from cloudsoc.detect.rule import Finding, Match

# How many observations between sweeps of idle groups.
_SWEEP_EVERY = 2048
# Events kept per group: a job retrying one call a hundred times a second must not fill memory; the oldest go
# first (their distinct values may then be under-counted, never over-counted).
MAX_ENTRIES = 1000


class _Window:
    __slots__ = ("counts", "entries")

    def __init__(self) -> None:
        self.entries: deque[tuple[float, tuple[str, ...], Match]] = deque()
        self.counts: dict[str, int] = {}

    def add(self, at: float, values: tuple[str, ...], match: Match) -> None:
        self.entries.append((at, values, match))
        counts = self.counts
        for value in values:
            counts[value] = counts.get(value, 0) + 1

    def expire(self, before: float) -> None:
        entries, counts = self.entries, self.counts
        while entries and entries[0][0] < before:
            _, values, _ = entries.popleft()
            for value in values:
                left = counts[value] - 1
                if left:
                    counts[value] = left
                else:
                    del counts[value]


class BurstRule(BuiltinRule):
    """Subclasses implement ``select`` (which events count) and may override :meth:`values` (what is counted)."""

    # Labels of the matched fields an alert carries: the group and how many distinct values it reached.
    counted_field = "events"

    def __init__(
        self,
        meta: Detection,
        cloud: str | None,
        *,
        actions: frozenset[str] | None,
        threshold: int,
        window_secs: float,
        severity: Severity | None = None,
    ) -> None:
        # One burst, one alert: the window restarts when it fires, and realert holds back the same group's
        # next alert for one window.
        super().__init__(meta, cloud, actions=actions, realert_secs=window_secs, severity=severity)
        if threshold < 1 or window_secs <= 0:
            raise ValueError(f"{self.id}: threshold must be >= 1 and window_secs > 0")
        self.threshold = threshold
        self.window_secs = window_secs
        self._windows: dict[str, _Window] = {}
        self._seen = 0
        self._latest = 0.0

    def values(self, doc: Mapping[str, Any]) -> tuple[str, ...]:
        """What one event counts for (distinct values are counted); by default the event itself."""
        event = doc["event"]
        return (str(event.get("id", "")),)

    def observe(self, match: Match) -> list[Finding]:
        doc = match.doc
        group = self.group(doc)
        at = match.time.timestamp()
        self._latest = max(self._latest, at)
        self._seen += 1
        if self._seen % _SWEEP_EVERY == 0:
            self._sweep()
        window = self._windows.get(group)
        if window is None:
            window = self._windows[group] = _Window()
        window.expire(at - self.window_secs)
        if len(window.entries) >= MAX_ENTRIES:
            window.expire(window.entries[0][0] + 1e-9)
        window.add(at, self.values(doc), match)
        if len(window.counts) < self.threshold:
            return []
        matches = [m for _, _, m in window.entries]
        distinct = sorted(window.counts)
        del self._windows[group]
        span = matches[-1].time - matches[0].time
        text = (
            f"{group}: {len(distinct)} distinct {self.counted_field} in {len(matches)} events within "
            f"{int(span.total_seconds())} s (threshold {self.threshold} in {int(self.window_secs)} s)"
        )
        return [
            Finding(
                matches=matches,
                matched=[
                    Matched("group", group),
                    Matched(self.counted_field, distinct[:20]),
                    Matched("count", len(distinct)),
                ],
                group_key=group,
                count=len(matches),
                text=text,
            )
        ]

    def _sweep(self) -> None:
        cutoff = self._latest - self.window_secs
        for group in [g for g, w in self._windows.items() if not w.entries or w.entries[-1][0] < cutoff]:
            del self._windows[group]

    def snapshot(self) -> bytes | None:
        if not self._windows:
            return None
        state = {
            group: [[at, list(values), m.event_id, m.time.isoformat()] for at, values, m in window.entries]
            for group, window in self._windows.items()
        }
        return orjson.dumps({"latest": self._latest, "windows": state})

    def restore(self, state: bytes) -> None:
        # Restored events keep their ids and times; their documents are not part of the state.
        loaded = orjson.loads(state)
        self._latest = float(loaded.get("latest", 0.0))
        self._windows = {}
        for group, entries in loaded.get("windows", {}).items():
            window = self._windows[group] = _Window()
            for at, values, event_id, when in entries:
                time = datetime.fromisoformat(when)
                if time.tzinfo is None:
                    time = time.replace(tzinfo=UTC)
                window.add(
                    float(at), tuple(values), Match(rule_id=self.id, event_id=event_id, time=time, hits=[], doc={})
                )

    def reset(self) -> None:
        self._windows.clear()
        self._seen = 0
        self._latest = 0.0
