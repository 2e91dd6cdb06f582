"""Search benchmark: `cloudsoc search 'event.action:ConsoleLogin' --since 30d` over 10,000,000 stored events.

The store is built by ingesting the generated 1,000,000-event corpus (bench/ingest_bench.py makes it) and then
copying its segments to 10,000,000 rows with fresh event ids, each copy moved 3 days further back, so the store
spans about two months up to now (ingesting 10 M events through the CLI would only repeat the ingest benchmark).
Each query is timed as a whole command (process start included) and as engine time, median of 5 runs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cloudsoc.storage.columns import SEGMENT_SCHEMA
from cloudsoc.storage.duckdb import DuckdbStorage

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
    if (home / ".complete").exists():
        return home
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "cloudsoc", "--home", str(home), "ingest", "--no-progress", "--json", str(corpus)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    t = time.perf_counter()
    store = DuckdbStorage(home / "events.duckdb")
    originals = store.con.execute("SELECT name, rows FROM segments ORDER BY ts_min").fetchall()
    base = sum(rows for _n, rows in originals)
    (end,) = store.con.execute("SELECT max(ts_max) FROM segments").fetchall()[0]
    now = datetime.now(UTC).replace(tzinfo=None)
    copies = -(-target // base)
    made = base
    for k in range(1, copies):
        # copy k: new event ids, times moved back k*3 days from now (the original ends at now)
        shift = (now - end) - timedelta(days=3 * k)
        for name, _rows in originals:
            if made >= target:
                break
            table = pq.read_table(store.segments_dir / name, schema=SEGMENT_SCHEMA)
            table = table.set_column(
                table.schema.get_field_index("event_id"),
                "event_id",
                pc.binary_join_element_wise(table.column("event_id"), pa.scalar(f"c{k}"), "-"),
            )
            shifted = pc.add(table.column("ts"), pa.scalar(shift, pa.duration("us")))
            table = table.set_column(0, "ts", shifted).slice(0, target - made)
            new, size = store._write_segment(table)
            ts = table.column("ts")
            store.con.execute("BEGIN TRANSACTION")
            store._record_segment(new, table.num_rows, pc.min(ts).as_py(), pc.max(ts).as_py(), size, ["aws"])
            store.con.execute("COMMIT")
            made += table.num_rows
    # the original copy moves to end at now as well
    for name, _rows in originals:
        table = pq.read_table(store.segments_dir / name, schema=SEGMENT_SCHEMA)
        shifted = pc.add(table.column("ts"), pa.scalar(now - end, pa.duration("us")))
        table = table.set_column(0, "ts", shifted)
        new, size = store._write_segment(table)
        ts = table.column("ts")
        store.con.execute("BEGIN TRANSACTION")
        store.con.execute("DELETE FROM segments WHERE name = ?", [name])
        store._record_segment(new, table.num_rows, pc.min(ts).as_py(), pc.max(ts).as_py(), size, ["aws"])
        store.con.execute("COMMIT")
        (store.segments_dir / name).unlink()
    store._write_manifest()
    while store._merge_small_segments():  # what the store's own policy does as a store grows
        pass
    stats = store.stats()
    store.close()
    print(
        f"built {stats['events']:,} events in {stats['segments']} segments in {time.perf_counter() - t:.0f} s",
        file=sys.stderr,
    )
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
