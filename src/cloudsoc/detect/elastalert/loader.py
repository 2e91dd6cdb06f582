"""Reading an ElastAlert 2 rule file, as it is, into an :class:`ElastalertRule`.

Options are validated once, with messages of the form ``file: rule 'name': what is wrong``. Options that need
Elasticsearch (metric aggregations, terms pre-loading, count/terms queries) or ElastAlert's run loop are either
refused with the reason or accepted with a warning on the rule (``rule.warnings``) saying what they do here.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.elastalert.alerters import AlerterError, AlerterMapper
from cloudsoc.detect.elastalert.fields import value_at
from cloudsoc.detect.elastalert.query import FilterError, Query, compile_filters, compile_query
from cloudsoc.detect.elastalert.rule import TEXT_TYPES, ElastalertRule, ListCheck, TextSpec, TimeSpec
from cloudsoc.detect.elastalert.ruletypes import TYPES, Spec
from cloudsoc.errors import ConfigError

log = logging.getLogger(__name__)

RULE_TYPES: Final = tuple(TYPES)
# Rule types of ElastAlert that compute metrics inside Elasticsearch (aggregation queries): not supported.
_ES_AGGREGATION_TYPES: Final = ("metric_aggregation", "spike_aggregation")
_TIME_UNITS: Final = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1, "milliseconds": 0.001}
# Options of ElastAlert's run loop or of Elasticsearch queries that change nothing for a stream, and why.
_NOTED: Final = {
    "use_count_query": "counts come from the events themselves (use_count_query is ignored)",
    "use_terms_query": "terms come from the events themselves (use_terms_query is ignored)",
    "terms_window_size": "new_term learns its baseline from the stream: terms_window_size cannot pre-load terms",
    "top_count_keys": "top_count_keys needs Elasticsearch and is ignored",
    "generate_kibana_discover_url": "Kibana discover links are not generated",
    "generate_opensearch_discover_url": "OpenSearch discover links are not generated",
    "exponential_realert": "exponential_realert is not supported: realert applies as a fixed interval",
    "match_enhancements": "match_enhancements (Python modules) are not supported and are ignored",
    "scan_entire_timeframe": "scan_entire_timeframe is not needed: windows are kept in memory",
}


def is_elastalert(data: Mapping[str, Any]) -> bool:
    """Whether a YAML mapping is an ElastAlert rule (``type:`` with ``filter``/``index``/``alert`` or a known
    type), not a Sigma rule (``detection``/``logsource``/``correlation``)."""
    if not isinstance(data, Mapping) or any(k in data for k in ("detection", "logsource", "correlation")):
        return False
    kind = data.get("type")
    if not isinstance(kind, str):
        return False
    return kind in TYPES or kind in _ES_AGGREGATION_TYPES or any(k in data for k in ("filter", "index", "alert"))


class _Loader:
    def __init__(self, source: str) -> None:
        self.source = source
        # Relative `import`, `!file` lists, smtp_auth_file and jinja_template_path are relative to the rule file.
        self.path = Path(source) if source and not source.startswith("<") else None
        self.name = ""
        self.warnings: list[str] = []

    def fail(self, what: str) -> ConfigError:
        where = f"rule {self.name!r}: " if self.name else ""
        return ConfigError(f"{self.source}: {where}{what}")

    def warn(self, what: str) -> None:
        if what not in self.warnings:
            self.warnings.append(what)

    # -- YAML ------------------------------------------------------------------------------------------------------

    def parse(self, text: str, source: str) -> dict[str, Any]:
        # ElastAlert expands $VAR and ${VAR} from the environment before parsing (unknown names stay as written).
        try:
            data = yaml.load(os.path.expandvars(text), Loader=_UniqueKeyLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(f"{source}{line}: invalid YAML: {problem}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: an ElastAlert rule must be a YAML mapping of options")
        return data

    def imports(self, rule: dict[str, Any]) -> dict[str, Any]:
        """ElastAlert's ``import``: options of other files under this one's; filters are ANDed."""
        pending = rule.pop("import", None)
        seen: set[Path] = set()
        while pending:
            if self.path is None:
                raise self.fail("import needs the rule to be loaded from a file")
            for item in [pending] if isinstance(pending, str) else list(pending):
                target = Path(str(item))
                if not target.is_absolute():
                    target = self.path.parent / target
                target = target.resolve()
                if target in seen:
                    raise self.fail(f"import {str(item)!r}: imported twice (a loop?)")
                seen.add(target)
                try:
                    loaded = self.parse(target.read_text(encoding="utf-8"), str(target))
                except OSError as exc:
                    raise self.fail(f"import {str(item)!r}: cannot read {target} ({exc.strerror})") from None
                nested = loaded.pop("import", None)
                if "filter" in rule and "filter" in loaded:
                    rule["filter"] = list(loaded["filter"]) + list(rule["filter"])
                loaded.update(rule)
                rule = loaded
                pending = nested
        return rule

    # -- option readers --------------------------------------------------------------------------------------------

    def seconds(self, rule: Mapping[str, Any], option: str, default: float | None = None) -> float | None:
        raw = rule.get(option)
        if raw is None:
            return default
        if not isinstance(raw, Mapping) or not raw:
            raise self.fail(f"{option}: must be a time span such as {{minutes: 5}}")
        total = 0.0
        for unit, amount in raw.items():
            if unit not in _TIME_UNITS:
                raise self.fail(f"{option}: unknown unit {unit!r} (use {', '.join(_TIME_UNITS)})")
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
                raise self.fail(f"{option}.{unit}: must be a number >= 0")
            total += amount * _TIME_UNITS[unit]
        return total

    def number(self, rule: Mapping[str, Any], option: str, *, integer: bool = False, positive: bool = False) -> Any:
        raw = rule.get(option)
        if raw is None:
            return None
        kinds = (int,) if integer else (int, float)
        if isinstance(raw, bool) or not isinstance(raw, kinds):
            raise self.fail(f"{option}: must be {'an integer' if integer else 'a number'}, not {raw!r}")
        if positive and raw <= 0:
            raise self.fail(f"{option}: must be > 0")
        return raw

    def keys(self, rule: Mapping[str, Any], option: str) -> tuple[str, ...]:
        raw = rule.get(option)
        if raw is None:
            return ()
        if isinstance(raw, str) and raw:
            return (raw,)
        if isinstance(raw, list) and all(isinstance(k, str) and k for k in raw):
            return tuple(raw)
        raise self.fail(f"{option}: must be a field name or a list of field names")

    def strings(self, rule: Mapping[str, Any], option: str) -> tuple[str, ...] | None:
        raw = rule.get(option)
        if raw is None:
            return None
        if isinstance(raw, list) and all(isinstance(v, (str, int, float)) for v in raw):
            return tuple(str(v) for v in raw)
        raise self.fail(f"{option}: must be a list of strings")

    def require(self, rule: Mapping[str, Any], kind: str, *options: str) -> None:
        missing = [o for o in options if o not in rule]
        if missing:
            raise self.fail(f"type {kind} needs {', '.join(missing)}")

    # -- the rule ------------------------------------------------------------------------------------------------

    def load(self, text: str) -> ElastalertRule:
        rule = self.imports(self.parse(text, self.source))
        name = rule.get("name")
        if name is None and self.path is not None:
            name = self.path.stem
        if not isinstance(name, str) or not name.strip():
            raise self.fail("name: every rule needs a name (a non-empty string)")
        self.name = name
        kind = rule.get("type")
        if kind in _ES_AGGREGATION_TYPES:
            raise self.fail(
                f"type {kind} is not supported: it computes metric_agg_type over metric_agg_key inside Elasticsearch "
                "(an aggregation query), which an event stream does not have"
            )
        if kind not in TYPES:
            raise self.fail(f"type: must be one of {', '.join(RULE_TYPES)}, not {kind!r}")
        for option, note in _NOTED.items():
            if rule.get(option):
                self.warn(note)
        try:
            query = compile_filters(rule.get("filter") or [], "filter")
        except FilterError as exc:
            raise self.fail(str(exc)) from None
        # A list query_key is compound; ElastAlert's own compound_query_key (with a joined query_key) is too.
        query_key = self.keys(rule, "compound_query_key") or self.keys(rule, "query_key")
        spec = self.spec(rule, str(kind), query_key)
        list_check = self.list_check(rule, str(kind))
        if list_check is not None and list_check.pins_actions:
            listed = frozenset(e.lower() for e in list_check.entries)
            query = Query(query.predicate, listed if query.actions is None else query.actions & listed, query.datasets)
        aggregation = rule.get("aggregation")
        if isinstance(aggregation, Mapping) and "schedule" in aggregation:
            raise self.fail("aggregation.schedule (cron) is not supported: give a window such as {minutes: 10}")
        aggregation_secs = self.seconds(rule, "aggregation", 0.0) or 0.0
        realert_default = 0.0 if aggregation_secs > 0 else 60.0
        realert_secs = self.seconds(rule, "realert", realert_default)
        self.seconds(rule, "query_delay")
        if rule.get("query_delay"):
            self.warn("query_delay is not needed: events are evaluated as they arrive")
        text_spec = self.text_spec(rule, name)
        rule_id = rule_id_of(name)
        title_expr, text_expr = None, None
        if text_spec.subject is not None:
            title_expr = 'text.partition("\\n")[0]'
        if text_spec.alert_text is not None or text_spec.jinja is not None:
            text_expr = 'text.partition("\\n\\n")[2]' if text_spec.subject is not None else "text"
        mapper = AlerterMapper(
            rule_id,
            rule,
            self.path.parent if self.path is not None else None,
            self.warn,
            title_expr=title_expr,
            text_expr=text_expr,
        )
        try:
            outputs = mapper.map(rule.get("alert") or [])
        except AlerterError as exc:
            raise self.fail(f"alert: {exc}") from None
        enabled = rule.get("is_enabled", True)
        built = ElastalertRule(
            query=query,
            ruletype=TYPES[str(kind)](spec, self.key_function(query_key)),
            text=text_spec,
            time=self.time_spec(rule),
            query_key=query_key,
            list_check=list_check,
            realert_secs=realert_secs or 0.0,
            aggregation_secs=aggregation_secs,
            aggregation_key=self.keys(rule, "aggregation_key"),
            output_configs=outputs,
            warnings=self.warnings,
            id=rule_id,
            title=name,
            severity=Severity.parse(rule["priority"]) if "priority" in rule else Severity.MEDIUM,
            tags=tuple(str(t) for t in (rule.get("category"), rule.get("owner")) if t),
            description=str(rule.get("description") or ""),
            source=self.source,
            datasets=query.datasets,
            actions=query.actions,
            outputs=tuple(outputs),
            enabled=bool(enabled),
        )
        for warning in self.warnings:
            log.warning("%s: rule %r: %s", self.source, name, warning)
        return built

    def key_function(self, query_key: tuple[str, ...]) -> Any:
        if not query_key:
            return lambda _doc: ""
        getters = [value_at(field) for field in query_key]
        if len(getters) == 1:
            (getter,) = getters

            def one(doc: Mapping[str, Any]) -> str | None:
                value = getter(doc)
                return None if value is None else str(value)

            return one

        def compound(doc: Mapping[str, Any]) -> str | None:
            # As ElastAlert's process_hits: the values joined with ", " (a missing one is "None").
            return ", ".join(str(getter(doc)) for getter in getters)

        return compound

    def spec(self, rule: dict[str, Any], kind: str, query_key: tuple[str, ...]) -> Spec:
        timeframe = self.seconds(rule, "timeframe")
        values: dict[str, Any] = {
            "name": self.name,
            "type": kind,
            "query_key": ",".join(query_key) if query_key else None,
            "timeframe_secs": timeframe,
        }
        if kind == "frequency":
            self.require(rule, kind, "num_events", "timeframe")
            values["num_events"] = self.number(rule, "num_events", integer=True, positive=True)
            values["attach_related"] = bool(rule.get("attach_related", False))
        elif kind == "flatline":
            self.require(rule, kind, "threshold", "timeframe")
            values["threshold"] = self.number(rule, "threshold", positive=True)
            values["forget_keys"] = bool(rule.get("forget_keys", False))
        elif kind == "spike":
            self.require(rule, kind, "timeframe", "spike_height", "spike_type")
            values["spike_height"] = self.number(rule, "spike_height", positive=True)
            spike_type = rule["spike_type"]
            if spike_type not in ("up", "down", "both"):
                raise self.fail(f"spike_type: must be up, down or both, not {spike_type!r}")
            values["spike_type"] = spike_type
            values["threshold_ref"] = self.number(rule, "threshold_ref") or 0
            values["threshold_cur"] = self.number(rule, "threshold_cur") or 0
            values["alert_on_new_data"] = bool(rule.get("alert_on_new_data", False))
            if rule.get("field_value") is not None:
                values["field_value"] = str(rule["field_value"])
        elif kind == "change":
            self.require(rule, kind, "query_key", "compare_key", "ignore_null")
            values["compare_key"] = self.keys(rule, "compare_key")
            values["ignore_null"] = bool(rule["ignore_null"])
        elif kind == "new_term":
            values.update(self.new_term(rule, query_key))
        elif kind == "cardinality":
            self.require(rule, kind, "timeframe", "cardinality_field")
            if "max_cardinality" not in rule and "min_cardinality" not in rule:
                raise self.fail("type cardinality needs max_cardinality or min_cardinality")
            values["cardinality_field"] = str(rule["cardinality_field"])
            values["max_cardinality"] = self.number(rule, "max_cardinality")
            values["min_cardinality"] = self.number(rule, "min_cardinality")
        elif kind == "percentage_match":
            values.update(self.percentage(rule))
        if timeframe is not None and timeframe <= 0 and kind in ("frequency", "flatline", "spike", "cardinality"):
            raise self.fail("timeframe: must be longer than zero")
        return Spec(**values)

    def new_term(self, rule: Mapping[str, Any], query_key: tuple[str, ...]) -> dict[str, Any]:
        raw = rule.get("fields", list(query_key) if query_key else None)
        if raw is None:
            raise self.fail("type new_term needs fields (or query_key)")
        items = raw if isinstance(raw, list) else [raw]
        fields: list[str | tuple[str, ...]] = []
        for item in items:
            if isinstance(item, str) and item:
                fields.append(item)
            elif isinstance(item, list) and item and all(isinstance(f, str) and f for f in item):
                fields.append(tuple(item))
            else:
                raise self.fail("fields: each entry must be a field name or a list of field names")
        if not fields:
            raise self.fail("fields: must not be empty")
        return {"fields": tuple(fields), "alert_on_missing_field": bool(rule.get("alert_on_missing_field", False))}

    def percentage(self, rule: Mapping[str, Any]) -> dict[str, Any]:
        self.require(rule, "percentage_match", "match_bucket_filter")
        if "min_percentage" not in rule and "max_percentage" not in rule:
            raise self.fail("type percentage_match needs min_percentage or max_percentage")
        bucket = rule["match_bucket_filter"]
        try:
            if isinstance(bucket, list):
                match_bucket = compile_filters(bucket, "match_bucket_filter")
            else:
                match_bucket = compile_query(bucket, "match_bucket_filter")
        except FilterError as exc:
            raise self.fail(str(exc)) from None
        bucket_secs = self.seconds(rule, "bucket_interval") or self.seconds(rule, "buffer_time") or 900.0
        if bucket_secs <= 0:
            raise self.fail("bucket_interval / buffer_time: must be longer than zero")
        return {
            "match_bucket": match_bucket,
            "min_percentage": self.number(rule, "min_percentage"),
            "max_percentage": self.number(rule, "max_percentage"),
            "min_denominator": self.number(rule, "min_denominator", integer=True) or 0,
            "bucket_secs": bucket_secs,
        }

    def list_check(self, rule: Mapping[str, Any], kind: str) -> ListCheck | None:
        if kind not in ("blacklist", "whitelist"):
            return None
        if kind == "blacklist":
            self.require(rule, kind, "compare_key", "blacklist")
        else:
            self.require(rule, kind, "compare_key", "whitelist", "ignore_null")
        raw = rule[kind]
        if not isinstance(raw, list):
            raise self.fail(f"{kind}: must be a list of values (or `!file /path` entries)")
        entries: set[str] = set()
        patterns: list[re.Pattern[str]] = []
        for item in raw:
            text = str(item)
            if text.startswith("!file"):
                entries.update(self.list_file(text[len("!file") :].strip(), kind))
            elif len(text) > 1 and text.startswith("/") and text.endswith("/"):
                try:
                    patterns.append(re.compile(text[1:-1]))
                except re.error as exc:
                    raise self.fail(f"{kind}: invalid regular expression {text!r}: {exc}") from None
            else:
                entries.add(text)
        return ListCheck(
            whitelist=kind == "whitelist",
            keys=self.keys(rule, "compare_key"),
            entries=frozenset(entries),
            patterns=tuple(patterns),
            ignore_null=bool(rule.get("ignore_null", False)),
        )

    def list_file(self, name: str, kind: str) -> list[str]:
        if not name:
            raise self.fail(f"{kind}: `!file` needs a path")
        path = Path(name)
        candidates = [path] if path.is_absolute() else []
        if not path.is_absolute():
            if self.path is not None:
                candidates.append(self.path.parent / path)
            candidates.append(path)
        for candidate in candidates:
            if candidate.is_file():
                try:
                    return [line.rstrip("\r\n") for line in candidate.read_text(encoding="utf-8").splitlines()]
                except (OSError, UnicodeDecodeError) as exc:
                    raise self.fail(f"{kind}: cannot read {candidate} ({type(exc).__name__})") from None
        raise self.fail(f"{kind}: list file {name!r} not found")

    def time_spec(self, rule: Mapping[str, Any]) -> TimeSpec:
        kind = str(rule.get("timestamp_type", "iso")).strip().lower()
        if kind not in ("iso", "unix", "unix_ms", "custom"):
            raise self.fail(f"timestamp_type: must be iso, unix, unix_ms or custom, not {kind!r}")
        return TimeSpec(
            field=str(rule.get("timestamp_field", "@timestamp")),
            type=kind,
            format=str(rule.get("timestamp_format", "%Y-%m-%dT%H:%M:%SZ")),
        )

    def text_spec(self, rule: Mapping[str, Any], name: str) -> TextSpec:
        text_type = str(rule.get("alert_text_type", "default"))
        if text_type not in TEXT_TYPES:
            raise self.fail(f"alert_text_type: must be one of {', '.join(sorted(TEXT_TYPES))}")
        alert_text = rule.get("alert_text")
        if alert_text is not None:
            alert_text = str(alert_text)
        kw = rule.get("alert_text_kw")
        if kw is not None and not (isinstance(kw, Mapping) and all(isinstance(v, str) for v in kw.values())):
            raise self.fail("alert_text_kw: must map field names to format names")
        jinja_template: jinja2.Template | None = None
        if text_type == "alert_text_jinja":
            source = alert_text or ""
            if rule.get("jinja_template_path"):
                source = self.read_relative(str(rule["jinja_template_path"]), "jinja_template_path")
            try:
                jinja_template = SandboxedEnvironment().from_string(source)
            except jinja2.TemplateSyntaxError as exc:
                raise self.fail(f"alert_text: invalid Jinja2 template: line {exc.lineno}: {exc.message}") from None
        subject = rule.get("alert_subject")
        max_len = self.number(rule, "alert_subject_max_len", integer=True, positive=True) or 2048
        spec = TextSpec(
            name=name,
            options=rule,
            alert_text=alert_text,
            text_args=self.strings(rule, "alert_text_args"),
            text_kw={str(k): v for k, v in kw.items()} if kw is not None else None,
            text_type=text_type,
            jinja=jinja_template,
            jinja_root=str(rule.get("jinja_root_name", "_data")),
            subject=str(subject) if subject is not None else None,
            subject_args=self.strings(rule, "alert_subject_args"),
            subject_max_len=max_len,
            missing=str(rule.get("alert_missing_value", "<MISSING VALUE>")),
            include=self.strings(rule, "include") or (),
            summary_fields=self.keys(rule, "summary_table_fields"),
            summary_prefix=str(rule.get("summary_prefix", "")),
            summary_suffix=str(rule.get("summary_suffix", "")),
            summary_max_rows=self.number(rule, "summary_table_max_rows", integer=True, positive=True),
        )
        self.check_format(spec)
        return spec

    def check_format(self, spec: TextSpec) -> None:
        """A format string that cannot take its arguments fails now, not at the first alert."""
        for option, template, args in (
            ("alert_text", spec.alert_text, spec.text_args),
            ("alert_subject", spec.subject, spec.subject_args),
        ):
            if template is None or spec.text_type == "alert_text_jinja":
                continue
            try:
                if args is not None:
                    template.format(*["x"] * len(args))
                elif option == "alert_text" and spec.text_kw is not None:
                    template.format(**dict.fromkeys(spec.text_kw.values(), "x"))
            except (IndexError, KeyError, ValueError) as exc:
                raise self.fail(f"{option}: does not format with its arguments: {type(exc).__name__}: {exc}") from None

    def read_relative(self, name: str, option: str) -> str:
        path = Path(name)
        if not path.is_absolute() and self.path is not None:
            path = self.path.parent / path
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise self.fail(f"{option}: cannot read {path} ({type(exc).__name__})") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (YAML silently keeps the last one)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key]})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node, deep=deep))


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def rule_id_of(name: str) -> str:
    """A rule's id: its name, lower-cased, with runs of other characters than letters and digits as ``_``."""
    slug = re.sub(r"[^\w]+", "_", name.casefold()).strip("_")
    return slug or "elastalert_rule"


def load_elastalert(text: str, source: str) -> ElastalertRule:
    """Load one ElastAlert rule file's text (``source``: its path, for errors, ``import`` and ``!file`` lists)."""
    return _Loader(source).load(text)
