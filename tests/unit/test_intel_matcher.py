"""The matcher and allow lists, on indicators imported from the real feeds under ../shared/data/intel."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloudsoc.enrichers.intel import IntelSource
from cloudsoc.errors import ParseError
from cloudsoc.intel.allowlist import EXCLUDED, Allowlist
from cloudsoc.intel.feeds.base import Importer
from cloudsoc.intel.feeds.feodo import Feodo
from cloudsoc.intel.feeds.ipsum import Ipsum
from cloudsoc.intel.feeds.maltrail import Maltrail
from cloudsoc.intel.feeds.misp import Misp
from cloudsoc.intel.indicator import TLP, WHITELIST, Indicator, IndicatorType
from cloudsoc.intel.keyset import KeySet
from cloudsoc.intel.matcher import Matcher
from cloudsoc.intel.store import INTEL_FILE, IndicatorStore, StoredIndicator

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "intel"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/intel is not checked out")
NOW = datetime(2026, 11, 26, tzinfo=UTC)
FEEDS: list[tuple[Importer, str, str]] = [
    (Ipsum(), "ipsum/ipsum.txt", "ipsum"),
    (Feodo(), "abusech-feodo/ipblocklist.csv", "feodo"),
    (Maltrail(), "maltrail/trails/static/mass_scanner_cidr.txt", "maltrail"),
    (Maltrail(), "maltrail/trails/static/mass_scanner.txt", "maltrail"),
    (Maltrail(), "maltrail/trails/static/malware/cobaltstrike.txt", "maltrail"),
    (Maltrail(), "maltrail/trails/static/suspicious/domain.txt", "maltrail"),
    (Misp(), "misp-events/pymisp-tests/tests/misp_event.json", "misp"),
    (Misp(), "misp-events/pymisp-tests/tests/57c4445b-c548-4654-af0b-4be3950d210f.json", "misp"),
    (Misp(), "misp-events/pymisp-tests/tests/mispevent_testfiles/existing_event.json", "misp"),
]


def stored(ind: Indicator) -> StoredIndicator:
    return StoredIndicator(indicator=ind, expires=NOW + timedelta(days=30), updated=NOW)


@pytest.fixture(scope="module")
def rows() -> list[StoredIndicator]:
    out: list[StoredIndicator] = []
    for importer, path, source in FEEDS:
        result = importer.parse((DATA / path).read_bytes(), name=path, source=source)
        assert not result.errors or path.endswith("cobaltstrike.txt")
        out.extend(stored(ind) for ind in result.indicators)
    return out


@pytest.fixture(scope="module")
def matcher(rows: list[StoredIndicator]) -> Matcher:
    return Matcher.build(rows)


def values(found: list[StoredIndicator]) -> list[tuple[str, str, str]]:
    return [(r.indicator.type.value, r.indicator.value, r.indicator.source) for r in found]


def test_everything_given_is_indexed(matcher: Matcher, rows: list[StoredIndicator]) -> None:
    assert len(matcher) == len(rows) > 140_000


def test_every_listed_value_is_a_member_and_nothing_else(rows: list[StoredIndicator]) -> None:
    listed = [r.indicator.value for r in rows]
    keys = KeySet.of(listed)
    assert len(keys) == len(set(listed)) > 140_000
    assert all(v in keys for v in listed)
    # The same values changed by one character, and values of other shapes, are all misses.
    assert not any(v + "x" in keys for v in listed)
    known = set(listed)
    private = (f"10.{i >> 8}.{i & 255}.1" for i in range(65_536))
    assert not any(v in keys for v in private if v not in known)
    # ~12–16 bytes a value, where a dict of the strings holds ~110.
    assert keys.nbytes < 20 * len(keys)


def test_ipsum_ip_with_its_confidence(matcher: Matcher) -> None:
    # the first line of ipsum.txt: 77.90.185.20 on 10 lists → 10 points a list
    [hit] = matcher.ip("77.90.185.20")
    assert hit.indicator.source == "ipsum"
    assert hit.indicator.confidence == 100
    assert hit.indicator.tags == ["ipsum:lists=10"]


def test_feodo_c2(matcher: Matcher) -> None:
    [hit] = matcher.ip("192.9.135.73")
    assert hit.indicator.source == "feodo"
    assert hit.indicator.intel_types == ["c2", "botnet"]
    assert hit.indicator.confidence == 90


def test_address_inside_maltrail_cidr_is_found_through_the_trie(matcher: Matcher) -> None:
    # mass_scanner_cidr.txt: "5.63.151.0/24 # scanners.labs.rapid7.com"; 5.63.151.77 itself is listed nowhere
    assert values(matcher.ip("5.63.151.77")) == [("cidr", "5.63.151.0/24", "maltrail")]
    assert matcher.ip("5.63.151.77")[0].indicator.intel_types == ["scanner"]
    assert matcher.ip("5.63.152.1") == []
    assert values(matcher.lookup("5.63.151.0/25")) == [("cidr", "5.63.151.0/24", "maltrail")]


def test_nested_networks_all_match_most_specific_first() -> None:
    wide = stored(Indicator(type=IndicatorType.CIDR, value="10.0.0.0/8", source="a"))
    narrow = stored(Indicator(type=IndicatorType.CIDR, value="10.1.0.0/16", source="b"))
    exact = stored(Indicator(type=IndicatorType.IPV4, value="10.1.2.3", source="c"))
    m = Matcher.build([wide, narrow, exact])
    assert [r.indicator.source for r in m.ip("10.1.2.3")] == ["c", "b", "a"]
    assert [r.indicator.source for r in m.ip("10.2.0.1")] == ["a"]


def test_ipv6_in_any_spelling(matcher: Matcher, rows: list[StoredIndicator]) -> None:
    v6 = next(r.indicator.value for r in rows if r.indicator.type is IndicatorType.IPV6)
    assert values(matcher.ip(v6)) == [("ipv6", v6, "maltrail")]
    assert values(matcher.ip(v6.upper())) == [("ipv6", v6, "maltrail")]


def test_same_value_from_several_sources_returns_every_row() -> None:
    a = stored(Indicator(type=IndicatorType.IPV4, value="203.0.113.9", source="a", confidence=20))
    b = stored(Indicator(type=IndicatorType.IPV4, value="203.0.113.9", source="b", confidence=80))
    c = stored(Indicator(type=IndicatorType.IPV4, value="203.0.113.9", source="c"))
    m = Matcher.build([a, b, c])
    assert [(r.indicator.source, r.indicator.confidence) for r in m.ip("203.0.113.9")] == [
        ("a", 20),
        ("b", 80),
        ("c", 50),
    ]
    assert len(m) == 3


def test_domain_exact_and_subdomains(matcher: Matcher) -> None:
    # existing_event.json lists movieultimate.com
    assert values(matcher.domain("movieultimate.com")) == [("domain", "movieultimate.com", "misp")]
    assert values(matcher.domain("WWW.cdn.MovieUltimate.com.")) == [("domain", "movieultimate.com", "misp")]
    assert matcher.domain("notmovieultimate.com") == []
    assert matcher.domain("movieultimate.com.evil") == []


def test_parent_match_stops_at_the_registered_domain() -> None:
    # a feed that lists a public suffix must not make every name under it match
    suffix = stored(Indicator(type=IndicatorType.DOMAIN, value="co.uk", source="bad-feed"))
    m = Matcher.build([suffix])
    assert m.domain("example.co.uk") == []
    assert values(m.domain("co.uk")) == [("domain", "co.uk", "bad-feed")]


def test_url_found_canonicalised(matcher: Matcher) -> None:
    # misp_event.json: http://fake.website.com/malware/is/here
    want = [("url", "http://fake.website.com/malware/is/here", "misp")]
    assert values(matcher.url("http://fake.website.com/malware/is/here")) == want
    assert values(matcher.url("HTTP://Fake.Website.COM:80/malware/is/here#top")) == want
    assert values(matcher.lookup("http://FAKE.website.com/malware/is/here")) == want
    assert matcher.url("http://fake.website.com/malware/is/not/here") == []
    # the URL's host is the enricher's business, not url()'s
    assert matcher.url("http://fake.website.com/") == []


def test_hash_in_upper_case(matcher: Matcher) -> None:
    assert values(matcher.hash("0749BAE92CA336A02C83D126E04EC628")) == [
        ("md5", "0749bae92ca336a02c83d126e04ec628", "misp")
    ]
    sha256 = "B3C4AE251F8094FA15B510051835C657EAEF2A6CEA46075D3AEC964B14A99F68"
    assert values(matcher.lookup(sha256)) == [("sha256", sha256.lower(), "misp")]
    assert values(matcher.hash("77b0c41b7d340b8a3d903f21347bbf06aa766b5b"))[0][0] == "sha1"


@pytest.mark.parametrize(
    "value", ["", " ", "not-an-ip", "999.1.1.1", "1.2.3", "::g", "10.0.0.0/33", "http://", "\x00", "é" * 300]
)
def test_invalid_values_give_nothing(matcher: Matcher, value: str) -> None:
    assert matcher.ip(value) == []
    assert matcher.domain(value) == []
    assert matcher.url(value) == []
    assert matcher.hash(value) == []
    assert matcher.lookup(value) == []
    assert matcher.allowed(value) is None


def test_revoked_indicators_are_not_indexed() -> None:
    live = stored(Indicator(type=IndicatorType.IPV4, value="198.51.100.1", source="a"))
    gone = stored(Indicator(type=IndicatorType.IPV4, value="198.51.100.2", source="a", revoked=True))
    net = stored(Indicator(type=IndicatorType.CIDR, value="198.51.100.128/25", source="a", revoked=True))
    m = Matcher.build([live, gone, net])
    assert len(m) == 1
    assert m.ip("198.51.100.2") == []
    assert m.ip("198.51.100.200") == []
    assert len(m.ip("198.51.100.1")) == 1


# -- allow lists --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_allow() -> Allowlist:
    return Allowlist.default()


def test_default_warninglists(default_allow: Allowlist) -> None:
    assert Allowlist.default() is default_allow  # built once
    assert default_allow.why("8.8.8.8") == "warninglist public-dns-v4: List of known IPv4 public DNS resolvers"
    # addresses in cloud providers' ranges, not themselves listed anywhere: a CDN edge and a SaaS range
    assert default_allow.why("104.16.1.1") == "warninglist cloudflare: List of known Cloudflare IP ranges"
    assert (
        default_allow.why("40.96.0.1")
        == "warninglist microsoft-office365-ip: List of known Office 365 IP address ranges"
    )
    # rentable compute is not allowed: C2 servers live there (52.95.110.0/24 is in amazon-aws)
    assert default_allow.why("52.95.110.1") is None
    assert default_allow.why("10.20.30.40") == "warninglist rfc1918: List of RFC 1918 CIDR blocks"
    assert default_allow.why("77.90.185.20") is None
    # hostname lists match subdomains (MISP semantics) …
    assert default_allow.why("docs.github.com") is not None
    # … except under public suffixes, where anyone can register a name
    assert default_allow.why("appspot.com") is not None
    assert default_allow.why("evil.appspot.com") is None
    # lists of popular-with-attackers services are not used
    assert default_allow.why("evil.duckdns.org") is None
    assert default_allow.why("d41d8cd98f00b204e9800998ecf8427e") is not None  # the empty file's MD5
    assert default_allow.why("not a value") is None
    assert "tranco" not in default_allow.lists
    # a URL on a warninglisted host is still intel: only exact URL entries and local entries allow URLs
    assert default_allow.why("https://docs.github.com/evil/payload.ps1") is None
    assert default_allow.why("http://52.95.110.1/load.php") is None
    assert "public-dns-v4" in default_allow.lists


def test_allow_listed_values_are_not_matches(rows: list[StoredIndicator], default_allow: Allowlist) -> None:
    extra = [
        stored(Indicator(type=IndicatorType.IPV4, value="8.8.8.8", source="noisy")),
        stored(Indicator(type=IndicatorType.MD5, value="d41d8cd98f00b204e9800998ecf8427e", source="noisy")),
    ]
    m = Matcher.build([*rows, *extra], allow=default_allow)
    assert m.ip("8.8.8.8") == []
    assert m.allowed("8.8.8.8") == "warninglist public-dns-v4: List of known IPv4 public DNS resolvers"
    assert m.hash("D41D8CD98F00B204E9800998ECF8427E") == []
    # and real threats stay matches, also on rentable compute: Feodo's Pikabot C2 in Akamai's (Linode's) range
    assert len(m.ip("77.90.185.20")) == 1
    assert m.allowed("77.90.185.20") is None
    assert values(m.ip("172.232.208.90")) == [("ipv4", "172.232.208.90", "feodo")]
    assert m.allowed("172.232.208.90") is None


def test_rentable_compute_lists_can_be_opted_in(rows: list[StoredIndicator]) -> None:
    allow = Allowlist.from_warninglists(exclude=EXCLUDED - {"akamai", "amazon-aws"})
    m = Matcher.build(rows, allow=allow)
    assert m.ip("172.232.208.90") == []
    assert m.allowed("172.232.208.90") == "warninglist akamai: List of known Akamai IP ranges"
    # maltrail's mass_scanner_cidr lists 13.249.87.0/24, an AWS (CloudFront) range
    assert m.ip("13.249.87.5") == []
    assert m.allowed("13.249.87.5") == "warninglist amazon-aws: List of known Amazon AWS IP address ranges"


def test_local_allow_entry_suppresses_a_listed_ip(rows: list[StoredIndicator]) -> None:
    allow = Allowlist.empty()
    allow.add("77.90.185.20", "analyst: our pentest box (ticket 42)")
    allow.add("5.63.151.0/28", "analyst: partner scanner")
    allow.add("www.movieultimate.com", "analyst: false positive")
    allow.add("HTTP://fake.website.com/malware/is/here", "analyst: test URL")
    allow.add("0749BAE92CA336A02C83D126E04EC628", "analyst: our build")
    m = Matcher.build(rows, allow=allow)
    assert m.ip("77.90.185.20") == []
    assert m.allowed("77.90.185.20") == "analyst: our pentest box (ticket 42)"
    assert m.ip("5.63.151.3") == []
    assert len(m.ip("5.63.151.77")) == 1
    assert m.domain("a.www.movieultimate.com") == []
    assert len(m.domain("movieultimate.com")) == 1
    assert m.url("http://fake.website.com/malware/is/here") == []
    assert m.hash("0749bae92ca336a02c83d126e04ec628") == []
    assert m.allowed("0749bae92ca336a02c83d126e04ec628") == "analyst: our build"
    with pytest.raises(ParseError):
        allow.add("not a value", "x")


def test_whitelist_indicators_allow_instead_of_matching() -> None:
    bad = stored(Indicator(type=IndicatorType.IPV4, value="203.0.113.7", source="feed"))
    ok = stored(Indicator(type=IndicatorType.CIDR, value="203.0.113.0/24", source="corp", intel_types=[WHITELIST]))
    dom = stored(Indicator(type=IndicatorType.DOMAIN, value="example.org", source="corp", intel_types=[WHITELIST]))
    m = Matcher.build([bad, ok, dom])
    assert len(m) == 1
    assert m.whitelisted == 2
    assert m.ip("203.0.113.7") == []
    assert m.allowed("203.0.113.7") == "whitelist indicator from corp"
    assert m.lookup("example.org") == []
    assert m.allowed("mail.example.org") == "whitelist indicator from corp"


def test_local_host_entries_allow_urls_on_them() -> None:
    url = stored(Indicator(type=IndicatorType.URL, value="http://fake.website.com/malware/is/here", source="misp"))
    allow = Allowlist.empty()
    allow.add("website.com", "analyst: our site")
    assert Matcher.build([url], allow=allow).url("http://fake.website.com/malware/is/here") == []
    # the same with the warninglists loaded: local entries still reach URL hosts, warninglist entries do not
    lists = Allowlist.from_warninglists()
    assert lists.why("http://fake.website.com/x") is None
    lists.add("website.com", "analyst: our site")
    assert lists.why("http://fake.website.com/x") == "analyst: our site"
    assert lists.why("https://docs.github.com/x") is None


# -- the store-backed matcher: values in memory, context from intel.db ------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IndicatorStore]:
    s = IndicatorStore(tmp_path / INTEL_FILE)
    yield s
    s.close()


def test_store_matcher_hit_returns_the_full_context_read_from_the_store(tmp_path: Path) -> None:
    seen = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    writer = IndicatorStore(tmp_path / INTEL_FILE)
    writer.upsert(
        [
            Indicator(
                type=IndicatorType.IPV4,
                value="203.0.113.9",
                source="feed-a",
                intel_types=["c2", "botnet"],
                confidence=85,
                tlp=TLP.AMBER,
                tags=["family:qakbot"],
                description="Qakbot C2",
                first_seen=seen,
                last_seen=seen,
                sightings=3,
            ),
            Indicator(type=IndicatorType.CIDR, value="203.0.113.0/24", source="feed-b", intel_types=["scanner"]),
            Indicator(type=IndicatorType.SHA256, value="ab" * 32, source="feed-a"),
            Indicator(type=IndicatorType.EMAIL, value="boss@evil.example", source="feed-a"),
        ],
        now=NOW,
    )
    m = Matcher.from_store(IndicatorStore(tmp_path / INTEL_FILE), NOW)
    [exact, net] = m.ip("203.0.113.9")
    assert exact == writer.get(IndicatorType.IPV4, "203.0.113.9")[0]  # every field, as stored
    ind = exact.indicator
    assert (ind.confidence, ind.tlp, ind.tags, ind.description) == (85, TLP.AMBER, ["family:qakbot"], "Qakbot C2")
    assert (ind.intel_types, ind.first_seen, ind.sightings) == (["c2", "botnet"], seen, 3)
    assert values([net]) == [("cidr", "203.0.113.0/24", "feed-b")]
    assert values(m.ip("203.0.113.200")) == [("cidr", "203.0.113.0/24", "feed-b")]
    assert values(m.lookup("203.0.113.0/25")) == [("cidr", "203.0.113.0/24", "feed-b")]
    assert values(m.hash("AB" * 32)) == [("sha256", "ab" * 32, "feed-a")]
    assert values(m.lookup("Boss@EVIL.example")) == [("email", "boss@evil.example", "feed-a")]
    assert m.ip("198.51.100.1") == []
    assert len(m) == 4
    m.close()
    writer.close()


def test_store_matcher_several_sources_per_value(store: IndicatorStore) -> None:
    store.upsert(
        [
            Indicator(type=IndicatorType.DOMAIN, value="evil.example", source=source, confidence=confidence)
            for source, confidence in (("c", 50), ("a", 20), ("b", 80))
        ],
        now=NOW,
    )
    m = Matcher.from_store(IndicatorStore(store.path), NOW)
    found = m.domain("www.evil.example")
    assert [(r.indicator.source, r.indicator.confidence) for r in found] == [("a", 20), ("b", 80), ("c", 50)]
    assert len(m) == 3
    # a hit's rows are cached, but each look-up gets a list of its own to extend
    found.clear()
    assert len(m.domain("evil.example")) == 3
    m.close()


def test_store_matcher_skips_expired_revoked_and_whitelist_rows(store: IndicatorStore) -> None:
    store.upsert(
        [
            Indicator(type=IndicatorType.IPV4, value="198.51.100.1", source="live"),
            Indicator(type=IndicatorType.IPV4, value="198.51.100.4", source="live"),
            Indicator(type=IndicatorType.IPV4, value="198.51.100.2", source="gone", revoked=True),
            Indicator(type=IndicatorType.IPV4, value="198.51.100.3", source="old", last_seen=NOW - timedelta(days=90)),
            Indicator(type=IndicatorType.CIDR, value="192.0.2.0/24", source="corp", intel_types=[WHITELIST]),
            Indicator(type=IndicatorType.IPV4, value="192.0.2.7", source="feed"),
            # one source says bad, another says benign: the benign one is not a match, and allows the value
            Indicator(type=IndicatorType.EMAIL, value="ceo@corp.example", source="feed"),
            Indicator(type=IndicatorType.EMAIL, value="ceo@corp.example", source="corp", intel_types=[WHITELIST]),
        ],
        now=NOW,
    )
    m = Matcher.from_store(IndicatorStore(store.path), NOW)
    assert len(m) == 4 and m.whitelisted == 1
    assert len(m.ip("198.51.100.1")) == 1
    assert m.ip("198.51.100.2") == [] and m.ip("198.51.100.3") == []
    assert m.ip("192.0.2.7") == []
    assert m.allowed("192.0.2.7") == "whitelist indicator from corp"
    assert values(m.lookup("ceo@corp.example")) == [("email", "ceo@corp.example", "feed")]
    # revoked after the build, before its first hit: that hit reads the store and does not match
    store.revoke(IndicatorType.IPV4, "198.51.100.4")
    assert m.ip("198.51.100.4") == []
    m.close()


def test_a_rebuild_picks_up_new_indicators_and_the_old_matcher_stays_usable(store: IndicatorStore) -> None:
    store.upsert([Indicator(type=IndicatorType.URL, value="http://evil.example/a", source="feed")], now=NOW)
    old = Matcher.from_store(IndicatorStore(store.path), NOW)
    store.upsert([Indicator(type=IndicatorType.URL, value="http://evil.example/b", source="feed")], now=NOW)
    new = Matcher.from_store(IndicatorStore(store.path), NOW)
    assert old.url("http://evil.example/b") == [] and len(old) == 1
    assert values(new.url("HTTP://EVIL.example/b#x")) == [("url", "http://evil.example/b", "feed")]
    assert len(old.url("http://evil.example/a")) == 1  # swapped out, not yet dropped: still answers
    old.close()
    new.close()


def test_intel_source_enriches_from_the_store_and_rebuilds_when_it_changes(store: IndicatorStore) -> None:
    # (not a documentation range: the default warninglists allow those)
    store.upsert([Indicator(type=IndicatorType.IPV4, value="77.90.185.5", source="feed", confidence=77)])
    source = IntelSource(store.path, check_secs=0)
    enricher = source.build()
    assert enricher is not None and source.indicators == 1
    doc: dict[str, Any] = {"source": {"ip": "77.90.185.5"}, "destination": {"ip": "77.90.185.6"}}
    assert enricher.enrich([doc]) == 1
    [entry] = doc["threat"]["enrichments"]
    assert (entry["indicator"]["confidence"], entry["matched"]["field"]) == (77, "source.ip")

    store.upsert([Indicator(type=IndicatorType.IPV4, value="77.90.185.6", source="feed")])
    rebuilt = source.build()
    assert rebuilt is not None and rebuilt is not enricher and source.indicators == 2
    doc = {"destination": {"ip": "77.90.185.6"}}
    assert rebuilt.enrich([doc]) == 1


def test_a_lookup_matcher_answers_like_the_full_one(tmp_path: Path, rows: list[StoredIndicator]) -> None:
    """`intel lookup` indexes only the values asked for (plus CIDRs and whitelists) and must answer the same."""
    db = IndicatorStore(tmp_path / INTEL_FILE)
    db.upsert((r.indicator for r in rows), now=NOW)
    db.close()
    asked = [
        "77.90.185.20",  # IPsum
        "192.9.135.73",  # Feodo, expired
        "5.63.151.77",  # inside a Maltrail CIDR
        "5.63.151.0/25",
        "WWW.cdn.MovieUltimate.com.",  # a subdomain of a listed domain
        "HTTP://Fake.Website.COM:80/malware/is/here#top",
        "0749BAE92CA336A02C83D126E04EC628",
        "8.8.8.8",
        "notmovieultimate.com",
        "not a value",
    ]
    full = Matcher.from_store(IndicatorStore(db.path), NOW)
    some = Matcher.from_store(IndicatorStore(db.path), NOW, only=asked)
    try:
        answers = [values(full.lookup(v)) for v in asked]
        assert [values(some.lookup(v)) for v in asked] == answers
        # Feodo's 2024 listing has expired by NOW in the store (its last-online date is its last seen)
        missed = [v for v, a in zip(asked, answers, strict=True) if not a]
        assert missed == ["192.9.135.73", "8.8.8.8", "notmovieultimate.com", "not a value"]
        assert len(some) < len(full) / 10  # and far less was indexed
    finally:
        full.close()
        some.close()
