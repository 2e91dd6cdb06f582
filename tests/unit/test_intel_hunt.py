"""Retro-hunt on a real DuckDB store of real events: the store's address matching (exact, CIDR boundaries, IPv6,
time window) and RetroHunt end to end (hits per indicator, retro alerts, nothing raised twice).

The events are the parsed OTRF CloudTrail breach and StreamAlert ActionTrail samples (tests/golden, from
../shared/data/cloudaudit), plus copies of real OTRF records moved to other source addresses: the samples hold no
IPv6 address and no neighbours of a CIDR's first and last address.
"""

from __future__ import annotations

import copy
import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from cloudsoc.event import Event, Origin
from cloudsoc.home import Home
from cloudsoc.intel.hunt import RetroHunt, address_number, network_range
from cloudsoc.intel.indicator import WHITELIST, Indicator, IndicatorType
from cloudsoc.intel.store import IndicatorStore
from cloudsoc.storage.duckdb import DuckdbStorage

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
ORIGIN = Origin("test", "samples.json", 0)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# Addresses the copies come from: a /24's first and last address and its neighbour, IPv6 inside and outside a /64.
MOVED = {
    "65.205.72.0": 1,
    "65.205.72.255": 2,
    "65.205.73.0": 1,
    "2a05:d018:1:2::10": 3,
    "2A05:D018:1:2:0:0:0:10": 1,  # the same address spelt another way
    "2a05:d018:1:2:ffff:ffff:ffff:ffff": 1,
    "2a05:d018:1:3::1": 2,
}


def sample_docs() -> list[dict[str, Any]]:
    docs = []
    for name in ("otrf_cloudtrail.jsonl", "streamalert_actiontrail.jsonl"):
        for line in (GOLDEN / name).read_bytes().splitlines():
            doc = orjson.loads(line)["ecs"]
            if isinstance(doc, dict):
                docs.append(doc)
    otrf = [d for d in docs if d.get("source", {}).get("ip") == "1.2.3.4"]
    n = 0
    for ip, count in MOVED.items():
        for _ in range(count):
            moved = copy.deepcopy(otrf[n])
            moved["event"]["id"] = f"moved-{n}"
            moved["source"] = {"ip": ip, "address": ip}
            moved["related"]["ip"] = [ip]
            docs.append(moved)
            n += 1
    return docs


def counts(docs: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in docs:
        ip = d.get("source", {}).get("ip")
        if ip:
            out[ip] = out.get(ip, 0) + 1
    return out


@pytest.fixture
def home(tmp_path: Path) -> Home:
    home = Home(tmp_path / "home")
    storage = home.open_storage()
    storage.write([Event(d, ORIGIN) for d in sample_docs()], [], [])
    storage.close()
    return home


def number(ip: str) -> int:
    return address_number(ipaddress.ip_address(ip))


def test_exact_addresses_and_networks_match_in_the_store(home: Home) -> None:
    expected = counts(sample_docs())
    storage = DuckdbStorage(home.store_path, read_only=True)
    try:
        found = storage.match_addresses(
            addresses={number("42.120.74.96"), number("2a05:d018:1:2::10"), number("198.51.100.1")},
            networks=[network_range("65.205.72.0/24"), network_range("65.205.72.128/25")],  # nested: merged
            since=EPOCH,
        )
        assert found.scanned == len(sample_docs())
        # the /24's first and last address and the sample inside it; not its neighbour 65.205.73.0
        assert found.addresses == {ip: expected[ip] for ip in ("42.120.74.96", "65.205.72.0", "65.205.72.122")} | {
            "65.205.72.255": 2,
            "2a05:d018:1:2::10": 4,
        }  # two spellings, one address
        v6 = storage.match_addresses(addresses=(), networks=[network_range("2a05:d018:1:2::/64")], since=EPOCH)
        assert v6.addresses == {"2a05:d018:1:2::10": 4, "2a05:d018:1:2:ffff:ffff:ffff:ffff": 1}
        none = storage.match_addresses(addresses={number("1.2.3.5")}, networks=[network_range("10.0.0.0/8")])
        assert none.addresses == {} and none.scanned == len(sample_docs())
        # the ActionTrail samples are from 2018, the OTRF ones from 2020
        later = storage.match_addresses(
            addresses={number("42.120.74.96")}, networks=(), since=datetime(2019, 1, 1, tzinfo=UTC)
        )
        assert later.addresses == {} and later.scanned == len(sample_docs()) - 4
    finally:
        storage.close()


def test_scan_reads_only_the_matched_events_in_time_order(home: Home) -> None:
    storage = DuckdbStorage(home.store_path, read_only=True)
    try:
        docs = [d for batch in storage.scan_addresses({number("42.120.74.96"), number("65.205.72.255")}) for d in batch]
    finally:
        storage.close()
    assert sorted(d["source"]["ip"] for d in docs) == ["42.120.74.96"] * 3 + ["65.205.72.255"] * 2
    assert [d["@timestamp"] for d in docs] == sorted(d["@timestamp"] for d in docs)


def indicator(kind: IndicatorType, value: str, **kw: Any) -> Indicator:
    fields: dict[str, Any] = {"source": "test-feed", "confidence": 85, "intel_types": ["c2"]}
    fields.update(kw)
    return Indicator(type=kind, value=value, **fields)


def test_hunt_raises_retro_alerts_once_and_counts_hits_per_indicator(home: Home) -> None:
    expected = counts(sample_docs())
    store = IndicatorStore(home.intel_path)
    store.upsert(
        [
            indicator(IndicatorType.IPV4, "42.120.74.96"),
            indicator(IndicatorType.IPV4, "42.120.74.96", source="other-feed"),
            indicator(IndicatorType.CIDR, "65.205.72.0/24"),
            indicator(IndicatorType.CIDR, "2a05:d018:1:2::/64"),
            indicator(IndicatorType.IPV4, "1.2.3.4", detect=False),  # context only: not hunted
            indicator(IndicatorType.IPV4, "198.51.100.1"),
            indicator(IndicatorType.DOMAIN, "evil.example.com"),  # no column to hunt it in
            # a whitelist entry from another source: its address matches in the store but raises nothing
            indicator(IndicatorType.IPV4, "65.205.72.122", source="ours", intel_types=[WHITELIST]),
        ]
    )
    store.close()
    hunt = RetroHunt(home)
    chosen = hunt.indicators()
    assert {(i.indicator.type.value, i.indicator.value) for i in chosen} == {
        ("ipv4", "42.120.74.96"),
        ("cidr", "65.205.72.0/24"),
        ("cidr", "2a05:d018:1:2::/64"),
        ("ipv4", "198.51.100.1"),
        ("ipv4", "65.205.72.122"),
    }
    summary = hunt.run(chosen, since=EPOCH)
    assert summary.events_scanned == len(sample_docs())
    assert summary.allowed_events == expected["65.205.72.122"]
    hits = {(h.type, h.value): (h.events, h.addresses, sorted(h.sources)) for h in summary.hits}
    assert hits == {
        ("ipv4", "42.120.74.96"): (3, 1, ["other-feed", "test-feed"]),
        ("cidr", "65.205.72.0/24"): (3, 2, ["test-feed"]),
        ("cidr", "2a05:d018:1:2::/64"): (5, 2, ["test-feed"]),
    }
    assert summary.events_matched == 11
    alerts = home.open_alerts()
    try:
        raised = alerts.query(rule="threat_intel_source_ip")
    finally:
        alerts.close()
    assert len(raised) == summary.alerts > 0 and all(a.alert.retro for a in raised)
    sources = {m.value for a in raised for m in a.alert.matched if m.field == "source.ip"}
    assert sources == {
        "42.120.74.96",
        "65.205.72.0",
        "65.205.72.255",
        "2a05:d018:1:2::10",
        "2A05:D018:1:2:0:0:0:10",
        "2a05:d018:1:2:ffff:ffff:ffff:ffff",
    }
    again = hunt.run(hunt.indicators(), since=EPOCH)
    assert again.alerts == 0 and again.events_matched == summary.events_matched


def test_hunt_of_a_source_and_of_recent_imports(home: Home) -> None:
    now = datetime.now(UTC)
    store = IndicatorStore(home.intel_path)
    store.upsert([indicator(IndicatorType.IPV4, "42.120.74.96")], now=now - timedelta(days=2))
    store.upsert([indicator(IndicatorType.CIDR, "65.205.72.0/24", source="new-feed")], now=now)
    store.close()
    hunt = RetroHunt(home)
    assert [i.indicator.value for i in hunt.indicators(source="test-feed")] == ["42.120.74.96"]  # still active
    assert [i.indicator.value for i in hunt.indicators(source="new-feed")] == ["65.205.72.0/24"]
    recent = hunt.indicators(updated_since=now - timedelta(days=1))
    assert [i.indicator.value for i in recent] == ["65.205.72.0/24"]
    assert hunt.indicators(types=[IndicatorType.IPV6]) == []
    assert hunt.run([], since=EPOCH).events_scanned == 0  # nothing to hunt: the store is not even opened
