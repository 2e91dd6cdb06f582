"""Search benchmark: `cloudsoc search 'event.action:ConsoleLogin' --since 30d` over 10,000,000 stored events.

The store is built by ingesting the generated 1,000,000-event corpus (bench/ingest_bench.py makes it) and then
multiplying it inside DuckDB to 10,000,000 rows with fresh event ids and times spread over the last 60 days
(ingesting 10 M events through the CLI would only repeat the ingest benchmark). Each query is timed as a whole
command (process start included) and as engine time, median of 5 runs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import orjson

from cloudsoc.storage.columns import COLUMNS

OUT = Path(__file__).resolve().parent / "out"
QUERIES = (
    ("event.action:ConsoleLogin", "30d"),
    ("event.action:ConsoleLogin AND NOT event.outcome:success", "30d"),
    ("source.ip:203.0.113.0/24", "30d"),
    ("user.name:admin*", "7d"),
    ("cloud.provider:(aliyun OR aws) AND event.action:Describe*", "24h"),
)


def build(target: int, corpus: Path) -> Path:
    home = OUT / f"home-search-{target}"
    db = home / "events.duckdb"
    if (home / ".complete").exists():
        return home
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "cloudsoc", "--home", str(home), "ingest", "--no-progress", "--json", str(corpus)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    con = duckdb.connect(str(db))
    (base,) = con.execute("SELECT count(*) FROM events").fetchone() or (0,)
    copies = max(1, -(-target // base))
    cols = [c for c, _t in COLUMNS.values()] + ["source_ip_num", "doc", "ingested"]
    select = ", ".join(
        "CAST(now() AS TIMESTAMP) - to_microseconds(CAST(hash(event_id, k) % 5184000000000 AS BIGINT))"
        if c == "ts"
        else ("event_id || '-' || k" if c == "event_id" else c)
        for c in cols
    )
    t = time.perf_counter()
    con.execute(f"CREATE TABLE spread AS SELECT {select} FROM events, range({copies}) r(k) LIMIT {target}")
    con.execute("DROP TABLE events")
    con.execute("CREATE TABLE events AS SELECT * FROM spread ORDER BY ts")
    con.execute("DROP TABLE spread")
    con.execute("CHECKPOINT")
    con.close()
    print(f"built {target:,} events in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    (home / ".complete").write_text(str(target))
    return home


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--corpus-events", type=int, default=1_000_000)
    args = ap.parse_args()
    corpus = OUT / f"corpus-{args.corpus_events}-1"
    if not (corpus / ".complete").exists():
        subprocess.run(
            [sys.executable, str(Path(__file__).with_name("ingest_bench.py")), "--events", str(args.corpus_events)],
            check=True,
        )
    home = build(args.events, corpus)
    rows = []
    for query, since in QUERIES:
        walls, engines, hits = [], [], 0
        for _ in range(5):
            t = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "cloudsoc", "--home", str(home), "search", "--since", since, query],
                check=True,
                capture_output=True,
                text=True,
            )
            walls.append(time.perf_counter() - t)
            # stderr: "N of M matching events shown (X ms)"
            tail = proc.stderr.strip().splitlines()[-1]
            hits = int(tail.split(" of ")[1].split()[0].replace(",", ""))
            engines.append(float(tail.rsplit("(", 1)[1].split()[0]) / 1000)
        rows.append(
            {
                "query": query,
                "since": since,
                "matches": hits,
                "command_s": statistics.median(walls),
                "engine_s": statistics.median(engines),
            }
        )
    (OUT / "search.json").write_text(
        orjson.dumps({"events": args.events, "queries": rows}, option=orjson.OPT_INDENT_2).decode()
    )
    print(f"store: {args.events:,} events")
    print("| query | --since | matches | whole command s | engine s |")
    print("| --- | --- | ---: | ---: | ---: |")
    for r in rows:
        print(f"| `{r['query']}` | {r['since']} | {r['matches']:,} | {r['command_s']:.2f} | {r['engine_s']:.3f} |")


if __name__ == "__main__":
    main()
