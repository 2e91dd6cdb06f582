"""``cloudsoc intel hunt`` end to end: real CloudTrail and ActionTrail samples ingested from their delivery layouts,
a STIX 2.1 bundle of new indicators imported afterwards, then hunted over the stored history."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import Any

import orjson

from tests.e2e.cli import SHARED_DATA, cloudsoc, cloudsoc_json, jsonl

OTRF = SHARED_DATA / "cloudaudit" / "otrf-security-datasets" / "ec2_proxy_s3_exfiltration_2020-09-14011940.json"
ALIYUN = SHARED_DATA / "cloudaudit" / "streamalert-aliyun-actiontrail" / "aliyun_actiontrail.json"
# The samples hold no IPv6 address: three real OTRF records are delivered again from these.
IPV6 = ("2a05:d018:1:2::10", "2a05:d018:1:2::10", "2a05:d018:9::1")


def ingest_samples(tmp_path: Path, home: Path) -> None:
    otrf = [orjson.loads(line) for line in OTRF.read_bytes().splitlines() if line.strip()]
    ct = tmp_path / "logs" / "AWSLogs" / "123456789123" / "CloudTrail" / "us-east-1" / "2020" / "09" / "14"
    ct.mkdir(parents=True)
    moved: list[dict[str, Any]] = [
        {**rec, "eventID": f"00000000-0000-4000-8000-{n:012d}", "sourceIPAddress": ip}
        for n, (rec, ip) in enumerate(zip(otrf, IPV6, strict=False))
    ]
    for n, records in enumerate((otrf, moved)):
        name = f"123456789123_CloudTrail_us-east-1_20200914T0{n}05Z_abcdEFGH{n:08d}.json.gz"
        (ct / name).write_bytes(gzip.compress(orjson.dumps({"Records": records})))
    ali = [item["data"] for item in orjson.loads(ALIYUN.read_bytes())]
    at = tmp_path / "logs" / "AliyunLogs" / "Actiontrail" / "cn-hangzhou" / "2018" / "07" / "19"
    at.mkdir(parents=True)
    body = orjson.dumps(ali)
    md5 = hashlib.md5(body).hexdigest()
    (at / f"Actiontrail_cn-hangzhou_20180719164723_1002_1_{len(body)}_{md5}.gz").write_bytes(gzip.compress(body))
    stored = cloudsoc_json(home, "ingest", str(tmp_path / "logs"))
    assert stored["stored"] == len(otrf) + len(moved) + len(ali)


def stix_bundle(path: Path, patterns: dict[str, str]) -> Path:
    """A STIX 2.1 bundle with one indicator per pattern (confidence 85, as a vendor feed would say)."""
    objects = [
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": f"indicator--{hashlib.md5(p.encode()).hexdigest()[:8]}-0000-4000-8000-{n:012d}",
            "created": "2026-11-01T00:00:00.000Z",
            "modified": "2026-11-01T00:00:00.000Z",
            "name": name,
            "pattern": p,
            "pattern_type": "stix",
            "valid_from": "2026-11-01T00:00:00Z",
            "indicator_types": ["malicious-activity"],
            "confidence": 85,
        }
        for n, (name, p) in enumerate(patterns.items())
    ]
    path.write_bytes(
        orjson.dumps({"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000001", "objects": objects})
    )
    return path


def test_hunt_finds_cidr_and_ipv6_hits_in_history_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ingest_samples(tmp_path, home)
    feed = stix_bundle(
        tmp_path / "new-intel.json",
        {
            "aliyun caller": "[ipv4-addr:value = '42.120.74.96']",
            "aliyun range": "[ipv4-addr:value = '65.205.72.0/24']",
            "v6 host": "[ipv6-addr:value = '2a05:d018:1:2::10']",
            "v6 range": "[ipv6-addr:value = '2a05:d018:9::/48']",
            "never seen": "[ipv4-addr:value = '198.51.100.200']",
            "a domain": "[domain-name:value = 'evil.example.com']",
        },
    )
    imported = cloudsoc_json(home, "intel", "import", "--hunt-days", "0", str(feed))
    assert imported["indicators"] == 6 and imported["retro_hunt"] is None
    # the samples are years old: nothing in the default 30 days
    recent = cloudsoc_json(home, "intel", "hunt")
    assert recent["events_scanned"] == 0 and recent["hits"] == [] and recent["alerts"] == 0
    hunt = cloudsoc_json(home, "intel", "hunt", "--since", "2015-01-01")
    assert set(hunt) == {
        "indicators",
        "since",
        "until",
        "events_scanned",
        "events_matched",
        "allowed_events",
        "hits",
        "alerts",
        "seconds",
    }
    assert hunt["indicators"] == 5  # the domain is not hunted: no column holds domains
    assert hunt["events_scanned"] == cloudsoc_json(home, "status")["store"]["events"]  # type: ignore[index]
    hits = {h["value"]: (h["type"], h["events"], h["addresses"], h["sources"]) for h in hunt["hits"]}  # type: ignore[union-attr]
    assert hits == {
        "42.120.74.96": ("ipv4", 3, 1, ["new-intel.json"]),
        "2a05:d018:1:2::10": ("ipv6", 2, 1, ["new-intel.json"]),
        "65.205.72.0/24": ("cidr", 1, 1, ["new-intel.json"]),
        "2a05:d018:9::/48": ("cidr", 1, 1, ["new-intel.json"]),
    }
    assert hunt["events_matched"] == 7 and hunt["allowed_events"] == 0
    alerts = jsonl(cloudsoc(home, "alerts", "list", "--rule", "threat_intel_source_ip", "--json").stdout)
    assert len(alerts) == hunt["alerts"] and all(a["retro"] for a in alerts)
    sources = {m["value"] for a in alerts for m in a["matched"] if m["field"] == "source.ip"}  # type: ignore[union-attr]
    # only the hunted addresses: none of the 98 events from 1.2.3.4 or the other samples
    assert sources == {"42.120.74.96", "65.205.72.122", "2a05:d018:1:2::10", "2a05:d018:9::1"}
    again = cloudsoc_json(home, "intel", "hunt", "--since", "2015-01-01")
    assert again["alerts"] == 0 and again["hits"] == hunt["hits"]  # each past hit is raised once
    only_cidrs = cloudsoc_json(home, "intel", "hunt", "--since", "2015-01-01", "--type", "cidr")
    assert {h["value"] for h in only_cidrs["hits"]} == {"65.205.72.0/24", "2a05:d018:9::/48"}  # type: ignore[union-attr]
    window = cloudsoc_json(home, "intel", "hunt", "--since", "2019-01-01", "--until", "2021-01-01")
    assert {h["value"] for h in window["hits"]} == {"2a05:d018:1:2::10", "2a05:d018:9::/48"}  # type: ignore[union-attr]
    text = cloudsoc(home, "intel", "hunt", "--since", "2015-01-01").stdout
    assert "5 indicators hunted" in text and "42.120.74.96" in text
    wrong = cloudsoc(home, "intel", "hunt", "--type", "domain", check=False)
    assert wrong.returncode != 0 and "only ipv4, ipv6, cidr" in wrong.stderr


def test_import_hunts_what_it_imported(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ingest_samples(tmp_path, home)
    feed = stix_bundle(tmp_path / "ranges.json", {"aliyun range": "[ipv4-addr:value = '65.205.72.0/24']"})
    imported = cloudsoc_json(home, "intel", "import", "--hunt-days", "5000", str(feed))
    hunted = imported["retro_hunt"]
    assert hunted["indicators"] == 1 and hunted["events_matched"] == 1 and hunted["alerts"] == 1  # type: ignore[index]
