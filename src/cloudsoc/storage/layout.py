"""The files of the embedded store, in one place: the state database, the segment folder and the manifest.

Light on purpose (no DuckDB, no Arrow), so commands that only look at the store (``status``) start fast.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from cloudsoc.errors import StorageError


class StoreLayout(NamedTuple):
    """Where a store named by its state file (``events.duckdb``) keeps everything."""

    state: Path
    segments: Path
    manifest: Path

    @classmethod
    def of(cls, state: Path) -> StoreLayout:
        return cls(state, state.with_name(state.stem + "-segments"), state.with_name(state.stem + "-segments.json"))

    def read_manifest(self) -> list[dict[str, Any]]:
        """The published segment list: ``name``, ``rows``, ``ts_min``, ``ts_max`` (ISO-8601 UTC) each."""
        try:
            segments = orjson.loads(self.manifest.read_bytes())["segments"]
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
            raise StorageError(f"cannot read {self.manifest}; run any writing command to rebuild it") from None
        if not isinstance(segments, list):
            raise StorageError(f"cannot read {self.manifest}; run any writing command to rebuild it")
        return segments

    def remove(self) -> None:
        """Delete the whole store (the demo starts fresh)."""
        for path in (self.state, self.state.with_suffix(self.state.suffix + ".wal"), self.manifest):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.segments, ignore_errors=True)
