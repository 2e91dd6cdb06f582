"""MISP feeds: a directory with ``manifest.json`` (event uuid → timestamp …), one ``<uuid>.json`` per event and
``hashes.csv`` (one MD5 of an attribute value per line, with its event uuid).

Incremental by manifest: given the timestamps of the last sync, only new or changed events are read. The caller
fetches files (disk, HTTP); this module only reads bytes it is handed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Final

import msgspec
import orjson

from cloudsoc.errors import ParseError
from cloudsoc.intel.feeds.base import Importer, ImportResult
from cloudsoc.intel.feeds.misp import Misp, events

MANIFEST: Final = "manifest.json"
HASHES: Final = "hashes.csv"
_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


class FeedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One manifest entry."""

    uuid: str
    timestamp: int
    info: str = ""
    date: str = ""


class MispFeed(Importer):
    name: ClassVar[str] = "misp_feed"

    def __init__(self) -> None:
        self._misp = Misp()

    def manifest(self, data: bytes) -> dict[str, FeedEvent]:
        """The events a manifest lists, by uuid."""
        try:
            doc: Any = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"{MANIFEST}: not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ParseError(f"{MANIFEST}: expected an object of event uuid → event summary")
        found = {}
        for uuid, entry in doc.items():
            if (
                not _UUID.fullmatch(uuid)
                or not isinstance(entry, dict)
                or not str(entry.get("timestamp", "")).isdigit()
            ):
                raise ParseError(f"{MANIFEST}: entry {uuid!r} is not an event uuid with a numeric timestamp")
            found[uuid] = FeedEvent(
                uuid=uuid,
                timestamp=int(entry["timestamp"]),
                info=str(entry.get("info", "")),
                date=str(entry.get("date", "")),
            )
        return found

    @staticmethod
    def changed(current: Mapping[str, FeedEvent], previous: Mapping[str, int]) -> list[str]:
        """Uuids of events that are new or whose timestamp moved since ``previous`` (uuid → timestamp)."""
        return sorted(uuid for uuid, ev in current.items() if previous.get(uuid, -1) < ev.timestamp)

    @staticmethod
    def hashes(data: bytes) -> dict[str, set[str]]:
        """``hashes.csv`` as event uuid → MD5s; both column orders occur (PyMISP writes ``md5,uuid``)."""
        found: dict[str, set[str]] = {}
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            a, _, b = (x.strip() for x in line.partition(","))
            uuid, md5 = (a, b) if _UUID.fullmatch(a) else (b, a)
            if not _UUID.fullmatch(uuid) or not re.fullmatch(r"[0-9a-f]{32}", md5, re.I):
                raise ParseError(f"{HASHES}:{number}: expected an event uuid and an MD5, got {line!r}")
            found.setdefault(uuid, set()).add(md5.lower())
        return found

    def sync(
        self, files: Mapping[str, bytes], *, source: str, previous: Mapping[str, int]
    ) -> tuple[ImportResult, dict[str, int]]:
        """Import the changed events among ``files`` (file name → bytes, the manifest included).

        Returns the indicators and the new state (uuid → timestamp) to pass as ``previous`` next time. An event
        the manifest lists but ``files`` lacks is an error and keeps its old state, so the next sync retries it.
        """
        manifest = self.manifest(files[MANIFEST])
        result = ImportResult()
        state = dict(previous)
        for uuid in self.changed(manifest, previous):
            name = f"{uuid}.json"
            if name not in files:
                result.error(name, "listed in the manifest but missing from the feed")
                continue
            self._add(files[name], name, source, result)
            state[uuid] = manifest[uuid].timestamp
        return result, state

    def parse(self, data: bytes, *, name: str, source: str, result: ImportResult | None = None) -> ImportResult:
        """One event file of a feed."""
        result = ImportResult() if result is None else result
        self._add(data, name, source, result)
        return result

    def _add(self, data: bytes, name: str, source: str, result: ImportResult) -> None:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            result.error(name, f"not JSON: {exc}")
            return
        for event in events(doc):
            self._misp.event(event, name=name, source=source, result=result)
