"""Answers of the console's store queries, kept for a few seconds and shared between people asking the same.

Twenty people with the Overview open ask the same aggregates over ten million events every refresh; one scan
answers them all. An answer is reused only while the store is unchanged (its version: the segment manifest's
identity) and for at most ``ttl`` seconds; concurrent identical questions wait for the one being answered
("single flight") instead of each scanning. Errors are not kept: the next ask tries again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Final

DEFAULT_TTL: Final = 30.0
DEFAULT_ENTRIES: Final = 512


class _Flight:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class ResultCache:
    """A small thread-safe LRU of query answers with a time-to-live and single-flight misses."""

    def __init__(self, *, ttl: float = DEFAULT_TTL, entries: int = DEFAULT_ENTRIES) -> None:
        self.ttl = ttl
        self.entries = entries
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self.hits = 0
        self.misses = 0
        self.shared = 0  # asks answered by another thread's scan that was under way

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The answer for ``key``: kept, being computed by another thread (wait for it), or computed now."""
        now = time.monotonic()
        with self._lock:
            item = self._items.get(key)
            if item is not None and now - item[0] < self.ttl:
                self._items.move_to_end(key)
                self.hits += 1
                return item[1]
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
                self.misses += 1
            else:
                self.shared += 1
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            flight.value = compute()
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
                if flight.error is None:
                    self._items[key] = (time.monotonic(), flight.value)
                    self._items.move_to_end(key)
                    while len(self._items) > self.entries:
                        self._items.popitem(last=False)
            flight.done.set()
        return flight.value

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"entries": len(self._items), "hits": self.hits, "misses": self.misses, "shared": self.shared}
