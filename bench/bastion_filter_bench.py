"""The bastion's built-in command filter on labelled commands: recall, precision, false positives and speed.

Positives: the Atomic Red Team Linux tests (sh/bash executors; the 6 PowerShell ones are not shell lines), with
`#{placeholders}` filled from their input_arguments defaults. A test can hold several lines; it counts as detected
when any line gets a non-accept verdict (the bastion sees each line at its own Enter).
Negatives: nl2bash (~12.6k one-liners people type). Every non-accept verdict there is a false positive of the
filter, whether or not the command is in fact risky; the list is printed so a person can judge.

Precision is computed over decisions: detected tests / (detected tests + flagged nl2bash lines).
Speed: µs per `CommandFilter.check` over the nl2bash lines with a fresh filter (cold parse cache), best of 3.
Run: `.venv/bin/python bench/bastion_filter_bench.py` (writes bench/out/bastion_filter.json).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "bastion"
ATOMIC = DATA / "atomic-red-team-linux" / "linux_atomic_commands.jsonl"
NL2BASH = DATA / "nl2bash" / "all.cm"
_PLACEHOLDER = re.compile(r"#\{([^}]+)\}")


def atomic_tests() -> list[dict[str, Any]]:
    tests = []
    for raw in ATOMIC.read_text(encoding="utf-8").splitlines():
        test = json.loads(raw)
        if test["executor"] not in ("sh", "bash"):
            continue
        args = test.get("input_arguments") or {}

        def fill(m: re.Match[str], args: dict[str, Any] = args) -> str:
            value = args.get(m.group(1))
            return str(value) if value is not None else m.group(0)

        command = _PLACEHOLDER.sub(fill, test["command"])
        lines = [ln.strip() for ln in command.splitlines()]
        test["lines"] = [ln for ln in lines if ln and not ln.startswith("#")]
        tests.append(test)
    return tests


def nl2bash_lines() -> list[str]:
    return [ln for ln in NL2BASH.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "out" / "bastion_filter.json")
    parser.add_argument("--runs", type=int, default=3)
    opts = parser.parse_args()

    from cloudsoc.bastion.filters import CommandFilter
    from cloudsoc.config.bastion import BastionConfig

    cfg = BastionConfig()
    flt = CommandFilter.from_config(cfg)
    tests = atomic_tests()
    negatives = nl2bash_lines()

    detected = 0
    by_tactic: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_group: Counter[str] = Counter()
    by_action: Counter[str] = Counter()
    missed: list[str] = []
    for test in tests:
        verdicts = [flt.check(line, user="bench") for line in test["lines"]]
        hits = [v for v in verdicts if v.action != "accept"]
        hit = bool(hits)
        detected += hit
        for tactic in test["tactics"]:
            by_tactic[tactic][0] += hit
            by_tactic[tactic][1] += 1
        if hits:
            worst = max(hits, key=lambda v: ["warn", "review", "reject"].index(v.action))
            by_group[worst.group] += 1
            by_action[worst.action] += 1
        else:
            missed.append(f"{test['technique_id']} {test['test_name']}")

    flagged: list[dict[str, str]] = []
    for line in negatives:
        v = flt.check(line, user="bench")
        if v.action != "accept":
            flagged.append({"line": line, "action": v.action, "group": v.group})
    fp_actions = Counter(f["action"] for f in flagged)
    fp_groups = Counter(f["group"] for f in flagged)

    timings = []
    p50s: list[float] = []
    p99s: list[float] = []
    cpu: list[float] = []
    for _ in range(opts.runs):
        fresh = CommandFilter.from_config(cfg)
        each = []
        cpu_start = time.process_time()
        for line in negatives:
            start = time.perf_counter()
            fresh.check(line, user="bench")
            each.append((time.perf_counter() - start) * 1e6)
        # CPU time too: on a shared machine the wall clock also counts time other jobs held the core.
        cpu.append((time.process_time() - cpu_start) / len(negatives) * 1e6)
        timings.append(sum(each) / len(each))
        each.sort()
        p50s.append(each[len(each) // 2])
        p99s.append(each[int(len(each) * 0.99)])
    parsers = Counter(flt.parse(line).parser for line in negatives)
    longest = max(negatives, key=len)
    start = time.perf_counter()
    CommandFilter.from_config(cfg).check(longest, user="bench")
    worst_us = (time.perf_counter() - start) * 1e6

    recall = detected / len(tests)
    precision = detected / (detected + len(flagged)) if detected + len(flagged) else 0.0
    result = {
        "positives": {"tests": len(tests), "detected": detected, "recall": round(recall, 4)},
        "negatives": {
            "lines": len(negatives),
            "flagged": len(flagged),
            "rate": round(len(flagged) / len(negatives), 5),
            "by_action": dict(fp_actions),
            "by_group": dict(fp_groups.most_common()),
        },
        "precision": round(precision, 4),
        "recall_by_tactic": {
            t: {"detected": d, "tests": n, "recall": round(d / n, 3)} for t, (d, n) in sorted(by_tactic.items())
        },
        "detected_by_group": dict(by_group.most_common()),
        "detected_by_action": dict(by_action),
        "us_per_check": {
            "best": round(min(timings), 1),
            "spread": round(max(timings) - min(timings), 1),
            "runs": [round(t, 1) for t in timings],
            "cpu_best": round(min(cpu), 1),
            "p50_best": round(min(p50s), 1),
            "p99_best": round(min(p99s), 1),
        },
        "longest_line": {"chars": len(longest), "us": round(worst_us, 1)},
        "parsers_on_nl2bash": dict(parsers),
        "false_positives": flagged,
        "missed": missed,
        "python": sys.version.split()[0],
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=2), encoding="utf-8")

    print("| corpus | n | flagged | rate |\n|---|---|---|---|")
    print(f"| Atomic Red Team Linux tests (positives) | {len(tests)} | {detected} | recall {recall:.1%} |")
    split = ", ".join(f"{a} {fp_actions.get(a, 0)}" for a in ("reject", "review", "warn"))
    print(
        f"| nl2bash lines (benign) | {len(negatives)} | {len(flagged)} | "
        f"{len(flagged) / len(negatives):.2%} ({split}) |"
    )
    print(
        f"\nprecision {precision:.1%}; check {min(timings):.0f} µs/command best of {opts.runs} "
        f"(spread {max(timings) - min(timings):.0f} µs); longest line {len(longest)} chars {worst_us:.0f} µs"
    )
    print("\n| ATT&CK tactic | tests | detected | recall |\n|---|---|---|---|")
    for tactic, (d, n) in sorted(by_tactic.items(), key=lambda kv: -kv[1][1]):
        print(f"| {tactic} | {n} | {d} | {d / n:.0%} |")
    print("\nnl2bash lines flagged:")
    for f in flagged:
        print(f"  {f['action']:6} {f['group']:22} {f['line']}")
    print(
        f"per command: p50 {min(p50s):.0f} µs, p99 {min(p99s):.0f} µs, CPU mean {min(cpu):.0f} µs (best of {opts.runs};"
        f" load average {os.getloadavg()[0]:.1f})"
    )
    print(f"\nparsers on nl2bash: {dict(parsers)}; median of runs {statistics.median(timings):.0f} µs")


if __name__ == "__main__":
    main()
