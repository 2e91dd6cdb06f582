"""The one small base class of detection rules, whatever language they are written in.

A rule has two halves, as in ElastAlert: a stateless *selector* that says whether one event concerns the rule
(and which fields made it so), and an optional stateful *aggregator* that turns the selected events into
findings (counts over a window, first-seen values, sequences). Selectors are indexed by ``event.dataset`` and
``event.action`` and may run in parser worker processes; aggregators run in order, in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import msgspec

from cloudsoc.detect.alert import Matched, Severity

Hit = tuple[str, object]


class SkippedRule(msgspec.Struct, frozen=True):
    """A rule (or rule file) that was read but not loaded, and why."""

    source: str
    title: str
    reason: str


class Match(msgspec.Struct, kw_only=True):
    """An event that a rule's selector accepted."""

    rule_id: str
    event_id: str
    time: datetime
    hits: list[Hit]
    doc: dict[str, Any]


class Finding(msgspec.Struct, kw_only=True):
    """What a rule reports; the engine adds the rule's metadata, an id, realert and suppression."""

    matches: list[Match]
    matched: list[Matched] = []
    group_key: str = ""
    count: int = 0
    text: str = ""
    # When a finding has no events (a flatline: nothing happened), the event time it is about.
    time: datetime | None = None


class Rule:
    """Base of all rules. Subclasses set the metadata and implement :meth:`select`; stateful ones also
    :meth:`observe` (and :meth:`tick` for rules that fire on absence, :meth:`snapshot`/:meth:`restore` to survive a
    restart)."""

    kind: ClassVar[str] = "rule"

    def __init__(
        self,
        *,
        id: str,
        title: str,
        severity: Severity,
        tags: tuple[str, ...] = (),
        description: str = "",
        response: str = "",
        source: str = "",
        datasets: frozenset[str] | None = None,
        actions: frozenset[str] | None = None,
        realert_secs: float = 0.0,
        group_by: tuple[str, ...] = (),
        outputs: tuple[str, ...] = (),
        enabled: bool = True,
        title_zh: str = "",
        description_zh: str = "",
        response_zh: str = "",
        limits: str = "",
    ) -> None:
        self.id = id
        self.title = title
        self.severity = severity
        self.tags = tags
        self.description = description
        self.response = response
        self.source = source
        # Index keys: the event.dataset values (None: any) and lower-cased event.action values (None: any)
        # an event must have for select() to possibly accept it.
        self.datasets = datasets
        self.actions = actions
        # Alerts of this rule with the same group key are not raised again within this many seconds.
        self.realert_secs = realert_secs
        self.group_by = group_by
        self.outputs = outputs
        self.enabled = enabled
        # The console shows the Chinese title to Chinese users; `limits` says honestly what the rule cannot see.
        self.title_zh = title_zh
        self.description_zh = description_zh
        self.response_zh = response_zh
        self.limits = limits

    @property
    def stateful(self) -> bool:
        return type(self).observe is not Rule.observe or type(self).tick is not Rule.tick

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        """The (field, value) pairs that make ``doc`` concern this rule, or None when it does not."""
        raise NotImplementedError

    def observe(self, match: Match) -> list[Finding]:
        """Fold one selected event into the rule's state; stateless rules report every match."""
        return [Finding(matches=[match], matched=[Matched(f, v) for f, v in match.hits], count=1)]

    def tick(self, now: datetime) -> list[Finding]:
        """Called as event time advances (every batch): findings about what did *not* happen (flatline)."""
        return []

    def flush(self, now: datetime | None = None) -> list[Finding]:
        """End of an offline run (detect, hunt): report what is still held (open buckets, pending aggregations)."""
        return []

    def snapshot(self) -> bytes | None:
        """The rule's state as bytes, to be restored after a restart (None: nothing worth keeping)."""
        return None

    def restore(self, state: bytes) -> None:
        """Load what :meth:`snapshot` returned."""

    def reset(self) -> None:
        """Forget all state (a fresh ``cloudsoc detect`` run)."""
