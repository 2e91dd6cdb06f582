"""The two small bases of the built-in pack: a detection's metadata, and a rule that checks a few API actions.

A detection (``admin_privilege_granted``) has one rule per cloud (``admin_privilege_granted.aws``,
``admin_privilege_granted.aliyun``); its metadata is written once, in English and Simplified Chinese, and
each cloud's rule adds what it watches. Most detections are a table: lower-cased action → a check that looks at
the event's own fields and returns the (field, value) pairs that make it risky, or None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Final

import msgspec

from cloudsoc.detect.alert import Matched, Severity
from cloudsoc.detect.builtin.trail import CLOUDS, Trail
from cloudsoc.detect.rule import Finding, Hit, Match, Rule

# A check: the document → the (field, value) pairs that make it concern the rule, or None.
Check = Callable[[Mapping[str, Any]], list[Hit] | None]

_HERE: Final = Path(__file__).resolve().parent


class Detection(msgspec.Struct, frozen=True, kw_only=True):
    """What a detection is, for people: shown in alerts, in ``cloudsoc rules list`` and in the console."""

    name: str
    title: str
    title_zh: str
    severity: Severity
    tags: tuple[str, ...]
    description: str
    response: str
    # The same two in Simplified Chinese, written for Chinese cloud engineers (the console and outputs in zh).
    description_zh: str
    response_zh: str
    # What the detection does not cover on one cloud, and why (shown in docs and ``rules list``).
    limits: str = ""

    @property
    def module(self) -> Path:
        """The module defining the detection; its test events are ``<name>.tests.yml`` beside it."""
        return _HERE / f"{self.name}.py"

    def rule_id(self, cloud: str | None) -> str:
        return self.name if cloud is None else f"{self.name}.{cloud}"


class BuiltinRule(Rule):
    """A rule of the built-in pack: one detection on one cloud (``cloud`` None: any dataset)."""

    kind: ClassVar[str] = "builtin"

    def __init__(
        self,
        meta: Detection,
        cloud: str | None,
        *,
        actions: frozenset[str] | None,
        realert_secs: float = 0.0,
        severity: Severity | None = None,
    ) -> None:
        super().__init__(
            id=meta.rule_id(cloud),
            title=meta.title,
            severity=severity or meta.severity,
            tags=meta.tags,
            description=meta.description,
            response=meta.response,
            description_zh=meta.description_zh,
            response_zh=meta.response_zh,
            source=str(meta.module),
            datasets=None if cloud is None else frozenset({CLOUDS[cloud].dataset}),
            actions=actions,
            realert_secs=realert_secs,
        )
        self.detection = meta.name
        self.cloud = cloud
        self.title_zh = meta.title_zh
        self.limits = meta.limits
        self.trail: Trail | None = None if cloud is None else CLOUDS[cloud]

    def group(self, doc: Mapping[str, Any]) -> str:
        """The group key of an alert about ``doc`` (realert is per rule and group): the account and caller."""
        return identity_key(doc)

    def finding(self, match: Match, text: str = "") -> Finding:
        doc = match.doc
        return Finding(
            matches=[match],
            matched=[Matched(f, v) for f, v in match.hits if v is not None],
            group_key=self.group(doc),
            count=1,
            text=text or describe(doc, match.hits),
        )

    def observe(self, match: Match) -> list[Finding]:
        return [self.finding(match)]

    def successful_call(self, doc: Mapping[str, Any]) -> Trail | None:
        """The rule's trail when ``doc`` is a successful call by a person or workload (not a cloud service acting
        for the account), else None: what a rule that reads one call's request and response looks at."""
        if doc["event"].get("outcome") != "success":
            return None
        trail = self.trail
        assert trail is not None
        return None if trail.service_actor(doc) else trail


class ActionRule(BuiltinRule):
    """Fires on the actions of a table when the action's check says so, on successful calls by a person or
    workload (not a cloud service acting for the account). ``attempts`` lists actions that count even when the
    call failed (trying is the signal, e.g. leaving the organisation)."""

    def __init__(
        self,
        meta: Detection,
        cloud: str,
        checks: Mapping[str, Check],
        *,
        attempts: frozenset[str] = frozenset(),
        realert_secs: float = 0.0,
        severity: Severity | None = None,
    ) -> None:
        lowered = {name.lower(): check for name, check in checks.items()}
        super().__init__(meta, cloud, actions=frozenset(lowered), realert_secs=realert_secs, severity=severity)
        self._checks = lowered
        self._attempts = frozenset(a.lower() for a in attempts)
        # The trail's spelling of an action → its check: one dict look-up per event, no lower() on the hot path.
        self._by_action: dict[str, tuple[Check, bool] | None] = {}

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        event = doc["event"]
        action = event.get("action")
        entry = self._by_action.get(action)
        if entry is None:
            if type(action) is not str or len(self._by_action) > 4096:
                return None
            low = action.lower()
            check = self._checks.get(low)
            if check is None:
                return None
            entry = self._by_action[action] = (check, low in self._attempts)
        check, attempts = entry
        if not attempts and event.get("outcome") != "success":
            return None
        assert self.trail is not None
        if self.trail.service_actor(doc):
            return None
        hits = check(doc)
        if hits is None:
            return None
        return [("event.action", action), *hits]


def always(trail: Trail, *keys: str) -> Check:
    """A check that fires on every call, naming those of the request parameters ``keys`` it carries (a bare
    ``target`` hit when it carries none)."""

    def check(doc: Mapping[str, Any]) -> list[Hit] | None:
        params = trail.params(doc)
        return [(key, params[key]) for key in keys if params.get(key) not in (None, "")] or [("target", None)]

    return check


def identity_key(doc: Mapping[str, Any]) -> str:
    """``account:caller`` — the caller is the user name (assumed-role session name), else the principal id."""
    cloud = doc.get("cloud")
    account = cloud.get("account", {}).get("id", "") if isinstance(cloud, Mapping) else ""
    user = doc.get("user")
    name = ""
    if isinstance(user, Mapping):
        name = user.get("name") or user.get("id") or ""
    return f"{account}:{name}"


def describe(doc: Mapping[str, Any], hits: list[Hit]) -> str:
    """One line for people: who did what from where, and the values that made the rule fire."""
    user = doc.get("user")
    who = (user.get("name") or user.get("id")) if isinstance(user, Mapping) else None
    source = doc.get("source")
    where = source.get("ip") or source.get("address") if isinstance(source, Mapping) else None
    action = doc["event"].get("action", "")
    detail = ", ".join(f"{f}={v}" for f, v in hits if f != "event.action")
    text = f"{who or 'unknown caller'} called {action}"
    if where:
        text += f" from {where}"
    return f"{text}: {detail}" if detail else text
