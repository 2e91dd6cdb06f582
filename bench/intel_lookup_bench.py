"""Intel look-up benchmark: build a matcher over 1,000,000 mixed indicators and time the look-ups an event makes.

Indicators are generated (seeded, so every run sees the same set): 55% IPv4, 5% IPv6, 2% CIDR (/16–/28), 20%
domains, 8% URLs, 10% hashes, with 5% of IPv4 values listed by a second source. The queries are a hit/miss mix
(``--hit-ratio``, default 10% hits; misses are addresses and names no feed lists). Reported:

- the matcher's build time and the RSS it adds (the StoredIndicator rows themselves are the caller's and are
  reported separately), and ``Allowlist.default()``'s build time and RSS;
- exact IP look-ups per second through ``Matcher.ip`` (dict probe + CIDR trie probe per miss);
- µs per event for three look-ups (``source.ip``, ``destination.ip``, ``dns.question.name``), without and with the
  default warninglists.

Results go to bench/out/intel_lookup.json. Run: ``.venv/bin/python bench/intel_lookup_bench.py [--count N]``.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from cloudsoc.intel.allowlist import Allowlist
from cloudsoc.intel.indicator import Indicator, IndicatorType
from cloudsoc.intel.matcher import Matcher
from cloudsoc.intel.store import StoredIndicator

OUT = Path(__file__).resolve().parent / "out"
NOW = datetime(2026, 11, 26, tzinfo=UTC)
T = IndicatorType


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ipv4(rng: random.Random) -> str:
    # public-looking space (1.x–126.x, 128.x–223.x), so the warninglists' private ranges do not catch them
    first = rng.choice([*range(1, 10), *range(11, 127), *range(128, 224)])
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def domain(rng: random.Random) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    name = "".join(rng.choice(letters) for _ in range(rng.randrange(6, 14)))
    return f"{name}.{rng.choice(['com', 'net', 'org', 'ru', 'cn', 'top', 'xyz', 'co.uk'])}"


def generate(count: int, rng: random.Random) -> list[Indicator]:
    out: list[Indicator] = []
    common = {"source": "bench-a", "intel_types": ["malware"], "confidence": 70}
    for i in range(count):
        r = i % 100
        if r < 55:
            out.append(Indicator(type=T.IPV4, value=ipv4(rng), **common))  # type: ignore[arg-type]
            if r < 3:  # ~5% of IPv4s also listed by a second feed
                out.append(Indicator(type=T.IPV4, value=out[-1].value, source="bench-b", confidence=40))
        elif r < 60:
            value = f"2001:db8:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}"
            out.append(Indicator(type=T.IPV6, value=value, **common))  # type: ignore[arg-type]
        elif r < 62:
            plen = rng.randrange(16, 29)
            base = int.from_bytes(bytes(int(p) for p in ipv4(rng).split(".")), "big")
            net = base >> (32 - plen) << (32 - plen)
            value = ".".join(str((net >> s) & 255) for s in (24, 16, 8, 0)) + f"/{plen}"
            out.append(Indicator(type=T.CIDR, value=value, source="bench-a", intel_types=["scanner"]))
        elif r < 82:
            out.append(Indicator(type=T.DOMAIN, value=domain(rng), **common))  # type: ignore[arg-type]
        elif r < 90:
            value = f"http://{domain(rng)}/{rng.randrange(10**9):x}/load.php"
            out.append(Indicator(type=T.URL, value=value, **common))  # type: ignore[arg-type]
        else:
            out.append(Indicator(type=T.SHA256, value=f"{rng.getrandbits(256):064x}", **common))  # type: ignore[arg-type]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=500_000)
    ap.add_argument("--hit-ratio", type=float, default=0.10)
    args = ap.parse_args()
    rng = random.Random(1)
    results: dict[str, object] = {"indicators": args.count, "hit_ratio": args.hit_ratio}

    base = rss_mb()
    expires = NOW + timedelta(days=30)
    rows = [StoredIndicator(indicator=ind, expires=expires, updated=NOW) for ind in generate(args.count, rng)]
    results["rows"] = len(rows)
    results["rows_rss_mb"] = round(rss_mb() - base, 1)

    gc.collect()
    before = rss_mb()
    t0 = time.perf_counter()
    matcher = Matcher.build(rows)
    results["build_secs"] = round(time.perf_counter() - t0, 3)
    results["matcher_rss_mb"] = round(rss_mb() - before, 1)
    results["indexed"] = len(matcher)

    before = rss_mb()
    t0 = time.perf_counter()
    allow = Allowlist.default()
    results["allowlist_build_secs"] = round(time.perf_counter() - t0, 3)
    results["allowlist_rss_mb"] = round(rss_mb() - before, 1)
    results["allowlist_entries"] = len(allow)
    results["allowlist_lists"] = len(allow.lists)

    ips = [r.indicator.value for r in rows if r.indicator.type is T.IPV4]
    names = [r.indicator.value for r in rows if r.indicator.type is T.DOMAIN]
    qrng = random.Random(2)

    def pick(pool: list[str], miss: str) -> str:
        return qrng.choice(pool) if qrng.random() < args.hit_ratio else miss

    # misses: 10.x addresses and .invalid names, which no generated indicator uses (10.x is in no CIDR either)
    ip_queries = [pick(ips, f"10.{i % 251}.{i % 241}.{i % 239}") for i in range(args.events)]
    events = [
        (
            pick(ips, f"10.{i % 251}.{i % 241}.{i % 239}"),
            pick(ips, f"10.{i % 239}.{i % 233}.{i % 229}"),
            "www." + pick(names, f"host{i % 100_000}.example.invalid"),
        )
        for i in range(args.events)
    ]

    gc.disable()
    ip = matcher.ip
    hits = 0
    t0 = time.perf_counter()
    for v in ip_queries:
        if ip(v):
            hits += 1
    secs = time.perf_counter() - t0
    results["ip_lookups_per_sec"] = round(len(ip_queries) / secs)
    results["ip_hits"] = hits

    for label, m in (("plain", matcher), ("with_warninglists", Matcher.build(rows, allow=allow))):
        ip, dom = m.ip, m.domain
        hits = 0
        t0 = time.perf_counter()
        for src, dst, name in events:
            if ip(src):
                hits += 1
            if ip(dst):
                hits += 1
            if dom(name):
                hits += 1
        secs = time.perf_counter() - t0
        results[f"event_us_{label}"] = round(secs / len(events) * 1e6, 3)
        results[f"event_hits_{label}"] = hits
    gc.enable()
    results["rss_total_mb"] = round(rss_mb(), 1)

    OUT.mkdir(exist_ok=True)
    (OUT / "intel_lookup.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
