"""The event envelope that travels through the pipeline.

``fields`` is the ECS document as a nested dict (what is stored and searched); ``meta`` is provenance that is
not part of the document: where the record came from (so a dead letter or an alert can point back to it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec


class Origin(msgspec.Struct, frozen=True, gc=False):
    """Where a record came from: the input, the file (or stream) and the record's index/offset in it."""

    input: str
    path: str = ""
    index: int = -1
    offset: int = -1


class Event(msgspec.Struct, gc=False):
    """One normalised event: the ECS document plus its origin."""

    fields: dict[str, Any]
    origin: Origin

    @property
    def id(self) -> str:
        event = self.fields.get("event")
        return str(event.get("id", "")) if isinstance(event, dict) else ""


class DeadLetter(msgspec.Struct, gc=False):
    """A record that was rejected, kept with its raw bytes so it can be inspected and replayed."""

    raw: bytes
    reason: str
    origin: Origin
    parser: str = ""


def lookup(doc: dict[str, Any], path: Sequence[str]) -> Any:
    """The value at a nested ECS path (``["cloud", "account", "id"]``), or None when any part is missing."""
    cur: Any = doc
    for part in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
        if cur is None:
            return None
    return cur
