"""`cloudsoc detect` against pySigma + pysigma-backend-sqlite, from the same files, whole runs.

The issue's comparison as a user meets it: the same gzip CloudTrail files (the ingest benchmark's corpus, S3
layout) and the 57 SigmaHQ AWS rules. Ours is the whole `cloudsoc detect --no-builtin --rules … --json` command
(start-up, rule compilation, gunzip, parsing to ECS, detection, printing alerts), run twice: pinned to one core
(one process), and on every core (its default: a worker process per core). The reference
is pySigma converting the rules to SQL, then reading the same files (gunzip + JSON), flattening every record into
an in-memory SQLite table and running every query, in one process pinned to the same core. Both must report the
same (rule, event id) pairs. Run: `.venv/bin/python bench/detect_files_vs_sqlite.py [--events 200000]`.
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
SIGMA_DIR = ROOT.parent / "shared" / "data" / "cloudaudit" / "sigma-rules-aws" / "cloudtrail"


def pick_files(events: int) -> list[Path]:
    from ingest_bench import corpus

    chosen: list[Path] = []
    total = 0
    for path in sorted(corpus(1_000_000, 1).rglob("*.json.gz")):
        chosen.append(path)
        total += len(orjson.loads(gzip.decompress(path.read_bytes()))["Records"])
        if total >= events:
            break
    return chosen


def ours(files: list[Path], *, one_core: bool) -> tuple[float, set[tuple[str, str]]]:
    with tempfile.TemporaryDirectory() as tmp:
        for i, f in enumerate(files):
            os.symlink(f, Path(tmp) / f"{i:06d}_{f.name}")
        # One core: pinned (detect then runs in one process); else every core (one worker process per core).
        cmd = ["taskset", "-c", "0"] if one_core else []
        cmd += [sys.executable, "-m", "cloudsoc", "--home", str(Path(tmp) / "home"), "detect"]
        cmd += ["--no-builtin", "--rules", str(SIGMA_DIR), "--json", "--no-progress", tmp]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, check=True)
        seconds = time.perf_counter() - t
    pairs = set()
    for line in proc.stdout.splitlines():
        alert = orjson.loads(line)
        for event_id in alert["event"]["ids"]:
            pairs.add((alert["rule"]["id"], event_id))
    return seconds, pairs


def reference(files: list[Path], tuned_gc: bool) -> tuple[float, dict[str, float], set[tuple[str, str]]]:
    from tests.differential.test_sigma_sqlite import SqliteSigma

    os.sched_setaffinity(0, {0})
    if tuned_gc:  # the collector settings cloudsoc itself runs with
        import gc

        gc.freeze()
        gc.set_threshold(100_000, 50, 100)
    t = time.perf_counter()
    oracle = SqliteSigma.convert([(str(p), p.read_text(encoding="utf-8")) for p in sorted(SIGMA_DIR.glob("*.yml"))])
    t_convert = time.perf_counter()
    docs = []
    for path in files:
        for rec in orjson.loads(gzip.decompress(path.read_bytes()))["Records"]:
            docs.append({"@timestamp": rec.get("eventTime"), "aws": {"cloudtrail": rec}})
    t_read = time.perf_counter()
    con = oracle.load(docs)
    t_load = time.perf_counter()
    found = oracle.matches(con)
    t_query = time.perf_counter()
    pairs = {(key, str(docs[row - 1]["aws"]["cloudtrail"]["eventID"])) for key, row in found}
    parts = {"convert": t_convert - t, "read": t_read - t_convert, "load": t_load - t_read, "query": t_query - t_load}
    return t_query - t, parts, pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument(
        "--reference-gc",
        choices=("default", "tuned"),
        default="default",
        help="the reference script's garbage collector: CPython's default (as such a script runs) or ours",
    )
    args = parser.parse_args()
    files = pick_files(args.events)
    events = sum(len(orjson.loads(gzip.decompress(f.read_bytes()))["Records"]) for f in files)
    cores = len(os.sched_getaffinity(0))
    one_s, one_pairs = ours(files, one_core=True)
    all_s, all_pairs = ours(files, one_core=False)
    ref_s, parts, ref_pairs = reference(files, args.reference_gc == "tuned")
    for name, pairs in (("one core", one_pairs), ("all cores", all_pairs)):
        if pairs != ref_pairs:
            raise SystemExit(
                f"{name}: match sets differ: {len(pairs - ref_pairs)} only ours, {len(ref_pairs - pairs)} only SQLite"
            )
    result = {
        "files": len(files),
        "events": events,
        "pairs": len(ref_pairs),
        "cores": cores,
        "ours_one_core_s": one_s,
        "ours_all_cores_s": all_s,
        "sqlite_s": ref_s,
        "sqlite_parts_s": parts,
        "ratio_one_core": ref_s / one_s,
        "ratio_all_cores": ref_s / all_s,
        "reference_gc": args.reference_gc,
    }
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / f"detect_files_{args.reference_gc}.json").write_bytes(
        orjson.dumps(result, option=orjson.OPT_INDENT_2)
    )
    detail = ", ".join(f"{k} {v:.2f}" for k, v in parts.items())
    print(
        f"| `cloudsoc detect` vs pySigma+SQLite, 57 SigmaHQ rules, {len(files):,} gzip files | {events:,} events | "
        f"{len(ref_pairs):,} matches (identical) | ours one core {one_s:.2f} s, "
        f"{result['cores']} cores {all_s:.2f} s | "
        f"SQLite ({args.reference_gc} GC) {ref_s:.2f} s ({detail}) | **{ref_s / one_s:.1f}x / {ref_s / all_s:.1f}x** |"
    )


if __name__ == "__main__":
    main()
