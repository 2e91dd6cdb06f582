"""Retro-hunt: indicators that arrive today, matched against the events stored over the past weeks.

The events are old news, the knowledge is new: a past hit becomes an alert marked *retro*. The matching runs in the
event store, not in Python: the store keeps ``source.ip`` as a number (two 64-bit halves), so exact addresses are a
hash join and CIDRs a range join over the window's distinct addresses, and a month of events costs one aggregate
over two narrow columns. Only the events that matched are read in full; they go through the intel enricher (built
from the hunted indicators, with every allow list) and the ``threat_intel_*`` rules, exactly as the pipeline would
have treated them had the indicators been known then. Alert ids are deterministic, so a second hunt over the same
events raises nothing twice.

Only addresses and networks are hunted: no other observable (domain, URL, hash) is a column of the store, and
finding one inside every stored document would mean decoding a month of them.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import chain
from typing import TYPE_CHECKING, Any, Final

import msgspec

from cloudsoc.intel.indicator import WHITELIST, IndicatorType
from cloudsoc.intel.store import IndicatorStore, StoredIndicator

if TYPE_CHECKING:
    from cloudsoc.home import Home
    from cloudsoc.intel.matcher import Matcher
    from cloudsoc.storage.base import AddressMatches
    from cloudsoc.storage.duckdb import DuckdbStorage

HUNTED_TYPES: Final = (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR)
RULES: Final = "threat_intel_*"
# IPv4 addresses live in ::ffff:0:0/96 of the store's 128-bit address space (as in storage.query).
_V4_MAPPED: Final = 0xFFFF << 32


class IndicatorHits(msgspec.Struct):
    """One indicator's past hits: how many stored events, from how many addresses."""

    type: str
    value: str
    sources: list[str]
    events: int
    addresses: int


class HuntSummary(msgspec.Struct):
    """What a hunt did. ``allowed_events`` matched an indicator in the store but an allow list (a warninglist, a
    whitelist indicator, an analyst's false positive) says the address is benign, so they raise nothing."""

    indicators: int
    since: str
    until: str | None
    events_scanned: int = 0
    events_matched: int = 0
    allowed_events: int = 0
    hits: list[IndicatorHits] = []
    alerts: int = 0
    seconds: float = 0.0


def address_number(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    """An address in the store's ``source_ip_num`` space."""
    return _V4_MAPPED | int(ip) if ip.version == 4 else int(ip)


def network_range(cidr: str) -> tuple[int, int]:
    """A network's first and last address in the store's address space."""
    net = ipaddress.ip_network(cidr, strict=False)
    return address_number(net.network_address), address_number(net.broadcast_address)


def _source_ip(doc: dict[str, Any]) -> str | None:
    source = doc.get("source")
    ip = source.get("ip") if type(source) is dict else None
    return ip if type(ip) is str else None


class RetroHunt:
    """Hunts indicators over one home's stored events and raises retro alerts into its alert store."""

    def __init__(self, home: Home) -> None:
        self.home = home

    def indicators(
        self,
        *,
        now: datetime | None = None,
        types: Sequence[IndicatorType] = HUNTED_TYPES,
        source: str | None = None,
        updated_since: datetime | None = None,
    ) -> list[StoredIndicator]:
        """The active indicators to hunt: addresses and networks meant for detection (not context-only ones),
        all or those of one source, or those an import added or refreshed since a time."""
        wanted = [t for t in types if t in HUNTED_TYPES]
        if not wanted:
            return []
        store = IndicatorStore(self.home.intel_path)
        try:
            rows = store.query(
                types=wanted, source=source, active_at=now or datetime.now(UTC), updated_since=updated_since
            )
        finally:
            store.close()
        return [r for r in rows if r.indicator.detect]

    def run(
        self, indicators: Sequence[StoredIndicator], *, since: datetime, until: datetime | None = None
    ) -> HuntSummary:
        """Hunt ``indicators`` over the events of [since, until): summary of hits; alerts saved (retro) and queued
        for the outputs."""
        started = time.perf_counter()
        summary = HuntSummary(
            indicators=len(indicators),
            since=since.astimezone(UTC).isoformat(timespec="seconds"),
            until=until.astimezone(UTC).isoformat(timespec="seconds") if until else None,
        )
        addresses: set[int] = set()
        networks: list[tuple[int, int]] = []
        for row in indicators:
            ind = row.indicator
            if WHITELIST in ind.intel_types:
                continue  # it allows, it does not hit
            if ind.type is IndicatorType.CIDR:
                networks.append(network_range(ind.value))
            elif ind.type in HUNTED_TYPES:
                addresses.add(address_number(ipaddress.ip_address(ind.value)))
        if not (addresses or networks) or not self.home.store_path.exists():
            summary.seconds = round(time.perf_counter() - started, 3)
            return summary
        storage = self.home.open_storage(read_only=True)
        try:
            found = storage.match_addresses(addresses=addresses, networks=networks, since=since, until=until)
            summary.events_scanned = found.scanned
            if found.addresses:
                summary.alerts = self._hits(storage, found, indicators, summary, since, until)
        finally:
            storage.close()
        summary.seconds = round(time.perf_counter() - started, 3)
        return summary

    def _hits(
        self,
        storage: DuckdbStorage,
        found: AddressMatches,
        indicators: Sequence[StoredIndicator],
        summary: HuntSummary,
        since: datetime,
        until: datetime | None,
    ) -> int:
        """Read the matched events, attribute them to indicators, enrich them and run the rules; returns the
        new alerts."""
        batches = storage.scan_addresses(set(found.numbers.values()), since=since, until=until)
        # Loading the warninglists (~1.5 s of Python) overlaps DuckDB finding and reading the first batch of
        # matched events (C++, the GIL released); a hunt that matches nothing never loads them.
        with ThreadPoolExecutor(1, thread_name_prefix="cloudsoc-hunt") as pool:
            building = pool.submit(self._matcher, indicators)
            first = next(batches, [])
            matcher = building.result()
        allowed = self._attribute(found.addresses, matcher, summary)

        def hitting() -> Iterator[list[dict[str, Any]]]:
            for docs in chain([first], batches):
                # Events from an allow-listed address raise nothing: the enricher would skip them anyway.
                yield [d for d in docs if _source_ip(d) not in allowed] if allowed else docs

        return self._detect(hitting(), matcher)

    def _matcher(self, indicators: Sequence[StoredIndicator]) -> Matcher:
        """A matcher of the hunted indicators, with every allow list the pipeline's has: the warninglists, local
        allow entries and whitelist indicators of any source."""
        from cloudsoc.intel.allowlist import Allowlist
        from cloudsoc.intel.matcher import Matcher

        store = IndicatorStore(self.home.intel_path)
        try:
            allowing = store.query(types=HUNTED_TYPES, active_at=datetime.now(UTC), intel_type=WHITELIST)
            local = store.allow_entries()
        finally:
            store.close()
        allow = Allowlist.from_warninglists(addresses_only=True)
        for value, reason in local.items():
            allow.add(value, reason)
        return Matcher.build(chain(indicators, allowing), allow)

    @staticmethod
    def _attribute(counts: dict[str, int], matcher: Matcher, summary: HuntSummary) -> set[str]:
        """Hits per indicator from the matched addresses' event counts; returns the addresses an allow list
        covers (their events are not hits)."""
        by_indicator: dict[tuple[str, str], IndicatorHits] = {}
        allowed: set[str] = set()
        for ip, events in counts.items():
            rows = matcher.ip(ip)
            if not rows:
                summary.allowed_events += events
                allowed.add(ip)
                continue
            summary.events_matched += events
            seen: set[tuple[str, str]] = set()
            for row in rows:
                ind = row.indicator
                key = (ind.type.value, ind.value)
                hits = by_indicator.get(key)
                if hits is None:
                    hits = by_indicator[key] = IndicatorHits(
                        type=ind.type.value, value=ind.value, sources=[], events=0, addresses=0
                    )
                if ind.source not in hits.sources:
                    hits.sources.append(ind.source)
                if key not in seen:  # two sources listing one value: the address counts once
                    seen.add(key)
                    hits.events += events
                    hits.addresses += 1
        summary.hits = sorted(by_indicator.values(), key=lambda h: (-h.events, h.type, h.value))
        return allowed

    def _detect(self, batches: Iterator[list[dict[str, Any]]], matcher: Matcher) -> int:
        """Enrich the matched events and run the threat-intel rules over them; returns the new alerts."""
        from cloudsoc.detect.engine import latest_time
        from cloudsoc.detect.loader import load_rules
        from cloudsoc.enrichers.intel import IntelEnricher
        from cloudsoc.pipeline.detection import DetectionStage
        from cloudsoc.pipeline.memory import batch_gc

        cfg = self.home.config.detection
        loaded = load_rules(cfg)
        loaded.rules = [r for r in loaded.rules if fnmatch.fnmatchcase(r.id, RULES)]
        stage = DetectionStage(cfg, self.home.open_alerts(), loaded=loaded, retro=True, persist_state=False)
        stage.dispatcher = self.home.dispatcher(stage)  # queued in the outbox; the running daemon delivers them
        enricher = IntelEnricher(matcher)
        try:
            with batch_gc():
                for docs in batches:
                    enricher.enrich(docs)
                    stage.handle(stage.select(docs), latest_time(docs))
                stage.finish()
        finally:
            stage.close()
        return stage.alerts
