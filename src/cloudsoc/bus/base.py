"""The Bus protocol. Messages are opaque to the bus; ``None`` marks the end of a finite stream."""

from __future__ import annotations

from typing import Any, Protocol


class Bus(Protocol):
    """A bounded FIFO between producers (inputs) and the consumer (processing). ``put`` waits when full."""

    async def put(self, message: Any) -> None: ...

    async def get(self) -> Any: ...

    def get_nowait(self) -> Any:
        """The next message if one is queued; raises ``asyncio.QueueEmpty`` otherwise."""
        ...

    def qsize(self) -> int: ...
