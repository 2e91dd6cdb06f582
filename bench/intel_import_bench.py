"""Import 1,000,000 generated indicators (mixed types) into the indicator store: wall time and peak RSS.

Target (issue 4): 1M in ≤ 10 s and ≤ 500 MB RSS. Run: ``.venv/bin/python bench/intel_import_bench.py [N]``.
The indicators are built as a stream (as an importer's output would be consumed) so that the measured RSS is the
store's, not a list of a million structs held by the benchmark.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from cloudsoc.intel.indicator import Indicator, IndicatorType
from cloudsoc.intel.store import INTEL_FILE, IndicatorStore

T = IndicatorType
SEEN = datetime(2026, 11, 1, tzinfo=UTC)


def generate(n: int) -> Iterator[Indicator]:
    """40% IPv4, 20% domains, 15% URLs, 15% SHA-256, 5% MD5, 5% CIDR; three sources."""
    for i in range(n):
        slot = i % 20
        source = ("feed-a", "feed-b", "feed-c")[i % 3]
        if slot < 8:
            kind, value = T.IPV4, f"{10 + i % 200}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        elif slot < 12:
            kind, value = T.DOMAIN, f"host{i}.example{i % 997}.com"
        elif slot < 15:
            kind, value = T.URL, f"http://bad{i % 5003}.example/path/{i}"
        elif slot < 18:
            kind, value = T.SHA256, f"{i:064x}"
        elif slot < 19:
            kind, value = T.MD5, f"{i:032x}"
        else:
            kind, value = T.CIDR, f"{i & 255}.{(i >> 8) & 255}.{(i >> 16) & 255}.0/24"
        yield Indicator(type=kind, value=value, source=source, intel_types=["malware"], confidence=70, last_seen=SEEN)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        store = IndicatorStore(Path(tmp) / INTEL_FILE)
        start = time.perf_counter()
        written = store.upsert(generate(n))
        first = time.perf_counter() - start
        start = time.perf_counter()
        store.upsert(generate(n))  # the same feed again: every row is an update
        second = time.perf_counter() - start
        rows = sum(store.counts().values())
        size = (Path(tmp) / INTEL_FILE).stat().st_size
        store.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"indicators: {written:,} written, {rows:,} rows, database {size / 1e6:.0f} MB")
    print(f"first import: {first:.2f} s ({written / first:,.0f}/s); re-import (upsert): {second:.2f} s")
    print(f"peak RSS: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
