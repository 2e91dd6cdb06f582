"""ElastAlert's rule types as aggregators over the stream of selected events, in event time.

Each type follows elastalert2's ``ruletypes.py`` (same windows, same comparisons, same resets after a match),
but is fed one event at a time instead of one query result per run: windows slide on the events' own time, and
:meth:`RuleType.tick` (called as event time advances) does what ElastAlert's ``garbage_collect`` does at the end of
every run — closing spike windows, noticing a flatline, dropping stale state.
Where streaming must differ from polling, the docstring of the type says so (``docs/specs/rules-elastalert.md``).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final, NamedTuple

import msgspec
import orjson

from cloudsoc.detect.alert import MAX_ALERT_EVENTS
from cloudsoc.detect.elastalert.fields import value_at
from cloudsoc.detect.elastalert.query import Query
from cloudsoc.detect.rule import Match

# The query key value of an event ("" when the rule has none; None when the event lacks it).
KeyOf = Callable[[Mapping[str, Any]], str | None]
# ElastAlert runs a rule every minute or so; ticks come with every batch, so spike windows (which take a
# placeholder per tick) are advanced at most this often.
SPIKE_TICK_SECS: Final = 60.0


@dataclass(frozen=True, slots=True)
class Spec:
    """The options of a rule that its type reads, validated and converted (seconds, tuples)."""

    name: str
    type: str
    query_key: str | None = None
    timeframe_secs: float | None = None
    num_events: int = 0
    threshold: float = 0
    forget_keys: bool = False
    compare_key: tuple[str, ...] = ()
    ignore_null: bool = False
    spike_height: float = 1.0
    spike_type: str = "both"
    threshold_ref: float = 0
    threshold_cur: float = 0
    alert_on_new_data: bool = False
    field_value: str | None = None
    fields: tuple[str | tuple[str, ...], ...] = ()
    alert_on_missing_field: bool = False
    cardinality_field: str = ""
    max_cardinality: float | None = None
    min_cardinality: float | None = None
    match_bucket: Query | None = None
    min_percentage: float | None = None
    max_percentage: float | None = None
    min_denominator: int = 0
    bucket_secs: float = 900.0
    attach_related: bool = False


@dataclass(slots=True)
class Raised:
    """One ElastAlert match: the events behind it, the one ElastAlert reports (``body``), what ElastAlert adds
    to that match body (``extra``: count, spike_count, old_value …), facts for the alert and ElastAlert's
    one-line description of the match (``get_match_str``)."""

    matches: list[Match]
    body: Match | None
    key: str
    count: int
    at: float
    extra: dict[str, Any] = field(default_factory=dict)
    facts: list[tuple[str, Any]] = field(default_factory=list)
    summary: str = ""


class _Item(NamedTuple):
    at: float
    amount: float
    match: Match | None
    real: bool


class _Window:
    """ElastAlert's EventWindow: items in time order, never spanning ``span`` seconds or more."""

    __slots__ = ("count", "items", "span")

    def __init__(self, span: float) -> None:
        self.span = span
        self.items: deque[_Item] = deque()
        self.count = 0.0

    def add(self, item: _Item) -> list[_Item]:
        """Insert ``item``; returns the items that fell out (oldest first)."""
        items = self.items
        if not items or item.at >= items[-1].at:
            items.append(item)
        else:
            items.insert(bisect_right(items, item.at, key=lambda i: i.at), item)
        self.count += item.amount
        removed: list[_Item] = []
        while items[-1].at - items[0].at >= self.span:
            old = items.popleft()
            self.count -= old.amount
            removed.append(old)
        return removed

    def expire(self, now: float) -> list[_Item]:
        """Drop what is a whole span older than ``now`` (what ElastAlert's zero-count placeholder does)."""
        items = self.items
        removed: list[_Item] = []
        while items and now - items[0].at >= self.span:
            old = items.popleft()
            self.count -= old.amount
            removed.append(old)
        return removed

    def clear(self) -> None:
        self.items.clear()
        self.count = 0.0

    def mean(self) -> float | None:
        real = [i.amount for i in self.items if i.real]
        return sum(real) / len(real) if real else None

    def dump(self) -> list[Any]:
        return [[i.at, i.amount, i.match, i.real] for i in self.items]

    @classmethod
    def load(cls, span: float, raw: list[Any]) -> _Window:
        window = cls(span)
        for at, amount, match, real in raw:
            window.items.append(_Item(at, amount, _match(match), real))
            window.count += amount
        return window


def _match(raw: Any) -> Match | None:
    return None if raw is None else msgspec.convert(raw, Match, strict=False)


def pretty_time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def pretty_span(secs: float) -> str:
    return str(timedelta(seconds=secs))


def _hashable(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


class RuleType:
    """One ElastAlert rule type: folds selected events (and time) into :class:`Raised` matches."""

    name: ClassVar[str] = ""

    def __init__(self, spec: Spec, key_of: KeyOf) -> None:
        self.spec = spec
        self.key_of = key_of

    def observe(self, match: Match, at: float) -> list[Raised]:
        raise NotImplementedError

    def tick(self, now: float) -> list[Raised]:
        return []

    def flush(self, now: float) -> list[Raised]:
        """Whatever is still open at the end of an offline run (percentage buckets)."""
        return []

    def state(self) -> Any:
        return None

    def load(self, state: Any) -> None:
        """Restore what :meth:`state` returned (decoded from JSON)."""

    def reset(self) -> None:
        pass

    def _key(self, match: Match) -> str | None:
        return self.key_of(match.doc)


class AnyType(RuleType):
    """Every selected event is a match (also blacklist and whitelist: their comparison is in the selector)."""

    name = "any"

    def observe(self, match: Match, at: float) -> list[Raised]:
        return [Raised([match], match, self._key(match) or "", 1, at)]


class FrequencyType(RuleType):
    """``num_events`` events within ``timeframe``, per query key; the window restarts after each match."""

    name = "frequency"

    def __init__(self, spec: Spec, key_of: KeyOf) -> None:
        super().__init__(spec, key_of)
        self.windows: dict[str | None, _Window] = {}

    def observe(self, match: Match, at: float) -> list[Raised]:
        key = self._key(match)
        span = self.spec.timeframe_secs or 0.0
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = _Window(span)
        window.add(_Item(at, 1, match, True))
        if window.count < self.spec.num_events:
            return []
        del self.windows[key]
        newest = window.items[-1]
        matches = [i.match for i in window.items if i.match is not None]
        summary = (
            f"At least {self.spec.num_events} events occurred between {pretty_time(newest.at - span)} "
            f"and {pretty_time(newest.at)}"
        )
        return [
            Raised(
                matches,
                newest.match,
                key or "",
                len(matches),
                newest.at,
                facts=[("count", len(matches))],
                summary=summary,
            )
        ]

    def tick(self, now: float) -> list[Raised]:
        span = self.spec.timeframe_secs or 0.0
        for key in [k for k, w in self.windows.items() if now - w.items[-1].at > span]:
            del self.windows[key]
        return []

    def state(self) -> Any:
        return [[k, w.dump()] for k, w in self.windows.items()]

    def load(self, state: Any) -> None:
        span = self.spec.timeframe_secs or 0.0
        self.windows = {k: _Window.load(span, items) for k, items in state}

    def reset(self) -> None:
        self.windows.clear()


class FlatlineType(RuleType):
    """Fewer than ``threshold`` events within ``timeframe`` (per query key, for keys seen at least once).

    Checked on :meth:`tick`. A key is watched for a whole timeframe before it can fire. ElastAlert re-checks on
    every run while the key stays flat; with no runs here, a flat key fires once per timeframe (``realert``
    applies on top), or is forgotten after firing with ``forget_keys``.

    Ticks come from the engine as event time advances. When none came for a whole timeframe before an event
    (a batch spanning hours, or an engine that advances time only with matches), the event first checks the
    silence it ends, so a gap is still reported (when it ends rather than when it began).
    """

    name = "flatline"

    def __init__(self, spec: Spec, key_of: KeyOf) -> None:
        super().__init__(spec, key_of)
        self.windows: dict[str | None, _Window] = {}
        self.first: dict[str | None, float] = {}
        self.last_tick = -math.inf

    def observe(self, match: Match, at: float) -> list[Raised]:
        span = self.spec.timeframe_secs or 0.0
        out = self.tick(at) if at - self.last_tick > span else []
        key = self._key(match)
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = _Window(span)
        window.add(_Item(at, 1, None, True))
        self.first.setdefault(key, at)
        return out

    def tick(self, now: float) -> list[Raised]:
        self.last_tick = max(self.last_tick, now)
        span = self.spec.timeframe_secs or 0.0
        keys: list[str | None] = list(self.windows) or ([] if self.spec.query_key else [""])
        out: list[Raised] = []
        for key in keys:
            window = self.windows.get(key)
            if window is None:
                window = self.windows[key] = _Window(span)
            window.expire(now)
            first = self.first.setdefault(key, now)
            if now - first < span or window.count >= self.spec.threshold:
                continue
            count = int(window.count)
            summary = (
                f"An abnormally low number of events occurred around {pretty_time(now)}.\n"
                f"Between {pretty_time(now - span)} and {pretty_time(now)}, there were less than "
                f"{self.spec.threshold:g} events."
            )
            facts: list[tuple[str, Any]] = [("count", count), ("threshold", self.spec.threshold)]
            if self.spec.query_key:
                facts.insert(0, (self.spec.query_key, key))
            extra = {"key": key or "all", "count": count, "threshold": self.spec.threshold}
            out.append(Raised([], None, key or "", count, now, extra, facts, summary))
            if self.spec.forget_keys:
                self.windows.pop(key, None)
                self.first.pop(key, None)
            else:
                self.first[key] = now
        return out

    def state(self) -> Any:
        return {
            "keys": [[k, w.dump(), self.first.get(k)] for k, w in self.windows.items()],
            "last_tick": self.last_tick if math.isfinite(self.last_tick) else None,
        }

    def load(self, state: Any) -> None:
        span = self.spec.timeframe_secs or 0.0
        self.windows, self.first = {}, {}
        for key, items, first in state["keys"]:
            self.windows[key] = _Window.load(span, items)
            if first is not None:
                self.first[key] = first
        self.last_tick = state["last_tick"] if state["last_tick"] is not None else -math.inf

    def reset(self) -> None:
        self.windows.clear()
        self.first.clear()
        self.last_tick = -math.inf


class SpikeType(RuleType):
    """The current window (the last ``timeframe``) against the reference window (the ``timeframe`` before it).

    As in ElastAlert: nothing fires until two timeframes have passed since a key's first event (unless
    ``alert_on_new_data`` with a ``query_key``, once any key has filled its windows); after a match the reference
    window restarts. The reported event is the oldest one of the current window.
    """

    name = "spike"

    def __init__(self, spec: Spec, key_of: KeyOf) -> None:
        super().__init__(spec, key_of)
        self.refs: dict[str, _Window] = {}
        self.curs: dict[str, _Window] = {}
        self.first: dict[str, float] = {}
        self.skip: dict[str, float] = {}
        self.filled_once = False
        self.last_tick = -math.inf
        self._field_value = value_at(spec.field_value) if spec.field_value is not None else None

    def _spike_key(self, match: Match) -> str:
        if not self.spec.query_key:
            return ""
        key = self._key(match)
        return "other" if key is None else key

    def observe(self, match: Match, at: float) -> list[Raised]:
        qk = self._spike_key(match)
        if self._field_value is None:
            return self._handle(_Item(at, 1, match, True), qk)
        raw = self._field_value(match.doc)
        try:
            count = float(raw)
        except (TypeError, ValueError):
            return []
        return self._handle(_Item(at, count, match, True), qk)

    def tick(self, now: float) -> list[Raised]:
        if now - self.last_tick < SPIKE_TICK_SECS:
            return []
        self.last_tick = now
        out: list[Raised] = []
        for qk in list(self.curs):
            if qk != "" and self.refs[qk].count == 0 and self.curs[qk].count == 0:
                del self.curs[qk], self.refs[qk]
                continue
            out.extend(self._handle(_Item(now, 0, None, False), qk))
        return out

    def _handle(self, item: _Item, qk: str) -> list[Raised]:
        span = self.spec.timeframe_secs or 0.0
        first = self.first.setdefault(qk, item.at)
        ref = self.refs.get(qk)
        if ref is None:
            ref = self.refs[qk] = _Window(span)
        cur = self.curs.get(qk)
        if cur is None:
            cur = self.curs[qk] = _Window(span)
        for old in cur.add(item):
            ref.add(old._replace(match=None))
        if item.at - first < span * 2:
            if not self.filled_once:
                return []
            if not (self.spec.query_key and self.spec.alert_on_new_data):
                return []
            if qk in self.skip and item.at < self.skip[qk]:
                return []
        else:
            self.filled_once = True
        if self.spec.field_value is None:
            ref_value: float | None = ref.count
            cur_value: float | None = cur.count
        else:
            ref_value, cur_value = ref.mean(), cur.mean()
        if not self._spiked(ref_value, cur_value):
            return []
        chosen = cur.items[-1]
        for candidate in cur.items:
            if candidate.real if self.spec.field_value is not None else candidate.amount:
                chosen = candidate
                break
        matches = [i.match for i in cur.items if i.match is not None]
        extra = {"spike_count": cur_value, "reference_count": ref_value}
        if self.spec.field_value is None:
            summary = (
                f"An abnormal number ({cur_value:g}) of events occurred around {pretty_time(chosen.at)}.\n"
                f"Preceding that time, there were only {ref_value:g} events within {pretty_span(span)}"
            )
        else:
            summary = (
                f"An abnormal average value ({cur_value:.2f}) of field '{self.spec.field_value}' occurred around "
                f"{pretty_time(chosen.at)}.\nPreceding that time, the field had an average value of "
                f"({ref_value:.2f}) within {pretty_span(span)}"
            )
        raised = Raised(
            matches,
            chosen.match,
            qk,
            len(matches),
            item.at,
            extra,
            [("spike_count", cur_value), ("reference_count", ref_value)],
            summary,
        )
        ref.clear()
        self.first.pop(qk, None)
        self.skip[qk] = chosen.at + span * 2
        return [raised]

    def _spiked(self, ref: float | None, cur: float | None) -> bool:
        spec = self.spec
        if spec.field_value is None:
            assert ref is not None and cur is not None
            if cur < spec.threshold_cur or ref < spec.threshold_ref:
                return False
        elif not ref or not cur:
            return False
        assert ref is not None and cur is not None
        down = cur <= ref / spec.spike_height
        up = cur >= ref * spec.spike_height
        return (spec.spike_type in ("both", "up") and up) or (spec.spike_type in ("both", "down") and down)

    def state(self) -> Any:
        return {
            "windows": [[k, self.refs[k].dump(), self.curs[k].dump()] for k in self.curs],
            "first": list(self.first.items()),
            "skip": list(self.skip.items()),
            "filled_once": self.filled_once,
            "last_tick": self.last_tick if math.isfinite(self.last_tick) else None,
        }

    def load(self, state: Any) -> None:
        span = self.spec.timeframe_secs or 0.0
        self.refs, self.curs = {}, {}
        for key, ref, cur in state["windows"]:
            self.refs[key] = _Window.load(span, ref)
            self.curs[key] = _Window.load(span, cur)
        self.first = dict(state["first"])
        self.skip = dict(state["skip"])
        self.filled_once = bool(state["filled_once"])
        self.last_tick = state["last_tick"] if state["last_tick"] is not None else -math.inf

    def reset(self) -> None:
        self.refs.clear()
        self.curs.clear()
        self.first.clear()
        self.skip.clear()
        self.filled_once = False
        self.last_tick = -math.inf


class ChangeType(RuleType):
    """The ``compare_key`` value(s) of a query key differ from that key's previous event (within ``timeframe``)."""

    name = "change"

    def __init__(self, spec: Spec, key_of: KeyOf) -> None:
        super().__init__(spec, key_of)
        self.previous: dict[str | None, list[Any]] = {}
        self.when: dict[str | None, float] = {}
        self._compare = [value_at(name) for name in spec.compare_key]

    def observe(self, match: Match, at: float) -> list[Raised]:
        key = self._key(match)
        values = [get(match.doc) for get in self._compare]
        if self.spec.ignore_null and any(not isinstance(v, bool) and not v for v in values):
            return []
        changed = False
        old = self.previous.get(key)
        if old is not None:
            changed = old != values
            if changed and key in self.when and self.spec.timeframe_secs is not None:
                changed = at - self.when[key] <= self.spec.timeframe_secs
        self.previous[key] = values
        if self.spec.timeframe_secs is not None:
            self.when[key] = at
        if not changed:
            return []
        assert old is not None
        names = ", ".join(self.spec.compare_key)
        summary = f"{names} changed from {_show(old)} to {_show(values)}"
        if self.spec.query_key:
            summary = f"{self.spec.query_key} {key}: {summary}"
        facts = [(name, value) for name, value in zip(self.spec.compare_key, values, strict=True)]
        extra = {"old_value": old, "new_value": values}
        return [Raised([match], match, key or "", 1, at, extra, facts, summary)]

    def state(self) -> Any:
        return [[k, v, self.when.get(k)] for k, v in self.previous.items()]

    def load(self, state: Any) -> None:
        self.previous, self.when = {}, {}
        for key, values, when in state:
            self.previous[key] = values
            if when is not None:
                self.when[key] = when

    def reset(self) -> None:
        self.previous.clear()
        self.when.clear()


def _show(values: list[Any]) -> str:
    return ", ".join("null" if v is None else str(v) for v in values)


class NewTermType(RuleType):
    """A value of a ``fields`` entry (or a combination, for a list entry) not seen before.

    ElastAlert pre-loads the values of the last ``terms_window_size`` from Elasticsearch; here the baseline is
    learnt from the stream (and kept across restarts in the rule's snapshot), so every value is new the first
    time it is seen, as with ElastAlert over an empty index.
    """

    name = "new_term"

    def __init__(self, spec: Spec, key_of: KeyOf) -> None:
        super().__init__(spec, key_of)
        self.seen: dict[str, set[str]] = {}
        self._getters = [
            (entry, [value_at(n) for n in entry] if isinstance(entry, tuple) else [value_at(entry)])
            for entry in spec.fields
        ]

    @staticmethod
    def label(entry: str | tuple[str, ...]) -> str:
        return entry if isinstance(entry, str) else ",".join(entry)

    def observe(self, match: Match, at: float) -> list[Raised]:
        out: list[Raised] = []
        doc = match.doc
        key = self._key(match) or ""
        for entry, getters in self._getters:
            label = self.label(entry)
            value: Any
            if isinstance(entry, tuple):
                parts = [get(doc) for get in getters]
                value = None if any(not p for p in parts) else parts
            else:
                value = getters[0](doc)
            if not value:
                if self.spec.alert_on_missing_field:
                    summary = f"Missing field {label}"
                    out.append(Raised([match], match, key, 1, at, {"missing_field": label}, [], summary))
                continue
            seen = self.seen.setdefault(label, set())
            token = _hashable(value)
            if token in seen:
                continue
            seen.add(token)
            shown = ", ".join(map(str, value)) if isinstance(entry, tuple) else value
            facts = [(label, shown)]
            out.append(Raised([match], match, key, 1, at, {"new_field": label}, facts, f"New {label}: {shown}"))
        return out

    def state(self) -> Any:
        return {label: sorted(values) for label, values in self.seen.items()}

    def load(self, state: Any) -> None:
        self.seen = {label: set(values) for label, values in state.items()}

    def reset(self) -> None:
        self.seen.clear()


class CardinalityType(RuleType):
    """More than ``max_cardinality`` (or, after a whole ``timeframe``, fewer than ``min_cardinality``) distinct
    values of ``cardinality_field`` within ``timeframe``, per query key."""

    name = "cardinality"

    def __init__(self, spec: Spec, key_of: KeyOf) -> None:
        super().__init__(spec, key_of)
        self.cache: dict[str | None, dict[str, float]] = {}
        self.first: dict[str | None, float] = {}
        self._value = value_at(spec.cardinality_field)

    def observe(self, match: Match, at: float) -> list[Raised]:
        key = self._key(match)
        self.cache.setdefault(key, {})
        self.first.setdefault(key, at)
        value = self._value(match.doc)
        if value is None:
            return []
        token = value if isinstance(value, str) else _hashable(value)
        self.cache[key][token] = at
        return self._check(key, at, match, gc=True)

    def _over(self, key: str | None, at: float) -> bool:
        size = len(self.cache[key])
        spec = self.spec
        if spec.max_cardinality is not None and size > spec.max_cardinality:
            return True
        elapsed = at - self.first.get(key, at)
        return spec.min_cardinality is not None and size < spec.min_cardinality and elapsed > (spec.timeframe_secs or 0)

    def _check(self, key: str | None, at: float, match: Match | None, gc: bool) -> list[Raised]:
        if not self._over(key, at):
            return []
        if gc:
            out = self._collect(at)
            return out + self._check(key, at, match, gc=False)
        self.first.pop(key, None)
        spec = self.spec
        size = len(self.cache[key])
        span = spec.timeframe_secs or 0.0
        if spec.max_cardinality is not None:
            summary = (
                f"A maximum of {spec.max_cardinality:g} unique {spec.cardinality_field}(s) occurred since last alert "
                f"or between {pretty_time(at - span)} and {pretty_time(at)}"
            )
        else:
            summary = (
                f"Less than {spec.min_cardinality:g} unique {spec.cardinality_field}(s) occurred since last alert "
                f"or between {pretty_time(at - span)} and {pretty_time(at)}"
            )
        facts: list[tuple[str, Any]] = [("cardinality", size)]
        if spec.query_key:
            facts.insert(0, (spec.query_key, key))
        matches = [match] if match is not None else []
        return [Raised(matches, match, key or "", size, at, {"cardinality": size}, facts, summary)]

    def _collect(self, at: float) -> list[Raised]:
        """ElastAlert's garbage_collect: forget values older than the timeframe; re-check min_cardinality."""
        span = self.spec.timeframe_secs or 0.0
        out: list[Raised] = []
        for key, terms in list(self.cache.items()):
            for term in [t for t, last in terms.items() if at - last > span]:
                del terms[term]
            if self.spec.min_cardinality is not None:
                out.extend(self._check(key, at, None, gc=False))
        return out

    def tick(self, now: float) -> list[Raised]:
        return self._collect(now)

    def state(self) -> Any:
        return [[k, v, self.first.get(k)] for k, v in self.cache.items()]

    def load(self, state: Any) -> None:
        self.cache, self.first = {}, {}
        for key, terms, first in state:
            self.cache[key] = dict(terms)
            if first is not None:
                self.first[key] = first

    def reset(self) -> None:
        self.cache.clear()
        self.first.clear()


@dataclass(slots=True)
class _Bucket:
    matched: int = 0
    other: int = 0
    matched_events: list[Match] = field(default_factory=list)
    other_events: list[Match] = field(default_factory=list)


class PercentageMatchType(RuleType):
    """The share of events that also match ``match_bucket_filter``, per query key and time bucket, outside
    ``min_percentage``/``max_percentage``.

    ElastAlert asks Elasticsearch for the counts of each run's ``buffer_time`` (or ``bucket_interval``); here the
    buckets are consecutive windows of that size aligned on the epoch (as with ``sync_bucket_interval``), closed
    when event time passes their end. An event that arrives after its bucket closed is not counted.
    """

    name = "percentage_match"

    def __init__(self, spec: Spec, key_of: KeyOf) -> None:
        super().__init__(spec, key_of)
        self.buckets: dict[tuple[float, str], _Bucket] = {}
        self.closed_until = -math.inf
        self.late = 0

    def observe(self, match: Match, at: float) -> list[Raised]:
        size = self.spec.bucket_secs
        start = math.floor(at / size) * size
        if start + size <= self.closed_until:
            self.late += 1
            return []
        key = self._key(match) or ""
        bucket = self.buckets.get((start, key))
        if bucket is None:
            bucket = self.buckets[(start, key)] = _Bucket()
        assert self.spec.match_bucket is not None
        if self.spec.match_bucket.test(match.doc) is not None:
            bucket.matched += 1
            if len(bucket.matched_events) < MAX_ALERT_EVENTS:
                bucket.matched_events.append(match)
        else:
            bucket.other += 1
            if len(bucket.other_events) < MAX_ALERT_EVENTS:
                bucket.other_events.append(match)
        return self._close(start)

    def tick(self, now: float) -> list[Raised]:
        return self._close(now)

    def flush(self, now: float) -> list[Raised]:
        return self._close(math.inf)

    def _close(self, now: float) -> list[Raised]:
        size = self.spec.bucket_secs
        done = sorted((s, k) for s, k in self.buckets if s + size <= now)
        if not done:
            return []
        self.closed_until = max(self.closed_until, min(now, max(s for s, _ in done) + size))
        out: list[Raised] = []
        spec = self.spec
        for start, key in done:
            bucket = self.buckets.pop((start, key))
            total = bucket.matched + bucket.other
            if total == 0 or total < spec.min_denominator:
                continue
            share = bucket.matched * 100.0 / total
            too_high = spec.max_percentage is not None and share > spec.max_percentage
            too_low = spec.min_percentage is not None and share < spec.min_percentage
            if not (too_high or too_low):
                continue
            evidence = bucket.matched_events if too_high else bucket.other_events
            extra: dict[str, Any] = {"percentage": share, "denominator": total}
            if spec.query_key:
                extra[spec.query_key] = key
            facts: list[tuple[str, Any]] = [("percentage", round(share, 2)), ("denominator", total)]
            if spec.query_key:
                facts.insert(0, (spec.query_key, key))
            summary = (
                f"Percentage violation, value: {share:g} (min: {_opt(spec.min_percentage)} "
                f"max : {_opt(spec.max_percentage)}) of {total} items (bucket {pretty_time(start)} + "
                f"{pretty_span(size)})"
            )
            out.append(Raised(list(evidence), None, key, total, start + size, extra, facts, summary))
        return out

    def state(self) -> Any:
        return {
            "buckets": [
                [s, k, b.matched, b.other, b.matched_events, b.other_events] for (s, k), b in self.buckets.items()
            ],
            "closed_until": self.closed_until if math.isfinite(self.closed_until) else None,
        }

    def load(self, state: Any) -> None:
        self.buckets = {}
        for start, key, matched, other, matched_events, other_events in state["buckets"]:
            self.buckets[(start, key)] = _Bucket(
                matched,
                other,
                [m for m in map(_match, matched_events) if m is not None],
                [m for m in map(_match, other_events) if m is not None],
            )
        closed = state["closed_until"]
        self.closed_until = closed if closed is not None else -math.inf

    def reset(self) -> None:
        self.buckets.clear()
        self.closed_until = -math.inf
        self.late = 0


def _opt(value: float | None) -> str:
    return "None" if value is None else f"{value:g}"


TYPES: Final[dict[str, type[RuleType]]] = {
    "any": AnyType,
    "blacklist": AnyType,
    "whitelist": AnyType,
    "frequency": FrequencyType,
    "flatline": FlatlineType,
    "spike": SpikeType,
    "change": ChangeType,
    "new_term": NewTermType,
    "cardinality": CardinalityType,
    "percentage_match": PercentageMatchType,
}
