"""The Storage protocol: what the pipeline, the CLI and (later) the API need from an event store.

The embedded default is DuckDB; a distributed store implements the same protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import msgspec

from cloudsoc.event import DeadLetter, Event


class Checkpoint(msgspec.Struct, frozen=True):
    """How far an input got in one file. Written in the same transaction as the file's events."""

    input: str
    path: str
    size: int
    mtime_ns: int
    records: int
    status: str = "done"


class EncodedEvents(msgspec.Struct):
    """Events encoded for the store (Arrow record batches of JSON documents)."""

    batches: list[Any] = msgspec.field(default_factory=list)  # pyarrow.RecordBatch
    rows: int = 0

    def extend(self, other: EncodedEvents) -> None:
        if not other.rows:
            return
        self.batches.extend(other.batches)
        self.rows += other.rows


class WriteResult(msgspec.Struct):
    """What one write did."""

    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0


class StoredDeadLetter(msgspec.Struct):
    """A dead letter as kept by the store."""

    id: int
    received: datetime
    input: str
    path: str
    index: int
    offset: int
    parser: str
    reason: str
    raw: bytes
    replayed: bool


class SearchResult(msgspec.Struct):
    """Matching ECS documents (newest first) and the total number of matches."""

    events: list[dict[str, Any]]
    total: int
    seconds: float


class AddressMatches(msgspec.Struct):
    """A retro-hunt's first step, before any document is read: how many events the time window holds, and which
    of their source addresses matched, with their event counts and their numbers (as ``source_ip_num``)."""

    scanned: int
    addresses: dict[str, int]
    numbers: dict[str, int]


class Storage(Protocol):
    """An event store. Writes are atomic: events, dead letters and checkpoints land together or not at all.

    ``encode`` turns events into the store's wire form early (so a batch holds bytes, not dicts) and moves
    events it cannot take to ``dead``; ``write_encoded`` commits encoded events with their dead letters and
    checkpoints; ``write`` is both in one call.
    """

    @property
    def encoder(self) -> Any:
        """A picklable object with ``encode(events, dead) -> EncodedEvents`` (used by worker processes)."""
        ...

    def encode(self, events: Sequence[Event], dead: list[DeadLetter]) -> EncodedEvents: ...

    def write_encoded(
        self, encoded: EncodedEvents, dead_letters: Sequence[DeadLetter], checkpoints: Sequence[Checkpoint]
    ) -> WriteResult: ...

    def write(
        self, events: Sequence[Event], dead_letters: Sequence[DeadLetter], checkpoints: Sequence[Checkpoint]
    ) -> WriteResult: ...

    def checkpoints(self, input_name: str) -> dict[str, Checkpoint]: ...

    def search(
        self,
        query: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> SearchResult: ...

    def dead_letters(self, *, limit: int = 100, include_replayed: bool = False) -> list[StoredDeadLetter]: ...

    def dead_letter(self, dead_letter_id: int) -> StoredDeadLetter | None: ...

    def mark_replayed(self, ids: Sequence[int]) -> None: ...

    def apply_retention(self, days: int) -> int: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...
