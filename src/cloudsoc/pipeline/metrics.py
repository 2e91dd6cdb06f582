"""Pipeline counters. Per-event facts are counted, never logged."""

from __future__ import annotations

import msgspec


class Counters(msgspec.Struct):
    """Totals since the pipeline started."""

    files: int = 0
    skipped_files: int = 0
    bytes: int = 0
    records: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    batches: int = 0
    alerts: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, int | float]:
        """The ``--json`` summary of an ingest run."""
        return {
            "files": self.files,
            "skipped_files": self.skipped_files,
            "records": self.records,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "dead_letters": self.dead_letters,
            "alerts": self.alerts,
            "seconds": round(self.seconds, 3),
        }
