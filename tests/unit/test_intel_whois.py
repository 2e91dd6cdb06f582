"""Whois: parsing every raw answer in ../shared/data/intel/whois-samples to the expected fields (python-whois's own
test oracle), the product's record, and look-ups against a real whois server (TCP, RFC 3912) on 127.0.0.1 that
answers from the same samples — cached, and degrading to "unknown" when no server answers."""

from __future__ import annotations

import datetime as dt
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloudsoc.intel.whois import WhoisClient, WhoisRecord, domains_of, parse_whois, registered_domain
from cloudsoc.intel.whois_cache import WhoisCache, WhoisService
from tests.servers.whois import SAMPLES, WhoisServer

DOMAINS = sorted(p.name for p in (SAMPLES / "whois").iterdir())
# The keys python-whois's test compares, and how it compares them: dates and list items as str().
KEYS = ("domain_name", "expiration_date", "updated_date", "registrar", "registrar_url", "creation_date", "status")
NOW = datetime(2026, 11, 27, tzinfo=UTC)


def _raw(domain: str) -> str:
    return (SAMPLES / "whois" / domain).read_text(encoding="utf-8", errors="replace")


def _comparable(value: object) -> object:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, dt.datetime):
        return str(value)
    return value


def test_every_sample_is_present() -> None:
    assert len(DOMAINS) == 58
    assert sorted(p.name for p in (SAMPLES / "expected").iterdir()) == DOMAINS


@pytest.mark.parametrize("domain", DOMAINS)
def test_raw_answer_parses_to_the_expected_fields(domain: str) -> None:
    expected = json.loads((SAMPLES / "expected" / domain).read_text())
    parsed = parse_whois(domain, _raw(domain))
    for key in KEYS:  # a key the expected file leaves out is expected to be None
        assert _comparable(parsed[key]) == expected.get(key), key
    for key in ("name_servers", "emails", "org", "country"):  # present in some expected files
        if key in expected:
            assert _comparable(parsed[key]) == expected[key], key


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_sample_becomes_a_known_record(domain: str) -> None:
    record = WhoisRecord.from_answer(domain, _raw(domain), fetched=NOW)
    assert record.state == "known" and record.reason is None
    if record.created and record.updated:
        assert record.created.tzinfo is not None and record.updated.tzinfo is not None


def test_record_picks_the_domains_history_and_normalises_servers() -> None:
    # .com.br repeats dates (one per contact); the domain was created first and updated last
    br = WhoisRecord.from_answer("google.com.br", _raw("google.com.br"), fetched=NOW)
    assert br.created == datetime(1999, 5, 18, tzinfo=UTC)
    assert br.updated == datetime(2019, 4, 17, tzinfo=UTC)
    # .kg writes `Record expires on:` and puts every server on one line
    kg = WhoisRecord.from_answer("google.kg", _raw("google.kg"), fetched=NOW)
    assert kg.expires == datetime(2026, 3, 28, 23, 59, tzinfo=UTC)
    assert kg.name_servers == ["ns1.google.com", "ns2.google.com", "ns4.google.com"]
    # .rs writes day-first dates with dots: 11.02.2025 is the 11th of February
    assert WhoisRecord.from_answer("abc.rs", _raw("abc.rs"), fetched=NOW).updated == datetime(
        2025, 2, 11, 8, 24, 15, tzinfo=UTC
    )
    # registrant organisation and e-mail addresses where the registry publishes them
    web = WhoisRecord.from_answer("google.de", _raw("google.de"), fetched=NOW)
    assert web.name_servers and all(n == n.lower() and not n.endswith(".") for n in web.name_servers)
    summary = WhoisRecord.from_answer("imdb.com", _raw("imdb.com"), fetched=NOW).summary()
    assert summary["registrar"] and summary["created"].startswith("1996-01-05")  # ISO text, ready for JSON
    assert summary["state"] == "known" and "reason" not in summary


def test_an_unregistered_name_is_said_so() -> None:
    # the first line of Verisign's answer for a free .com name
    answer = 'No match for "THIS-NAME-IS-FREE-4711.COM".\r\n>>> Last update of whois database: 2026-11-27 <<<\r\n'
    record = WhoisRecord.from_answer("this-name-is-free-4711.com", answer, fetched=NOW)
    assert record.state == "not_registered" and "not registered" in (record.reason or "")


def test_registered_domain_is_asked_not_the_host() -> None:
    assert registered_domain("www.bbc.co.uk") == "bbc.co.uk"
    assert registered_domain("a.b.example.com.") == "example.com"
    assert registered_domain("co.uk") is None and registered_domain("203.0.113.9") is None
    assert domains_of(["https://login.evil.example.net/x", "evil.example.net", "mail.google.com"]) == [
        "example.net",
        "google.com",
    ]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_client_asks_a_real_server(whois_server: WhoisServer) -> None:
    client = WhoisClient(whois_server.address, timeout_secs=5)
    record = client.lookup("imdb.com", now=NOW)
    assert record.state == "known" and record.registrar and whois_server.queries == ["imdb.com"]
    free = client.lookup("never-registered-4711.com", now=NOW)
    assert free.state == "not_registered"


def test_service_caches_answers_and_retries_unknown_sooner(tmp_path: Path, whois_server: WhoisServer) -> None:
    cache = WhoisCache(tmp_path / "whois.db")
    service = WhoisService(cache, WhoisClient(whois_server.address), ttl=timedelta(days=7))
    first = service.lookup("google.de", now=NOW)
    again = service.lookup("google.de", now=NOW + timedelta(days=6))
    assert first is not None and again == first and whois_server.queries == ["google.de"]  # cached
    service.lookup("google.de", now=NOW + timedelta(days=8))
    assert whois_server.queries == ["google.de", "google.de"]  # stale after the TTL: asked again
    assert service.lookup("google.fr", now=NOW, fetch=False) is None  # cache only: nothing, and no query
    assert whois_server.queries == ["google.de", "google.de"]

    offline = WhoisService(
        cache, WhoisClient(f"127.0.0.1:{_closed_port()}", timeout_secs=2), unknown_ttl=timedelta(hours=1)
    )
    unknown = offline.lookup("google.it", now=NOW)
    assert unknown is not None and unknown.state == "unknown" and "no answer" in (unknown.reason or "")
    assert offline.lookup("google.it", now=NOW + timedelta(minutes=59)) == unknown  # not asked again at once
    online = WhoisService(cache, WhoisClient(whois_server.address))
    known = online.lookup("google.it", now=NOW + timedelta(minutes=61))
    assert known is not None and known.state == "known"  # after the short TTL the network is tried again
    assert cache.counts() == {"known": 2, "wanted": 0}


def test_wanted_domains_are_fetched_by_the_background_chore(tmp_path: Path, whois_server: WhoisServer) -> None:
    cache = WhoisCache(tmp_path / "whois.db")
    service = WhoisService(cache, WhoisClient(whois_server.address))
    cache.want(["google.de", "google.fr", "google.de"], now=NOW)
    service.lookup("google.fr", now=NOW)  # answered meanwhile
    assert cache.counts()["wanted"] == 1  # the answer took it off the list
    assert service.fetch_wanted(now=NOW) == 1
    assert whois_server.queries == ["google.fr", "google.de"]
    assert cache.counts() == {"known": 2, "wanted": 0}
    cached = cache.get("google.de", now=NOW)
    assert cached is not None and cached.state == "known"


def test_no_server_degrades_quickly_to_unknown() -> None:
    started = datetime.now(UTC)
    record = WhoisClient(f"127.0.0.1:{_closed_port()}", timeout_secs=2).lookup("example.com")
    assert record.state == "unknown" and record.reason and "127.0.0.1" not in record.domain
    assert datetime.now(UTC) - started < timedelta(seconds=3)


def test_enricher_adds_cached_whois_and_asks_for_the_rest(tmp_path: Path, whois_server: WhoisServer) -> None:
    """A domain hit carries whois from the cache; a name not cached yet is put on the wanted list (the daemon
    fetches it), and the event is enriched at once all the same."""
    from cloudsoc.enrichers.intel import IntelEnricher
    from cloudsoc.intel.indicator import Indicator, IndicatorType
    from cloudsoc.intel.matcher import Matcher
    from cloudsoc.intel.store import StoredIndicator

    def listed(kind: IndicatorType, value: str) -> StoredIndicator:
        ind = Indicator(type=kind, value=value, source="test-feed", confidence=80, intel_types=["phishing"])
        return StoredIndicator(indicator=ind, expires=datetime.now(UTC) + timedelta(days=30), updated=NOW)

    matcher = Matcher.build([listed(IndicatorType.DOMAIN, "google.de"), listed(IndicatorType.DOMAIN, "imdb.com")])
    cache = WhoisCache(tmp_path / "whois.db")
    WhoisService(cache, WhoisClient(whois_server.address)).lookup("google.de")
    enricher = IntelEnricher(matcher, whois=cache)
    docs = [
        {"dns": {"question": {"name": "mail.google.de"}}},
        {"url": {"full": "https://www.imdb.com/x", "domain": "www.imdb.com"}},
    ]
    assert enricher.enrich(docs) == 2
    (cached,) = docs[0]["threat"]["enrichments"]  # type: ignore[index]
    assert cached["cloudsoc"]["whois"]["state"] == "known" and cached["cloudsoc"]["whois"]["domain"] == "google.de"
    (pending,) = docs[1]["threat"]["enrichments"]  # type: ignore[index]
    assert "whois" not in pending["cloudsoc"] and cache.wanted(10) == ["imdb.com"]
    assert whois_server.queries == ["google.de"]  # enrichment itself asked no server
