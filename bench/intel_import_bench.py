"""Import 1,000,000 and 10,000,000 generated indicators (mixed types) into the indicator store: time and peak RSS.

Targets (issue 4): 1M in ≤ 10 s and ≤ 500 MB RSS; 10M in ≤ 2 GB. Run: ``.venv/bin/python
bench/intel_import_bench.py [--counts 1000000,10000000] [--runs 3]`` (10M: ~2 minutes a run and ~1.7 GB of disk in
the temp directory). Each run of each size is a process of its own, so that its peak RSS is its own. The
indicators are built as a stream (as an importer's output would be consumed), so that the measured RSS is the
store's, not a list of structs held by the benchmark; the time to build them (the importer's share, not the
store's) is measured apart and reported as ``generate_secs``. Results: bench/out/intel_import.json.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson

from cloudsoc.intel.indicator import Indicator, IndicatorType
from cloudsoc.intel.store import INTEL_FILE, IndicatorStore

T = IndicatorType
SEEN = datetime(2026, 11, 1, tzinfo=UTC)
OUT = Path(__file__).resolve().parent / "out"


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


def run(n: int, reimport: bool) -> dict[str, object]:
    """One measured import of ``n`` indicators (and a second one over them: every row an update)."""
    result: dict[str, object] = {"indicators": n}
    start = time.perf_counter()
    for _ in generate(n):
        pass
    result["generate_secs"] = round(time.perf_counter() - start, 2)
    with tempfile.TemporaryDirectory() as tmp:
        store = IndicatorStore(Path(tmp) / INTEL_FILE)
        start = time.perf_counter()
        result["written"] = store.upsert(generate(n))
        result["import_secs"] = round(time.perf_counter() - start, 2)
        if reimport:
            start = time.perf_counter()
            store.upsert(generate(n))  # the same feed again: every row is an update
            result["reimport_secs"] = round(time.perf_counter() - start, 2)
        result["rows"] = sum(store.counts().values())
        result["db_mb"] = round((Path(tmp) / INTEL_FILE).stat().st_size / 1e6)
        store.close()
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="1000000,10000000", help="comma-separated sizes")
    ap.add_argument("--runs", type=int, default=3, help="runs per size (the machine is shared: best and spread)")
    ap.add_argument("--reimport-max", type=int, default=1_000_000, help="also time a re-import up to this size")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one run in a child process
    args = ap.parse_args()
    if args.one is not None:
        sys.stdout.write(orjson.dumps(run(args.one, args.one <= args.reimport_max)).decode())
        return
    out: list[dict[str, object]] = []
    for n in (int(c) for c in args.counts.split(",")):
        runs = []
        for _ in range(args.runs):
            argv = [sys.executable, __file__, "--one", str(n), "--reimport-max", str(args.reimport_max)]
            runs.append(orjson.loads(subprocess.run(argv, check=True, stdout=subprocess.PIPE).stdout))
            print(runs[-1], flush=True)
        secs = [float(r["import_secs"]) for r in runs]
        summary = {
            "indicators": n,
            "runs": runs,
            "import_secs_best": min(secs),
            "import_secs_worst": max(secs),
            "peak_rss_mb_max": max(int(r["peak_rss_mb"]) for r in runs),
        }
        if all("reimport_secs" in r for r in runs):
            summary["reimport_secs_best"] = min(float(r["reimport_secs"]) for r in runs)
            summary["reimport_secs_worst"] = max(float(r["reimport_secs"]) for r in runs)
        out.append(summary)
        print(orjson.dumps({k: v for k, v in summary.items() if k != "runs"}).decode(), flush=True)
        OUT.mkdir(exist_ok=True)
        (OUT / "intel_import.json").write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
