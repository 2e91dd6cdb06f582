"""Alert latency: `cloudsoc run` ingesting ~10,000 events/s from a watched directory, alerts to a local webhook.

A writer drops CloudTrail files of 1,000 events into the watched directory ten times a second (write to a temp
name, then rename — how s3fs/ossfs and most shippers land files). Once a second one file carries a single-event
trigger (a Sigma rule), and every few seconds a burst of AccessDenied from a fresh identity crosses an event_count
correlation threshold inside a file. The webhook server stamps each alert's arrival; latency is arrival minus the
moment the file carrying the trigger (or the threshold-crossing event) was renamed into place.

Run: `.venv/bin/python bench/alert_latency_bench.py --seconds 60` (part of `make bench`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
RULES = """
title: Bench single-event trigger
id: 0f7c3c1e-5a43-4d39-9a0f-3a3f5b7c0001
name: bench_trigger
logsource: {product: aws, service: cloudtrail}
detection:
  selection: {eventName: BenchTrigger}
  condition: selection
level: high
---
title: Bench access denied
id: 0f7c3c1e-5a43-4d39-9a0f-3a3f5b7c0002
name: bench_denied
logsource: {product: aws, service: cloudtrail}
detection:
  selection: {errorCode: AccessDenied, eventName: BenchProbe}
  condition: selection
level: low
---
title: Bench access-denied burst
id: 0f7c3c1e-5a43-4d39-9a0f-3a3f5b7c0003
correlation:
  type: event_count
  rules: [bench_denied]
  group-by: [userIdentity.arn]
  timespan: 5m
  condition: {gte: 20}
level: high
"""


class Arrivals:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_key: dict[str, float] = {}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        arrivals = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                now = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                alert = orjson.loads(body)
                keys = [str(alert.get("group_key") or "")] + [str(i) for i in alert["event"]["ids"]]
                with arrivals.lock:
                    for key in keys:
                        arrivals.by_key.setdefault(key, now)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def record(name: str, when: datetime, *, arn: str = "arn:aws:iam::111122223333:user/app", error: str = "") -> dict:
    rec: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "s3.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "10.0.0.5",
        "userAgent": "aws-sdk-go/1.44",
        "userIdentity": {"type": "IAMUser", "arn": arn, "accountId": "111122223333", "userName": arn.rsplit("/", 1)[1]},
        "eventID": str(uuid.uuid4()),
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
    }
    if error:
        rec["errorCode"] = error
    return rec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=10_000, help="events per second")
    parser.add_argument("--burst-every", type=float, default=5.0, help="seconds between correlation bursts")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cloudsoc-latency-"))
    landing = work / "landing"
    landing.mkdir()
    (work / "rules.yml").write_text(RULES)
    arrivals = Arrivals()
    server = ThreadingHTTPServer(("127.0.0.1", 0), arrivals.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = {
        "home": str(work / "home"),
        "pipeline": {"batch_max_secs": 0.25},
        "detection": {"builtin": False, "rules": [str(work / "rules.yml")]},
        "outputs": {"hook": {"type": "webhook", "url": f"http://127.0.0.1:{server.server_port}/alerts"}},
        "inputs": {
            "trail": {"type": "directory", "path": str(landing), "poll_secs": 0.2, "stable_secs": 0.0},
        },
    }
    (work / "cloudsoc.json").write_text(json.dumps(config))
    cfg_path = work / "cloudsoc.yaml"
    cfg_path.write_text(json.dumps(config))  # JSON is YAML
    daemon = subprocess.Popen(
        [sys.executable, "-m", "cloudsoc", "run", "--no-console", "-c", str(cfg_path)],
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3.0)  # start-up (imports, rule loading)
    per_file = 1000
    files_per_sec = max(1, args.rate // per_file)
    single: dict[str, float] = {}  # trigger event id → landing time
    bursts: dict[str, float] = {}  # group key (arn) → landing time of the crossing event's file
    started = time.time()
    n = 0
    next_burst = started + 1.0
    events = 0
    while time.time() - started < args.seconds:
        tick = time.time()
        for i in range(files_per_sec):
            now = datetime.now(UTC)
            recs = [record("GetObject", now) for _ in range(per_file)]
            trigger_id = ""
            if i == 0:
                recs[per_file // 2] = record("BenchTrigger", now)
                trigger_id = recs[per_file // 2]["eventID"]
            burst_arn = ""
            if i == 1 and time.time() >= next_burst:
                burst_arn = f"arn:aws:iam::111122223333:user/probe-{n}"
                for k in range(25):
                    recs[10 + k] = record("BenchProbe", now, arn=burst_arn, error="AccessDenied")
                next_burst += args.burst_every
            tmp = landing / f".{n}.tmp"
            tmp.write_bytes(orjson.dumps({"Records": recs}))
            final = landing / f"111122223333_CloudTrail_us-east-1_{n:08d}.json"
            os.replace(tmp, final)
            landed = time.time()
            if trigger_id:
                single[trigger_id] = landed
            if burst_arn:
                bursts[burst_arn] = landed
            events += per_file
            n += 1
        time.sleep(max(0.0, 1.0 - (time.time() - tick)))
    wrote = time.time() - started
    time.sleep(5.0)  # let the last alerts arrive
    daemon.terminate()
    _, stderr = daemon.communicate(timeout=60)
    server.shutdown()

    def latencies(sent: dict[str, float]) -> list[float]:
        return sorted(arrivals.by_key[k] - t for k, t in sent.items() if k in arrivals.by_key)

    single_lat = latencies(single)
    burst_lat = latencies(bursts)

    def p(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    result = {
        "events": events,
        "events_per_s_written": round(events / wrote),
        "single": {
            "sent": len(single),
            "received": len(single_lat),
            "p50": p(single_lat, 0.5),
            "p95": p(single_lat, 0.95),
        },
        "correlation": {
            "sent": len(bursts),
            "received": len(burst_lat),
            "p50": p(burst_lat, 0.5),
            "p95": p(burst_lat, 0.95),
        },
        "cpu": platform.processor() or platform.machine(),
        "median_single": statistics.median(single_lat) if single_lat else None,
    }
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "latency.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(json.dumps(result, indent=2))
    if not single_lat:
        print(stderr[-3000:], file=sys.stderr)
        status = work / "home" / "status.json"
        print(status.read_text() if status.exists() else "no status.json", file=sys.stderr)
    print(
        f"| alert latency at {result['events_per_s_written']:,} events/s | "
        f"single-event: {len(single_lat)}/{len(single)} "
        f"delivered, p50 {result['single']['p50']:.2f} s, **p95 {result['single']['p95']:.2f} s** | correlation: "
        f"{len(burst_lat)}/{len(bursts)}, p50 {result['correlation']['p50']:.2f} s, "
        f"**p95 {result['correlation']['p95']:.2f} s** |"
    )


if __name__ == "__main__":
    main()
