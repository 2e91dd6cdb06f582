"""Ingest benchmark: a generated 1,000,000-event CloudTrail corpus in the S3 layout.

Measures `cloudsoc ingest` (parse + normalise + store in DuckDB) pinned to one core and unpinned, with peak RSS,
and, over the same files, `gzip -dc | jq -c '.Records[]'` as a parsing-only reference that does less work.
Run: `make bench` (or `.venv/bin/python bench/ingest_bench.py --events 1000000`). Results go to
bench/out/ingest.json and are printed as Markdown rows for the README.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson

OUT = Path(__file__).resolve().parent / "out"


def corpus(events: int, seed: int) -> Path:
    from cloudsoc.demo.generator import DemoGenerator, DemoOptions

    root = OUT / f"corpus-{events}-{seed}"
    marker = root / ".complete"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        t = time.perf_counter()
        DemoGenerator(DemoOptions(seed=seed)).write_cloudtrail_corpus(root, events=events)
        marker.write_text(str(events))
        print(f"generated {events:,} events in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return root


def measure(cmd: list[str], *, shell: bool = False, stdout: int | None = subprocess.DEVNULL) -> dict[str, float]:
    """Wall time, CPU time and peak RSS of one child process (and its children, for a shell pipeline)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd if not shell else " ".join(cmd), shell=shell, stdout=stdout)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def ingest(root: Path, *, pin: bool) -> dict[str, float]:
    home = OUT / "home-ingest"
    shutil.rmtree(home, ignore_errors=True)
    cmd = [sys.executable, "-m", "cloudsoc", "--home", str(home), "ingest", "--json", "--no-progress", str(root)]
    if pin:
        cmd = ["taskset", "-c", "0", *cmd]
    out = OUT / "ingest-summary.json"
    with out.open("wb") as fh:
        result = measure(cmd, stdout=fh.fileno())
    summary = orjson.loads(out.read_bytes())
    result["stored"] = summary["stored"]
    result["events_per_s"] = summary["stored"] / result["wall_s"]
    return result


def jq(root: Path) -> dict[str, float]:
    files = OUT / "files.txt"
    files.write_text("\n".join(sorted(str(p) for p in root.rglob("*.json.gz"))) + "\n")
    result = measure([f"xargs -a {files} gzip -dc | jq -c '.Records[]' | wc -l"], shell=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    for tool in ("jq", "taskset", "gzip"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed for the comparison: apt-get install -y jq util-linux gzip")
    OUT.mkdir(exist_ok=True)
    root = corpus(args.events, args.seed)
    size = sum(p.stat().st_size for p in root.rglob("*.json.gz"))
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.platform()}",
        "events": args.events,
        "files": sum(1 for _ in root.rglob("*.json.gz")),
        "gzip_mb": size / 2**20,
        "cloudsoc_one_core": ingest(root, pin=True),
        "cloudsoc_two_cores": ingest(root, pin=False),
        "jq": jq(root),
    }
    jq_rate = args.events / results["jq"]["wall_s"]  # type: ignore[index]
    results["jq"]["events_per_s"] = jq_rate  # type: ignore[index]
    (OUT / "ingest.json").write_text(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    print(f"corpus: {args.events:,} events, {results['files']:,} files, {size / 2**20:.0f} MB gzip")
    print("| run | wall s | CPU s | events/s | peak RSS MB | vs jq |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in ("cloudsoc_one_core", "cloudsoc_two_cores", "jq"):
        r = results[name]
        assert isinstance(r, dict)
        print(
            f"| {name} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['events_per_s']:,.0f} | {r['peak_rss_mb']:.0f} "
            f"| {r['events_per_s'] / jq_rate:.2f}x |"
        )


if __name__ == "__main__":
    main()
