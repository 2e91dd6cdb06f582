"""cloudsoc's intel enrichment beside IntelMQ used as a library, on the same look-up work.

Work: 1,000,000 IPv4 indicators (seeded), and events that each carry ``source.ip`` and ``destination.ip`` (10% of
events have a listed source address). Each side loads the list, then looks up both addresses of every event and
marks the hits:

- cloudsoc: the list imported with the plain-list importer into ``intel.db`` (one process), then, in another,
  the enricher built by ``IntelSource`` (what the pipeline's workers do; RSS measured after the build) and
  ``IntelEnricher.enrich`` over ECS documents (writes ``threat.enrichments`` with the indicator's context on
  hits; MISP warninglists loaded, as in production).
- IntelMQ 3.5 (``pip install intelmq``) in library mode (``BotLibSettings``, no Redis): its ``tor_nodes`` expert
  is IntelMQ's IP-list look-up (a set of addresses from a file; checks ``source.ip`` and ``destination.ip`` and
  adds ``*.tor_node``; RSS measured after loading). Timed twice: from plain dicts (IntelMQ validates and
  harmonises each event first, as a bot receiving a message does) and over events already built as IntelMQ
  ``Event`` objects (the look-ups alone).

IntelMQ has no domain or URL list expert, so the comparison is the two IP look-ups an event makes. Each side runs
in its own process (IntelMQ in ``.venv-intelmq``: its pins are not ours); the best of three timed passes counts.
Results: bench/out/intel_vs_intelmq.json. Run: ``.venv/bin/python bench/intel_vs_intelmq.py [--events N]``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
INTELMQ_PYTHON = ROOT / ".venv-intelmq" / "bin" / "python"
OUT = ROOT / "bench" / "out" / "intel_vs_intelmq.json"  # intel_vs_intelmq_1pct.json for --hit-ratio 0.01
PASSES = 3


def _ip(rng: random.Random) -> str:
    """A public address (feeds list those; private and reserved ones are refused at import)."""
    while True:
        ip = f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        if ipaddress.ip_address(ip).is_global:
            return ip


def generate(folder: Path, indicators: int, events: int, hit_ratio: float) -> None:
    from cloudsoc.intel.allowlist import Allowlist

    # Addresses a MISP warninglist calls benign are left out of the list: cloudsoc would (rightly) not report them
    # and IntelMQ would, and the two sides must do the same work.
    allow = Allowlist.default()
    rng = random.Random(20261127)
    listed: set[str] = set()
    while len(listed) < indicators:
        ip = _ip(rng)
        if allow.why_ip(ip) is None:
            listed.add(ip)
    ordered = sorted(listed)
    (folder / "ips.txt").write_text("# generated blocklist\n" + "\n".join(ordered) + "\n")
    with (folder / "events.jsonl").open("w") as f:
        for _ in range(events):
            src = rng.choice(ordered) if rng.random() < hit_ratio else f"10.{rng.randint(0, 255)}.0.{rng.randint(1, 9)}"
            dst = _ip(rng)
            while dst in listed:
                dst = _ip(rng)
            f.write(json.dumps({"source.ip": src, "destination.ip": dst}) + "\n")


def _events(folder: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


def _rss_mb() -> float:
    """This process's peak RSS since its exec (VmHWM): ru_maxrss would also count the parent it was forked from."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def side_cloudsoc_import(folder: Path) -> dict[str, Any]:
    """The list into intel.db with the plain-list importer (a process of its own, as `intel import` is)."""
    from cloudsoc.intel.feeds.base import ImportResult
    from cloudsoc.intel.feeds.plain import Plain
    from cloudsoc.intel.store import INTEL_FILE, IndicatorStore
    from cloudsoc.pipeline.memory import batch_gc

    path = folder / "home" / INTEL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    store = IndicatorStore(path)
    with batch_gc():  # streamed into the store, as `cloudsoc intel import` does
        result = ImportResult(store)
        Plain(confidence=80).parse((folder / "ips.txt").read_bytes(), name="ips.txt", source="blocklist", result=result)
        result.close()
    store.close()
    return {"import_secs": round(time.perf_counter() - started, 3), "import_rss_mb": round(_rss_mb(), 1)}


def side_cloudsoc(folder: Path) -> dict[str, Any]:
    """The enriching process: what the pipeline's workers do with an existing intel.db."""
    from cloudsoc.enrichers.intel import IntelSource
    from cloudsoc.intel.store import INTEL_FILE

    started = time.perf_counter()
    enricher = IntelSource(folder / "home" / INTEL_FILE).build()
    built = time.perf_counter() - started
    assert enricher is not None
    rss = _rss_mb()
    flat = _events(folder)
    best, hits = float("inf"), 0
    for _ in range(PASSES):
        docs = [{"source": {"ip": e["source.ip"]}, "destination": {"ip": e["destination.ip"]}} for e in flat]
        started = time.perf_counter()
        hits = enricher.enrich(docs)
        best = min(best, time.perf_counter() - started)
    return {
        "load_secs": round(built, 3),
        "us_per_event": round(best / len(flat) * 1e6, 3),
        "hits": hits,
        "rss_mb": round(rss, 1),
    }


def side_intelmq(folder: Path) -> dict[str, Any]:
    import logging

    from intelmq.bots.experts.tor_nodes.expert import TorExpertBot  # type: ignore[import-not-found]
    from intelmq.lib.bot import BotLibSettings  # type: ignore[import-not-found]
    from intelmq.lib.message import MessageFactory  # type: ignore[import-not-found]

    logging.disable(logging.INFO)
    started = time.perf_counter()
    settings = BotLibSettings | {"database": str(folder / "ips.txt"), "autoupdate_cached_database": False}
    bot = TorExpertBot("blocklist-expert", settings=settings)
    loaded = time.perf_counter() - started
    rss = _rss_mb()
    flat = _events(folder)
    chunk = 1000

    def run(messages: list[Any]) -> tuple[float, int]:
        hits = 0
        started = time.perf_counter()
        for i in range(0, len(messages), chunk):
            out = bot.process_message(*messages[i : i + chunk])["output"]
            hits += sum(1 for m in out if "source.tor_node" in m or "destination.tor_node" in m)
        return time.perf_counter() - started, hits

    best_dicts, best_events, hits = float("inf"), float("inf"), 0
    for _ in range(PASSES):
        took, hits = run([dict(e) for e in flat])
        best_dicts = min(best_dicts, took)
        prepared = [
            MessageFactory.from_dict(dict(e), harmonization=bot.harmonization, default_type="Event") for e in flat
        ]
        took, _ = run(prepared)
        best_events = min(best_events, took)
    return {
        "load_secs": round(loaded, 3),
        "us_per_event": round(best_dicts / len(flat) * 1e6, 3),
        "us_per_event_prepared": round(best_events / len(flat) * 1e6, 3),
        "hits": hits,
        "rss_mb": round(rss, 1),
    }


def _side(name: str, python: Path | str, folder: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [str(python), __file__, "--side", name, "--data", str(folder)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"{name} side failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


SIDES = {"cloudsoc-import": side_cloudsoc_import, "cloudsoc": side_cloudsoc, "intelmq": side_intelmq}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--indicators", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--hit-ratio", type=float, default=0.1)
    ap.add_argument("--side", choices=tuple(SIDES), help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        print(json.dumps(SIDES[args.side](args.data)))
        return
    if not INTELMQ_PYTHON.exists():
        raise SystemExit(f"{INTELMQ_PYTHON} is missing: run `make bench` (it creates .venv-intelmq with IntelMQ)")
    with tempfile.TemporaryDirectory(prefix="cloudsoc-intelmq-") as tmp:
        folder = Path(tmp)
        generate(folder, args.indicators, args.events, args.hit_ratio)
        imported = _side("cloudsoc-import", sys.executable, folder)
        ours = {**_side("cloudsoc", sys.executable, folder), **imported}
        theirs = _side("intelmq", INTELMQ_PYTHON, folder)
    if ours["hits"] != theirs["hits"]:
        raise SystemExit(f"the two sides disagree on hits: cloudsoc {ours['hits']}, IntelMQ {theirs['hits']}")
    report = {
        "indicators": args.indicators,
        "events": args.events,
        "hit_ratio": args.hit_ratio,
        "cloudsoc": ours,
        "intelmq": theirs,
        "speedup_vs_intelmq": round(theirs["us_per_event"] / ours["us_per_event"], 1),
        "speedup_vs_intelmq_prepared": round(theirs["us_per_event_prepared"] / ours["us_per_event"], 1),
    }
    out = OUT if args.hit_ratio == 0.1 else OUT.with_name(f"intel_vs_intelmq_{args.hit_ratio * 100:g}pct.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
