"""Intel look-up benchmark: the enriching process with 1,000,000 (and 10,000,000) mixed indicators loaded.

Indicators are generated (seeded, so every run sees the same set): 55% IPv4, 5% IPv6, 2% CIDR (/16–/28), 20%
domains, 8% URLs, 10% hashes, with 5% of IPv4 values listed by a second source. A child process imports them into a
fresh ``intel.db`` (streamed, so that this process never holds them); this process then does what the enricher
does: ``Allowlist.default()`` and ``Matcher.from_store`` (values in memory, a hit's context read from the store).
The queries are a hit/miss mix (``--hit-ratio``, default 10% hits; misses are addresses and names no feed lists).
Reported per size:

- the process's RSS (python + imports + warninglists + matcher: everything an enriching process holds), the
  matcher's build time and the RSS it adds, and the warninglists' build time and RSS;
- the peak RSS, which includes a rebuild: a second matcher built while the first still serves, as after a sync;
- exact IP look-ups per second through ``Matcher.ip`` (dict probe + CIDR trie probe per miss), misses only and
  with the hit ratio (hits drawn from a recurring set of 2,000 values, whose context is cached after its first read);
- µs per event for three look-ups (``source.ip``, ``destination.ip``, ``dns.question.name``), without and with the
  default warninglists; and µs per first hit on a value (its context read from intel.db; later hits are cached).

Results go to bench/out/intel_lookup.json. Run: ``.venv/bin/python bench/intel_lookup_bench.py
[--counts 1000000,10000000]`` (10M: ~3 minutes of import plus ~1 GB of disk in the temp directory).
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson

from cloudsoc.intel.allowlist import Allowlist
from cloudsoc.intel.indicator import Indicator, IndicatorType
from cloudsoc.intel.matcher import Matcher
from cloudsoc.intel.store import INTEL_FILE, READ_CACHE_MB, IndicatorStore

OUT = Path(__file__).resolve().parent / "out"
NOW = datetime(2026, 11, 26, tzinfo=UTC)
SEEN = datetime(2026, 11, 20, tzinfo=UTC)
T = IndicatorType
POOL = 100_000  # values kept (evenly spread) to draw hits from
# Distinct values the hits of the timed loops are drawn from: hits recur (the same scanners and C2s, event after
# event), and a hit's context is cached per value after its first read from intel.db. First hits are timed apart.
HOT = 2_000


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


def generate(count: int, rng: random.Random, pools: dict[str, list[str]]) -> Iterator[Indicator]:
    """The indicators, streamed; every ``count // POOL``-th IPv4 and domain is kept in ``pools`` for hits."""
    seen = {"ips": 0, "names": 0}

    def keep(pool: str, value: str) -> None:
        if seen[pool] % stride == 0:
            pools[pool].append(value)
        seen[pool] += 1

    common = {"source": "bench-a", "intel_types": ["malware"], "confidence": 70, "last_seen": SEEN}
    stride = max(1, count // POOL)
    for i in range(count):
        r = i % 100
        if r < 55:
            value = ipv4(rng)
            yield Indicator(type=T.IPV4, value=value, **common)  # type: ignore[arg-type]
            if r < 3:  # ~5% of IPv4s also listed by a second feed
                yield Indicator(type=T.IPV4, value=value, source="bench-b", confidence=40, last_seen=SEEN)
            keep("ips", value)
        elif r < 60:
            value = f"2001:db8:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}"
            yield Indicator(type=T.IPV6, value=value, **common)  # type: ignore[arg-type]
        elif r < 62:
            plen = rng.randrange(16, 29)
            base = int.from_bytes(bytes(int(p) for p in ipv4(rng).split(".")), "big")
            net = base >> (32 - plen) << (32 - plen)
            value = ".".join(str((net >> s) & 255) for s in (24, 16, 8, 0)) + f"/{plen}"
            yield Indicator(type=T.CIDR, value=value, source="bench-a", intel_types=["scanner"], last_seen=SEEN)
        elif r < 82:
            value = domain(rng)
            yield Indicator(type=T.DOMAIN, value=value, **common)  # type: ignore[arg-type]
            keep("names", value)
        elif r < 90:
            value = f"http://{domain(rng)}/{rng.randrange(10**9):x}/load.php"
            yield Indicator(type=T.URL, value=value, **common)  # type: ignore[arg-type]
        else:
            yield Indicator(type=T.SHA256, value=f"{rng.getrandbits(256):064x}", **common)  # type: ignore[arg-type]


def import_child(db: Path, count: int) -> None:
    """In a child process: import ``count`` generated indicators into ``db``; the hit pools go to ``db``.pools."""
    pools: dict[str, list[str]] = {"ips": [], "names": []}
    store = IndicatorStore(db)
    t0 = time.perf_counter()
    rows = store.upsert(generate(count, random.Random(1), pools), now=NOW)
    secs = time.perf_counter() - t0
    store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stats = {"rows": rows, "import_secs": round(secs, 2), "import_peak_rss_mb": round(peak), **pools}
    db.with_suffix(".pools").write_bytes(orjson.dumps(stats))


def measure(count: int, events: int, hit_ratio: float, tmp: Path) -> dict[str, object]:
    db = tmp / INTEL_FILE
    subprocess.run([sys.executable, __file__, "--import-to", str(db), "--count", str(count)], check=True)
    stats = orjson.loads(db.with_suffix(".pools").read_bytes())
    ips: list[str] = stats.pop("ips")
    names: list[str] = stats.pop("names")
    results: dict[str, object] = {"indicators": count, "hit_ratio": hit_ratio, **stats}
    results["db_mb"] = round(db.stat().st_size / 1e6)

    gc.collect()
    results["python_rss_mb"] = round(rss_mb(), 1)  # interpreter + imports + the query pools
    before = rss_mb()
    t0 = time.perf_counter()
    allow = Allowlist.default()
    results["allowlist_build_secs"] = round(time.perf_counter() - t0, 3)
    results["allowlist_rss_mb"] = round(rss_mb() - before, 1)
    results["allowlist_entries"] = len(allow)
    results["allowlist_lists"] = len(allow.lists)

    before = rss_mb()
    t0 = time.perf_counter()
    matcher = Matcher.from_store(IndicatorStore(db, cache_mb=READ_CACHE_MB), NOW, allow)
    results["build_secs"] = round(time.perf_counter() - t0, 3)
    gc.collect()
    results["matcher_rss_mb"] = round(rss_mb() - before, 1)
    results["indexed"] = len(matcher)
    results["rss_total_mb"] = round(rss_mb(), 1)  # what the enriching process holds

    qrng = random.Random(2)
    hot_ips, hot_names = ips[:HOT], names[:HOT]

    def pick(pool: list[str], miss: str) -> str:
        return qrng.choice(pool) if qrng.random() < hit_ratio else miss

    # misses: 10.x addresses and .invalid names, which no generated indicator uses (10.x is in no CIDR either)
    ip_queries = [pick(hot_ips, f"10.{i % 251}.{i % 241}.{i % 239}") for i in range(events)]
    event_list = [
        (
            pick(hot_ips, f"10.{i % 251}.{i % 241}.{i % 239}"),
            pick(hot_ips, f"10.{i % 239}.{i % 233}.{i % 229}"),
            "www." + pick(hot_names, f"host{i % 100_000}.example.invalid"),
        )
        for i in range(events)
    ]

    # First hits: each reads its rows from intel.db (values outside the hot set, each asked once).
    firsts = ips[-HOT:]
    t0 = time.perf_counter()
    found = sum(1 for v in firsts if matcher.ip(v))
    results["first_hit_us"] = round((time.perf_counter() - t0) / len(firsts) * 1e6, 1)
    results["first_hits"] = found
    # Misses only: what most look-ups are.
    misses = [f"10.{i % 251}.{i % 241}.{i % 239}" for i in range(events)]
    ip = matcher.ip
    t0 = time.perf_counter()
    for v in misses:
        ip(v)
    results["ip_misses_per_sec"] = round(len(misses) / (time.perf_counter() - t0))
    del misses

    # The hot values' first hits (their rows read from intel.db) are paid before each timed loop: the loops
    # measure recurring hits, and first hits are reported apart (first_hit_us).
    def warm() -> None:
        for v in hot_ips:
            matcher.ip(v)
        for v in hot_names:
            matcher.domain("www." + v)

    warm()
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

    for label, allowed in (("plain", Allowlist.empty()), ("with_warninglists", allow)):
        matcher.allow = allowed  # forgets the cached hits
        warm()
        ip, dom = matcher.ip, matcher.domain
        hits = 0
        t0 = time.perf_counter()
        for src, dst, name in event_list:
            if ip(src):
                hits += 1
            if ip(dst):
                hits += 1
            if dom(name):
                hits += 1
        secs = time.perf_counter() - t0
        results[f"event_us_{label}"] = round(secs / len(event_list) * 1e6, 3)
        results[f"event_hits_{label}"] = hits
    gc.enable()
    # A rebuild after a feed sync, as IntelSource does it: the new matcher is built while the old one still serves,
    # then swapped in. The process's peak is the most an enriching process ever holds.
    t0 = time.perf_counter()
    rebuilt = Matcher.from_store(IndicatorStore(db, cache_mb=READ_CACHE_MB), NOW, allow)
    results["rebuild_secs"] = round(time.perf_counter() - t0, 3)
    matcher.close()
    matcher = rebuilt
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    matcher.close()
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="1000000,10000000", help="comma-separated sizes, each measured in turn")
    ap.add_argument("--events", type=int, default=500_000)
    ap.add_argument("--hit-ratio", type=float, default=0.10)
    # Internal: the child processes (one importer and one measurer per size, so that no size's RSS includes
    # another's or the import's).
    ap.add_argument("--import-to", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--measure-in", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=1_000_000, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.import_to is not None:
        import_child(args.import_to, args.count)
        return
    if args.measure_in is not None:
        result = measure(args.count, args.events, args.hit_ratio, args.measure_in)
        sys.stdout.write(orjson.dumps(result).decode())
        return
    out: list[object] = []
    for count in (int(c) for c in args.counts.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            argv = [sys.executable, __file__, "--measure-in", tmp, "--count", str(count)]
            argv += ["--events", str(args.events), "--hit-ratio", str(args.hit_ratio)]
            done = subprocess.run(argv, check=True, stdout=subprocess.PIPE)
        out.append(orjson.loads(done.stdout))
        print(orjson.dumps(out[-1], option=orjson.OPT_INDENT_2).decode(), flush=True)
        OUT.mkdir(exist_ok=True)
        (OUT / "intel_lookup.json").write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
