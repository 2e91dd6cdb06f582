"""Rule test cases: the events a rule must fire on and must stay quiet on, kept beside the rule and run by
``cloudsoc rules test`` — for any rule (built-in, Sigma, ElastAlert), with a fresh state per case.

A case file ``<rule>.tests.yml`` sits beside the rule (``storage_made_public.py`` →
``storage_made_public.tests.yml``; ``rules/x.yml`` → ``rules/x.tests.yml``)::

    cases:
      - name: bucket policy for Principal * (Panther's labelled event)
        rule: storage_made_public.aws
        expect: fire                    # fire | quiet
        ref: cloudaudit/panther-cloudtrail-rules/aws_resource_made_public.yml#S3 Made Publicly Accessible
      - name: five failed sign-ins in two minutes
        rule: console_login_failure_burst.aliyun
        expect: fire
        matched: {count: 5}             # optional: fields the alert must explain itself with
        alerts: 1                       # optional: exactly this many alerts
        records:
          - repeat: 5                   # the same record five times, 30 s apart (ids made unique)
            every_secs: 30
            record: {eventName: ConsoleSignin, eventTime: "2026-11-18T02:00:00Z", ...}

Records are raw trail records (CloudTrail, ActionTrail), parsed with our parsers (``format:`` picks one,
otherwise each record's own shape does); with ``format: ecs`` they are ECS documents taken as they are. A
record item is a raw record, or ``{record: …}`` / ``{ref: …}`` with
``repeat``/``every_secs``/``vary`` (dotted raw field → values cycled through the copies), ``set`` (dotted raw
field → value) and ``enrich`` (dotted ECS field → value, added after parsing: e.g. ``threat.enrichments``).
``ref`` points into the shared test data (resolved against the data root given to :func:`run_cases`):
``<file>#<Panther test name>`` (the test's ``Log``), ``<file>#<n>`` (the n-th record of a JSON array — a
StreamAlert sample's ``data`` is unwrapped —, of ``{"Records": [...]}`` or of JSON lines). Referenced records
without ``eventTime`` (Panther trims some) get :data:`DEFAULT_TIME`. When the data root or the file is
missing, the case is skipped, not failed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

import orjson
import yaml

from cloudsoc.detect.alert import Alert
from cloudsoc.detect.engine import Detector, RuleIndex
from cloudsoc.detect.rule import Rule
from cloudsoc.errors import ConfigError, ParseError, PluginError
from cloudsoc.parsers.base import Parser
from cloudsoc.plugins import Registry

TESTS_SUFFIX: Final = ".tests.yml"
DEFAULT_TIME: Final = "2024-01-01T00:00:00Z"
_ITEM_KEYS: Final = frozenset({"record", "ref", "repeat", "every_secs", "vary", "set", "enrich"})
_CASE_KEYS: Final = frozenset({"name", "rule", "expect", "records", "ref", "format", "matched", "alerts", "why"})
_TIME_KEYS: Final = ("eventTime", "@timestamp")
_ID_KEYS: Final = ("eventID", "eventId")

Status = Literal["pass", "fail", "skip"]


@dataclass(frozen=True, slots=True)
class RuleCase:
    """One test case: events, the rule they are for, and whether it must fire."""

    name: str
    rule: str
    expect: Literal["fire", "quiet"]
    records: list[Any]
    source: str = ""  # file:line of the case
    format: str | None = None
    matched: dict[str, Any] = field(default_factory=dict)
    alerts: int | None = None
    why: str = ""  # what the case shows, for people reading the file
    base_dir: str = ""  # the case file's directory (relative ``ref`` paths are tried there too)


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: RuleCase
    status: Status
    reason: str = ""
    alerts: list[Alert] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "pass"


class _Missing(Exception):
    """Referenced test data is not there (skip the case)."""


# ------------------------------------------------------------------------------------------------- loading


def load_cases(path: Path) -> list[RuleCase]:
    """The cases of one ``*.tests.yml`` file; ConfigError (with ``file:line``) when the file is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read rule tests: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise ConfigError(f"{path}:1: rule tests need a top-level `cases:` list")
    lines = _item_lines(node)
    cases: list[RuleCase] = []
    for n, raw in enumerate(data["cases"]):
        where = f"{path}:{lines[n] if n < len(lines) else 1}"
        cases.append(_case(raw, where, str(path.parent)))
    return cases


def _item_lines(node: yaml.Node | None) -> list[int]:
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "cases" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _case(raw: object, where: str, base_dir: str) -> RuleCase:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a case is a mapping with name, rule, expect and records (or ref)")
    unknown = set(raw) - _CASE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    name, rule, expect = raw.get("name"), raw.get("rule"), raw.get("expect")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: name: required")
    if not isinstance(rule, str) or not rule:
        raise ConfigError(f"{where}: rule: required (a rule id)")
    if expect not in ("fire", "quiet"):
        raise ConfigError(f"{where}: expect: must be fire or quiet, got {expect!r}")
    records = raw.get("records")
    if records is None:
        records = []
    if not isinstance(records, list):
        raise ConfigError(f"{where}: records: must be a list")
    refs = raw.get("ref")
    if refs is not None:
        records = [{"ref": r} for r in (refs if isinstance(refs, list) else [refs])] + records
    if not records:
        raise ConfigError(f"{where}: give records or ref")
    for item in records:
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: each record is a mapping")
    matched = raw.get("matched") or {}
    count = raw.get("alerts")
    if not isinstance(matched, dict) or (count is not None and not isinstance(count, int)):
        raise ConfigError(f"{where}: matched must be a mapping and alerts a number")
    fmt = raw.get("format")
    return RuleCase(
        name=name,
        rule=rule,
        expect=expect,
        records=records,
        source=where,
        format=str(fmt) if fmt else None,
        matched=matched,
        alerts=count,
        why=str(raw.get("why") or ""),
        base_dir=base_dir,
    )


def case_file(source: str | Path) -> Path | None:
    """The test file beside a rule's source file (``x.py``/``x.yml`` → ``x.tests.yml``), if there is one."""
    path = Path(source)
    if not path.suffix:
        return None
    beside = path.with_name(path.stem + TESTS_SUFFIX)
    return beside if beside.is_file() else None


def collect_cases(rules: Iterable[Rule]) -> list[RuleCase]:
    """Every case of every test file beside the given rules' sources (each file once)."""
    seen: dict[Path, None] = {}
    for rule in rules:
        found = case_file(rule.source) if rule.source else None
        if found is not None:
            seen.setdefault(found.resolve(), None)
    cases: list[RuleCase] = []
    for path in seen:
        cases.extend(load_cases(path))
    return cases


# ------------------------------------------------------------------------------------------------- running


def run_cases(rules: Iterable[Rule], cases: Sequence[RuleCase], *, data_root: Path | None = None) -> list[CaseResult]:
    """Run each case through its rule alone (``RuleIndex`` + ``Detector``), with fresh state per case."""
    by_id = {rule.id: rule for rule in rules}
    parsers = _Parsers()
    results: list[CaseResult] = []
    for case in cases:
        rule = by_id.get(case.rule)
        if rule is None:
            results.append(CaseResult(case, "fail", f"no rule with id {case.rule!r}"))
            continue
        try:
            docs = [doc for item in case.records for doc in _docs(item, case, parsers, data_root)]
        except _Missing as exc:
            results.append(CaseResult(case, "skip", f"test data not available: {exc}"))
            continue
        except (ParseError, ConfigError, PluginError) as exc:
            results.append(CaseResult(case, "fail", f"bad test record: {exc}"))
            continue
        results.append(_run(rule, case, docs))
    return results


def _run(rule: Rule, case: RuleCase, docs: list[dict[str, Any]]) -> CaseResult:
    enabled = rule.enabled
    rule.enabled = True
    rule.reset()
    try:
        index = RuleIndex([rule])
        matches = index.select(docs)
        alerts = Detector(index).process(matches)
    finally:
        rule.reset()
        rule.enabled = enabled
    if case.expect == "quiet":
        if alerts:
            return CaseResult(case, "fail", f"fired but must stay quiet: {_explain(alerts[0])}", alerts)
        return CaseResult(case, "pass", f"quiet ({len(matches)} of {len(docs)} events selected)", alerts)
    if not alerts:
        if not matches:
            reason = f"no alert: the rule's selector accepted none of the {len(docs)} event(s)"
        else:
            reason = (
                f"no alert: {len(matches)} of {len(docs)} event(s) selected, but the rule's state reported "
                "nothing (threshold, window or learning period not reached)"
            )
        return CaseResult(case, "fail", reason)
    if case.alerts is not None and len(alerts) != case.alerts:
        return CaseResult(case, "fail", f"expected {case.alerts} alert(s), got {len(alerts)}", alerts)
    missing = _missing_matched(case.matched, alerts)
    if missing:
        return CaseResult(case, "fail", f"alert lacks matched {missing}; it has {_explain(alerts[0])}", alerts)
    return CaseResult(case, "pass", _explain(alerts[0]), alerts)


def _explain(alert: Alert) -> str:
    fields = ", ".join(f"{m.field}={m.value!r}" for m in alert.matched[:8])
    return f"{alert.rule_id} x{alert.count}: {fields}"


def _missing_matched(wanted: Mapping[str, Any], alerts: list[Alert]) -> dict[str, Any]:
    missing: dict[str, Any] = {}
    for key, value in wanted.items():
        if not any(_has(alert, key, value) for alert in alerts):
            missing[key] = value
    return missing


def _has(alert: Alert, key: str, value: Any) -> bool:
    for m in alert.matched:
        if m.field != key:
            continue
        if m.value == value or (isinstance(m.value, list) and value in m.value):
            return True
    return False


# ------------------------------------------------------------------------------------------ records → docs


class _Parsers:
    def __init__(self) -> None:
        registry = Registry("parsers")
        self._registry = registry
        self._by_name: dict[str, Parser] = {}

    def named(self, name: str) -> Parser:
        parser = self._by_name.get(name)
        if parser is None:
            parser = self._by_name[name] = self._registry.load(name)()
        return parser

    def parse(self, record: dict[str, Any], fmt: str | None) -> dict[str, Any]:
        if fmt == "ecs":  # already an ECS document, as the bastion's journal writes them: taken as it is
            return record
        if fmt:
            return self.named(fmt).parse(record)
        for name in self._registry.names():
            parser = self.named(name)
            if parser.matches(record):
                return parser.parse(record)
        raise ParseError("no parser recognises this record (give `format:`)")


def _docs(item: dict[str, Any], case: RuleCase, parsers: _Parsers, data_root: Path | None) -> list[dict[str, Any]]:
    if "record" in item or "ref" in item:
        unknown = set(item) - _ITEM_KEYS
        if unknown:
            raise ConfigError(f"{case.source}: unknown record option(s) {', '.join(sorted(unknown))}")
        if "ref" in item:
            base = _resolve(str(item["ref"]), case, data_root)
            if not any(key in base for key in _TIME_KEYS):
                base["eventTime"] = DEFAULT_TIME
        else:
            base = copy.deepcopy(item["record"])
            if not isinstance(base, dict):
                raise ConfigError(f"{case.source}: record: must be a mapping")
        for path, value in (item.get("set") or {}).items():
            _put(base, str(path), value)
        records = _repeat(base, int(item.get("repeat", 1)), float(item.get("every_secs", 0)), item.get("vary"))
        enrich = item.get("enrich") or {}
    else:
        records, enrich = [copy.deepcopy(item)], {}
    docs = []
    for record in records:
        doc = parsers.parse(record, case.format)
        for path, value in enrich.items():
            _put(doc, str(path), copy.deepcopy(value))
        docs.append(doc)
    return docs


def _repeat(base: dict[str, Any], times: int, every_secs: float, vary: object) -> list[dict[str, Any]]:
    if times <= 1 and not vary:
        return [base]
    start = _time_of(base)
    varied = vary if isinstance(vary, dict) else {}
    out = []
    for n in range(max(times, 1)):
        record = copy.deepcopy(base)
        if start is not None:
            moment = start + timedelta(seconds=every_secs * n)
            record[next(k for k in _TIME_KEYS if k in base)] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        for key in _ID_KEYS:
            if isinstance(record.get(key), str):
                record[key] = f"{record[key]}-{n}"
        for path, values in varied.items():
            if isinstance(values, list) and values:
                _put(record, str(path), values[n % len(values)])
        out.append(record)
    return out


def _time_of(record: dict[str, Any]) -> datetime | None:
    for key in _TIME_KEYS:
        value = record.get(key)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = target
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value


def _resolve(ref: str, case: RuleCase, data_root: Path | None) -> dict[str, Any]:
    """The record a ``file#selector`` reference points to (a deep copy)."""
    file_part, _, selector = ref.partition("#")
    candidates = []
    if data_root is not None:
        candidates.append(data_root / file_part)
    if case.base_dir:
        candidates.append(Path(case.base_dir) / file_part)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise _Missing(f"{file_part} (data root: {data_root})")
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yml", ".yaml"):
        spec = yaml.safe_load(text)
        for test in spec.get("Tests", []) if isinstance(spec, dict) else []:
            if isinstance(test, dict) and test.get("Name") == selector and isinstance(test.get("Log"), dict):
                return copy.deepcopy(test["Log"])
        raise ConfigError(f"{case.source}: {file_part} has no test named {selector!r}")
    if not selector.isdigit():
        raise ConfigError(f"{case.source}: {ref}: select a record of a JSON file by its index (#0, #1, …)")
    number = int(selector)
    try:
        loaded: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        loaded = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(loaded, dict):
        loaded = loaded.get("Records", [loaded])
    if not isinstance(loaded, list) or number >= len(loaded):
        raise ConfigError(f"{case.source}: {ref}: no record #{number}")
    record = loaded[number]
    if isinstance(record, dict) and isinstance(record.get("data"), dict) and "log" in record:
        record = record["data"]  # a StreamAlert sample wraps the event
    if not isinstance(record, dict):
        raise ConfigError(f"{case.source}: {ref}: not a JSON object")
    return copy.deepcopy(record)
