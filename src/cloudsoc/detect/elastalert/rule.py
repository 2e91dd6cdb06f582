"""An ElastAlert rule file as a cloudsoc :class:`~cloudsoc.detect.rule.Rule`.

The selector is the compiled ``filter`` (plus the blacklist/whitelist comparison); the aggregator is the rule
type. On top of the type, as ElastAlert's ``run_rule`` does: ``realert`` (per query key — left to the engine
unless the rule also aggregates), ``aggregation`` (matches within a window, per ``aggregation_key``, become one
finding whose count is the sum) and the alert text (``alert_text`` with ``alert_text_args``/``alert_text_kw`` or
Jinja, ``alert_subject``, ``include``), all in event time.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import jinja2
import msgspec
from jinja2.sandbox import SandboxedEnvironment

from cloudsoc.detect.alert import Matched
from cloudsoc.detect.elastalert.fields import Value, value_at, value_of
from cloudsoc.detect.elastalert.query import Query
from cloudsoc.detect.elastalert.ruletypes import Raised, RuleType
from cloudsoc.detect.rule import Finding, Hit, Match, Rule

log = logging.getLogger(__name__)

AGGREGATION_SEPARATOR: Final = "\n----------------------------------------\n"
# alert_text_type values (ElastAlert's BasicMatchString).
TEXT_TYPES: Final = frozenset(
    {"alert_text_only", "alert_text_jinja", "exclude_fields", "aggregation_summary_only", "default"}
)


@dataclass(frozen=True, slots=True)
class ListCheck:
    """The comparison of a blacklist or whitelist rule: ``compare_key`` against literal entries and ``/regex/``."""

    whitelist: bool
    keys: tuple[str, ...]
    entries: frozenset[str]
    patterns: tuple[re.Pattern[str], ...]
    ignore_null: bool
    getters: tuple[Value, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "getters", tuple(value_at(k) for k in self.keys))

    @property
    def pins_actions(self) -> bool:
        """A blacklist of literal ``event.action`` values: the rule index can use the entries."""
        return not self.whitelist and self.keys == ("event.action",) and not self.patterns

    def listed(self, value: Any) -> bool:
        text = value if type(value) is str else _text(value)
        if text in self.entries:
            return True
        return any(p.search(text) for p in self.patterns) if self.patterns else False

    def check(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        present = False
        for key, getter in zip(self.keys, self.getters, strict=True):
            value = getter(doc)
            if value is None:
                continue
            present = True
            for item in value if isinstance(value, list) else (value,):
                if self.listed(item) != self.whitelist:
                    return [(key, item)]
        if self.whitelist and not present and not self.ignore_null:
            return []
        return None


@dataclass(frozen=True, slots=True)
class TextSpec:
    """How ElastAlert words an alert (``alert_text*``, ``alert_subject*``, ``include``, summary tables)."""

    name: str
    options: Mapping[str, Any]
    alert_text: str | None = None
    text_args: tuple[str, ...] | None = None
    text_kw: Mapping[str, str] | None = None
    text_type: str = "default"
    jinja: jinja2.Template | None = None
    jinja_root: str = "_data"
    subject: str | None = None
    subject_args: tuple[str, ...] | None = None
    subject_max_len: int = 2048
    missing: str = "<MISSING VALUE>"
    include: tuple[str, ...] = ()
    summary_fields: tuple[str, ...] = ()
    summary_prefix: str = ""
    summary_suffix: str = ""
    summary_max_rows: int | None = None


@dataclass(frozen=True, slots=True)
class TimeSpec:
    field: str = "@timestamp"
    type: str = "iso"
    format: str = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(slots=True)
class _Pending:
    deadline: float
    items: list[Raised] = field(default_factory=list)


class ElastalertRule(Rule):
    """One ElastAlert rule file, running on our ECS documents."""

    kind: ClassVar[str] = "elastalert"

    def __init__(
        self,
        *,
        query: Query,
        ruletype: RuleType,
        text: TextSpec,
        time: TimeSpec,
        query_key: tuple[str, ...] = (),
        list_check: ListCheck | None = None,
        realert_secs: float = 60.0,
        aggregation_secs: float = 0.0,
        aggregation_key: tuple[str, ...] = (),
        output_configs: dict[str, dict[str, Any]] | None = None,
        warnings: list[str] | None = None,
        **rule: Any,
    ) -> None:
        # With an aggregation, realert applies to matches before they are grouped (as in ElastAlert), here.
        super().__init__(realert_secs=0.0 if aggregation_secs > 0 else realert_secs, group_by=query_key, **rule)
        self.query = query
        self.ruletype = ruletype
        self.text_spec = text
        self.time_spec = time
        self.query_key = query_key
        self.list_check = list_check
        self.match_realert_secs = realert_secs
        self.aggregation_secs = aggregation_secs
        self.aggregation_key = aggregation_key
        self.output_configs: dict[str, dict[str, Any]] = output_configs or {}
        self.warnings: list[str] = warnings or []
        self._predicate = query.predicate
        self._pending: dict[str, _Pending] = {}
        self._last_raised: dict[str, float] = {}

    # -- selection (stateless, may run in worker processes) ------------------------------------------------------

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        listed: list[Hit] | None = None
        if self.list_check is not None:
            # The comparison first: it is one lookup, and it rejects most events of a blacklist.
            listed = self.list_check.check(doc)
            if listed is None:
                return None
        hits: list[Hit] = []
        if not self._predicate(doc, hits):
            return None
        if listed:
            hits.extend(listed)
        return _dedupe(hits) if len(hits) > 1 else hits

    # -- aggregation (stateful, in event-time order) -------------------------------------------------------------

    def event_secs(self, match: Match) -> float:
        """The event's time by the rule's ``timestamp_field``/``timestamp_type`` (else its ``@timestamp``)."""
        spec = self.time_spec
        if spec.field == "@timestamp" and spec.type == "iso":
            return match.time.timestamp()
        parsed = _parse_time(value_of(match.doc, spec.field), spec)
        return parsed if parsed is not None else match.time.timestamp()

    def observe(self, match: Match) -> list[Finding]:
        at = self.event_secs(match)
        return self._findings(self.ruletype.observe(match, at), at)

    def tick(self, now: datetime) -> list[Finding]:
        at = now.timestamp()
        return self._findings(self.ruletype.tick(at), at)

    def flush(self, now: datetime | None = None) -> list[Finding]:
        """Everything still held at the end of an offline run: open percentage buckets, pending aggregations."""
        at = now.timestamp() if now is not None else math.inf
        found = self._findings(self.ruletype.flush(at), at)
        for key in sorted(self._pending, key=lambda k: self._pending[k].deadline):
            found.append(self._finding(self._pending.pop(key).items, aggregated=True))
        return found

    def _findings(self, raised: list[Raised], at: float) -> list[Finding]:
        if self.aggregation_secs <= 0:
            return [self._finding([r]) for r in raised]
        out: list[Finding] = []
        for r in raised:
            if self.match_realert_secs > 0:
                last = self._last_raised.get(r.key)
                if last is not None and r.at - last < self.match_realert_secs:
                    continue
                self._last_raised[r.key] = r.at
            out.extend(self._aggregate(r))
        for key in sorted(
            (k for k, p in self._pending.items() if p.deadline < at), key=lambda k: self._pending[k].deadline
        ):
            out.append(self._finding(self._pending.pop(key).items, aggregated=True))
        return out

    def _aggregate(self, raised: Raised) -> list[Finding]:
        key = self._aggregation_value(raised)
        pending = self._pending.get(key)
        if pending is not None and raised.at <= pending.deadline:
            pending.items.append(raised)
            return []
        out = [self._finding(pending.items, aggregated=True)] if pending is not None else []
        self._pending[key] = _Pending(raised.at + self.aggregation_secs, [raised])
        return out

    def _aggregation_value(self, raised: Raised) -> str:
        if not self.aggregation_key:
            return ""
        body = raised.body.doc if raised.body is not None else raised.extra
        values = [value_of(body, name) for name in self.aggregation_key]
        if len(values) == 1:
            return "" if values[0] is None else str(values[0])
        return ", ".join(str(v) for v in values)

    def _finding(self, items: list[Raised], *, aggregated: bool = False) -> Finding:
        matches: list[Match] = []
        seen: set[int] = set()
        for r in items:
            for m in r.matches:
                if id(m) not in seen:
                    seen.add(id(m))
                    matches.append(m)
        first = items[0]
        texts = [self.alert_text(r) for r in items]
        if aggregated:
            text = self._summary_table(items)
            if self.text_spec.text_type != "aggregation_summary_only":
                text += "".join(t + (AGGREGATION_SEPARATOR if len(items) > 1 else "") for t in texts)
            if self.text_spec.subject is not None:
                text = f"{self.subject(first)}\n\n{text}"
            group_key = self._aggregation_value(first) or first.key
        else:
            text = texts[0]
            if self.text_spec.subject is not None:
                text = f"{self.subject(first)}\n\n{text}"
            group_key = first.key
        return Finding(
            matches=matches,
            matched=self._matched(first),
            group_key=group_key,
            count=sum(r.count for r in items),
            text=text.rstrip(),
        )

    def _matched(self, raised: Raised) -> list[Matched]:
        pairs: list[Hit] = list(raised.body.hits) if raised.body is not None else []
        pairs.extend(raised.facts)
        body = self._body(raised)
        for name in self.text_spec.include:
            if "*" not in name:
                value = value_of(body, name)
                if value is not None:
                    pairs.append((name, value))
        return [Matched(f, v) for f, v in _dedupe(pairs)]

    # -- alert text (ElastAlert's BasicMatchString and Alerter.create_title) -------------------------------------

    @staticmethod
    def _body(raised: Raised) -> dict[str, Any]:
        body = dict(raised.body.doc) if raised.body is not None else {}
        body.update(raised.extra)
        return body

    def alert_text(self, raised: Raised) -> str:
        spec = self.text_spec
        body = self._body(raised)
        text = "" if spec.alert_text is not None else spec.name + "\n\n"
        text += self._custom_text(body)
        text = _blank_line(text)
        if spec.text_type not in ("alert_text_only", "alert_text_jinja"):
            text = _blank_line(text + raised.summary)
            if spec.text_type != "exclude_fields":
                for name in sorted(n for n in spec.include if "*" not in n):
                    value = value_of(body, name)
                    if value is not None:
                        text += f"{name}: {value}\n"
        return text

    def _custom_text(self, body: dict[str, Any]) -> str:
        spec = self.text_spec
        if spec.jinja is not None:
            values = {**spec.options, **body}
            return spec.jinja.render({**values, spec.jinja_root: values})
        template = spec.alert_text or ""
        if spec.text_args is not None:
            return template.format(*self._values(spec.text_args, body))
        if spec.text_kw is not None:
            names = list(spec.text_kw)
            found = self._values(tuple(names), body)
            return template.format(**{spec.text_kw[n]: v for n, v in zip(names, found, strict=True)})
        return template

    def _values(self, names: tuple[str, ...], body: Mapping[str, Any]) -> list[Any]:
        spec = self.text_spec
        out: list[Any] = []
        for name in names:
            value = value_of(body, name)
            if value is None:
                # ElastAlert falls back to a top-level option of the rule with that name.
                value = spec.options.get(name) or None
            out.append(spec.missing if value is None else value)
        return out

    def subject(self, raised: Raised) -> str:
        spec = self.text_spec
        subject = spec.subject or ""
        body = self._body(raised)
        if spec.subject_args is not None:
            subject = subject.format(*self._values(spec.subject_args, body))
        elif spec.text_type == "alert_text_jinja":
            values = {**spec.options, **body}
            subject = SandboxedEnvironment().from_string(subject).render({**values, spec.jinja_root: values})
        return " ".join(subject.split())[: spec.subject_max_len]

    def _summary_table(self, items: list[Raised]) -> str:
        spec = self.text_spec
        if not spec.summary_fields:
            return ""
        counts: dict[tuple[str, ...], int] = {}
        for r in items:
            body = self._body(r)
            row = tuple(str(value_of(body, name)) for name in spec.summary_fields)
            counts[row] = counts.get(row, 0) + 1
        rows = sorted(counts.items(), key=lambda kv: -kv[1])
        if spec.summary_max_rows is not None:
            rows = rows[: spec.summary_max_rows]
        header = [*spec.summary_fields, "count"]
        text = spec.summary_prefix + ("\n" if spec.summary_prefix else "")
        text += f"Aggregation resulted in the following data for summary_table_fields ==> {header}:\n\n"
        text += "| " + " | ".join(header) + " |\n" + "|-----" * len(header) + "|\n"
        text += "".join("| " + " | ".join([*row, str(n)]) + " |\n" for row, n in rows)
        if spec.summary_max_rows is not None:
            text += f"Showing top {spec.summary_max_rows} rows\n"
        return text + "\n" + spec.summary_suffix

    # -- state -----------------------------------------------------------------------------------------------------

    def snapshot(self) -> bytes | None:
        kept = self.ruletype.state()
        if not kept and not self._pending and not self._last_raised:
            return None
        state: dict[str, Any] = {
            "type": self.ruletype.name,
            "state": kept,
            "pending": [[k, p.deadline, p.items] for k, p in self._pending.items()],
            "last_raised": self._last_raised,
        }
        return msgspec.json.encode(state)

    def restore(self, state: bytes) -> None:
        """Load a snapshot; one of another rule type (the file was edited) or unreadable is dropped."""
        try:
            data = msgspec.json.decode(state)
            if data.get("type") != self.ruletype.name:
                raise ValueError(f"the snapshot is of a {data.get('type')} rule")
            if data["state"]:
                self.ruletype.load(data["state"])
            self._pending = {
                k: _Pending(deadline, [_raised(r) for r in items]) for k, deadline, items in data["pending"]
            }
            self._last_raised = dict(data["last_raised"])
        except (msgspec.MsgspecError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("%s: rule %r: saved state dropped (%s); starting afresh", self.source, self.title, exc)
            self.reset()

    def reset(self) -> None:
        self.ruletype.reset()
        self._pending.clear()
        self._last_raised.clear()


def _raised(raw: Mapping[str, Any]) -> Raised:
    def match(m: Any) -> Match | None:
        return None if m is None else msgspec.convert(m, Match, strict=False)

    return Raised(
        matches=[m for m in map(match, raw["matches"]) if m is not None],
        body=match(raw["body"]),
        key=raw["key"],
        count=raw["count"],
        at=raw["at"],
        extra=dict(raw["extra"]),
        facts=[(f, v) for f, v in raw["facts"]],
        summary=raw["summary"],
    )


def _blank_line(text: str) -> str:
    while text[-2:] != "\n\n":
        text += "\n"
    return text


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _dedupe(hits: list[Hit]) -> list[Hit]:
    seen: set[tuple[str, str]] = set()
    out: list[Hit] = []
    for name, value in hits:
        key = (name, repr(value))
        if key not in seen:
            seen.add(key)
            out.append((name, value))
    return out


def _parse_time(raw: Any, spec: TimeSpec) -> float | None:
    try:
        if spec.type in ("unix", "unix_ms") and raw is not None and not isinstance(raw, bool):
            secs = float(raw)
            return secs / 1000 if spec.type == "unix_ms" else secs
        if not isinstance(raw, str):
            return None
        when = datetime.strptime(raw, spec.format) if spec.type == "custom" else datetime.fromisoformat(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()
