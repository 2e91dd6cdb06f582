"""What inputs put on the bus, and the one small base class of inputs."""

from __future__ import annotations

import asyncio
import fnmatch
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import msgspec

from cloudsoc.bus.base import Bus
from cloudsoc.config.models import Format


class FileData(msgspec.Struct, gc=False):
    """One whole file read by an input: its bytes and what identifies this version of it."""

    input: str
    key: str  # checkpoint key: the path relative to the input's root (absolute for one-shot ingest)
    path: str
    size: int
    mtime_ns: int
    data: bytes
    format: Format = "auto"


class Input:
    """Produces :class:`FileData` messages on the bus until done (finite inputs) or ``stop`` is set."""

    name: ClassVar[str]

    def __init__(self, input_name: str, fmt: Format, include: Sequence[str]) -> None:
        self.input_name = input_name
        self.format: Format = fmt
        self.include = list(include)

    def wanted(self, file_name: str) -> bool:
        return any(fnmatch.fnmatch(file_name, pat) for pat in self.include)

    async def run(self, bus: Bus, stop: asyncio.Event) -> None:
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        """What this input has done so far (shown in status.json)."""
        return {"type": self.name}


def read_file(path: str | Path) -> bytes:
    """Read a whole file (the directory watcher calls this in a worker thread: bucket mounts are slow)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        chunks: list[bytes] = []
        while True:  # read to the end even if the file grew since fstat
            chunk = os.read(fd, max(size, 65536))
            if not chunk:
                return b"".join(chunks) if len(chunks) != 1 else chunks[0]
            chunks.append(chunk)
    finally:
        os.close(fd)
