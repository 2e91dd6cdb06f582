"""Threat-intelligence enrichment: look up an event's addresses, domains, URLs and hashes in the indicator
matcher and write ECS ``threat.enrichments``, which rules such as ``threat_intel_source_ip`` read.

The matcher is built off the hot path from the indicator store's active indicators and swapped in whole when the
store changes (another process imported a feed), so enrichment never waits for a build. It holds only the values;
a hit's context (confidence, tags, dates) is read from the store.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cloudsoc.errors import CloudsocError

if TYPE_CHECKING:
    from cloudsoc.intel.allowlist import Allowlist
    from cloudsoc.intel.matcher import Matcher
    from cloudsoc.intel.store import IndicatorStore, StoredIndicator
    from cloudsoc.intel.whois_cache import WhoisCache

# (ECS field, kind of look-up), in the order an enrichment is reported: the first field holding a value names it.
_FIELDS: Final = (
    ("source.ip", "ip"),
    ("destination.ip", "ip"),
    ("client.ip", "ip"),
    ("server.ip", "ip"),
    ("related.ip", "ip"),
    ("dns.question.name", "domain"),
    ("url.domain", "domain"),
    ("destination.domain", "domain"),
    ("url.full", "url"),
    ("url.original", "url"),
    ("file.hash.md5", "hash"),
    ("file.hash.sha1", "hash"),
    ("file.hash.sha256", "hash"),
    ("tls.client.ja3", "hash"),
    ("related.hosts", "domain"),
    ("related.hash", "hash"),
)
# ECS threat.indicator.type values for our indicator types.
_ECS_TYPES: Final = {
    "ipv4": "ipv4-addr",
    "ipv6": "ipv6-addr",
    "cidr": "ipv4-addr",
    "domain": "domain-name",
    "url": "url",
    "md5": "file",
    "sha1": "file",
    "sha256": "file",
    "email": "email-addr",
    "ja3": "x509-certificate",
    "ja4": "x509-certificate",
}


def _group(fields: tuple[tuple[str, str], ...]) -> tuple[tuple[str, tuple[tuple[tuple[str, ...], str, str], ...]], ...]:
    """The fields by their top-level object, in report order: an event lacking ``url`` costs one probe for all
    the ``url.*`` fields, and no path is split per event."""
    groups: dict[str, list[tuple[tuple[str, ...], str, str]]] = {}
    for field, kind in fields:
        top, *rest = field.split(".")
        groups.setdefault(top, []).append((tuple(rest), kind, field))
    return tuple((top, tuple(specs)) for top, specs in groups.items())


_GROUPS: Final = _group(_FIELDS)


def _values(node: Any, rest: tuple[str, ...]) -> list[str]:
    for key in rest:
        if type(node) is not dict:
            return []
        node = node.get(key)
        if node is None:
            return []
    if type(node) is str:
        return [node]
    if type(node) is list:
        return [v for v in node if type(v) is str]
    return []


def _iso(t: datetime | None) -> str | None:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t is not None else None


def enrichment(found: StoredIndicator, field: str, atomic: str) -> dict[str, Any]:
    """One ECS ``threat.enrichments`` entry: the indicator with its context, and what in the event matched."""
    ind = found.indicator
    indicator: dict[str, Any] = {
        "type": _ECS_TYPES.get(ind.type.value, ind.type.value),
        "name": ind.value,
        "confidence": ind.confidence,
        "provider": ind.source,
        "first_seen": _iso(ind.first_seen),
        "last_seen": _iso(ind.last_seen),
    }
    if ind.type.value in ("ipv4", "ipv6", "cidr"):
        indicator["ip"] = atomic
    if ind.description:
        indicator["description"] = ind.description
    if ind.tlp is not None:
        indicator["marking"] = {"tlp": ind.tlp.value.upper()}
    if ind.tags:
        indicator["tags"] = ind.tags
    return {
        "indicator": indicator,
        "matched": {"atomic": atomic, "field": field, "type": "indicator_match_rule", "id": f"{ind.type}:{ind.value}"},
        "feed": {"name": ind.source},
        # Not ECS: what the indicator is (c2, scanner, …), which ECS has no field for.
        "cloudsoc": {"intel_types": ind.intel_types, "detect": ind.detect},
    }


def _already(doc: Mapping[str, Any]) -> set[tuple[str, str]]:
    threat = doc.get("threat")
    entries = threat.get("enrichments") if type(threat) is dict else None
    if type(entries) is not list:
        return set()
    seen = set()
    for entry in entries:
        if type(entry) is dict and type(entry.get("feed")) is dict and type(entry.get("indicator")) is dict:
            seen.add((str(entry["feed"].get("name")), str(entry["indicator"].get("name"))))
    return seen


def allowlist(store: IndicatorStore) -> Allowlist:
    """The shipped warninglists plus the store's local allow entries (analyst false positives)."""
    from cloudsoc.intel.allowlist import Allowlist

    local = store.allow_entries()
    if not local:
        return Allowlist.default()
    allow = Allowlist.from_warninglists()
    for value, reason in local.items():
        allow.add(value, reason)
    return allow


class IntelEnricher:
    """Adds ``threat.enrichments`` to documents whose observables are active indicators."""

    name = "intel"

    def __init__(self, matcher: Matcher, whois: WhoisCache | None = None) -> None:
        self.matcher = matcher
        self.whois = whois
        self.hits = 0

    def enrich(self, docs: Iterable[dict[str, Any]]) -> int:
        """Enrich ``docs`` in place; returns how many got at least one enrichment."""
        matcher = self.matcher
        lookups = {"ip": matcher.ip, "domain": matcher.domain, "url": matcher.url, "hash": matcher.hash}
        enriched = 0
        for doc in docs:
            entries: list[dict[str, Any]] | None = None
            seen: set[tuple[str, str]] | None = None
            probed: list[tuple[str, str]] = []
            for top, specs in _GROUPS:
                node = doc.get(top)
                if node is None:
                    continue
                for rest, kind, field in specs:
                    for value in _values(node, rest):
                        if (kind, value) in probed:
                            continue  # related.ip repeats source.ip: one look-up is enough
                        probed.append((kind, value))
                        for found in lookups[kind](value):
                            if seen is None:
                                seen = _already(doc)
                            key = (found.indicator.source, found.indicator.value)
                            if key in seen:
                                continue  # the same indicator through another field, or enriched before
                            seen.add(key)
                            if entries is None:
                                entries = []
                            entries.append(enrichment(found, field, value))
            if entries:
                if self.whois is not None:
                    self._add_whois(entries)
                threat = doc.get("threat")  # re-enriching a stored event (a hunt) adds only what is new
                if type(threat) is not dict:
                    threat = doc["threat"] = {}
                existing = threat.get("enrichments")
                threat["enrichments"] = (existing if type(existing) is list else []) + entries
                enriched += 1
        self.hits += enriched
        return enriched

    def _add_whois(self, entries: list[dict[str, Any]]) -> None:
        """Whois context for domain and URL hits, from the cache only: a miss asks the daemon's whois chore to
        fetch it (enrichment never waits for the network). Hits are rare, so this costs the hot path nothing."""
        from cloudsoc.intel.whois import domains_of

        assert self.whois is not None
        now = datetime.now(UTC)
        wanted: list[str] = []
        for entry in entries:
            if entry["indicator"]["type"] not in ("domain-name", "url"):
                continue
            for domain in domains_of([entry["matched"]["atomic"]]):
                record = self.whois.get(domain, now=now, stale=True)
                if record is None:
                    wanted.append(domain)
                elif record.state == "known":
                    entry["cloudsoc"]["whois"] = record.summary()
        if wanted:
            # The cache busy or gone is no reason to lose the event: the next hit asks again.
            with contextlib.suppress(CloudsocError, sqlite3.Error):
                self.whois.want(wanted, now=now)


class IntelSource:
    """The current enricher for an indicator store file: rebuilt in a background thread when the file changes
    (checked at most every ``check_secs``), then swapped in; until the first build finishes there is none."""

    def __init__(self, path: Path, *, check_secs: float = 30.0) -> None:
        self.path = path
        self.check_secs = check_secs
        self.current: IntelEnricher | None = None
        self.indicators = 0
        self.built_at: float | None = None
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._building = False
        self._lock = threading.Lock()

    def _file_stamp(self) -> tuple[int, int] | None:
        stamps = []
        for suffix in ("", "-wal"):
            try:
                st = (self.path.parent / (self.path.name + suffix)).stat()
            except FileNotFoundError:
                continue
            stamps.append((st.st_mtime_ns, st.st_size))
        return max(stamps) if stamps else None

    def build(self) -> IntelEnricher | None:
        """Build now (blocking) from the store's active indicators; None when the store does not exist."""
        stamp = self._file_stamp()
        if stamp is None:
            return None
        from cloudsoc.intel.matcher import Matcher
        from cloudsoc.intel.store import READ_CACHE_MB, IndicatorStore

        store = IndicatorStore(self.path, cache_mb=READ_CACHE_MB)
        try:
            allow = allowlist(store)
        except BaseException:
            store.close()
            raise
        # The matcher keeps the store open to read a hit's context, and closes it when it is replaced and dropped.
        matcher = Matcher.from_store(store, datetime.now(UTC), allow)
        enricher = IntelEnricher(matcher, whois=self._whois_cache())
        with self._lock:
            self.current = enricher
            self.indicators = len(matcher)
            self.built_at = time.time()
            self._stamp = stamp
        return enricher

    def _whois_cache(self) -> WhoisCache | None:
        """The home's whois cache, when whois is in use there (the daemon or `intel lookup` created it)."""
        from cloudsoc.intel.whois_cache import WHOIS_FILE, WhoisCache

        path = self.path.parent / WHOIS_FILE
        return WhoisCache(path) if path.exists() else None

    def get(self) -> IntelEnricher | None:
        """The enricher to use now; starts a background rebuild when the store changed since the last build."""
        now = time.monotonic()
        if now - self._checked >= self.check_secs:
            self._checked = now
            stamp = self._file_stamp()
            if stamp is not None and stamp != self._stamp and not self._building:
                self._building = True
                threading.Thread(target=self._rebuild, name="cloudsoc-intel-build", daemon=True).start()
        return self.current

    def _rebuild(self) -> None:
        try:
            self.build()
        finally:
            self._building = False


_SOURCES: dict[str, IntelSource] = {}


def intel_source(path: str) -> IntelSource:
    """One source per store file per process (parser worker processes build their own)."""
    source = _SOURCES.get(path)
    if source is None:
        source = _SOURCES[path] = IntelSource(Path(path))
        source.build()  # the first build happens before the first batch, so no event goes unenriched
    return source
