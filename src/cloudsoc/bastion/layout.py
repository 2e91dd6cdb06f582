"""Where the bastion keeps its state under the home directory: one place that names every path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BastionLayout:
    """``<home>/bastion/``: the host key, bastion.db, recordings and the journal the daemon reads."""

    root: Path

    @classmethod
    def of(cls, home: Path) -> BastionLayout:
        return cls(home / "bastion")

    @property
    def db(self) -> Path:
        return self.root / "bastion.db"

    # The journal's sealed segments (what the daemon reads).
    JOURNAL_SEGMENTS = "*.ndjson"

    @property
    def journal(self) -> Path:
        return self.root / "journal"

    @property
    def recordings(self) -> Path:
        return self.root / "recordings"

    @property
    def host_key(self) -> Path:
        return self.root / "host_key"
