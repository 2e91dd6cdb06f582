"""The directory/bucket-mount watcher: stable and complete files only, never re-read, new date folders only."""

from __future__ import annotations

import asyncio
import gzip
import os
from pathlib import Path

import orjson

from cloudsoc.bus.memory import MemoryBus
from cloudsoc.config.models import DirectoryInputConfig
from cloudsoc.inputs.base import FileData
from cloudsoc.inputs.directory import Directory, is_complete
from cloudsoc.storage.base import Checkpoint

BODY = orjson.dumps({"Records": [{"eventName": "ListBuckets", "eventID": str(i)} for i in range(50)]})


def cfg(root: Path, **kw: object) -> DirectoryInputConfig:
    return DirectoryInputConfig(type="directory", path=root, **kw)  # type: ignore[arg-type]


def trail_dir(root: Path, day: str) -> Path:
    y, m, d = day.split("-")
    p = root / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / y / m / d
    p.mkdir(parents=True, exist_ok=True)
    return p


async def poll(w: Directory) -> list[FileData]:
    bus = MemoryBus(1000)
    await w.poll(bus, asyncio.Event())
    out = []
    while bus.qsize():
        out.append(await bus.get())
    return out


def test_is_complete() -> None:
    gz = gzip.compress(BODY)
    assert is_complete(gz) and is_complete(BODY)
    assert not is_complete(gz[:-10])  # gzip trailer missing
    assert not is_complete(gzip.compress(BODY[:-5]))  # gzip fine, JSON cut
    assert not is_complete(b"")
    assert is_complete(b'{"a":1}\n{"b":2}\n') and not is_complete(b'{"a":1}\n{"b":')


def test_waits_for_stable_and_complete_then_never_rereads(tmp_path: Path) -> None:
    async def main() -> None:
        w = Directory("trail", cfg(tmp_path, stable_secs=0.2, incomplete_timeout_secs=60), {})
        d = trail_dir(tmp_path, "2026-11-20")
        f = d / "a.json.gz"
        gz = gzip.compress(BODY)
        f.write_bytes(gz[: len(gz) // 2])  # an object being uploaded (ossfs rewrites it as it grows)
        assert await poll(w) == []
        await asyncio.sleep(0.3)
        assert await poll(w) == []  # stable but the gzip stream is incomplete: wait
        f.write_bytes(gz)
        assert await poll(w) == []  # changed size: stability restarts
        await asyncio.sleep(0.3)
        (got,) = await poll(w)
        assert got.key == os.path.relpath(f, tmp_path) and got.data == gz and got.size == len(gz)
        await asyncio.sleep(0.3)
        assert await poll(w) == []  # finished files are never read again

    asyncio.run(main())


def test_incomplete_file_read_after_timeout(tmp_path: Path) -> None:
    async def main() -> None:
        w = Directory("trail", cfg(tmp_path, stable_secs=0, incomplete_timeout_secs=0.2), {})
        (trail_dir(tmp_path, "2026-11-20") / "broken.json.gz").write_bytes(gzip.compress(BODY)[:-20])
        assert await poll(w) == []
        await asyncio.sleep(0.3)
        assert len(await poll(w)) == 1  # given up waiting: read as is, the pipeline dead-letters the tail

    asyncio.run(main())


def test_checkpointed_files_skipped_after_restart(tmp_path: Path) -> None:
    async def main() -> None:
        d = trail_dir(tmp_path, "2026-11-20")
        (d / "a.json").write_bytes(BODY)
        (d / "b.json").write_bytes(BODY)
        key = os.path.relpath(d / "a.json", tmp_path)
        w = Directory("trail", cfg(tmp_path, stable_secs=0), {key: Checkpoint("trail", key, len(BODY), 0, 50)})
        assert [f.key.endswith("b.json") for f in await poll(w)] == [True]

    asyncio.run(main())


def test_incremental_polls_list_only_newest_date_folders(tmp_path: Path) -> None:
    async def main() -> None:
        for day in ("2026-09-01", "2026-10-05", "2026-11-19", "2026-11-20"):
            (trail_dir(tmp_path, day) / f"{day}.json").write_bytes(BODY)
        w = Directory("trail", cfg(tmp_path, stable_secs=0, full_rescan_secs=3600), {})
        assert len(await poll(w)) == 4
        full_listings = w.listings
        w.listings = 0
        (trail_dir(tmp_path, "2026-11-20") / "late.json").write_bytes(BODY)
        (trail_dir(tmp_path, "2026-11-21") / "new.json").write_bytes(BODY)
        (trail_dir(tmp_path, "2026-09-01") / "backfill.json").write_bytes(BODY)  # old folder: next full walk
        got = sorted(Path(f.key).name for f in await poll(w))
        assert got == ["late.json", "new.json"]
        assert w.listings < full_listings  # year/month/day folders of old dates were not listed
        w.last_full = -1e9  # force the periodic full walk
        assert [Path(f.key).name for f in await poll(w)] == ["backfill.json"]

    asyncio.run(main())


def test_other_files_ignored(tmp_path: Path) -> None:
    async def main() -> None:
        d = trail_dir(tmp_path, "2026-11-20")
        (d / "x.json").write_bytes(BODY)
        (d / "notes.md").write_text("hi")
        (d / ".x.json.tmp").write_bytes(BODY)
        w = Directory("trail", cfg(tmp_path, stable_secs=0), {})
        assert [Path(f.key).name for f in await poll(w)] == ["x.json"]

    asyncio.run(main())


def test_old_files_are_stable_at_first_sight(tmp_path: Path) -> None:
    async def main() -> None:
        f = trail_dir(tmp_path, "2026-11-20") / "old.json"
        f.write_bytes(BODY)
        os.utime(f, (1_700_000_000, 1_700_000_000))  # modified long ago: e.g. `cloudsoc run --once` after a restart
        w = Directory("trail", cfg(tmp_path, stable_secs=10), {})
        assert [Path(x.key).name for x in await poll(w)] == ["old.json"]

    asyncio.run(main())


def test_flat_directories_are_listed_on_every_poll(tmp_path: Path) -> None:
    async def main() -> None:
        (tmp_path / "a.json").write_bytes(BODY)
        w = Directory("trail", cfg(tmp_path, stable_secs=0, full_rescan_secs=3600), {})
        assert len(await poll(w)) == 1
        (tmp_path / "b.json").write_bytes(BODY)
        assert [Path(x.key).name for x in await poll(w)] == ["b.json"]  # not an hour later

    asyncio.run(main())


async def test_files_landing_in_a_tree_that_was_empty_at_start_are_read_at_the_next_poll(tmp_path: Path) -> None:
    """A daemon started on an empty bucket mount must not wait a full rescan (an hour) for the first files."""
    from cloudsoc.bus.memory import MemoryBus
    from cloudsoc.config.models import DirectoryInputConfig
    from cloudsoc.inputs.directory import Directory

    cfg = DirectoryInputConfig(type="directory", path=tmp_path, poll_secs=0.05, stable_secs=0.0)
    watcher = Directory("trail", cfg, {})
    bus = MemoryBus(100)
    stop = asyncio.Event()
    assert await watcher.poll(bus, stop) == 0
    tmp = tmp_path / ".a.tmp"
    tmp.write_text('{"Records": []}')
    tmp.rename(tmp_path / "111122223333_CloudTrail_us-east-1_20261126T2200Z_a.json")
    sent = 0
    for _ in range(3):  # stable at first sight (stable_secs 0); give it a poll or two
        sent += await watcher.poll(bus, stop)
    assert sent == 1
