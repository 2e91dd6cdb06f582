"""Every feed file under ../shared/data/intel imports with exact counts per indicator type.

Where a simple independent parse can count the expected indicators (IPsum, Feodo, plain lists, CSV, the MISP
feed's hashes.csv), the test computes them; elsewhere the numbers were checked by hand against the files.
MISP warninglists are known-benign values, not threat feeds: they are left to the warninglists module (which loads
them from pymispwarninglists), and auto-detection says so. ecs/ and whois-samples/ hold no indicators.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from pathlib import Path

import pytest

from cloudsoc.errors import ParseError
from cloudsoc.intel.feeds.base import Importer
from cloudsoc.intel.feeds.csv_map import ColumnMap, CsvMap
from cloudsoc.intel.feeds.detect import detect
from cloudsoc.intel.feeds.feodo import Feodo
from cloudsoc.intel.feeds.ipsum import Ipsum
from cloudsoc.intel.feeds.maltrail import Maltrail
from cloudsoc.intel.feeds.misp import Misp
from cloudsoc.intel.feeds.misp_feed import MispFeed
from cloudsoc.intel.feeds.plain import Plain
from cloudsoc.intel.feeds.stix import Stix
from cloudsoc.intel.indicator import TLP, IndicatorType

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "intel"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/intel is not checked out")
IMPORTERS: dict[str, Importer] = {
    "stix": Stix(),
    "misp": Misp(),
    "misp_feed": MispFeed(),
    "csv_map": CsvMap(),
    "plain": Plain(),
    "ipsum": Ipsum(),
    "maltrail": Maltrail(),
    "feodo": Feodo(),
}

# file → (format, counts per type, skipped, errors); checked by hand against the files.
EXPECTED: dict[str, tuple[str, dict[str, int], int, int]] = {
    "maltrail/trails/static/malicious/metasploit.txt": ("maltrail", {"ipv4": 3924, "domain": 129, "url": 127}, 11, 0),
    "maltrail/trails/static/malicious/rogue_dns.txt": ("maltrail", {"ipv4": 391, "domain": 26}, 0, 0),
    "maltrail/trails/static/malicious/sliver.txt": ("maltrail", {"ipv4": 5692, "domain": 113, "url": 114}, 29, 0),
    # two trails carry a port above 65535 (91.109.190.5:660666): real errors in the feed
    "maltrail/trails/static/malware/asyncrat.txt": ("maltrail", {"domain": 6222, "ipv4": 9005, "url": 323}, 28, 2),
    # three trails carry two ports (139.9.234.13:33:1099)
    "maltrail/trails/static/malware/cobaltstrike.txt": (
        "maltrail",
        {"url": 1923, "ipv4": 5082, "domain": 4193},
        116,
        3,
    ),
    "maltrail/trails/static/malware/emotet.txt": ("maltrail", {"ipv4": 3027, "domain": 231, "url": 4781}, 4737, 0),
    "maltrail/trails/static/malware/generic.txt": ("maltrail", {"domain": 7562, "ipv4": 1135, "url": 4897}, 346, 0),
    "maltrail/trails/static/mass_scanner.txt": ("maltrail", {"ipv4": 16854, "ipv6": 1981, "domain": 3}, 2, 0),
    "maltrail/trails/static/mass_scanner_cidr.txt": ("maltrail", {"cidr": 1089, "ipv4": 13}, 0, 0),
    "maltrail/trails/static/suspicious/crypto_mining.txt": ("maltrail", {"ipv4": 548, "domain": 386, "url": 1}, 0, 0),
    "maltrail/trails/static/suspicious/domain.txt": ("maltrail", {"domain": 4351}, 1, 0),
    "maltrail/trails/static/suspicious/dynamic_domain.txt": ("maltrail", {"domain": 2035}, 0, 0),
    "misp-events/pymisp-tests/tests/57c4445b-c548-4654-af0b-4be3950d210f.json": (
        "misp",
        {"md5": 1, "sha1": 1, "sha256": 1},
        6,
        0,
    ),
    "misp-events/pymisp-tests/tests/misp_event.json": ("misp", {"url": 1}, 1, 0),
    # 7 + 12 domains and 12 ip-dst, one of each listed twice
    "misp-events/pymisp-tests/tests/mispevent_testfiles/existing_event.json": (
        "misp",
        {"domain": 18, "sha1": 37, "ipv4": 11},
        54,
        0,
    ),
    "misp-events/pymisp-tests/tests/reportlab_testfiles/galaxy_1.json": (
        "misp",
        {"sha256": 1, "sha1": 1, "md5": 1},
        6,
        0,
    ),
    # 11 "url" attributes are not URLs ('igfxtray.exe', 'Data/dtl.dat', '107.183.86')
    "misp-events/pymisp-tests/tests/reportlab_testfiles/long_event.json": (
        "misp",
        {"md5": 75, "sha256": 75, "domain": 24, "email": 2, "ipv4": 9, "sha1": 58, "url": 3},
        99,
        11,
    ),
    "misp-events/pymisp-tests/tests/reportlab_testfiles/sighting_1.json": ("misp", {"domain": 4, "url": 1}, 0, 0),
    "stix2/misp-stix-pairs/tests/test_attributes_collection_1.json": ("misp", {"domain": 1}, 1, 0),
    "stix2/misp-stix-pairs/tests/test_attributes_collection_2.json": ("misp", {"domain": 1, "ipv4": 1}, 1, 0),
    "stix2/misp-stix-pairs/tests/test_events_collection_1.json": ("misp", {"domain": 1}, 1, 0),
    "stix2/misp-stix-pairs/tests/test_events_collection_2.json": ("misp", {"domain": 1, "ipv4": 1}, 1, 0),
    "stix2/misp-stix-pairs/tests/test_attributes_collection_stix21.json": ("stix", {"domain": 1, "ipv4": 1}, 2, 0),
    "stix2/misp-stix-pairs/tests/test_event1_stix21.json": ("stix", {"domain": 1}, 0, 0),
    "stix2/misp-stix-pairs/tests/test_event2_stix21.json": ("stix", {"domain": 1, "ipv4": 1}, 2, 0),
    "stix2/misp-stix-pairs/tests/test_events_collection_stix21.json": ("stix", {"domain": 1, "ipv4": 1}, 2, 0),
    # a JSON list of SCOs: 22 ipv4-addr objects hold 12 distinct addresses and 2 networks
    "stix2/oasis-cti-python-stix2/sco-examples-bundle.json": (
        "stix",
        {"ipv4": 12, "md5": 1, "sha1": 1, "domain": 1, "email": 4, "sha256": 9, "cidr": 2, "ipv6": 1, "url": 1},
        2,
        0,
    ),
    "stix2/oasis-cti-stix2-json-schemas/examples/indicator-for-c2-ip-address.json": ("stix", {"ipv4": 1}, 0, 0),
    "stix2/oasis-cti-stix2-json-schemas/examples/indicator-to-campaign-relationship.json": ("stix", {"ipv4": 1}, 0, 0),
    "stix2/oasis-cti-stix2-json-schemas/examples/indicators-for-C2-with-COA.json": (
        "stix",
        {"ipv4": 1, "sha256": 1},
        0,
        0,
    ),
    "stix2/oasis-cti-stix2-json-schemas/examples/infrastructure.json": ("stix", {"ipv4": 1, "domain": 1}, 0, 0),
    # a bare campaign object, not a bundle: nothing to import, nothing wrong
    "stix2/oasis-cti-stix2-json-schemas/examples/interop-objectmarking-test.json": ("stix", {}, 0, 0),
    # two MATCHES patterns: not values
    "stix2/oasis-cti-stix2-json-schemas/examples/malicious-email-indicator-with-attachment.json": ("stix", {}, 2, 0),
    # 12 indicators: 4 /15 networks, 3 domains, 3 MD5s, and 2 x509 patterns that are skipped
    "stix2/oasis-cti-stix2-json-schemas/examples/threat-reports/apt1.json": (
        "stix",
        {"cidr": 4, "domain": 3, "md5": 3},
        2,
        0,
    ),
}


def _import(rel: str, fmt: str) -> tuple[dict[str, int], int, int]:
    result = IMPORTERS[fmt].parse((DATA / rel).read_bytes(), name=rel, source="test")
    return result.by_type(), result.skipped, len(result.errors)


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_file_imports_with_exact_counts(rel: str) -> None:
    fmt, counts, skipped, errors = EXPECTED[rel]
    assert detect((DATA / rel).read_bytes(), rel) == fmt
    assert _import(rel, fmt) == (counts, skipped, errors)


def test_every_feed_file_is_covered() -> None:
    feeds = {
        str(p.relative_to(DATA))
        for p in DATA.rglob("*")
        if p.suffix in (".json", ".txt", ".csv")
        and not p.name.startswith(("LICENSE", "PROVENANCE"))
        and p.parts[len(DATA.parts)] not in ("misp-warninglists", "ecs", "whois-samples")
    }
    independent = {
        "ipsum/ipsum.txt",
        "abusech-feodo/ipblocklist.csv",
        "misp-feed-crowdsec/feeds/feed-all-7d.txt",
        "misp-feed-crowdsec/feeds/feed-all-7d.json",
        "misp-events/pymisp-tests/tests/csv_testfiles/valid_fieldnames.csv",
    }
    feed_dir = {str(p.relative_to(DATA)) for p in (DATA / "misp-feed-crowdsec" / "misp-feed").iterdir()}
    assert feeds - set(EXPECTED) - independent - feed_dir == set()


def test_ipsum_counts_every_line_and_scores_confidence() -> None:
    text = (DATA / "ipsum/ipsum.txt").read_text()
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    result = Ipsum().parse(text.encode(), name="ipsum.txt", source="ipsum")
    assert result.by_type() == {"ipv4": len(rows)} and len(rows) == 120_430
    assert (result.skipped, result.errors) == (0, [])
    first = result.indicators[0]
    assert (first.value, first.confidence) == (rows[0][0], min(100, 10 * int(rows[0][1])))


def test_feodo_rows_are_c2_ips_with_dates() -> None:
    raw = (DATA / "abusech-feodo/ipblocklist.csv").read_text()
    rows = list(csv.DictReader(line for line in raw.splitlines() if not line.startswith("#")))
    result = Feodo().parse(raw.encode(), name="ipblocklist.csv", source="feodo")
    assert result.by_type() == {"ipv4": len({r["dst_ip"] for r in rows})} == {"ipv4": 28}
    assert result.errors == []
    one = next(i for i in result.indicators if i.value == rows[0]["dst_ip"])
    assert one.intel_types == ["c2", "botnet"] and f"port:{rows[0]['dst_port']}" in one.tags
    assert one.first_seen is not None and one.first_seen.isoformat().startswith(rows[0]["first_seen_utc"][:10])


def test_plain_list_and_csv_with_and_without_a_map() -> None:
    txt = (DATA / "misp-feed-crowdsec/feeds/feed-all-7d.txt").read_text()
    result = Plain(intel_types=("scanner",)).parse(txt.encode(), name="feed-all-7d.txt", source="crowdsec")
    assert result.by_type() == {"ipv4": len(set(txt.split()))} == {"ipv4": 60}
    assert detect(txt.encode(), "feed-all-7d.txt") == "plain"

    rel = "misp-events/pymisp-tests/tests/csv_testfiles/valid_fieldnames.csv"
    rows = list(csv.DictReader((DATA / rel).read_text().splitlines(), skipinitialspace=True))
    auto = CsvMap().parse((DATA / rel).read_bytes(), name=rel, source="csv")
    assert auto.by_type() == {k: len(rows) for k in ("md5", "sha1", "sha256")} == {"md5": 3, "sha1": 3, "sha256": 3}
    only = CsvMap(ColumnMap(values={"sha256": "auto"})).parse((DATA / rel).read_bytes(), name=rel, source="csv")
    assert only.by_type() == {"sha256": 3}
    bad = CsvMap(ColumnMap(values={"nope": "ip"})).parse((DATA / rel).read_bytes(), name=rel, source="csv")
    assert bad.errors == [f"{rel}: no column 'nope'"]


def test_crowdsec_own_json_is_not_guessed() -> None:
    # The CrowdSec feed's own JSON ({"items": [{"ip": …}]}) is neither STIX nor MISP: detection refuses to guess
    # (the same IPs come in its .txt and its MISP feed).
    rel = "misp-feed-crowdsec/feeds/feed-all-7d.json"
    with pytest.raises(ParseError, match=re.escape("neither STIX 2.1 nor MISP")):
        detect((DATA / rel).read_bytes(), rel)


def test_misp_feed_incremental_by_manifest_and_hashes() -> None:
    folder = DATA / "misp-feed-crowdsec" / "misp-feed"
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    feed = MispFeed()
    hashes = feed.hashes(files["hashes.csv"])
    per_event = Counter(line.split(",")[0] for line in files["hashes.csv"].decode().splitlines() if line)
    assert {u: len(h) for u, h in hashes.items()} == dict(per_event) and sum(per_event.values()) == 864
    # hashes.csv holds the MD5 of each attribute value: check one event against its file.
    uuid = "6a10e5d8-f1cd-42b0-8240-a4650efd83d6"
    values = re.findall(rb'"value": "([^"]+)"', files[f"{uuid}.json"])
    assert {hashlib.md5(v).hexdigest() for v in values} == hashes[uuid]

    result, state = feed.sync(files, source="crowdsec", previous={})
    # 864 ip-src attributes in 3 events; the events overlap, 508 distinct addresses
    assert result.by_type() == {"ipv4": 508} and result.errors == []
    assert set(state) == set(per_event)
    again, same = feed.sync(files, source="crowdsec", previous=state)
    assert (again.by_type(), same) == ({}, state)  # nothing changed, nothing read
    older = {**state, uuid: state[uuid] - 1}
    partial, _ = feed.sync(files, source="crowdsec", previous=older)
    assert partial.by_type() == {"ipv4": 155}  # only the changed event
    missing = {k: v for k, v in files.items() if k != f"{uuid}.json"}
    broken, kept = feed.sync(missing, source="crowdsec", previous=older)
    assert broken.errors == [f"{uuid}.json: listed in the manifest but missing from the feed"]
    assert kept[uuid] == older[uuid]  # retried next time


def test_misp_context_tags_sightings_and_composites() -> None:
    rel = "misp-events/pymisp-tests/tests/reportlab_testfiles/sighting_1.json"
    found = {i.value: i for i in Misp().parse((DATA / rel).read_bytes(), name=rel, source="m").indicators}
    assert found["ooiasjdnqjwbeasdasd.com"].sightings == 1 and found["ooiasjdnqjwbeasdasd.com"].detect
    assert found["eqowiesajenqweasd.com"].false_positives == 1
    assert found["diqjwhebseqhbasdh.com"].valid_until is not None  # an expiration sighting (type 2)
    event = (
        b'{"Event": {"uuid": "e1", "Tag": [{"name": "tlp:amber"}, {"name": "kill-chain:Command and Control"}],'
        b' "Attribute": [{"type": "ip-dst|port", "value": "192.0.2.1|8443", "to_ids": true},'
        b' {"type": "domain|ip", "value": "Evil.Example.|2001:db8::1", "to_ids": false},'
        b' {"type": "filename|sha256", "value": "a.exe|' + b"A" * 64 + b'"}]}}'
    )
    result = Misp().parse(event, name="e.json", source="m")
    assert result.by_type() == {"ipv4": 1, "domain": 1, "ipv6": 1, "sha256": 1}
    ip = result.indicators[0]
    assert (ip.tlp, ip.intel_types, ip.detect, ip.description) == (TLP.AMBER, ["c2"], True, "(8443)")
    assert result.indicators[3].value == "a" * 64 and result.indicators[3].description == "(a.exe)"


def test_stix_patterns_with_or_in_and_observation_operators() -> None:
    bundle = (
        b'{"type": "bundle", "id": "bundle--1", "objects": [{"type": "indicator", "id": "indicator--1",'
        b' "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z", "confidence": 85,'
        b' "indicator_types": ["malicious-activity"], "revoked": true,'
        b' "object_marking_refs": ["marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"],'
        b" \"pattern\": \"[ipv4-addr:value = '192.0.2.1' OR ipv4-addr:value = '192.0.2.0/24'] OR"
        b" [url:value IN ('HTTP://Evil.example:80/a', 'https://x.example/')] FOLLOWEDBY"
        b" [file:hashes.'SHA-256' = '" + b"B" * 64 + b"' AND file:name = 'x.exe'] WITHIN 300 SECONDS\"},"
        b' {"type": "indicator", "id": "indicator--2", "pattern_type": "yara", "pattern": "rule x {}"}]}'
    )
    result = Stix().parse(bundle, name="b.json", source="s")
    assert result.by_type() == {"ipv4": 1, "cidr": 1, "url": 2, "sha256": 1}
    assert result.skipped == 1
    first = result.indicators[0]
    assert (first.confidence, first.tlp, first.revoked, first.intel_types) == (
        85,
        TLP.RED,
        True,
        ["malicious-activity"],
    )
    assert [i.value for i in result.indicators if i.type is IndicatorType.URL] == [
        "http://evil.example/a",
        "https://x.example/",
    ]


def test_detection_refuses_what_it_cannot_tell() -> None:
    wl = DATA / "misp-warninglists/lists/rfc1918/list.json"
    with pytest.raises(ParseError, match="warninglist"):
        detect(wl.read_bytes(), "list.json")
    with pytest.raises(ParseError, match="cannot tell the feed format"):
        detect((DATA / "ecs/threat-fields.csv").read_bytes(), "threat-fields.csv")
    assert detect(b"# IPsum Threat Intelligence Feed\n1.2.3.4\t3\n", "x") == "ipsum"


_ROW = (
    "SELECT type, value, source, intel_types, confidence, tlp, tags, description, valid_until, revoked, detect,"
    " sightings, false_positives FROM indicators ORDER BY type, value, source"
)


@pytest.mark.parametrize(
    "rel",
    [
        # values listed more than once in one file: 22 ipv4-addr objects for 12 addresses; MISP attributes and
        # objects naming the same value; trails with and without a port
        "stix2/oasis-cti-python-stix2/sco-examples-bundle.json",
        "misp-events/pymisp-tests/tests/mispevent_testfiles/existing_event.json",
        "maltrail/trails/static/malware/cobaltstrike.txt",
        "ipsum/ipsum.txt",
    ],
)
def test_streamed_import_stores_what_the_in_memory_one_does(rel: str, tmp_path: Path) -> None:
    """`intel import` streams into the store, written every few values (here every 5, so duplicates straddle
    the writes and are merged with the row read back); the rows must equal those of the whole file held at once."""
    from cloudsoc.intel.feeds.base import ImportResult
    from cloudsoc.intel.store import INTEL_FILE, IndicatorStore

    data = (DATA / rel).read_bytes()
    importer = IMPORTERS[detect(data, rel)]
    held = importer.parse(data, name=rel, source="feed")
    whole = IndicatorStore(tmp_path / "a" / INTEL_FILE)
    whole.upsert(held.indicators)
    streamed_store = IndicatorStore(tmp_path / "b" / INTEL_FILE)
    streamed = ImportResult(streamed_store, flush_at=5)
    assert importer.parse(data, name=rel, source="feed", result=streamed) is streamed
    streamed.close()
    assert streamed.indicators == []  # nothing is left held
    assert (streamed.by_type(), streamed.count, streamed.skipped, streamed.errors) == (
        held.by_type(),
        len(held.indicators),
        held.skipped,
        held.errors,
    )
    rows = whole.conn.execute(_ROW).fetchall()
    assert rows and streamed_store.conn.execute(_ROW).fetchall() == rows


def test_streamed_reimport_does_not_add_up_sightings(tmp_path: Path) -> None:
    """A value listed twice with sightings 1 and 2 stores 3, however often the feed is imported, also when its two
    listings straddle a write (the stored row already took the larger of old and new)."""
    from cloudsoc.intel.feeds.base import ImportResult
    from cloudsoc.intel.indicator import Indicator
    from cloudsoc.intel.store import INTEL_FILE, IndicatorStore

    store = IndicatorStore(tmp_path / INTEL_FILE)
    try:
        for _ in range(3):
            result = ImportResult(store, flush_at=1)
            for sightings in (1, 2):
                result.add(Indicator(type=IndicatorType.IPV4, value="45.1.1.1", source="misp", sightings=sightings))
            result.close()
            (row,) = store.get(IndicatorType.IPV4, "45.1.1.1")
            assert (row.indicator.sightings, result.count) == (3, 1)
    finally:
        store.close()
