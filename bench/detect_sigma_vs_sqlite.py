"""Sigma detection benchmark: our engine against pySigma + pysigma-backend-sqlite, same rules, same events.

Rules: the 57 SigmaHQ AWS CloudTrail rules plus the differential test's correlation rules (8 correlations over 15
base rules). Events (200,000 CloudTrail documents by default, parsed before timing starts): nine in ten from the
demo company's CloudTrail (normal activity and the attack story), the rest every real CloudTrail record of
../shared/data/cloudaudit, repeated, each copy moved 30 days later so that copies never share a correlation window.

Timed, on one core: ours = ``RuleIndex.select`` over the documents, then the correlations' aggregators over the
selected events; SQLite = flattening the documents into an in-memory table (load) and running every converted
query. Rule compilation / conversion is reported apart. Both sides must find the same (rule, event) pairs and the
same correlation groups, or the script fails.
Run: `.venv/bin/python bench/detect_sigma_vs_sqlite.py [--events 200000]`; results go to bench/out/detect_sigma.json.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sqlite3
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))  # the oracle lives with the differential test that defines it

from tests.differential.test_sigma_sqlite import (  # noqa: E402
    CORRELATIONS,
    SqliteSigma,
    cloudtrail_documents,
    our_rules,
    sigmahq_texts,
)

from cloudsoc.demo.generator import DemoGenerator, DemoOptions  # noqa: E402
from cloudsoc.detect.correlation import SigmaCorrelation  # noqa: E402
from cloudsoc.detect.engine import RuleIndex, event_time  # noqa: E402
from cloudsoc.detect.rule import Finding  # noqa: E402
from cloudsoc.parsers.aws_cloudtrail import AwsCloudtrail  # noqa: E402


def corpus(events: int, seed: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """``events`` parsed CloudTrail documents in time order, and where they came from: about nine in ten from the
    demo company (normal activity and the attack story), the rest real records, repeated."""
    parser = AwsCloudtrail()
    # The demo writes about as much ActionTrail as CloudTrail; only CloudTrail is kept.
    items, _ = DemoGenerator(DemoOptions(seed=seed, min_events=2 * events * 9 // 10)).records()
    demo = [parser.parse(record) for _, _, provider, _, record in items if provider == "aws_cloudtrail"]
    docs = demo[: events * 9 // 10]
    real = sorted(cloudtrail_documents(), key=event_time)
    copies = 0
    while len(docs) < events:
        shift = timedelta(days=30 * copies)
        for doc in real[: events - len(docs)]:
            # A shallow copy with a new time: the nested record is shared, as it is read-only here.
            docs.append({**doc, "@timestamp": (event_time(doc) + shift).isoformat().replace("+00:00", "Z")})
        copies += 1
    docs.sort(key=event_time)
    return docs, {"demo": events * 9 // 10, "real": len(real), "real_copies": copies, "total": len(docs)}


def first_fires(findings: dict[str, list[Finding]]) -> dict[str, dict[tuple[object, ...], float]]:
    out: dict[str, dict[tuple[object, ...], float]] = {}
    for key, found in findings.items():
        groups = out.setdefault(key, {})
        for finding in found:
            group = tuple(m.value for m in finding.matched[:-1])
            groups.setdefault(group, round(max(m.time for m in finding.matches).timestamp(), 3))
    return out


def settle() -> None:
    """What is alive now (the corpus, earlier runs' results) stays: keep the collector from walking it during the
    timed part, for either side."""
    gc.collect()
    gc.freeze()


def ours(texts: list[tuple[str, str]], docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Our engine: (rule id, row) pairs, correlation findings and the time of each phase."""
    rows = {id(doc): position for position, doc in enumerate(docs, 1)}
    settle()
    t = time.perf_counter()
    index = RuleIndex(our_rules(texts))
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    matches = index.select(docs)
    select_s = time.perf_counter() - t
    t = time.perf_counter()
    findings: dict[str, list[Finding]] = {r.id: [] for r in index.rules if isinstance(r, SigmaCorrelation)}
    for match in matches:
        found = findings.get(match.rule_id)
        if found is not None:
            found.extend(index.by_id[match.rule_id].observe(match))
    correlate_s = time.perf_counter() - t
    enabled = {r.id for r in index.rules if r.enabled and not isinstance(r, SigmaCorrelation)}
    pairs = {(m.rule_id, rows[id(m.doc)]) for m in matches if m.rule_id in enabled}
    times = {"compile": compile_s, "select": select_s, "correlate": correlate_s}
    return {"pairs": pairs, "findings": findings, "s": times}


def sqlite(texts: list[tuple[str, str]], docs: list[dict[str, Any]]) -> dict[str, Any]:
    """pySigma + SQLite: (rule key, row) pairs, correlation alerts and the time of each phase."""
    settle()
    t = time.perf_counter()
    oracle = SqliteSigma.convert(texts)
    convert_s = time.perf_counter() - t
    t = time.perf_counter()
    con = oracle.load(docs)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    pairs = oracle.matches(con)
    query_s = time.perf_counter() - t
    t = time.perf_counter()
    alerts = oracle.correlations(con)
    correlate_s = time.perf_counter() - t
    con.close()
    times = {"convert": convert_s, "load": load_s, "query": query_s, "correlate": correlate_s}
    return {"oracle": oracle, "pairs": pairs, "alerts": alerts, "s": times}


def run(label: str, texts: list[tuple[str, str]], docs: list[dict[str, Any]], repeat: int) -> dict[str, Any]:
    """Each side ``repeat`` times (ours first, then SQLite), the fastest time of each phase; fails unless both
    sides find the same."""
    our_runs = [ours(texts, docs) for _ in range(repeat)]
    sql_runs = [sqlite(texts, docs) for _ in range(repeat)]
    mine_s = {phase: min(r["s"][phase] for r in our_runs) for phase in our_runs[0]["s"]}
    sql_s = {phase: min(r["s"][phase] for r in sql_runs) for phase in sql_runs[0]["s"]}
    ours_pairs, ours_findings = our_runs[0]["pairs"], our_runs[0]["findings"]
    oracle, sql_pairs, sql_alerts = sql_runs[0]["oracle"], sql_runs[0]["pairs"], sql_runs[0]["alerts"]
    ours_select, ours_correlate, ours_compile = mine_s["select"], mine_s["correlate"], mine_s["compile"]
    sql_convert, sql_load, sql_query, sql_correlate = (
        sql_s["convert"],
        sql_s["load"],
        sql_s["query"],
        sql_s["correlate"],
    )

    if oracle.unconvertible:
        raise SystemExit(f"{label}: rules the backend cannot convert: {oracle.unconvertible}")
    if any(r["pairs"] != ours_pairs for r in our_runs) or any(r["pairs"] != sql_pairs for r in sql_runs):
        raise SystemExit(f"{label}: a side found different matches from one run to the next")
    if ours_pairs != sql_pairs:
        only_ours, only_sql = len(ours_pairs - sql_pairs), len(sql_pairs - ours_pairs)
        raise SystemExit(f"{label}: different matches: {only_ours} only ours, {only_sql} only SQLite's")
    theirs: dict[str, dict[tuple[object, ...], float]] = {}
    for key, alerts in sql_alerts.items():
        groups = theirs.setdefault(key, {})
        for alert in sorted(alerts, key=lambda a: a["occurrence_time"]):
            groups.setdefault(tuple(alert["group_keys"].values()), round(alert["occurrence_time"], 3))
    mine = first_fires(ours_findings)
    if mine != theirs:
        raise SystemExit(f"{label}: different correlation groups or first firing times")

    n = len(docs)
    ours_total = ours_select + ours_correlate
    sql_total = sql_load + sql_query + sql_correlate
    return {
        "label": label,
        "events": n,
        "rules": {"single": sum(r.plan is None for r in oracle.rules), "correlations": len(sql_alerts)},
        "matches": len(ours_pairs),
        "correlation_groups": sum(len(g) for g in mine.values()),
        "correlation_alerts": {"ours": sum(len(f) for f in ours_findings.values())},
        "ours_s": {"compile": ours_compile, "select": ours_select, "correlate": ours_correlate, "total": ours_total},
        "sqlite_s": {
            "convert": sql_convert,
            "load": sql_load,
            "query": sql_query,
            "correlate": sql_correlate,
            "total": sql_total,
        },
        "ours_events_per_s": n / ours_total,
        "sqlite_events_per_s": n / sql_total,
        "ratio": sql_total / ours_total,
        "runs": repeat,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cpu", type=int, default=0, help="the one core both sides run on")
    ap.add_argument("--repeat", type=int, default=3, help="runs per side; the fastest counts (noise is one-sided)")
    args = ap.parse_args()
    os.sched_setaffinity(0, {args.cpu})

    t = time.perf_counter()
    docs, made_of = corpus(args.events, args.seed)
    print(f"corpus: {made_of} in {time.perf_counter() - t:.1f} s (not timed below)", file=sys.stderr)
    results = [
        run(label, texts, docs, args.repeat)
        for label, texts in (
            ("SigmaHQ AWS rules", sigmahq_texts()),
            ("SigmaHQ AWS rules + correlations", [*sigmahq_texts(), ("correlations.yml", CORRELATIONS)]),
        )
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    summary = {
        "corpus": made_of,
        "runs": results,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpu": platform.processor() or platform.machine(),
    }
    (OUT / "detect_sigma.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    print(
        "| rules | events | matches | correlation groups | ours events/s (select + correlate) "
        "| pySigma+SQLite events/s (load + query) | ratio |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        ours, sql = r["ours_s"], r["sqlite_s"]
        print(
            f"| {r['rules']['single']} single + {r['rules']['correlations']} correlation | {r['events']:,} "
            f"| {r['matches']:,} (identical) | {r['correlation_groups']:,} (identical) "
            f"| {r['ours_events_per_s']:,.0f} ({ours['select']:.2f} s + {ours['correlate']:.2f} s) "
            f"| {r['sqlite_events_per_s']:,.0f} ({sql['load']:.2f} s + {sql['query'] + sql['correlate']:.2f} s) "
            f"| {r['ratio']:.1f}x |"
        )
    for r in results:
        ours_compile, sql_convert = r["ours_s"]["compile"], r["sqlite_s"]["convert"]
        print(
            f"{r['label']}: compile ours {ours_compile:.2f} s, pySigma to SQL {sql_convert:.2f} s (not in the rates)",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
