"""The runner: batches end at file boundaries, a trickle is flushed within batch_max_secs, chores run."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from cloudsoc.bus.base import Bus
from cloudsoc.config.models import PipelineConfig
from cloudsoc.inputs.base import FileData, Input
from cloudsoc.pipeline.runner import Runner
from cloudsoc.storage.duckdb import DuckdbStorage


def trail_file(n: int, start: int) -> bytes:
    records = [
        {
            "eventVersion": "1.08",
            "eventTime": f"2026-11-01T00:{(start + i) // 60 % 60:02d}:{(start + i) % 60:02d}Z",
            "eventName": "GetObject",
            "eventSource": "s3.amazonaws.com",
            "eventID": f"id-{start + i}",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "198.51.100.9",
        }
        for i in range(n)
    ]
    return gzip.compress(orjson.dumps({"Records": records}))


class Trickle(Input):
    """Puts one file every ``gap`` seconds, like a daemon watching a bucket."""

    name = "trickle"

    def __init__(self, files: int, per_file: int, gap: float) -> None:
        super().__init__("trickle", "auto", ["*"])
        self.files, self.per_file, self.gap = files, per_file, gap

    async def run(self, bus: Bus, stop: asyncio.Event) -> None:
        for f in range(self.files):
            data = trail_file(self.per_file, f * self.per_file)
            await bus.put(FileData("trickle", f"f{f}.json.gz", f"f{f}.json.gz", len(data), f, data))
            await asyncio.sleep(self.gap)


@pytest.mark.parametrize("inline_writes", [False, True])
def test_batches_end_at_file_boundaries_and_checkpoint(tmp_path: Path, inline_writes: bool) -> None:
    store = DuckdbStorage(tmp_path / "e.duckdb")
    runner = Runner(store, PipelineConfig(batch_max_events=250, workers=1))
    runner.inline_writes = inline_writes  # what a process with one usable core does
    counters = asyncio.run(runner.run([Trickle(files=6, per_file=100, gap=0)]))
    assert (counters.stored, counters.files) == (600, 6)
    assert counters.batches == 2  # 300 + 300: a batch closes after the file that crossed 250
    assert sorted(store.checkpoints("trickle")) == [f"f{i}.json.gz" for i in range(6)]
    store.close()


def test_trickle_is_flushed_within_batch_max_secs(tmp_path: Path) -> None:
    store = DuckdbStorage(tmp_path / "e.duckdb")
    writes: list[float] = []
    loop_time: list[Any] = []

    def on_write(_r: object) -> None:
        writes.append(loop_time[0]())

    async def main() -> None:
        loop_time.append(asyncio.get_running_loop().time)
        runner = Runner(store, PipelineConfig(batch_max_secs=0.1, workers=1), on_write=on_write)
        await runner.run([Trickle(files=4, per_file=5, gap=0.5)])

    asyncio.run(main())
    assert len(writes) >= 3  # not one big batch at the end: each file was stored soon after it arrived
    assert store.stats()["events"] == 20
    store.close()


def test_housekeeping_runs_periodically(tmp_path: Path) -> None:
    store = DuckdbStorage(tmp_path / "e.duckdb")
    calls: list[int] = []
    runner = Runner(store, PipelineConfig(workers=1), housekeeping=lambda: calls.append(1), housekeeping_secs=0.05)
    asyncio.run(runner.run([Trickle(files=3, per_file=1, gap=0.1)]))
    assert len(calls) >= 3
    store.close()


def test_worker_processes_give_the_same_result(tmp_path: Path) -> None:
    store = DuckdbStorage(tmp_path / "e.duckdb")
    runner = Runner(store, PipelineConfig(workers=2))
    counters = asyncio.run(runner.run([Trickle(files=8, per_file=50, gap=0)]))
    assert counters.stored == 400 and counters.dead_letters == 0
    assert store.search("event.id:id-399").total == 1
    store.close()


@pytest.mark.parametrize("inline_writes", [False, True])
def test_a_failing_store_stops_the_run_instead_of_hanging(tmp_path: Path, inline_writes: bool) -> None:
    class FullDisk(DuckdbStorage):
        def write_encoded(self, *args: Any, **kwargs: Any) -> Any:
            raise OSError(28, "No space left on device")

    store = FullDisk(tmp_path / "e.duckdb")
    runner = Runner(store, PipelineConfig(batch_max_secs=0.05, workers=1, queue_max_batches=1))
    runner.inline_writes = inline_writes

    async def main() -> None:
        # an endless input, like a daemon's watcher
        await asyncio.wait_for(runner.run([Trickle(files=10_000, per_file=5, gap=0.01)]), timeout=20)

    with pytest.raises(OSError, match="No space left"):
        asyncio.run(main())
    store.close()
