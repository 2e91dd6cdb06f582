"""Watch a directory tree by polling: local disks and buckets mounted with ossfs/s3fs alike.

On FUSE mounts of buckets inotify never fires, listing is slow, an append rewrites the whole object and a
rename is not atomic. So this input polls, and between full walks (``full_rescan_secs``) it lists only the
newest date folders of each ``YYYY/MM/DD`` partition (the CloudTrail and ActionTrail delivery layouts); it
reads a file only once its size and mtime held still for ``stable_secs`` *and* its gzip stream and JSON body
are intact; and it never reads a finished file again unless its size changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any

import orjson

from cloudsoc.bus.base import Bus
from cloudsoc.config.models import DirectoryInputConfig
from cloudsoc.inputs.base import FileData, Input, read_file
from cloudsoc.parsers.framing import decompress
from cloudsoc.storage.base import Checkpoint


def is_complete(data: bytes) -> bool:
    """Whether a delivered file is whole: its gzip stream ends properly and its JSON body decodes."""
    body, whole = decompress(data, [])
    if not whole or not body.strip():
        return False
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        # NDJSON is whole when its last line is.
        lines = body.rstrip().rsplit(b"\n", 1)
        if len(lines) < 2:
            return False
        try:
            orjson.loads(lines[-1])
        except orjson.JSONDecodeError:
            return False
    return True


def _digits(name: str, width: int) -> bool:
    return len(name) == width and name.isdigit()


class _Seen:
    __slots__ = ("first_seen", "mtime_ns", "since", "size")

    def __init__(self, size: int, mtime_ns: int, now: float) -> None:
        self.size = size
        self.mtime_ns = mtime_ns
        self.since = now  # when this size/mtime was first observed
        self.first_seen = now


class Directory(Input):
    """The daemon's directory/bucket-mount watcher."""

    name = "directory"

    def __init__(self, input_name: str, config: DirectoryInputConfig, checkpoints: dict[str, Checkpoint]) -> None:
        super().__init__(input_name, config.format, config.include)
        self.config = config
        self.root = Path(config.path)
        self.done: dict[str, int] = {k: cp.size for k, cp in checkpoints.items() if cp.status == "done"}
        self.candidates: dict[str, _Seen] = {}
        # date root (folder holding YYYY folders) -> newest YYYY/MM/DD seen under it
        self.date_roots: dict[str, tuple[str, str, str]] = {}
        self.plain_dirs: list[Path] = []  # folders with files of their own (not in a YYYY/MM/DD layout)
        self.last_full = 0.0
        self.listings = 0  # directory listings done (FUSE listings are the expensive part)
        self.polls = 0
        self.idle_polls = 0  # consecutive polls that found nothing to read
        self.files_read = 0

    async def run(self, bus: Bus, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.poll(bus, stop)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.config.poll_secs)

    async def poll(self, bus: Bus, stop: asyncio.Event) -> int:
        """One polling round; returns how many files were put on the bus."""
        now = time.monotonic()
        # Until the tree holds a file or a date folder (a freshly mounted, still empty bucket), there is nothing
        # to narrow the listing to: walk the (small) tree every poll, or the first files wait a full rescan.
        empty = not self.plain_dirs and not self.date_roots
        full = now - self.last_full >= self.config.full_rescan_secs or not self.last_full or empty
        files = await asyncio.to_thread(self._list_full if full else self._list_new)
        if full:
            self.last_full = now
        sent = 0
        for key, (size, mtime_ns) in sorted(files.items()):
            if stop.is_set():
                break
            if self.done.get(key) == size:
                continue  # finished: never read again unless it changes size
            seen = self.candidates.get(key)
            if seen is None or seen.size != size or seen.mtime_ns != mtime_ns:
                first = seen.first_seen if seen is not None else now
                # A file first met long after it was last modified (after a restart, or with --once) is
                # already stable: count its age from its mtime, not from when this process noticed it.
                age = max(0.0, time.time() - mtime_ns / 1e9) if seen is None else 0.0
                self.candidates[key] = seen = _Seen(size, mtime_ns, now - age)
                seen.first_seen = first
            if now - seen.since < self.config.stable_secs:
                continue
            path = self.root / key
            try:
                data = await asyncio.to_thread(read_file, path)
            except OSError:
                continue  # vanished or unreadable for now; try again next round
            if len(data) != size:
                continue  # still being written
            if not is_complete(data) and now - seen.first_seen < self.config.incomplete_timeout_secs:
                continue
            self.done[key] = size
            del self.candidates[key]
            await bus.put(FileData(self.input_name, key, str(path), size, mtime_ns, data, self.format))
            sent += 1
        self.polls += 1
        self.files_read += sent
        self.idle_polls = 0 if sent or self.candidates else self.idle_polls + 1
        return sent

    def status(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "path": str(self.root),
            "polls": self.polls,
            "idle_polls": self.idle_polls,
            "files_read": self.files_read,
            "waiting": len(self.candidates),
            "listings": self.listings,
        }

    # -- listing ------------------------------------------------------------------------------------------
    def _scandir(self, path: Path) -> list[os.DirEntry[str]]:
        self.listings += 1
        try:
            with os.scandir(path) as it:
                return list(it)
        except OSError:
            return []

    def _add_files(self, entries: list[os.DirEntry[str]], out: dict[str, tuple[int, int]]) -> None:
        for e in entries:
            if e.is_file(follow_symlinks=False) and self.wanted(e.name):
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                out[os.path.relpath(e.path, self.root)] = (st.st_size, st.st_mtime_ns)

    def _list_full(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        stack = [self.root]
        self.plain_dirs = []
        while stack:
            path = stack.pop()
            entries = self._scandir(path)
            if any(e.is_file(follow_symlinks=False) for e in entries):
                self.plain_dirs.append(path)  # files outside date folders: listed on every poll
            self._add_files(entries, out)
            subdirs = [e for e in entries if e.is_dir(follow_symlinks=False)]
            if subdirs and all(_digits(e.name, 4) for e in subdirs):
                dates = self._walk_dates(path, [e.name for e in subdirs], out, since=None)
                if dates:
                    self.date_roots[str(path)] = dates[-2:][0]
                continue
            stack.extend(Path(e.path) for e in subdirs)
        return out

    def _list_new(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for path in self.plain_dirs:
            self._add_files(self._scandir(path), out)
        for root, newest in list(self.date_roots.items()):
            years = [e.name for e in self._scandir(Path(root)) if e.is_dir() and _digits(e.name, 4)]
            dates = self._walk_dates(Path(root), years, out, since=newest)
            if dates:
                # Keep listing the day before the newest too: deliveries for it still arrive after midnight.
                self.date_roots[root] = max(dates[-2:][0], newest)
        return out

    def _walk_dates(
        self, root: Path, years: list[str], out: dict[str, tuple[int, int]], since: tuple[str, str, str] | None
    ) -> list[tuple[str, str, str]]:
        """List YYYY/MM/DD folders under ``root`` (all, or those from ``since`` on); return the days seen."""
        seen: list[tuple[str, str, str]] = []
        for y in sorted(years):
            if since is not None and y < since[0]:
                continue
            months = [e.name for e in self._scandir(root / y) if e.is_dir() and _digits(e.name, 2)]
            for m in sorted(months):
                if since is not None and (y, m) < since[:2]:
                    continue
                days = [e.name for e in self._scandir(root / y / m) if e.is_dir() and _digits(e.name, 2)]
                for d in sorted(days):
                    if since is not None and (y, m, d) < since:
                        continue
                    entries = self._scandir(root / y / m / d)
                    self._add_files(entries, out)
                    for sub in entries:  # e.g. ActionTrail's per-hour or per-account sub-folders
                        if sub.is_dir(follow_symlinks=False):
                            self._add_tree(Path(sub.path), out)
                    seen.append((y, m, d))
        return seen

    def _add_tree(self, path: Path, out: dict[str, tuple[int, int]]) -> None:
        entries = self._scandir(path)
        self._add_files(entries, out)
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                self._add_tree(Path(e.path), out)
