"""Sigma correlation rules (specification v2) as stateful engine rules.

A correlation refers to base Sigma rules by name or id. Its selector accepts an event when any of them does
(their compiled predicates are reused) and marks which ones did; its aggregator keeps, per group (the values of
``group-by``, with ``aliases`` naming the field per base rule), the selected events of the last ``timespan`` in
event time, and fires as soon as the condition holds over the window that ends at an event:

- ``event_count``: events in the window;  ``value_count``: distinct values of the condition's ``field``;
- ``temporal``: distinct base rules seen;  ``temporal_ordered``: the longest chain of base rules seen in the order
  they are listed, each strictly later than the one before (the default condition asks for all of them);
- ``value_sum`` / ``value_avg`` / ``value_median`` / ``value_percentile``: over the numeric values of ``field``.

This is the semantics of pySigma's SQLite backend (windows end at events, both ends included, group values
compared case-insensitively, events without a group value left out), which the differential test checks. Once it
fires, the group's events up to that point are used up: the next alert needs a fresh window (as ElastAlert's
frequency rule does). Events may arrive out of order: a late event is evaluated in every window it belongs to,
as long as it is not older than ``lateness_secs`` behind the group's newest event.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Final, NamedTuple

import msgspec
import orjson
from sigma.correlations import SigmaCorrelationRule, SigmaExtendedCorrelationCondition
from sigma.rule import SigmaRule

from cloudsoc.detect.alert import Matched, Severity
from cloudsoc.detect.rule import Finding, Hit, Match, Rule
from cloudsoc.detect.sigma import CompiledRule, Predicate, ecs_field, first_value, json_text, rule_id
from cloudsoc.detect.sigma_filter import Filter

# The hit a correlation's selector records for each base rule that accepted the event (then that rule's hits).
MEMBER_HIT: Final = "sigma.rule"
# How far behind a group's newest event a late event is still evaluated in full.
DEFAULT_LATENESS_SECS: Final = 300.0

_INF: Final = math.inf
_COUNTING: Final = frozenset({"event_count", "value_count", "temporal", "temporal_ordered"})
_NUMERIC: Final = frozenset({"value_sum", "value_avg", "value_median", "value_percentile"})
_OPERATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
}

GroupKey = tuple[object, ...]
# (event time in epoch seconds, arrival number of the event, base rule slot, value of `field`, the match);
# tuples sort by time, then arrival, then slot, which are unique together, so the rest is never compared.
_Entry = tuple[float, int, int, object, Match]


class Member(NamedTuple):
    """One base rule of a correlation, with the fields of the correlation as that rule's events carry them."""

    reference: str
    predicate: Predicate
    # The predicate's decision as generated code (see sigma_filter): asked first, the predicate only on a match.
    filter: Filter
    group_fields: tuple[tuple[str, ...], ...]
    value_field: tuple[str, ...] | None
    datasets: frozenset[str] | None
    actions: frozenset[str] | None


class _State(msgspec.Struct):
    seq: int
    groups: list[tuple[list[Any], list[tuple[float, int, int, Any, Match]]]]


class SigmaCorrelation(Rule):
    """One Sigma correlation rule (see the module docstring for the semantics)."""

    kind: ClassVar[str] = "sigma_correlation"

    def __init__(
        self,
        *,
        correlation_type: str,
        members: Sequence[Member],
        timespan_secs: float,
        operator: str,
        threshold: float,
        group_by: tuple[str, ...] = (),
        value_name: str | None = None,
        percentile: float | None = None,
        lateness_secs: float = DEFAULT_LATENESS_SECS,
        **rule: Any,
    ) -> None:
        if correlation_type not in _COUNTING | _NUMERIC:
            raise ValueError(f"correlation type {correlation_type!r} is not supported")
        if operator not in _OPERATORS:
            raise ValueError(f"correlation condition operator {operator!r} is not supported")
        if not members:
            raise ValueError("a correlation needs at least one rule")
        if timespan_secs <= 0:
            raise ValueError("a correlation needs a positive timespan")
        if correlation_type in ("value_count", *_NUMERIC) and any(m.value_field is None for m in members):
            raise ValueError(f"a {correlation_type} correlation needs a condition field")
        if correlation_type == "value_percentile" and not (percentile is not None and 0 <= percentile <= 100):
            raise ValueError("a value_percentile correlation needs a percentile between 0 and 100")
        datasets: set[str] | None = set()
        actions: set[str] | None = set()
        for member in members:
            datasets = None if datasets is None or member.datasets is None else datasets | member.datasets
            actions = None if actions is None or member.actions is None else actions | member.actions
        super().__init__(
            datasets=frozenset(datasets) if datasets is not None else None,
            actions=frozenset(actions) if actions is not None else None,
            group_by=group_by,
            **rule,
        )
        self.correlation_type = correlation_type
        self.members = tuple(members)
        self.timespan_secs = float(timespan_secs)
        self.operator = operator
        self.threshold = threshold
        self.percentile = 50.0 if correlation_type == "value_median" else percentile
        self.lateness_secs = lateness_secs
        self.metric_name = f"{correlation_type}({value_name})" if value_name else correlation_type
        self._holds = _OPERATORS[operator]
        self._slots: dict[str, list[int]] = {}
        for slot, member in enumerate(self.members):
            self._slots.setdefault(member.reference, []).append(slot)
        self._groups: dict[GroupKey, list[_Entry]] = {}
        self._seq = 0
        self._swept = -_INF

    @classmethod
    def from_sigma(
        cls,
        rule: SigmaCorrelationRule,
        compiled: Mapping[int, CompiledRule],
        source: str,
        *,
        enabled: bool = True,
    ) -> SigmaCorrelation:
        """A correlation whose references pySigma resolved, over the compiled rules it refers to."""
        if isinstance(rule.condition, SigmaExtendedCorrelationCondition):
            raise ValueError("extended (boolean) correlation conditions are not supported")
        condition = rule.condition
        value_name = condition.fieldref
        if isinstance(value_name, list):
            raise ValueError("a correlation condition on several fields is not supported")
        group_by = tuple(rule.group_by or ())
        members: list[Member] = []
        for ref in rule.referenced_rules:
            target = ref.rule
            if not isinstance(target, SigmaRule):
                raise ValueError(
                    f"refers to correlation {ref.reference!r}: correlations of correlations are not supported"
                )
            base = compiled.get(id(target))
            if base is None:
                raise ValueError(f"refers to rule {ref.reference!r}, which could not be compiled")
            names = {ref.reference, target.name, str(target.id) if target.id else None}
            aliases = {
                alias.alias: name
                for alias in rule.aliases
                for target_ref, name in alias.mapping.items()
                if target_ref.reference in names
            }

            def path(name: str, base: CompiledRule = base, aliases: dict[str, str] = aliases) -> tuple[str, ...]:
                return tuple(ecs_field(aliases.get(name, name), base.root).split("."))

            members.append(
                Member(
                    reference=ref.reference,
                    predicate=base.predicate,
                    filter=base.filter,
                    group_fields=tuple(path(name) for name in group_by),
                    value_field=path(value_name) if value_name else None,
                    datasets=frozenset({base.root}) if base.root else None,
                    actions=base.event_names,
                )
            )
        fps = [str(fp) for fp in rule.falsepositives or () if fp]
        return cls(
            correlation_type=rule.type.name.lower(),
            members=members,
            timespan_secs=rule.timespan.seconds,
            operator=condition.op.name.lower(),
            threshold=condition.count,
            group_by=group_by,
            value_name=value_name,
            percentile=condition.percentile,
            id=rule_id(str(rule.id) if rule.id else "", rule.name, rule.title),
            title=rule.title,
            severity=Severity.parse(rule.level.name.lower() if rule.level else None),
            tags=tuple(str(tag) for tag in rule.tags),
            description=(rule.description or "").strip(),
            response=f"Known false positives: {'; '.join(fps)}." if fps else "",
            source=source,
            enabled=enabled,
        )

    # ------------------------------------------------------------------------------------------------ selection

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        hits: list[Hit] = []
        # The index offers the event to the correlation when one of its rules may match; skip the others.
        event = doc.get("event")
        if type(event) is not dict and not isinstance(event, Mapping):
            event = {}
        action = event.get("action")
        action = action.lower() if type(action) is str else None
        dataset = event.get("dataset")
        for member in self.members:
            if (member.actions is not None and action not in member.actions) or (
                member.datasets is not None and dataset not in member.datasets
            ):
                continue
            if not member.filter(doc):
                continue
            mark = len(hits)
            hits.append((MEMBER_HIT, member.reference))
            if not member.predicate(doc, hits):
                del hits[mark:]
        return hits or None

    # ---------------------------------------------------------------------------------------------- aggregation

    def observe(self, match: Match) -> list[Finding]:
        slots: list[int] = []
        for name, value in match.hits:
            if name == MEMBER_HIT and isinstance(value, str):
                slots.extend(s for s in self._slots.get(value, ()) if s not in slots)
        if not slots:
            return []
        when = match.time.timestamp()
        self._seq += 1
        touched: list[GroupKey] = []
        for slot in slots:
            member = self.members[slot]
            key = _group_key(match.doc, member.group_fields)
            if key is None:  # no value to group by: the event is not part of any group (as in SQL)
                continue
            value = _comparable(first_value(match.doc, member.value_field)) if member.value_field else None
            insort(self._groups.setdefault(key, []), (when, self._seq, slot, value, match))
            if key not in touched:
                touched.append(key)
        findings: list[Finding] = []
        for key in touched:
            finding = self._evaluate(key, when)
            if finding is not None:
                findings.append(finding)
        return findings

    def _evaluate(self, key: GroupKey, when: float) -> Finding | None:
        entries = self._groups[key]
        span = self.timespan_secs
        newest = entries[-1][0]
        if when >= newest:
            anchors: list[float] = [when]
        else:
            # A late event changes every window that ends at an event within `timespan` after it.
            later = entries[bisect_left(entries, (when,)) :]
            anchors = sorted({e[0] for e in later if e[0] <= when + span})
        for anchor in anchors:
            end = bisect_right(entries, (anchor, _INF))
            window = entries[bisect_left(entries, (anchor - span,)) : end]
            metric, evidence = self._measure(window)
            if metric is not None and self._holds(metric, self.threshold):
                del entries[:end]
                if not entries:
                    del self._groups[key]
                return self._finding(key, metric, evidence, anchor)
        horizon = newest - span - self.lateness_secs
        if entries[0][0] < horizon:
            del entries[: bisect_left(entries, (horizon,))]
        return None

    def _measure(self, window: list[_Entry]) -> tuple[float | None, list[_Entry]]:
        kind = self.correlation_type
        if kind == "event_count":
            return (len(window) if len(self.members) == 1 else len({e[1] for e in window})), window
        if kind == "value_count":
            return len({e[3] for e in window if e[3] is not None}), window
        if kind == "temporal":
            return len({e[2] for e in window}), window
        if kind == "temporal_ordered":
            chain = _ordered_chain(window, len(self.members))
            return len(chain), chain
        # One value per event and value, as an event two base rules accept is still one event.
        numbers = sorted(n for _, n in {(e[1], _numeric(e[3])) for e in window} if n is not None)
        if not numbers:
            return None, window
        if kind == "value_sum":
            return math.fsum(numbers), window
        if kind == "value_avg":
            return math.fsum(numbers) / len(numbers), window
        return _percentile(numbers, self.percentile or 0.0), window

    def _finding(self, key: GroupKey, metric: float, evidence: list[_Entry], anchor: float) -> Finding:
        matches: list[Match] = []
        seen: set[int] = set()
        for entry in sorted(evidence, key=lambda e: (e[0], e[1])):
            if entry[1] not in seen:
                seen.add(entry[1])
                matches.append(entry[4])
        shown: float = int(metric) if self.correlation_type in _COUNTING else metric
        group = "|".join(_display(v) for v in key)
        matched = [Matched(name, value) for name, value in zip(self.group_by, key, strict=True)]
        matched.append(Matched(self.metric_name, shown))
        scope = f" for {', '.join(f'{n}={_display(v)}' for n, v in zip(self.group_by, key, strict=True))}"
        text = (
            f"{self.metric_name} = {shown} ({self.operator} {self.threshold}) within "
            f"{_span_text(self.timespan_secs)}{scope if key else ''}"
        )
        count = int(metric) if self.correlation_type in _COUNTING else len(matches)
        return Finding(matches=matches, matched=matched, group_key=group, count=count, text=text)

    # ----------------------------------------------------------------------------------------------- life cycle

    def tick(self, now: datetime) -> list[Finding]:
        # Forget groups that went quiet; once per timespan is enough to keep memory bounded.
        at = now.timestamp()
        if at - self._swept >= self.timespan_secs:
            self._swept = at
            horizon = at - self.timespan_secs - self.lateness_secs
            for key in [k for k, entries in self._groups.items() if entries[-1][0] < horizon]:
                del self._groups[key]
        return []

    def snapshot(self) -> bytes | None:
        if not self._groups:
            return None
        groups = [(list(key), list(entries)) for key, entries in self._groups.items()]
        return msgspec.json.encode(_State(seq=self._seq, groups=groups))

    def restore(self, state: bytes) -> None:
        decoded = msgspec.json.decode(state, type=_State)
        self._seq = decoded.seq
        self._groups = {tuple(key): [tuple(e) for e in entries] for key, entries in decoded.groups}

    def reset(self) -> None:
        self._groups.clear()
        self._seq = 0
        self._swept = -_INF


def _group_key(doc: Mapping[str, Any], fields: tuple[tuple[str, ...], ...]) -> GroupKey | None:
    values: list[object] = []
    for keys in fields:
        value = _comparable(first_value(doc, keys))
        if value is None:
            return None
        values.append(value)
    return tuple(values)


def _comparable(value: object) -> object:
    """A value as groups and distinct counts compare it: strings without case (as Sigma matches them)."""
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list):
        return json_text(value).lower()
    return value


def _display(value: object) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _numeric(value: object) -> float | None:
    """A finite number, or a string that is a JSON number; anything else does not count (as in SQL)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            loaded = orjson.loads(value.strip())
        except orjson.JSONDecodeError:
            return None
        if isinstance(loaded, bool) or not isinstance(loaded, int | float):
            return None
        number = float(loaded)
    else:
        return None
    return number if math.isfinite(number) else None


def _percentile(numbers: list[float], percentile: float) -> float:
    """Linear interpolation between the closest ranks of sorted ``numbers``."""
    position = (len(numbers) - 1) * percentile / 100
    low = int(position)
    if low + 1 >= len(numbers):
        return numbers[low]
    fraction = position - low
    return numbers[low] * (1 - fraction) + numbers[low + 1] * fraction


def _ordered_chain(window: list[_Entry], slots: int) -> list[_Entry]:
    """The longest chain of base rules in listed order, each event strictly later than the one before; of the
    chains of each length, the one that ends earliest (so that later rules have the most room)."""
    by_slot: list[list[_Entry]] = [[] for _ in range(slots)]
    for entry in window:
        by_slot[entry[2]].append(entry)
    best: list[list[_Entry]] = []  # best[k]: the chain of k + 1 rules that ends earliest
    for slot in range(slots):
        events = by_slot[slot]
        if not events:
            continue
        times = [e[0] for e in events]
        for length in range(len(best), -1, -1):
            after = best[length - 1][-1][0] if length else -_INF
            position = bisect_right(times, after)
            if position == len(events):
                continue
            candidate = events[position]
            chain = (best[length - 1] if length else []) + [candidate]
            if length == len(best):
                best.append(chain)
            elif candidate[0] < best[length][-1][0]:
                best[length] = chain
    return best[-1] if best else []


def _span_text(secs: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size and secs % size == 0:
            return f"{int(secs // size)}{unit}"
    return f"{secs:g}s"
