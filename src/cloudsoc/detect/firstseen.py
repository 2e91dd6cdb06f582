"""First-seen detections: a value never seen before for a key (an AccessKey used from a new IP or network).

The baseline is per key: the values seen, when each was first and last seen. During the learning period after
a key's first appearance nothing fires (everything is new then). Values not seen for ``forget_secs`` leave the
baseline, so it stays bounded and a source that comes back after months is news again. The whole baseline is
snapshotted with the alert store, so a restart neither forgets it nor re-learns from scratch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar

import orjson

from cloudsoc.detect.alert import Matched
from cloudsoc.detect.engine import event_time
from cloudsoc.detect.rule import Finding, Hit, Match, Rule
from cloudsoc.event import lookup

# A value extractor: the document → the value to learn (e.g. the /24 of source.ip), or None to skip the event.
Extractor = Callable[[Mapping[str, Any]], str | None]


def field_value(path: str) -> Extractor:
    keys = path.split(".")

    def get(doc: Mapping[str, Any]) -> str | None:
        value = lookup(dict(doc) if not isinstance(doc, dict) else doc, keys)
        return None if value is None or value == "" else str(value)

    return get


class FirstSeen(Rule):
    """Fires when a key (e.g. ``cloudsoc.access_key_id``) shows a value (e.g. ``source.ip``) it never showed
    before, once the key has been learnt for ``learning_secs`` of event time."""

    kind: ClassVar[str] = "firstseen"

    def __init__(
        self,
        *,
        key: tuple[str, Extractor],
        value: tuple[str, Extractor],
        where: Callable[[Mapping[str, Any]], bool] = lambda _doc: True,
        learning_secs: float = 7 * 86400,
        forget_secs: float = 90 * 86400,
        **rule: Any,
    ) -> None:
        super().__init__(**rule)
        self.key_field, self._key = key
        self.value_field, self._value = value
        self._where = where
        self.learning_secs = learning_secs
        self.forget_secs = forget_secs
        # key → [first seen (epoch s), {value: last seen (epoch s)}]
        self._baseline: dict[str, list[Any]] = {}

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        if not self._where(doc):
            return None
        key = self._key(doc)
        value = self._value(doc)
        if key is None or value is None or self.known(key, value, doc):
            return None
        return [(self.key_field, key), (self.value_field, value)]

    def known(self, key: str, value: str, doc: Mapping[str, Any]) -> bool:
        """True when this process's baseline already knows ``value`` for ``key`` recently: then :meth:`observe`
        could only refresh its last-seen time, which is done here, and the event need not become a match.

        Most events of a key come from its usual sources, so this keeps them out of the aggregation path. In
        parser worker processes the baseline is empty and every event is selected; the main process decides."""
        entry = self._baseline.get(key)
        if entry is None:
            return False
        last = entry[1].get(value)
        if last is None:
            return False
        now = event_time(doc).timestamp()
        if now - last >= self.forget_secs:
            return False  # back after a long absence: news again, observe() decides
        if now > last:
            entry[1][value] = now
        return True

    def observe(self, match: Match) -> list[Finding]:
        (_, key), (_, value) = match.hits[0], match.hits[1]
        key, value = str(key), str(value)
        now = match.time.timestamp()
        entry = self._baseline.get(key)
        if entry is None:
            self._baseline[key] = [now, {value: now}]
            return []
        first, values = entry
        last = values.get(value)
        values[value] = max(now, last or now)
        if last is not None and now - last < self.forget_secs:
            return []
        if now - first < self.learning_secs:
            return []
        known = sorted(values, key=values.__getitem__, reverse=True)[1:6]
        text = (
            f"{self.key_field} {key} seen from {self.value_field} {value} for the first time; known: {', '.join(known)}"
        )
        return [
            Finding(
                matches=[match],
                matched=[Matched(self.key_field, key), Matched(self.value_field, value)],
                group_key=f"{key}|{value}",
                count=1,
                text=text,
            )
        ]

    def prune(self, now: datetime) -> None:
        cutoff = now.timestamp() - self.forget_secs
        for key in list(self._baseline):
            values = self._baseline[key][1]
            for value in [v for v, t in values.items() if t < cutoff]:
                del values[value]
            if not values:
                del self._baseline[key]

    def snapshot(self) -> bytes | None:
        return orjson.dumps(self._baseline)

    def restore(self, state: bytes) -> None:
        self._baseline = orjson.loads(state)

    def reset(self) -> None:
        self._baseline.clear()
