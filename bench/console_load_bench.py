"""Console load benchmark: 20 concurrent users on the dashboard and search APIs over the 10,000,000-event store.

A real server (uvicorn, as `cloudsoc serve` runs it) over the store of search_bench.py; each user logs in with
its own session and keeps repeating what the Overview and Search pages ask for, with no think time (the worst
case; ``--think`` adds a random pause). Reported per call: the server time (its ``Server-Timing`` header: from
the request reaching the app to the answer starting) and the latency the client saw (which adds queueing in the
server and the client), p50/p95/max. The store is only read; the console's own files go to a temporary home.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
from argon2 import PasswordHasher

from cloudsoc.api.app import create_app
from cloudsoc.api.permissions import Role
from cloudsoc.api.server import ConsoleServer
from cloudsoc.config.models import Config, ConsoleConfig, StorageConfig

OUT = Path(__file__).resolve().parent / "out"
PASSWORD = "bench password 123"
# What the pages ask for: the Overview (the same for everyone: one call per time range) and searches, which
# differ per person: each search call picks one of the store's frequent users or source networks at random,
# so the answer cache helps them only when two people really ask the same.
DASHBOARD = (
    ("overview 24h", "/api/v1/overview?since=24h"),
    ("overview 7d", "/api/v1/overview?since=7d"),
    ("top user.name 7d", "/api/v1/events/fields?field=user.name&since=7d"),
)
SEARCHES = (
    ("search user 7d", "/api/v1/events?q=user.name:{user}&since=7d&limit=50"),
    ("search CIDR 7d", "/api/v1/events?q=source.ip:{net}&since=7d&limit=50"),
    ("search free text 24h", "/api/v1/events?q={user}&since=24h&limit=50"),
    ("histogram user 7d", "/api/v1/events/histogram?q=user.name:{user}&since=7d&buckets=60"),
    ("top actions of user 7d", "/api/v1/events/fields?field=event.action&q=user.name:{user}&since=7d"),
)
CALLS = DASHBOARD + SEARCHES


def _session(r: httpx.Response) -> dict[str, str]:
    """The session cookie as a header: it is a Secure cookie, which clients keep off plain http (a real deployment
    has TLS in front); the bench talks to 127.0.0.1 without it."""
    r.raise_for_status()
    return {"cookie": "; ".join(f"{k}={v}" for k, v in r.cookies.items())}


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _user(
    base: str,
    name: str,
    until: float,
    seed: int,
    values: dict[str, list[str]],
    out: dict[str, list[tuple[float, float]]],
    think: float,
) -> None:
    rnd = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        client.headers.update(
            _session(await client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD}))
        )
        while time.monotonic() < until:
            label, url = rnd.choice(CALLS)
            url = url.format(user=quote(rnd.choice(values["user"])), net=quote(rnd.choice(values["net"])))
            t = time.perf_counter()
            r = await client.get(url)
            seen = time.perf_counter() - t
            assert r.status_code == 200, (url, r.status_code, r.text[:200])
            server = float(r.headers["server-timing"].split("dur=")[1]) / 1000
            out.setdefault(label, []).append((server, seen))
            if think:
                await asyncio.sleep(rnd.expovariate(1 / think))


async def _load(
    base: str, users: int, secs: float, values: dict[str, list[str]], think: float
) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    until = time.monotonic() + secs
    await asyncio.gather(*(_user(base, f"user{i}", until, i, values, out, think) for i in range(users)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--store", type=Path, default=OUT / "home-search-10000000" / "events.duckdb")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--secs", type=float, default=60.0, help="How long the users keep asking.")
    ap.add_argument(
        "--think", type=float, default=0.0, help="Mean seconds a user looks at an answer before the next ask (0: none)."
    )
    args = ap.parse_args()
    if not args.store.exists():
        sys.exit(f"no store at {args.store}: build it with bench/search_bench.py")
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(
            storage=StorageConfig(path=str(args.store.resolve())),
            console=ConsoleConfig(ip_max_failures=10_000),
        )
        app = create_app(Path(tmp), config, hasher=PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
        for i in range(args.users):
            app.state.console.store.add_user(f"user{i}", PASSWORD, Role.VIEWER)
        server = ConsoleServer(Path(tmp), config, host="127.0.0.1", port=0, app=app)
        base = server.start().rstrip("/")
        try:
            with httpx.Client(base_url=base) as warm:  # one warm-up round: file metadata, caches
                warm.headers.update(
                    _session(warm.post("/api/v1/auth/login", json={"username": "user0", "password": PASSWORD}))
                )
                total = warm.get("/api/v1/overview?since=3650d&buckets=1").json()["events"]
                top = "/api/v1/events/fields?field={}&since=7d&size=30"
                users = [v["value"] for v in warm.get(top.format("user.name")).json()["values"] if v["value"]]
                ips = [v["value"] for v in warm.get(top.format("source.ip")).json()["values"] if v["value"]]
                nets = sorted({".".join(ip.split(".")[:3]) + ".0/24" for ip in ips if ip.count(".") == 3})
                values = {"user": [f'"{u}"' for u in users], "net": nets}
                for _, url in DASHBOARD:
                    warm.get(url).raise_for_status()
            began = time.monotonic()
            results = asyncio.run(_load(base, args.users, args.secs, values, args.think))
            elapsed = time.monotonic() - began
        finally:
            cache = app.state.estate.answers.stats()
            server.stop()
    calls = sum(len(v) for v in results.values())
    print(
        f"store: {total:,} events; {args.users} users for {elapsed:.0f} s, think time {args.think:g} s; "
        f"{calls:,} calls "
        f"({calls / elapsed:.1f}/s); CPUs: {os.cpu_count()}; answer cache: {cache}; "
        f"{len(values['user'])} users and {len(values['net'])} networks searched at random"
    )
    heads = ("n", "server p50", "server p95", "seen p50", "seen p95", "seen max")
    print(f"{'call':26s} " + " ".join(f"{h:>{w}}" for h, w in zip(heads, (5, 11, 11, 9, 9, 9), strict=True)))
    table = {}
    every: list[tuple[float, float]] = []
    for label, _ in CALLS:
        values = results.get(label, [])
        every += values
        server = [s for s, _ in values]
        seen = [c for _, c in values]
        row = {
            "n": len(values),
            "server_p50_ms": statistics.median(server) * 1000,
            "server_p95_ms": _pct(server, 95) * 1000,
            "seen_p50_ms": statistics.median(seen) * 1000,
            "seen_p95_ms": _pct(seen, 95) * 1000,
            "seen_max_ms": max(seen) * 1000,
        }
        table[label] = row
        print(
            f"{label:26s} {row['n']:>5} {row['server_p50_ms']:>9.0f}ms {row['server_p95_ms']:>9.0f}ms "
            f"{row['seen_p50_ms']:>7.0f}ms {row['seen_p95_ms']:>7.0f}ms {row['seen_max_ms']:>7.0f}ms"
        )
    server_all = [s for s, _ in every]
    seen_all = [c for _, c in every]
    summary = {
        "events": total,
        "users": args.users,
        "think_secs": args.think,
        "secs": elapsed,
        "calls": calls,
        "server_p95_ms": _pct(server_all, 95) * 1000,
        "seen_p95_ms": _pct(seen_all, 95) * 1000,
        "calls_table": table,
        "cache": cache,
    }
    server_p95, seen_p95 = summary["server_p95_ms"], summary["seen_p95_ms"]
    print(f"{'all calls':26s} {calls:>5} {'':>11} {server_p95:>9.0f}ms {'':>9} {seen_p95:>7.0f}ms")
    OUT.mkdir(exist_ok=True)
    (OUT / f"console_load_think{args.think:g}.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
