"""The alert: what a rule found, explained (capa's lesson: a match says why), and its triage state."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

import msgspec

# How many matching events an alert carries in full; the ids of all of them are kept.
MAX_ALERT_EVENTS: Final = 20


class Severity(StrEnum):
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    @classmethod
    def parse(cls, value: object, default: Severity | None = None) -> Severity:
        """A Sigma level, an ElastAlert priority (1 highest … 5) or one of our names."""
        text = str(value).strip().lower() if value is not None else ""
        if text in cls._value2member_map_:
            return cls(text)
        aliases = {"info": "informational", "1": "critical", "2": "high", "3": "medium", "4": "low", "5": "low"}
        if text in aliases:
            return cls(aliases[text])
        return default if default is not None else cls.MEDIUM


_RANKS: Final = {s: i for i, s in enumerate(Severity)}


class Status(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"


class Matched(msgspec.Struct, frozen=True):
    """One field and the value in it that made the rule fire."""

    field: str
    value: Any


class Alert(msgspec.Struct, kw_only=True):
    """One alert. ``id`` is derived from the rule, group and first event, so replaying the same events after a
    crash produces the same id (stored once), never a second alert."""

    id: str
    rule_id: str
    rule_name: str
    rule_kind: str
    rule_name_zh: str = ""
    severity: Severity
    tags: list[str] = []
    description: str = ""
    response: str = ""
    # Empty for rules without Chinese texts (and alerts stored before they existed): readers fall back to English.
    description_zh: str = ""
    response_zh: str = ""
    matched: list[Matched] = []
    event_ids: list[str] = []
    events: list[dict[str, Any]] = []
    group_key: str = ""
    count: int = 1
    first_time: str = ""
    last_time: str = ""
    created: str = ""
    text: str = ""
    # Names of the outputs this alert goes to besides the configured ones (ElastAlert rules bring their own).
    outputs: list[str] = []
    status: Status = Status.NEW
    assignee: str | None = None
    # Raised by a hunt over stored history (e.g. for indicators that arrived after the events), not in-line.
    retro: bool = False

    def summary(self) -> str:
        key = f" [{self.group_key}]" if self.group_key else ""
        count = f" x{self.count}" if self.count > 1 else ""
        return f"{self.severity.value.upper()} {self.rule_id}{key}{count}: {self.rule_name}"

    def export(self, *, with_events: bool = False) -> dict[str, Any]:
        """The alert as scripts and outputs see it: ``rule.id``, ``rule.name``, ``severity``, ``event.ids``,
        ``matched`` … (dotted names nest, as in ECS)."""
        doc: dict[str, Any] = {
            "id": self.id,
            "rule": {
                "id": self.rule_id,
                "name": self.rule_name,
                "name_zh": self.rule_name_zh,
                "kind": self.rule_kind,
                "tags": self.tags,
            },
            "severity": self.severity.value,
            "status": self.status.value,
            "assignee": self.assignee,
            "event": {"ids": self.event_ids},
            "matched": [{"field": m.field, "value": m.value} for m in self.matched],
            "group_key": self.group_key,
            "count": self.count,
            "first_time": self.first_time,
            "last_time": self.last_time,
            "created": self.created,
            "text": self.text,
            "retro": self.retro,
            "description": self.description,
            "response": self.response,
            "description_zh": self.description_zh,
            "response_zh": self.response_zh,
        }
        if with_events:
            doc["events"] = self.events
        return doc
