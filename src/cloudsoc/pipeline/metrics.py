"""Pipeline counters. Per-event facts are counted, never logged."""

from __future__ import annotations

import os

import msgspec


def writer_running(pid: object) -> bool:
    """Whether the daemon whose status file names ``pid`` still runs (and is not this process: the console
    served by ``cloudsoc run`` reads its own status file)."""
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


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
