"""Sigma rules, parsed by pySigma, compiled into Python predicates over stored ECS documents.

pySigma does the parsing (YAML, modifiers, ``1 of``/``all of`` expansion); this module only walks the resulting
condition tree once per rule and turns each node into a closure. A predicate records the (ECS field, value)
pairs that made it true, so a match explains itself. Rules are indexed by the log source they read and by the
literal ``eventName`` values they require, so an event meets only the rules that can match it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple

from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
)

# Where a log source's original record sits in our ECS documents (Sigma rules name raw fields of that record),
# keyed by logsource service or product. The service is looked up first (a rule may say only `service:
# cloudtrail`); sources not listed use their fields as written.
_ROOTS: Final = {
    "cloudtrail": "aws.cloudtrail",
    "actiontrail": "aliyun.actiontrail",
    "aws": "aws.cloudtrail",
    "alibaba": "aliyun.actiontrail",
    "aliyun": "aliyun.actiontrail",
}
# A field starting with one of these ECS top-level names already addresses our document, not the raw record.
_ECS_TOPS: Final = frozenset({"event", "source", "user", "cloud", "cloudsoc"})
# The raw field whose literal values index rules (CloudTrail and ActionTrail both call it eventName).
_INDEX_FIELD: Final = "eventName"

Hit = tuple[str, object]
# A compiled node: true or false for a document, appending the (ECS field, value) pairs that made it true.
Predicate = Callable[[Mapping[str, Any], list[Hit]], bool]
# A compiled value test on one leaf value of a document (the document is there for field references).
ValueTest = Callable[[object, Mapping[str, Any]], bool]


class Logsource(NamedTuple):
    product: str | None
    service: str | None
    category: str | None


@dataclass(frozen=True, slots=True)
class SkippedRule:
    """A rule that was read but not compiled, and why (correlations, pipe conditions, invalid YAML …)."""

    source: str
    title: str
    reason: str


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    """One Sigma rule as a predicate over ECS documents."""

    id: str
    title: str
    level: str | None
    tags: tuple[str, ...]
    logsource: Logsource
    source: str
    root: str | None
    # Lower-cased eventName values of which the document must carry one; None when the rule does not pin it.
    event_names: frozenset[str] | None
    _predicate: Predicate = field(repr=False)

    def matches(self, doc: Mapping[str, Any]) -> bool:
        return self._predicate(doc, [])

    def explain(self, doc: Mapping[str, Any]) -> list[Hit]:
        """The (ECS field, value) pairs that made the rule fire; empty when it does not fire."""
        hits: list[Hit] = []
        return _dedupe(hits) if self._predicate(doc, hits) else []


class SigmaRuleSet:
    """Compiled Sigma rules with an index by log source and required eventName."""

    def __init__(self, rules: Iterable[CompiledRule], skipped: Iterable[SkippedRule] = ()) -> None:
        self.rules: list[CompiledRule] = list(rules)
        self.skipped: list[SkippedRule] = list(skipped)
        # root → eventName → rules; root → rules that do not pin eventName. Rules without a known root go to
        # every document. Positions keep candidates in load order.
        self._by_name: dict[str | None, dict[str, list[int]]] = {}
        self._unpinned: dict[str | None, list[int]] = {}
        for position, rule in enumerate(self.rules):
            if rule.event_names is None:
                self._unpinned.setdefault(rule.root, []).append(position)
            else:
                names = self._by_name.setdefault(rule.root, {})
                for name in rule.event_names:
                    names.setdefault(name, []).append(position)

    @classmethod
    def from_yaml(cls, text: str, source: str = "<string>") -> SigmaRuleSet:
        compiled: list[CompiledRule] = []
        skipped: list[SkippedRule] = []
        try:
            collection = SigmaCollection.from_yaml(text, collect_errors=True)
        except SigmaError as error:
            return cls((), [SkippedRule(source, "", f"unreadable: {error}")])
        for rule in collection.rules:
            title = str(getattr(rule, "title", "") or "")
            if isinstance(rule, SigmaCorrelationRule):
                skipped.append(SkippedRule(source, title, "correlation rule: needs the stateful engine"))
            elif not isinstance(rule, SigmaRule):
                skipped.append(SkippedRule(source, title, f"unsupported document: {type(rule).__name__}"))
            elif rule.errors:
                skipped.append(SkippedRule(source, title, "; ".join(str(e) for e in rule.errors)))
            else:
                try:
                    compiled.append(_compile_rule(rule, source))
                except (SigmaError, _Unsupported, re.error, ValueError) as error:
                    skipped.append(SkippedRule(source, title, f"{type(error).__name__}: {error}"))
        return cls(compiled, skipped)

    @classmethod
    def from_paths(cls, paths: Iterable[Path]) -> SigmaRuleSet:
        compiled: list[CompiledRule] = []
        skipped: list[SkippedRule] = []
        for path in paths:
            part = cls.from_yaml(path.read_text(encoding="utf-8"), source=str(path))
            compiled.extend(part.rules)
            skipped.extend(part.skipped)
        return cls(compiled, skipped)

    def __iter__(self) -> Iterator[CompiledRule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def candidates(self, doc: Mapping[str, Any]) -> list[CompiledRule]:
        """The rules that could match ``doc``: generic ones, plus those of its log source that its eventName allows."""
        positions = list(self._unpinned.get(None, ()))
        for name_rules in self._by_name.get(None, {}).values():
            positions.extend(name_rules)
        root = _doc_root(doc)
        if root is not None:
            positions.extend(self._unpinned.get(root, ()))
            name = _get_one(doc, f"{root}.{_INDEX_FIELD}")
            if isinstance(name, str):
                positions.extend(self._by_name.get(root, {}).get(name.lower(), ()))
        return [self.rules[p] for p in sorted(set(positions))]


class _Unsupported(Exception):
    """A Sigma construct this compiler does not evaluate."""


def _compile_rule(rule: SigmaRule, source: str) -> CompiledRule:
    logsource = Logsource(rule.logsource.product, rule.logsource.service, rule.logsource.category)
    root = _ROOTS.get(logsource.service or "") or _ROOTS.get(logsource.product or "")
    conditions = rule.detection.parsed_condition  # a property that re-parses: read once
    if len(conditions) != 1:
        raise _Unsupported(f"{len(conditions)} conditions; only one is evaluated")
    tree = conditions[0].parsed
    return CompiledRule(
        id=str(rule.id) if rule.id else "",
        title=rule.title,
        level=rule.level.name.lower() if rule.level else None,
        tags=tuple(str(tag) for tag in rule.tags),
        logsource=logsource,
        source=source,
        root=root,
        event_names=_required_names(tree),
        _predicate=_compile_node(tree, root),
    )


def _ecs_path(sigma_field: str, root: str | None) -> str:
    if root is None or sigma_field.split(".", 1)[0] in _ECS_TOPS:
        return sigma_field
    return f"{root}.{sigma_field}"


def _doc_root(doc: Mapping[str, Any]) -> str | None:
    for root in dict.fromkeys(_ROOTS.values()):
        top, _, sub = root.partition(".")
        branch = doc.get(top)
        if isinstance(branch, Mapping) and sub in branch:
            return root
    return None


def _compile_node(node: object, root: str | None) -> Predicate:
    if isinstance(node, ConditionAND | ConditionOR | ConditionNOT):
        parts = [_compile_node(arg, root) for arg in node.args]
        if isinstance(node, ConditionAND):
            return _all_of(parts)
        if isinstance(node, ConditionOR):
            return _any_of(parts)
        return _none_of(parts)
    if isinstance(node, ConditionFieldEqualsValueExpression) and isinstance(node.value, SigmaExists):
        return _exists_test(_ecs_path(node.field, root), node.value.exists)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _field_test(_ecs_path(node.field, root), _value_test(node.value, root))
    if isinstance(node, ConditionValueExpression):
        return _keyword_test(_value_test(node.value, root, keyword=True), root)
    raise _Unsupported(f"condition node {type(node).__name__}")


def _all_of(parts: list[Predicate]) -> Predicate:
    def test(doc: Mapping[str, Any], hits: list[Hit]) -> bool:
        mark = len(hits)
        for part in parts:
            if not part(doc, hits):
                del hits[mark:]
                return False
        return True

    return test


def _any_of(parts: list[Predicate]) -> Predicate:
    def test(doc: Mapping[str, Any], hits: list[Hit]) -> bool:
        return any(part(doc, hits) for part in parts)

    return test


def _none_of(parts: list[Predicate]) -> Predicate:
    # What a negated branch saw is not why the rule fired, so its hits go to a scratch list.
    def test(doc: Mapping[str, Any], hits: list[Hit]) -> bool:
        return not any(part(doc, []) for part in parts)

    return test


def _field_test(path: str, value_test: ValueTest) -> Predicate:
    keys = tuple(path.split("."))

    def test(doc: Mapping[str, Any], hits: list[Hit]) -> bool:
        for value in _values(doc, keys):
            if value_test(value, doc):
                hits.append((path, value))
                return True
        return False

    return test


def _exists_test(path: str, wanted: bool) -> Predicate:
    keys = tuple(path.split("."))

    def test(doc: Mapping[str, Any], hits: list[Hit]) -> bool:
        present = [value for value in _values(doc, keys) if value is not None]
        if present and wanted:
            hits.append((path, present[0]))
        return bool(present) == wanted

    return test


def _keyword_test(value_test: ValueTest, root: str | None) -> Predicate:
    # Keywords search the original record when the source has one, else the whole document.
    keys = tuple(root.split(".")) if root else ()

    def test(doc: Mapping[str, Any], hits: list[Hit]) -> bool:
        base: object = doc
        for key in keys:
            base = base.get(key) if isinstance(base, Mapping) else None
        for path, value in _strings(base, ".".join(keys)):
            if value_test(value, doc):
                hits.append((path, value))
                return True
        return False

    return test


def _value_test(value: object, root: str | None, keyword: bool = False) -> ValueTest:
    if isinstance(value, SigmaString):
        flags = re.S if isinstance(value, SigmaCasedString) else re.S | re.I
        pattern = re.compile(str(value.to_regex().regexp), flags)
        # Keywords are free-text search: the value may sit anywhere inside a string of the record.
        match = pattern.search if keyword else pattern.fullmatch
        return lambda v, _doc: not isinstance(v, Mapping) and v is not None and match(_text(v)) is not None
    if isinstance(value, SigmaRegularExpression):
        regex_flags = 0
        for flag in value.flags:
            regex_flags |= SigmaRegularExpression.sigma_to_python_flags[flag]
        regex = re.compile(str(value.regexp), regex_flags)
        return lambda v, _doc: v is not None and regex.search(_text(v)) is not None
    if isinstance(value, SigmaBool):
        wanted = value.boolean
        return lambda v, _doc: v is wanted or (isinstance(v, str) and v.lower() == str(wanted).lower())
    if isinstance(value, SigmaNumber):
        number = value.number
        return lambda v, _doc: _number(v) == number
    if isinstance(value, SigmaCompareExpression):
        bound, op = value.number.number, value.op
        return lambda v, _doc: _compare(_number(v), op, bound)
    if isinstance(value, SigmaCIDRExpression):
        network = value.network
        return lambda v, _doc: _in_network(v, network)
    if isinstance(value, SigmaNull):
        return lambda v, _doc: v is None
    if isinstance(value, SigmaExpansion):
        tests = [_value_test(part, root, keyword) for part in value.values]
        return lambda v, doc: any(t(v, doc) for t in tests)
    if isinstance(value, SigmaFieldReference):
        other = tuple(_ecs_path(value.field, root).split("."))
        starts, ends = value.starts_with, value.ends_with

        def same(v: object, doc: Mapping[str, Any]) -> bool:
            mine = _text(v).lower()
            for ref in _values(doc, other):
                theirs = _text(ref).lower()
                if (
                    (starts and mine.startswith(theirs))
                    or (ends and mine.endswith(theirs))
                    or (not starts and not ends and mine == theirs)
                ):
                    return True
            return False

        return same
    raise _Unsupported(f"value type {type(value).__name__}")


def _values(doc: object, keys: tuple[str, ...]) -> Iterator[object]:
    """Leaf values at ``keys``; lists fan out at any depth; a missing field yields a single None."""
    found = False
    for value in _walk(doc, keys):
        found = True
        if isinstance(value, list):
            yield from value
        else:
            yield value
    if not found:
        yield None


def _walk(node: object, keys: tuple[str, ...]) -> Iterator[object]:
    if not keys:
        yield node
        return
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, keys)
    elif isinstance(node, Mapping) and keys[0] in node:
        yield from _walk(node[keys[0]], keys[1:])


def _strings(node: object, path: str) -> Iterator[tuple[str, object]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, path)
    elif node is not None:
        yield path, node


def _get_one(doc: Mapping[str, Any], path: str) -> object:
    node: object = doc
    for key in path.split("."):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _text(value: object) -> str:
    # JSON booleans read as Sigma writes them (`true`), not as Python prints them (`True`).
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value
    try:
        return float(str(value))
    except ValueError:
        return None


def _compare(number: float | None, op: CompareOperators, bound: float) -> bool:
    if number is None:
        return False
    if op is CompareOperators.LT:
        return number < bound
    if op is CompareOperators.LTE:
        return number <= bound
    if op is CompareOperators.GT:
        return number > bound
    if op is CompareOperators.GTE:
        return number >= bound
    return number != bound


def _in_network(value: object, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(str(value)) in network
    except ValueError:
        return False


def _required_names(node: object) -> frozenset[str] | None:
    """The lower-cased literal eventName values the condition requires one of, or None when it pins none."""
    if isinstance(node, ConditionFieldEqualsValueExpression):
        value = node.value
        if node.field == _INDEX_FIELD and isinstance(value, SigmaString) and not value.contains_special():
            return frozenset({value.to_plain().lower()})
        return None
    if isinstance(node, ConditionAND):
        pinned = [names for names in map(_required_names, node.args) if names is not None]
        return frozenset.intersection(*pinned) if pinned else None
    if isinstance(node, ConditionOR):
        union: set[str] = set()
        for arg in node.args:
            names = _required_names(arg)
            if names is None:
                return None
            union |= names
        return frozenset(union)
    return None


def _dedupe(hits: list[Hit]) -> list[Hit]:
    seen: set[tuple[str, str]] = set()
    unique: list[Hit] = []
    for path, value in hits:
        key = (path, repr(value))
        if key not in seen:
            seen.add(key)
            unique.append((path, value))
    return unique
