"""The in-process bus: a bounded asyncio queue, so slow storage pushes back on inputs."""

from __future__ import annotations

import asyncio
from typing import Any


class MemoryBus:
    """Bus over ``asyncio.Queue``; ``max_messages`` bounds memory (back-pressure)."""

    name = "memory"

    def __init__(self, max_messages: int = 64) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max_messages)

    async def put(self, message: Any) -> None:
        await self._queue.put(message)

    async def get(self) -> Any:
        return await self._queue.get()

    def get_nowait(self) -> Any:
        return self._queue.get_nowait()

    def qsize(self) -> int:
        return self._queue.qsize()
