"""ElastAlert ``filter`` lists (Elasticsearch query DSL and Lucene ``query_string``) compiled into predicates.

Each filter is compiled once into a closure over an ECS document that also records the (field, value) pairs that
made it true, so an alert explains itself. Semantics follow Elasticsearch with an ECS index template:

- fields are ``keyword`` (exact and case-sensitive; numbers and booleans compare as the values they are; an IP
  field also matches a CIDR such as ``10.0.0.0/8``), except the free-text fields in :data:`TEXT_FIELDS`, which
  are analysed like the ``standard`` analyser (lower-cased words) unless named with ``.keyword``;
- an array matches when one of its values matches; null values do not exist;
- ``range`` compares numbers as numbers, ISO dates (and ``now-1d/d`` date math, against the wall clock) as
  times, IPs as addresses, and other strings lexicographically.

While compiling, the filter also yields the ``event.action`` / ``event.dataset`` values an event must have to
match (the rule index uses them so that an event meets only rules that can match it).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from cloudsoc.detect.elastalert import lucene
from cloudsoc.detect.elastalert.fields import base_name, leaves, values_of

Hit = tuple[str, object]
# A compiled node: true or false for a document, appending the (field, value) pairs that made it true.
Predicate = Callable[[Mapping[str, Any], list[Hit]], bool]
# A test of one leaf value.
ValueTest = Callable[[Any], bool]
# (lower-cased event.action values, event.dataset values) of which a matching event has one; None: any.
Pins = tuple[frozenset[str] | None, frozenset[str] | None]

# Free-text fields (ECS `match_only_text`, and Logstash's `message`): matched word by word, case-insensitively.
TEXT_FIELDS: Final = frozenset({"message", "@message", "error.message"})
# Where our parsers keep a trail's original record; a field under one of these exists only in that dataset.
_DATASET_ROOTS: Final = ("aws.cloudtrail", "aliyun.actiontrail")
_NO_PINS: Final[Pins] = (None, None)
_WORD: Final = re.compile(r"\w+")
_DATE_MATH: Final = re.compile(
    r"^(?:now|(?P<anchor>.+?)\|\|)(?P<ops>(?:[+-]\d+[yMwdhHms])*)(?:/(?P<round>[yMwdhHms]))?$"
)
_UNIT_SECS: Final = {"w": 604800, "d": 86400, "h": 3600, "H": 3600, "m": 60, "s": 1}

# Options of query types that change nothing here (scoring, analysis and rewriting knobs).
_IGNORED_OPTIONS: Final = frozenset(
    {
        "boost",
        "_name",
        "analyze_wildcard",
        "allow_leading_wildcard",
        "lenient",
        "time_zone",
        "fuzziness",
        "fuzzy_max_expansions",
        "fuzzy_prefix_length",
        "fuzzy_transpositions",
        "fuzzy_rewrite",
        "auto_generate_synonyms_phrase_query",
        "phrase_slop",
        "quote_analyzer",
        "analyzer",
        "rewrite",
        "max_determinized_states",
        "minimum_should_match",
        "quote_field_suffix",
        "tie_breaker",
        "type",
        "enable_position_increments",
        "escape",
        "format",
        "relation",
        "zero_terms_query",
        "max_expansions",
        "prefix_length",
        "slop",
        "flags",
    }
)


class FilterError(ValueError):
    """A filter that cannot be compiled; the message starts with where it is (``filter[1].bool.must[0]``)."""


@dataclass(frozen=True, slots=True)
class Query:
    """A compiled filter list: the predicate and the index keys it implies."""

    predicate: Predicate
    actions: frozenset[str] | None
    datasets: frozenset[str] | None

    def test(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        hits: list[Hit] = []
        return hits if self.predicate(doc, hits) else None


def compile_filters(filters: Sequence[Any], where: str = "filter") -> Query:
    """Compile ElastAlert's ``filter`` list (its items are ANDed)."""
    if not isinstance(filters, Sequence) or isinstance(filters, (str, bytes)):
        raise FilterError(f"{where}: must be a list of Elasticsearch queries")
    parts = [_dsl(item, f"{where}[{i}]") for i, item in enumerate(filters)]
    predicate, pins = _and(parts)
    return Query(predicate, pins[0], pins[1])


def compile_query(item: Any, where: str) -> Query:
    """Compile one query (for ``match_bucket_filter`` items and tests)."""
    predicate, pins = _dsl(item, where)
    return Query(predicate, pins[0], pins[1])


# -- combinators -------------------------------------------------------------------------------------------------


def _always(_doc: Mapping[str, Any], _hits: list[Hit]) -> bool:
    return True


def _never(_doc: Mapping[str, Any], _hits: list[Hit]) -> bool:
    return False


def _and(parts: Sequence[tuple[Predicate, Pins]]) -> tuple[Predicate, Pins]:
    preds = [p for p, _ in parts if p is not _always]
    pins = _pins_and([pin for _, pin in parts])
    if not preds:
        return _always, pins
    if len(preds) == 1:
        return preds[0], pins

    def test(doc: Mapping[str, Any], hits: list[Hit]) -> bool:
        mark = len(hits)
        for pred in preds:
            if not pred(doc, hits):
                del hits[mark:]
                return False
        return True

    return test, pins


def _bool(
    musts: Sequence[tuple[Predicate, Pins]],
    shoulds: Sequence[tuple[Predicate, Pins]],
    must_nots: Sequence[Predicate],
    min_should: int,
) -> tuple[Predicate, Pins]:
    must_preds = [p for p, _ in musts]
    should_preds = [p for p, _ in shoulds]
    pins = _pins_and([pin for _, pin in musts])
    if min_should > 0:
        pins = _pins_and([pins, _pins_or([pin for _, pin in shoulds])])
    if min_should > len(should_preds):
        return _never, _NO_PINS

    def test(doc: Mapping[str, Any], hits: list[Hit]) -> bool:
        mark = len(hits)
        for pred in must_preds:
            if not pred(doc, hits):
                del hits[mark:]
                return False
        for pred in must_nots:
            if pred(doc, []):
                del hits[mark:]
                return False
        if min_should > 0:
            found = 0
            for pred in should_preds:
                if pred(doc, hits):
                    found += 1
                    if found >= min_should:
                        break
            if found < min_should:
                del hits[mark:]
                return False
        return True

    return test, pins


def _pins_and(pins: Sequence[Pins]) -> Pins:
    out: list[frozenset[str] | None] = [None, None]
    for pin in pins:
        for i in (0, 1):
            value = pin[i]
            if value is not None:
                current = out[i]
                out[i] = value if current is None else current & value
    return out[0], out[1]


def _pins_or(pins: Sequence[Pins]) -> Pins:
    if not pins:
        return _NO_PINS
    out: list[frozenset[str] | None] = []
    for i in (0, 1):
        values = [pin[i] for pin in pins]
        if any(v is None for v in values):
            out.append(None)
        else:
            merged: frozenset[str] = frozenset()
            for v in values:
                assert v is not None
                merged |= v
            out.append(merged)
    return out[0], out[1]


def _leaf_pins(field: str, exact: Sequence[Any] | None) -> Pins:
    name = base_name(field)
    actions: frozenset[str] | None = None
    datasets: frozenset[str] | None = None
    if exact is not None:
        if name == "event.action":
            actions = frozenset(_text(v).lower() for v in exact)
        elif name == "event.dataset":
            datasets = frozenset(_text(v) for v in exact)
        elif name in ("aws.cloudtrail.eventName", "aliyun.actiontrail.eventName"):
            actions = frozenset(_text(v).lower() for v in exact)
    for root in _DATASET_ROOTS:
        if name.startswith(root + "."):
            datasets = frozenset({root}) if datasets is None else datasets & {root}
    return actions, datasets


# -- leaves ------------------------------------------------------------------------------------------------------


def _field(name: str, keyword: ValueTest, text: ValueTest | None = None) -> Predicate:
    """A predicate true when one value of field ``name`` passes the test for its kind (keyword or text)."""
    if "*" in name:
        return _field_pattern(name, keyword, text)
    test = text if text is not None and name in TEXT_FIELDS else keyword
    values = values_of(name)
    label = base_name(name)

    def pred(doc: Mapping[str, Any], hits: list[Hit]) -> bool:
        for value in values(doc):
            if test(value):
                hits.append((label, value))
                return True
        return False

    return pred


def _field_pattern(pattern: str, keyword: ValueTest, text: ValueTest | None) -> Predicate:
    """Fields named by a pattern (``user.*``, or ``*`` for every field: query_string's default)."""
    regex = re.compile(lucene.wildcard_regex(pattern) or re.escape(pattern))

    def pred(doc: Mapping[str, Any], hits: list[Hit]) -> bool:
        for name, value in leaves(doc):
            if not regex.fullmatch(name):
                continue
            test = text if text is not None and name in TEXT_FIELDS else keyword
            if test(value):
                hits.append((name, value))
                return True
        return False

    return pred


def _exists(name: str) -> Predicate:
    if "*" in name:
        return _field_pattern(name, lambda _v: True, None)
    values = values_of(name)
    label = base_name(name)

    def pred(doc: Mapping[str, Any], hits: list[Hit]) -> bool:
        found = values(doc)
        if found:
            hits.append((label, found[0]))
            return True
        return False

    return pred


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(value, str) or not value or not (value[0].isdigit() or ":" in value):
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if not isinstance(value, str) or "/" not in value:
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _equals(query: Any, case_insensitive: bool = False) -> ValueTest:
    """Keyword equality of a leaf value with a query value, coerced as Elasticsearch coerces to the field type."""
    if isinstance(query, (dict, list)) or query is None:
        raise FilterError(f"a value to compare must be a string, number or boolean, not {query!r}")
    want = _text(query)
    want_low = want.lower()
    want_num = _number(query)
    network = _network(want)
    want_ip = _ip(want) if ":" in want else None

    def test(value: Any) -> bool:
        if isinstance(value, str):
            if value == want or (case_insensitive and value.lower() == want_low):
                return True
            if network is not None:
                ip = _ip(value)
                return ip is not None and ip.version == network.version and ip in network
            if want_ip is not None:
                return _ip(value) == want_ip
            return False
        if isinstance(value, bool):
            return _text(value) == want_low
        if isinstance(value, (int, float)):
            return want_num is not None and float(value) == want_num
        return False

    return test


def _tokens(value: Any) -> list[str]:
    return _WORD.findall(_text(value).lower())


def _token_equals(word: str) -> ValueTest:
    """An un-analysed word against an analysed text field (a `term` query on `message`)."""
    return lambda value: word in _tokens(value)


def _analysed(query: Any, require_all: bool) -> ValueTest:
    words = _tokens(query)
    if not words:
        return lambda _value: False

    def test(value: Any) -> bool:
        have = set(_tokens(value))
        return all(w in have for w in words) if require_all else any(w in have for w in words)

    return test


def _phrase(query: Any) -> ValueTest:
    words = _tokens(query)
    size = len(words)

    def test(value: Any) -> bool:
        have = _tokens(value)
        return size > 0 and any(have[i : i + size] == words for i in range(len(have) - size + 1))

    return test


def _regex(pattern: str, flags: int = 0) -> tuple[ValueTest, ValueTest]:
    try:
        regex = re.compile(pattern, flags | re.S)
    except re.error as exc:
        raise FilterError(f"invalid pattern {pattern!r}: {exc}") from None
    word_regex = re.compile(pattern, flags | re.S | re.I)

    def keyword(value: Any) -> bool:
        return regex.fullmatch(_text(value)) is not None

    def text(value: Any) -> bool:
        return any(word_regex.fullmatch(w) for w in _tokens(value))

    return keyword, text


def _now() -> datetime:
    return datetime.now(UTC)


class _Bound:
    """One end of a range, in every form a leaf value may need it."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.text = _text(raw)
        self.number = _number(raw)
        self.ip = _ip(self.text)
        self._fixed: float | None = None
        self._math: re.Match[str] | None = None
        self.is_date = False
        if self.number is None and isinstance(raw, str):
            math = _DATE_MATH.match(raw)
            if math is not None and (raw.startswith("now") or _epoch(math.group("anchor")) is not None):
                self._math = math
                self.is_date = True
            elif _epoch(raw) is not None:
                self._fixed = _epoch(raw)
                self.is_date = True

    def epoch(self) -> float | None:
        if self._fixed is not None:
            return self._fixed
        if self._math is None:
            return None
        return _date_math(self._math)


def _date_math(math: re.Match[str]) -> float | None:
    anchor = math.group("anchor")
    if anchor is None:
        when = _now()
    else:
        start = _epoch(anchor)
        if start is None:
            return None
        when = datetime.fromtimestamp(start, UTC)
    for sign, amount, unit in re.findall(r"([+-])(\d+)([yMwdhHms])", math.group("ops") or ""):
        delta = int(amount) * (1 if sign == "+" else -1)
        if unit == "y":
            when = when.replace(year=when.year + delta)
        elif unit == "M":
            month = when.month - 1 + delta
            when = when.replace(year=when.year + month // 12, month=month % 12 + 1)
        else:
            when = when + timedelta(seconds=delta * _UNIT_SECS[unit])
    unit = math.group("round")
    if unit:
        when = _round_down(when, unit)
    return when.timestamp()


def _round_down(when: datetime, unit: str) -> datetime:
    if unit == "y":
        return when.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        day = when.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - timedelta(days=day.weekday())
    if unit == "d":
        return when.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in ("h", "H"):
        return when.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return when.replace(second=0, microsecond=0)
    return when.replace(microsecond=0)


def _epoch(value: Any) -> float | None:
    """Seconds since the epoch of an ISO 8601 date or time (naive means UTC), or None."""
    if not isinstance(value, str) or len(value) < 4 or not value[:4].isdigit():
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _range(low: Any, high: Any, include_low: bool, include_high: bool) -> ValueTest:
    lo = _Bound(low) if low is not None else None
    hi = _Bound(high) if high is not None else None
    bounds = [b for b in (lo, hi) if b is not None]
    numeric = all(b.number is not None for b in bounds)
    dated = all(b.is_date for b in bounds)
    ips = all(b.ip is not None for b in bounds)

    def inside(value: Any, low_v: Any, high_v: Any) -> bool:
        if low_v is not None and (value < low_v or (value == low_v and not include_low)):
            return False
        return not (high_v is not None and (value > high_v or (value == high_v and not include_high)))

    def test(value: Any) -> bool:
        if not bounds:
            return True
        if isinstance(value, bool):
            value = _text(value)
        if numeric:
            number = _number(value)
            if number is not None:
                return inside(number, lo.number if lo else None, hi.number if hi else None)
        if dated:
            when = float(value) / 1000 if isinstance(value, (int, float)) else _epoch(value)
            if when is not None:
                return inside(when, lo.epoch() if lo else None, hi.epoch() if hi else None)
        if ips:
            ip = _ip(value)
            if ip is not None:
                lo_ip, hi_ip = (lo.ip if lo else None), (hi.ip if hi else None)
                if any(b is not None and b.version != ip.version for b in (lo_ip, hi_ip)):
                    return False
                return inside(ip, lo_ip, hi_ip)
        if isinstance(value, (int, float)):
            return False
        return inside(_text(value), lo.text if lo else None, hi.text if hi else None)

    return test


# -- query DSL ---------------------------------------------------------------------------------------------------


def _one_field(body: Any, kind: str, where: str) -> tuple[str, Any]:
    if not isinstance(body, Mapping):
        raise FilterError(f"{where}: {kind} must be a mapping of one field to its value")
    fields = [k for k in body if k not in ("boost", "_name")]
    if len(fields) != 1:
        raise FilterError(f"{where}: {kind} must name exactly one field, not {len(fields)}")
    return str(fields[0]), body[fields[0]]


def _options(spec: Any, value_keys: Sequence[str], allowed: set[str], where: str) -> tuple[Any, dict[str, Any]]:
    """A leaf's value and options, from ``field: value`` or ``field: {value: v, option: x}``."""
    if not isinstance(spec, Mapping):
        return spec, {}
    unknown = set(spec) - set(value_keys) - allowed - _IGNORED_OPTIONS
    if unknown:
        raise FilterError(f"{where}: unknown option(s) {', '.join(sorted(map(str, unknown)))}")
    for key in value_keys:
        if key in spec:
            return spec[key], dict(spec)
    raise FilterError(f"{where}: needs `{value_keys[0]}`")


def _dsl(item: Any, where: str) -> tuple[Predicate, Pins]:
    if not isinstance(item, Mapping) or not item:
        raise FilterError(f"{where}: must be an Elasticsearch query such as {{term: {{field: value}}}}")
    kinds = [k for k in item if k not in ("boost", "_name")]
    if len(kinds) != 1:
        raise FilterError(f"{where}: one query per item, found {', '.join(map(str, kinds)) or 'none'}")
    kind = str(kinds[0])
    body = item[kind]
    here = f"{where}.{kind}"
    handler = _HANDLERS.get(kind)
    if handler is None:
        raise FilterError(f"{here}: query type {kind!r} is not supported (supported: {', '.join(sorted(_HANDLERS))})")
    return handler(body, here)


def _dsl_list(body: Any, where: str) -> list[tuple[Predicate, Pins]]:
    if body is None:
        return []
    items = body if isinstance(body, list) else [body]
    return [_dsl(sub, f"{where}[{i}]") for i, sub in enumerate(items)]


def _q_term(body: Any, where: str) -> tuple[Predicate, Pins]:
    name, spec = _one_field(body, "term", where)
    value, opts = _options(spec, ("value",), {"case_insensitive"}, where)
    ci = bool(opts.get("case_insensitive", False))
    keyword = _equals(value, ci)
    text = _token_equals(_text(value).lower() if ci else _text(value))
    return _field(name, keyword, text), _leaf_pins(name, None if ci else [value])


def _q_terms(body: Any, where: str) -> tuple[Predicate, Pins]:
    name, values = _one_field(body, "terms", where)
    if isinstance(values, Mapping):
        raise FilterError(f"{where}: terms lookup (index/id/path) needs Elasticsearch and is not supported")
    if not isinstance(values, list) or not values:
        raise FilterError(f"{where}: terms needs a non-empty list of values")
    tests = [_equals(v) for v in values]
    words = {_text(v) for v in values}

    def keyword(value: Any) -> bool:
        return any(t(value) for t in tests)

    def text(value: Any) -> bool:
        return any(w in words for w in _tokens(value))

    return _field(name, keyword, text), _leaf_pins(name, values)


def _q_match(body: Any, where: str) -> tuple[Predicate, Pins]:
    name, spec = _one_field(body, "match", where)
    value, opts = _options(spec, ("query",), {"operator"}, where)
    operator = str(opts.get("operator", "or")).lower()
    if operator not in ("or", "and"):
        raise FilterError(f"{where}: operator must be `or` or `and`")
    return _field(name, _equals(value), _analysed(value, operator == "and")), _leaf_pins(name, [value])


def _q_match_phrase(body: Any, where: str) -> tuple[Predicate, Pins]:
    name, spec = _one_field(body, "match_phrase", where)
    value, _ = _options(spec, ("query",), set(), where)
    return _field(name, _equals(value), _phrase(value)), _leaf_pins(name, [value])


def _q_wildcard(body: Any, where: str) -> tuple[Predicate, Pins]:
    name, spec = _one_field(body, "wildcard", where)
    value, opts = _options(spec, ("value", "wildcard"), {"case_insensitive"}, where)
    raw = _text(value)
    pattern = lucene.wildcard_regex(raw) or re.escape(raw.replace("\\", ""))
    keyword, text = _regex(pattern, re.I if opts.get("case_insensitive") else 0)
    return _field(name, keyword, text), _leaf_pins(name, None)


def _q_prefix(body: Any, where: str) -> tuple[Predicate, Pins]:
    name, spec = _one_field(body, "prefix", where)
    value, opts = _options(spec, ("value",), {"case_insensitive"}, where)
    keyword, text = _regex(re.escape(_text(value)) + ".*", re.I if opts.get("case_insensitive") else 0)
    return _field(name, keyword, text), _leaf_pins(name, None)


def _q_regexp(body: Any, where: str) -> tuple[Predicate, Pins]:
    name, spec = _one_field(body, "regexp", where)
    value, opts = _options(spec, ("value",), {"case_insensitive"}, where)
    keyword, text = _regex(_text(value), re.I if opts.get("case_insensitive") else 0)
    return _field(name, keyword, text), _leaf_pins(name, None)


def _q_range(body: Any, where: str) -> tuple[Predicate, Pins]:
    name, spec = _one_field(body, "range", where)
    if not isinstance(spec, Mapping):
        raise FilterError(f"{where}: range needs bounds such as {{gte: 10, lt: 20}}")
    allowed = {"gt", "gte", "lt", "lte", "from", "to", "include_lower", "include_upper"}
    unknown = set(spec) - allowed - _IGNORED_OPTIONS
    if unknown:
        raise FilterError(f"{where}: unknown option(s) {', '.join(sorted(map(str, unknown)))}")
    low, include_low = spec.get("from"), bool(spec.get("include_lower", True))
    high, include_high = spec.get("to"), bool(spec.get("include_upper", True))
    if "gt" in spec or "gte" in spec:
        low, include_low = (spec["gte"], True) if "gte" in spec else (spec["gt"], False)
    if "lt" in spec or "lte" in spec:
        high, include_high = (spec["lte"], True) if "lte" in spec else (spec["lt"], False)
    test = _range(low, high, include_low, include_high)
    return _field(name, test), _leaf_pins(name, None)


def _q_exists(body: Any, where: str) -> tuple[Predicate, Pins]:
    if not isinstance(body, Mapping) or not isinstance(body.get("field"), str):
        raise FilterError(f"{where}: exists needs {{field: name}}")
    name = body["field"]
    return _exists(name), _leaf_pins(name, None)


def _q_missing(body: Any, where: str) -> tuple[Predicate, Pins]:
    exists, _ = _q_exists(body, where)

    def pred(doc: Mapping[str, Any], hits: list[Hit]) -> bool:
        return not exists(doc, [])

    return pred, _NO_PINS


def _q_ids(body: Any, where: str) -> tuple[Predicate, Pins]:
    if not isinstance(body, Mapping) or not isinstance(body.get("values"), list):
        raise FilterError(f"{where}: ids needs {{values: [...]}}")
    wanted = {_text(v) for v in body["values"]}
    ids = values_of("_id")
    event_ids = values_of("event.id")

    def pred(doc: Mapping[str, Any], hits: list[Hit]) -> bool:
        for value in ids(doc) or event_ids(doc):
            if _text(value) in wanted:
                hits.append(("event.id", value))
                return True
        return False

    return pred, _NO_PINS


def _q_match_all(body: Any, where: str) -> tuple[Predicate, Pins]:
    return _always, _NO_PINS


def _q_match_none(body: Any, where: str) -> tuple[Predicate, Pins]:
    return _never, _NO_PINS


def _minimum_should(value: Any, count: int, where: str) -> int:
    text = str(value).strip()
    try:
        if text.endswith("%"):
            share = int(text[:-1])
            number = count * abs(share) // 100
            return number if share >= 0 else count - number
        number = int(text)
    except ValueError:
        raise FilterError(f"{where}: minimum_should_match {value!r} is not supported (use a number or a %)") from None
    return number if number >= 0 else max(count + number, 0)


def _q_bool(body: Any, where: str) -> tuple[Predicate, Pins]:
    if not isinstance(body, Mapping):
        raise FilterError(f"{where}: bool needs must / filter / should / must_not")
    unknown = set(body) - {"must", "filter", "should", "must_not", "minimum_should_match", "boost", "_name"}
    if unknown:
        raise FilterError(f"{where}: unknown clause(s) {', '.join(sorted(map(str, unknown)))}")
    musts = _dsl_list(body.get("must"), f"{where}.must") + _dsl_list(body.get("filter"), f"{where}.filter")
    shoulds = _dsl_list(body.get("should"), f"{where}.should")
    nots = [p for p, _ in _dsl_list(body.get("must_not"), f"{where}.must_not")]
    if "minimum_should_match" in body:
        min_should = _minimum_should(body["minimum_should_match"], len(shoulds), where)
    else:
        # Elasticsearch 7+: one should clause is needed only when there is no must/filter clause.
        min_should = 1 if shoulds and not musts else 0
    return _bool(musts, shoulds, nots, min_should)


def _q_legacy_and(body: Any, where: str) -> tuple[Predicate, Pins]:
    items = body.get("filters") if isinstance(body, Mapping) else body
    return _and(_dsl_list(items, where))


def _q_legacy_or(body: Any, where: str) -> tuple[Predicate, Pins]:
    items = body.get("filters") if isinstance(body, Mapping) else body
    return _bool([], _dsl_list(items, where), [], 1)


def _q_legacy_not(body: Any, where: str) -> tuple[Predicate, Pins]:
    # `not: {filter: {...}}` or `not: {...}`.
    inner = body["filter"] if isinstance(body, Mapping) and set(body) == {"filter"} else body
    pred, _ = _dsl(inner, where)
    return _bool([], [], [pred], 0)


def _q_wrapped(body: Any, where: str) -> tuple[Predicate, Pins]:
    # `query: {...}` (ElastAlert unwraps it) and `constant_score: {filter: {...}}`.
    if isinstance(body, Mapping) and set(body) <= {"filter", "boost", "_name"} and "filter" in body:
        return _dsl(body["filter"], where)
    return _dsl(body, where)


def _q_type(body: Any, where: str) -> tuple[Predicate, Pins]:
    # The mapping type filter of Elasticsearch < 7; our documents have no `_type`, so this matches nothing.
    if not isinstance(body, Mapping) or "value" not in body:
        raise FilterError(f"{where}: type needs {{value: name}}")
    return _field("_type", _equals(body["value"])), _NO_PINS


_QUERY_STRING_OPTIONS: Final = frozenset({"query", "default_field", "fields", "default_operator"})


def _q_query_string(body: Any, where: str) -> tuple[Predicate, Pins]:
    if isinstance(body, str):
        body = {"query": body}
    if not isinstance(body, Mapping) or not isinstance(body.get("query"), (str, int, float)):
        raise FilterError(f"{where}: query_string needs {{query: '...'}}")
    unknown = set(body) - _QUERY_STRING_OPTIONS - _IGNORED_OPTIONS
    if unknown:
        raise FilterError(f"{where}: unknown option(s) {', '.join(sorted(map(str, unknown)))}")
    defaults: list[str]
    if isinstance(body.get("fields"), list) and body["fields"]:
        defaults = [base_field_spec(str(f)) for f in body["fields"]]
    else:
        defaults = [base_field_spec(str(body.get("default_field", "*")))]
    try:
        tree = lucene.parse(str(body["query"]), default_operator=str(body.get("default_operator", "OR")))
    except lucene.LuceneError as exc:
        raise FilterError(f"{where}: {body['query']!r}: {exc}") from None
    return _lucene(tree, defaults, where)


def base_field_spec(spec: str) -> str:
    """A query_string field spec without its boost (``title^2``)."""
    return spec.split("^", 1)[0]


def _lucene(node: lucene.Node, defaults: list[str], where: str) -> tuple[Predicate, Pins]:
    if isinstance(node, lucene.Bool):
        musts = [_lucene(c.node, defaults, where) for c in node.clauses if c.occur == "must"]
        shoulds = [_lucene(c.node, defaults, where) for c in node.clauses if c.occur == "should"]
        nots = [_lucene(c.node, defaults, where)[0] for c in node.clauses if c.occur == "must_not"]
        return _bool(musts, shoulds, nots, 1 if shoulds and not musts else 0)
    fields = [node.field] if node.field is not None else defaults
    parts = [_lucene_term(node, name, where) for name in fields]
    if len(parts) == 1:
        return parts[0]
    return _bool([], parts, [], 1)


def _lucene_term(term: lucene.Term, name: str, where: str) -> tuple[Predicate, Pins]:
    kind = term.kind
    if kind == "exists":
        return _exists(name), _leaf_pins(name, None)
    if kind == "term":
        return _field(name, _equals(term.text), _analysed(term.text, True)), _leaf_pins(name, [term.text])
    if kind == "phrase":
        return _field(name, _equals(term.text), _phrase(term.text)), _leaf_pins(name, [term.text])
    if kind in ("wildcard", "regex"):
        try:
            keyword, text = _regex(term.pattern)
        except FilterError as exc:
            raise FilterError(f"{where}: {exc}") from None
        return _field(name, keyword, text), _leaf_pins(name, None)
    return _field(name, _range(term.low, term.high, term.include_low, term.include_high)), _leaf_pins(name, None)


_Handler = Callable[[Any, str], tuple[Predicate, Pins]]
_HANDLERS: Final[dict[str, _Handler]] = {
    "term": _q_term,
    "terms": _q_terms,
    "match": _q_match,
    "match_phrase": _q_match_phrase,
    "wildcard": _q_wildcard,
    "prefix": _q_prefix,
    "regexp": _q_regexp,
    "range": _q_range,
    "exists": _q_exists,
    "missing": _q_missing,
    "ids": _q_ids,
    "match_all": _q_match_all,
    "match_none": _q_match_none,
    "bool": _q_bool,
    "and": _q_legacy_and,
    "or": _q_legacy_or,
    "not": _q_legacy_not,
    "query": _q_wrapped,
    "constant_score": _q_wrapped,
    "query_string": _q_query_string,
    "type": _q_type,
}
