"""Sigma rules, parsed by pySigma, compiled into Python predicates over stored ECS documents.

pySigma does the parsing (YAML, modifiers, ``1 of``/``all of`` expansion) and maps field names with a processing
pipeline: a rule for ``product: aws`` / ``service: cloudtrail`` names fields of the CloudTrail record, which our
documents keep whole under ``aws.cloudtrail``, so the pipeline prefixes them (likewise ``aliyun.actiontrail`` for
ActionTrail); ECS fields (``event.action``, ``source.ip`` …) are left as written. This module then walks each
rule's condition tree once and turns every node into a closure. A predicate records the (ECS field, value) pairs
that made it true, so a match explains itself. Rules are indexed by the dataset they read and by the literal
``eventName`` / ``event.action`` values they require, so an event meets only the rules that can match it.

:func:`load_sigma` turns a Sigma file into engine rules: :class:`SigmaDetection` for single-event rules and
:class:`~cloudsoc.detect.correlation.SigmaCorrelation` for correlation rules.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final, NamedTuple

import orjson
import yaml
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
from sigma.processing.conditions import ExcludeFieldCondition, LogsourceCondition, RuleProcessingCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddFieldnamePrefixTransformation
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
    SpecialChars,
)

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.loader import yaml_documents
from cloudsoc.detect.rule import Hit, Rule, SkippedRule
from cloudsoc.detect.sigma_filter import CONTAINS, EQUALS, PREFIX, SLOW, SUFFIX, Filter, FilterWriter


class SourceMapping(NamedTuple):
    """A log source whose original record our documents keep under ``dataset`` (also its ``event.dataset``)."""

    dataset: str
    products: tuple[str, ...]
    services: tuple[str, ...]


# A rule is of a source when its logsource names one of the products or one of the services (a rule may say
# only `service: cloudtrail`, or only `product: aws`).
SOURCES: Final = (
    SourceMapping("aws.cloudtrail", ("aws",), ("cloudtrail",)),
    SourceMapping("aliyun.actiontrail", ("alibaba", "aliyun"), ("actiontrail",)),
)
# Fields under these top-level names already address our document (ECS, ours, the full path of a raw record),
# so the pipeline leaves them alone.
_ECS_FIELD: Final = r"(@timestamp|(event|source|user|cloud|cloudsoc|related|user_agent|error|aws|aliyun)\..+)"
# The raw field whose literal values index rules (CloudTrail and ActionTrail both call it eventName); our
# parsers copy it to event.action, which the engine indexes by.
_INDEX_FIELD: Final = "eventName"
_ACTION_FIELD: Final = "event.action"

_MISSING: Final = object()
_ABSENT: Final = (None,)

# A compiled node: true or false for a document, appending the (ECS field, value) pairs that made it true.
Predicate = Callable[[Mapping[str, Any], list[Hit]], bool]
# A compiled value test on one leaf value of a document (the document is there for field references).
ValueTest = Callable[[object, Mapping[str, Any]], bool]


def processing_pipeline() -> ProcessingPipeline:
    """The pySigma pipeline that maps the fields of rules for our sources onto our ECS documents.

    A fresh one per rule: a pipeline records what it applied to the rule it last processed.
    """
    items: list[ProcessingItem] = []
    for source in SOURCES:
        conditions: list[RuleProcessingCondition] = [LogsourceCondition(product=p) for p in source.products]
        conditions += [LogsourceCondition(service=s) for s in source.services]
        items.append(
            ProcessingItem(
                identifier=source.dataset,
                transformation=AddFieldnamePrefixTransformation(prefix=source.dataset + "."),
                rule_conditions=conditions,
                rule_condition_linking=any,
                field_name_conditions=[ExcludeFieldCondition(fields=[_ECS_FIELD], mode="re")],
            )
        )
    return ProcessingPipeline(name="cloudsoc ECS documents", items=items)


_FIELD_MAPPER: Final = {item.identifier: item for item in processing_pipeline().items}


def ecs_field(sigma_field: str, dataset: str | None) -> str:
    """Where a field that a rule of ``dataset`` names sits in our documents (the pipeline's own mapping)."""
    item = _FIELD_MAPPER.get(dataset) if dataset else None
    if item is None or not item.match_field_name(sigma_field):
        return sigma_field
    mapped = item.transformation.apply_field_name(sigma_field)  # type: ignore[attr-defined]
    return mapped if isinstance(mapped, str) else sigma_field


class Logsource(NamedTuple):
    product: str | None
    service: str | None
    category: str | None


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    """One Sigma rule as a predicate over ECS documents."""

    id: str
    title: str
    level: str | None
    tags: tuple[str, ...]
    logsource: Logsource
    source: str
    # The dataset the rule reads (``aws.cloudtrail`` …), which is also where that source's original record sits
    # in our documents; None for rules of other log sources (their fields are used as written).
    root: str | None
    # Lower-cased eventName / event.action values of which the document must carry one; None when not pinned.
    event_names: frozenset[str] | None
    predicate: Predicate = field(repr=False)
    # The same condition as straight-line code: decides, but does not explain (see sigma_filter).
    filter: Filter = field(repr=False)
    name: str | None = None
    description: str = ""
    falsepositives: tuple[str, ...] = ()

    def matches(self, doc: Mapping[str, Any]) -> bool:
        return self.filter(doc)

    def explain(self, doc: Mapping[str, Any]) -> list[Hit]:
        """The (ECS field, value) pairs that made the rule fire; empty when it does not fire."""
        hits: list[Hit] = []
        return _dedupe(hits) if self.predicate(doc, hits) else []


class SigmaDetection(Rule):
    """A single-event Sigma rule in the engine: its selector is the compiled predicate."""

    kind: ClassVar[str] = "sigma"

    def __init__(self, compiled: CompiledRule, *, enabled: bool = True) -> None:
        fps = [fp for fp in compiled.falsepositives if fp]
        super().__init__(
            id=rule_id(compiled.id, compiled.name, compiled.title),
            title=compiled.title,
            severity=Severity.parse(compiled.level),
            tags=compiled.tags,
            description=compiled.description,
            response=f"Known false positives: {'; '.join(fps)}." if fps else "",
            source=compiled.source,
            datasets=frozenset({compiled.root}) if compiled.root else None,
            actions=compiled.event_names,
            enabled=enabled,
        )
        self.compiled = compiled
        self._predicate = compiled.predicate
        self._filter = compiled.filter

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        if not self._filter(doc):
            return None
        hits: list[Hit] = []  # a match: the closures say why
        return _dedupe(hits) if self._predicate(doc, hits) else None


def rule_id(sigma_id: str, name: str | None, title: str) -> str:
    """A Sigma rule's id in the engine: its UUID, else its name, else its title."""
    return sigma_id or name or title


def is_sigma(data: Mapping[str, Any]) -> bool:
    """Whether a YAML document is a Sigma rule (a detection or a correlation), not an ElastAlert rule."""
    return isinstance(data.get("detection"), Mapping) or isinstance(data.get("correlation"), Mapping)


def load_sigma(text: str, source: str, docs: list[Any] | None = None) -> tuple[list[Rule], list[SkippedRule]]:
    """The engine rules of one Sigma file (one or more YAML documents), and the rules that could not be used.

    Rules that a correlation refers to feed it and, as the Sigma specification says, raise alerts of their own
    only when the correlation says ``generate: true`` (else they are returned disabled, for listing).
    """
    from cloudsoc.detect.correlation import SigmaCorrelation  # it builds on this module

    parsed = _compile_text(text, source, docs)
    if parsed.collection is None:
        return [], parsed.skipped
    # pySigma turns output off for the rules a correlation refers to unless it says `generate: true`.
    outputs = {id(rule) for rule in parsed.collection.get_output_rules()}
    correlations = {id(rule) for rule in parsed.correlations}
    rules: list[Rule] = []
    for rule in parsed.collection.rules:
        if id(rule) in parsed.compiled:
            rules.append(SigmaDetection(parsed.compiled[id(rule)], enabled=id(rule) in outputs))
        elif id(rule) in correlations and isinstance(rule, SigmaCorrelationRule):
            try:
                rules.append(SigmaCorrelation.from_sigma(rule, parsed.compiled, source, enabled=id(rule) in outputs))
            except (SigmaError, ValueError) as error:
                parsed.skipped.append(SkippedRule(source, str(rule.title or ""), str(error)))
    return rules, parsed.skipped


class SigmaRuleSet:
    """Compiled single-event Sigma rules with an index by log source and required eventName (a standalone
    matcher; the engine uses :func:`load_sigma` and its own index)."""

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
        parsed = _compile_text(text, source)
        for rule in parsed.correlations:
            parsed.skipped.append(
                SkippedRule(source, str(rule.title or ""), "correlation rule: needs the stateful engine")
            )
        rules = parsed.collection.rules if parsed.collection is not None else []
        return cls([parsed.compiled[id(r)] for r in rules if id(r) in parsed.compiled], parsed.skipped)

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


@dataclass(slots=True)
class _Parsed:
    """A Sigma file: its pySigma collection, its compiled detection rules (by ``id()`` of the pySigma rule),
    the correlations whose references resolved, and what cannot be used and why."""

    collection: SigmaCollection | None
    compiled: dict[int, CompiledRule] = field(default_factory=dict)
    correlations: list[SigmaCorrelationRule] = field(default_factory=list)
    skipped: list[SkippedRule] = field(default_factory=list)


def _read_collection(
    text: str, source: str, skipped: list[SkippedRule], docs: list[Any] | None
) -> SigmaCollection | None:
    """The rules of a Sigma file (``docs``: its YAML documents, when the caller has read them); a document
    pySigma rejects outright is skipped, not the whole file."""
    # References are resolved later, one correlation at a time, so that one bad reference costs only the
    # correlation that makes it.
    try:
        if docs is None:
            docs = yaml_documents(text)
        return SigmaCollection.from_dicts(docs, collect_errors=True, resolve_references=False)
    except SigmaError:
        pass
    except (ValueError, yaml.YAMLError) as error:
        skipped.append(SkippedRule(source, "", f"unreadable: {error}"))
        return None
    good: list[Any] = []
    for doc in yaml_documents(text):
        try:
            SigmaCollection.from_dicts([copy.deepcopy(doc)], collect_errors=True, resolve_references=False)
        except SigmaError as error:
            title = str(doc.get("title", "")) if isinstance(doc, dict) else ""
            skipped.append(SkippedRule(source, title, f"{type(error).__name__}: {error}"))
        else:
            good.append(doc)
    try:
        return SigmaCollection.from_dicts(good, collect_errors=True, resolve_references=False)
    except SigmaError as error:
        skipped.append(SkippedRule(source, "", f"unreadable: {error}"))
        return None


def _compile_text(text: str, source: str, docs: list[Any] | None = None) -> _Parsed:
    skipped: list[SkippedRule] = []
    collection = _read_collection(text, source, skipped, docs)
    parsed = _Parsed(collection, skipped=skipped)
    if collection is None:
        return parsed
    for rule in collection.rules:
        title = str(getattr(rule, "title", "") or "")
        if rule.errors:
            parsed.skipped.append(SkippedRule(source, title, "; ".join(str(e) for e in rule.errors)))
        elif isinstance(rule, SigmaCorrelationRule):
            try:
                rule.resolve_rule_references(collection)
            except SigmaError as error:
                parsed.skipped.append(SkippedRule(source, title, f"{type(error).__name__}: {error}"))
            else:
                parsed.correlations.append(rule)
        elif isinstance(rule, SigmaRule):
            try:
                parsed.compiled[id(rule)] = _compile_rule(rule, source)
            except (SigmaError, _Unsupported, re.error, ValueError) as error:
                parsed.skipped.append(SkippedRule(source, title, f"{type(error).__name__}: {error}"))
        else:
            parsed.skipped.append(SkippedRule(source, title, f"unsupported document: {type(rule).__name__}"))
    return parsed


def _compile_rule(rule: SigmaRule, source: str) -> CompiledRule:
    logsource = Logsource(rule.logsource.product, rule.logsource.service, rule.logsource.category)
    pipeline = processing_pipeline()
    pipeline.apply(rule)
    applied = [s.dataset for s in SOURCES if s.dataset in pipeline.applied_ids]
    if len(applied) > 1:
        raise _Unsupported(f"log source {logsource} matches more than one source: {', '.join(applied)}")
    root = applied[0] if applied else None
    conditions = rule.detection.parsed_condition  # a property that re-parses: read once
    if len(conditions) != 1:
        raise _Unsupported(f"{len(conditions)} conditions; only one is evaluated")
    tree = conditions[0].parsed
    writer = FilterWriter()
    predicate, expression = _compile_node(tree, root, writer)
    index_fields = frozenset({_ACTION_FIELD, f"{root}.{_INDEX_FIELD}"} if root else {_ACTION_FIELD})
    return CompiledRule(
        id=str(rule.id) if rule.id else "",
        title=rule.title,
        level=rule.level.name.lower() if rule.level else None,
        tags=tuple(str(tag) for tag in rule.tags),
        logsource=logsource,
        source=source,
        root=root,
        event_names=_required_names(tree, index_fields),
        predicate=predicate,
        filter=writer.build(expression, rule.title, predicate),
        name=rule.name,
        description=(rule.description or "").strip(),
        falsepositives=tuple(str(fp) for fp in rule.falsepositives or ()),
    )


def _doc_root(doc: Mapping[str, Any]) -> str | None:
    for source in SOURCES:
        top, _, sub = source.dataset.partition(".")
        branch = doc.get(top)
        if isinstance(branch, Mapping) and sub in branch:
            return source.dataset
    return None


# A compiled node: the closure (the reference, which explains) and the filter expression of the same node.
_Node = tuple[Predicate, str]


def _compile_node(node: object, root: str | None, out: FilterWriter) -> _Node:
    if isinstance(node, ConditionOR):
        parts = _compile_alternatives(node.args, root, out)
        return _any_of([p for p, _ in parts]), out.any_of([e for _, e in parts])
    if isinstance(node, ConditionAND | ConditionNOT):
        parts = [_compile_node(arg, root, out) for arg in node.args]
        if isinstance(node, ConditionAND):
            return _all_of([p for p, _ in parts]), out.all_of([e for _, e in parts])
        return _none_of([p for p, _ in parts]), out.none_of([e for _, e in parts])
    if isinstance(node, ConditionFieldEqualsValueExpression) and isinstance(node.value, SigmaExists):
        test = _exists_test(node.field, node.value.exists)
        return test, out.call(test)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        shape = _fast_shape(node.value) if isinstance(node.value, SigmaString) else None
        return _leaf(
            node.field, [_value_test(node.value)], shape[0] if shape else SLOW, (shape[1],) if shape else (), out
        )
    if isinstance(node, ConditionValueExpression):
        test = _keyword_test(_value_test(node.value, keyword=True), root)
        return test, out.call(test)
    raise _Unsupported(f"condition node {type(node).__name__}")


def _leaf(path: str, tests: list[ValueTest], shape: int, texts: tuple[str, ...], out: FilterWriter) -> _Node:
    value_test = tests[0] if len(tests) == 1 else _either(tests)
    # What the test says about an absent field does not depend on the document (field references refuse it).
    if_absent = value_test(None, {})
    test = _field_test(path, value_test, if_absent, (shape, texts))
    return test, out.leaf(path, shape, texts, if_absent, test)


def _compile_alternatives(args: Iterable[object], root: str | None, out: FilterWriter) -> list[_Node]:
    """The parts of an OR. Alternatives on one field of the same simple shape (``eventName: [A, B, C]``,
    ``eventName|startswith: [Describe, List]``) become one field test, so the field is looked up once."""
    # In written order: a compiled part, or the (field, shape) key of merged alternatives.
    slots: list[_Node | tuple[str, int]] = []
    merged: dict[tuple[str, int], list[tuple[SigmaString, str]]] = {}
    for arg in args:
        if isinstance(arg, ConditionFieldEqualsValueExpression) and isinstance(arg.value, SigmaString):
            shape = _fast_shape(arg.value)
            if shape is not None:
                key = (arg.field, shape[0])
                if key not in merged:
                    merged[key] = []
                    slots.append(key)
                merged[key].append((arg.value, shape[1]))
                continue
        slots.append(_compile_node(arg, root, out))
    parts: list[_Node] = []
    for slot in slots:
        if isinstance(slot[0], str):
            path, kind = slot
            tests = [_value_test(value) for value, _ in merged[slot]]
            parts.append(_leaf(path, tests, kind, tuple(text for _, text in merged[slot]), out))
        else:
            parts.append(slot)
    return parts


def _either(tests: list[ValueTest]) -> ValueTest:
    return lambda v, doc: any(t(v, doc) for t in tests)


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
    # Plain loops here and below: any()/all() over a generator cost a frame per call on the hot path.
    def test(doc: Mapping[str, Any], hits: list[Hit]) -> bool:
        for part in parts:  # noqa: SIM110
            if part(doc, hits):
                return True
        return False

    return test


def _none_of(parts: list[Predicate]) -> Predicate:
    # What a negated branch saw is not why the rule fired, so its hits go to a scratch list.
    def test(doc: Mapping[str, Any], hits: list[Hit]) -> bool:
        for part in parts:  # noqa: SIM110
            if part(doc, []):
                return False
        return True

    return test


def _field_test(path: str, value_test: ValueTest, if_absent: bool, fast: tuple[int, tuple[str, ...]]) -> Predicate:
    """A test of one field. ``fast``: the test as (shape, lower-cased texts, any of which may match), applied
    inline to ASCII strings; anything else goes through ``value_test``; ``if_absent``: its answer for no field."""
    keys = tuple(path.split("."))
    shape, texts = fast
    members = frozenset(texts)
    first = texts[0] if texts else ""

    def test(doc: Mapping[str, Any], hits: list[Hit]) -> bool:
        # Hot path, inlined: plain dicts down to one value; lists and other mappings take the general walk.
        node: Any = doc
        for key in keys:
            if type(node) is not dict:
                break
            node = node.get(key, _MISSING)
            if node is _MISSING:
                if if_absent:
                    hits.append((path, None))
                return if_absent
        else:
            if type(node) is str and shape and node.isascii():
                low = node.lower()
                if shape == EQUALS:
                    ok = low in members
                elif shape == PREFIX:
                    ok = low.startswith(texts)
                elif shape == SUFFIX:
                    ok = low.endswith(texts)
                else:
                    ok = first in low if len(texts) == 1 else any(t in low for t in texts)
                if ok:
                    hits.append((path, node))
                return ok
            if type(node) is not list:
                if value_test(node, doc):
                    hits.append((path, node))
                    return True
                return False
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


def _value_test(value: object, keyword: bool = False) -> ValueTest:
    if isinstance(value, SigmaString):
        return _string_test(value, keyword)
    if isinstance(value, SigmaRegularExpression):
        regex_flags = 0
        for flag in value.flags:
            regex_flags |= SigmaRegularExpression.sigma_to_python_flags[flag]
        regex = re.compile(_searchable(str(value.regexp)), regex_flags)
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
        tests = [_value_test(part, keyword) for part in value.values]
        return lambda v, doc: any(t(v, doc) for t in tests)
    if isinstance(value, SigmaFieldReference):
        other = tuple(value.field.split("."))
        starts, ends = value.starts_with, value.ends_with

        def same(v: object, doc: Mapping[str, Any]) -> bool:
            if v is None:  # an absent field equals nothing, not even another absent one (SQL's NULL)
                return False
            mine = _text(v).lower()
            for ref in _values(doc, other):
                if ref is None:
                    continue
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


def _searchable(pattern: str) -> str:
    """A regex that a search finds in the same strings, without a leading or trailing ``.*`` / ``.+``.

    Rules write ``'.+:assumed-role/aws:.+'``; searched as written, Python's engine tries the greedy ``.+`` from
    every position (quadratic in the length of an ARN). A search for ``.*X`` succeeds where one for ``X`` does, and
    ``.+X`` where ``.X`` does (likewise at the end, and with top-level alternatives, whose outer ends these are).
    Anchored and flagged patterns are left alone."""
    if not pattern.startswith(("(?", "^")):
        for lead, keep in ((".*", ""), (".+", ".")):
            if pattern.startswith(lead) and pattern[2:3] not in ("?", "+", "*", "{"):
                pattern = keep + pattern[2:]
                break
    for tail, keep in ((".*", ""), (".+", ".")):
        if pattern.endswith(tail) and not pattern.endswith("\\" + tail) and len(pattern) >= 2:
            pattern = pattern[:-2] + keep
            break
    return pattern


def _string_test(value: SigmaString, keyword: bool) -> ValueTest:
    flags = re.S if isinstance(value, SigmaCasedString) else re.S | re.I
    pattern = re.compile(str(value.to_regex().regexp), flags)
    # Keywords are free-text search: the value may sit anywhere inside a string of the record.
    match = pattern.search if keyword else pattern.fullmatch

    def by_regex(v: object, _doc: Mapping[str, Any]) -> bool:
        return v is not None and match(_text(v)) is not None

    shape = None if keyword else _fast_shape(value)
    if shape is None:
        return by_regex
    kind, text = shape
    compare: Callable[[str], bool] = {
        EQUALS: text.__eq__,
        PREFIX: lambda s: s.startswith(text),
        SUFFIX: lambda s: s.endswith(text),
        CONTAINS: lambda s: text in s,
    }[kind]

    def fast(v: object, doc: Mapping[str, Any]) -> bool:
        if type(v) is str and v.isascii():
            return compare(v.lower())
        return by_regex(v, doc)

    return fast


# Simple shapes of a Sigma string: a plain ASCII text, maybe with a * at either end. On an ASCII string, comparing
# lower-cased strings is what the case-insensitive regex does, without the regex.


def _fast_shape(value: SigmaString) -> tuple[int, str] | None:
    """The shape of a case-insensitive Sigma string and its lower-cased text, or None when it has no simple one."""
    if isinstance(value, SigmaCasedString):
        return None
    star = SpecialChars.WILDCARD_MULTI
    parts = [p for p in value.s if p != ""]
    texts = [p for p in parts if isinstance(p, str)]
    if len(texts) != 1 or not texts[0].isascii() or any(not isinstance(p, str) and p is not star for p in parts):
        return None  # ? wildcards, placeholders, several texts, no text
    layout = tuple(p is star for p in parts)
    kinds = {(False,): EQUALS, (False, True): PREFIX, (True, False): SUFFIX, (True, False, True): CONTAINS}
    kind = kinds.get(layout)
    return (kind, texts[0].lower()) if kind is not None else None


def _values(doc: object, keys: tuple[str, ...]) -> Sequence[object]:
    """Leaf values at ``keys``; lists fan out at any depth; a missing field gives a single None."""
    # Hot path: plain dicts all the way down; lists and other mappings take the general walk.
    node = doc
    for depth, key in enumerate(keys):
        if type(node) is dict:
            node = node.get(key, _MISSING)
            if node is _MISSING:
                return _ABSENT
        elif isinstance(node, list | Mapping):
            return _fan_out(node, keys[depth:])
        else:
            return _ABSENT
    return node if type(node) is list else (node,)


def _fan_out(node: object, keys: tuple[str, ...]) -> list[object]:
    found = False
    out: list[object] = []
    for value in _walk(node, keys):
        found = True
        if isinstance(value, list):
            out.extend(value)
        else:
            out.append(value)
    return out if found else [None]


def _walk(node: object, keys: tuple[str, ...]) -> Iterator[object]:
    if not keys:
        yield node
        return
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, keys)
    elif isinstance(node, Mapping) and keys[0] in node:
        yield from _walk(node[keys[0]], keys[1:])


def first_value(doc: Mapping[str, Any], keys: tuple[str, ...]) -> object:
    """The first non-null leaf value at ``keys`` (lists fan out), or None."""
    for value in _values(doc, keys):
        if value is not None:
            return value
    return None


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
    """A value as Sigma's string matching sees it.

    JSON booleans read as Sigma writes them (`true`), not as Python prints them (`True`). An object is matched
    as its JSON text: SigmaHQ rules search CloudTrail's ``requestParameters`` as a whole
    (``requestParameters|contains: 'Suspended'``), as backends that store it as text do.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list):
        return json_text(value)
    return str(value)


def json_text(value: object) -> str:
    """The compact JSON text of an object or list, as string tests see it."""
    return orjson.dumps(value, default=str).decode()


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


def _required_names(node: object, fields: frozenset[str]) -> frozenset[str] | None:
    """The lower-cased literal values of ``fields`` (eventName, event.action) the condition requires one of,
    or None when it pins none."""
    if isinstance(node, ConditionFieldEqualsValueExpression):
        value = node.value
        if node.field in fields and isinstance(value, SigmaString) and not value.contains_special():
            return frozenset({value.to_plain().lower()})
        return None
    if isinstance(node, ConditionAND):
        pinned = [names for names in (_required_names(arg, fields) for arg in node.args) if names is not None]
        return frozenset.intersection(*pinned) if pinned else None
    if isinstance(node, ConditionOR):
        union: set[str] = set()
        for arg in node.args:
            names = _required_names(arg, fields)
            if names is None:
                return None
            union |= names
        return frozenset(union)
    return None


def _dedupe(hits: list[Hit]) -> list[Hit]:
    if len(hits) < 2 or (len(hits) == 2 and hits[0][0] != hits[1][0]):
        return hits
    seen: set[tuple[str, str]] = set()
    unique: list[Hit] = []
    for path, value in hits:
        key = (path, repr(value))
        if key not in seen:
            seen.add(key)
            unique.append((path, value))
    return unique
