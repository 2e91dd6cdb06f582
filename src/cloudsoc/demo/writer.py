"""Writes trail records in the layouts the clouds deliver them in (OSS for ActionTrail, S3 for CloudTrail).

- ActionTrail: ``AliyunLogs/Actiontrail/<region>/YYYY/MM/DD/``
  ``Actiontrail_<region>_<YYYYMMDDHHMMSS>_1002_<n>_<size>_<md5>.gz`` — gzip of one JSON array; ``n`` is the
  region's file sequence number, ``size`` the uncompressed byte size and ``md5`` the hex MD5 of the
  uncompressed body.
- CloudTrail: ``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<16
  random letters and digits>.json.gz`` — gzip of ``{"Records": [...]}``.

The date and time in a path are those of the delivery (a few minutes after the file's 5-minute window), so a
record from 23:58 can land in the next day's folder, as with the real services. Gzip carries no timestamp
(``mtime=0``) so the same records give the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from cloudsoc.demo.ids import IdFactory
from cloudsoc.demo.timeline import ACTIONTRAIL, CLOUDTRAIL

WINDOW_SECS = 300  # both trails deliver about every five minutes per region


class DeliveryWriter:
    """Writes files under ``out_dir`` and remembers their relative paths."""

    def __init__(self, out_dir: Path, rng: random.Random, *, gzip_level: int = 6) -> None:
        self.out_dir = out_dir
        self.rng = rng
        self.ids = IdFactory(rng)
        self.gzip_level = gzip_level
        self.files: list[str] = []
        self.bytes_written = 0
        self._dirs: set[str] = set()
        self._root = str(out_dir)
        self._sequence: dict[str, int] = {}

    def _put(self, rel: str, body: bytes) -> None:
        folder, _, _ = rel.rpartition("/")
        if folder not in self._dirs:
            (self.out_dir / folder).mkdir(parents=True, exist_ok=True)
            self._dirs.add(folder)
        data = gzip.compress(body, compresslevel=self.gzip_level, mtime=0)
        with open(os.path.join(self._root, rel), "wb") as f:
            f.write(data)
        self.files.append(rel)
        self.bytes_written += len(data)

    def delivery_time(self, window_start: int) -> int:
        """When the file of a 5-minute window arrives: 1 to 7 minutes after the window closes."""
        return window_start + WINDOW_SECS + self.rng.randint(60, 420)

    def cloudtrail(self, account: str, region: str, delivered: int, records: list[dict[str, Any]]) -> str:
        tm = time.gmtime(delivered)
        day = time.strftime("%Y/%m/%d", tm)
        stamp = time.strftime("%Y%m%dT%H%MZ", tm)
        name = f"{account}_CloudTrail_{region}_{stamp}_{self.ids.alnum(16)}.json.gz"
        rel = f"AWSLogs/{account}/CloudTrail/{region}/{day}/{name}"
        self._put(rel, orjson.dumps({"Records": records}))
        return rel

    def actiontrail(self, region: str, delivered: int, records: list[dict[str, Any]]) -> str:
        tm = time.gmtime(delivered)
        day = time.strftime("%Y/%m/%d", tm)
        stamp = time.strftime("%Y%m%d%H%M%S", tm)
        body = orjson.dumps(records)
        n = self._sequence.get(region, 0) + 1
        self._sequence[region] = n
        md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
        name = f"Actiontrail_{region}_{stamp}_1002_{n}_{len(body)}_{md5}.gz"
        rel = f"AliyunLogs/Actiontrail/{region}/{day}/{name}"
        self._put(rel, body)
        return rel

    def write_timeline(
        self,
        items: Iterable[tuple[int, int, str, str, dict[str, Any]]],
        accounts: dict[str, str],
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Group time-ordered ``(t, seq, provider, region, record)`` into 5-minute files per trail and region."""
        groups: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
        for t, _, provider, region, record in items:
            key = (t - t % WINDOW_SECS, provider, region)
            group = groups.get(key)
            if group is None:
                groups[key] = group = []
            group.append(record)
        done = 0
        for (window, provider, region), records in sorted(groups.items(), key=lambda kv: kv[0]):
            delivered = self.delivery_time(window)
            if provider == CLOUDTRAIL:
                self.cloudtrail(accounts[CLOUDTRAIL], region, delivered, records)
            elif provider == ACTIONTRAIL:
                self.actiontrail(region, delivered, records)
            else:
                raise ValueError(f"unknown provider {provider!r}")
            done += len(records)
            if progress is not None:
                progress(done)
