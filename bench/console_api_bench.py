"""Console API benchmark: the dashboard and search calls over the 10,000,000-event store of search_bench.py.

The store is only read (searches open it read-only through an in-memory engine); the console's own files
(console.db, alerts.db) go to a temporary home. Each call is timed through the app (FastAPI, JSON encoding
included) with an in-process client; best and spread of ``--runs`` runs, after one warm-up call.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from cloudsoc.api.app import create_app
from cloudsoc.api.permissions import Role
from cloudsoc.config.models import Config, StorageConfig

OUT = Path(__file__).resolve().parent / "out"
CALLS = (
    ("overview 24h", "/api/v1/overview?since=24h"),
    ("overview 7d", "/api/v1/overview?since=7d"),
    ("overview 30d", "/api/v1/overview?since=30d"),
    ("search ConsoleLogin 30d", "/api/v1/events?q=event.action:ConsoleLogin&since=30d&limit=50"),
    ("search page 3 (offset) 30d", "/api/v1/events?q=event.action:ConsoleLogin&since=30d&limit=50&offset=100"),
    ("search CIDR 30d", "/api/v1/events?q=source.ip:203.0.113.0/24&since=30d&limit=50"),
    ("search all 24h", "/api/v1/events?since=24h&limit=100"),
    ("histogram 30d", "/api/v1/events/histogram?q=event.action:ConsoleLogin&since=30d&buckets=60"),
    ("histogram all 7d", "/api/v1/events/histogram?since=7d&buckets=168"),
    ("top user.name 7d", "/api/v1/events/fields?field=user.name&since=7d"),
    ("top nested field 24h", "/api/v1/events/fields?field=user_agent.original&since=24h"),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--store", type=Path, default=OUT / "home-search-10000000" / "events.duckdb")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not args.store.exists():
        sys.exit(f"no store at {args.store}: build it with bench/search_bench.py")
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(storage=StorageConfig(path=str(args.store.resolve())))
        app = create_app(Path(tmp), config, hasher=PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
        app.state.console.store.add_user("bench", "bench password 123", Role.VIEWER)
        client = TestClient(app, base_url="https://testserver")
        r = client.post("/api/v1/auth/login", json={"username": "bench", "password": "bench password 123"})
        assert r.status_code == 200, r.text
        total = client.get("/api/v1/overview?since=3650d&buckets=1").json()["events"]
        print(f"store: {total:,} events; best of {args.runs} (spread = worst - best); second column: matches")
        newest = client.get("/api/v1/events?since=30d&limit=1").json()["items"][0]["event"]["id"]
        for name, url in (*CALLS, ("one event by id (no window)", f"/api/v1/events/{newest}")):
            client.get(url)  # warm-up: file metadata, the matcher
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                r = client.get(url)
                times.append(time.perf_counter() - t)
                assert r.status_code == 200, (url, r.text)
            body = r.json()
            size = body.get("events", body.get("total"))
            matches = "" if size is None else f"{size:,}"
            best, spread = min(times) * 1000, (max(times) - min(times)) * 1000
            print(
                f"{name:28s} {matches:>10} best {best:7.0f} ms  spread {spread:5.0f} ms"
                f"  median {statistics.median(times) * 1000:7.0f} ms"
            )


if __name__ == "__main__":
    main()
