"""The bastion's audit journal: ECS documents for commands, exec requests, SFTP operations, sessions and log-ins.

Documents are appended as NDJSON to ``<home>/bastion/journal/<date>.ndjson``; the pipeline's ``bastion`` input
reads them with a checkpoint per file, so a restart of either side loses nothing. A document that decides
something (a rejected or flagged command, a refused log-in, a session's end) is fsynced before the bastion acts."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

import orjson

Outcome = Literal["success", "failure", "unknown"]

_RISK = {"low": 21, "medium": 47, "high": 73, "critical": 99}


class AuditJournal:
    """Append-only NDJSON journal, one file per UTC day."""

    def __init__(self, home: Path) -> None:
        self.dir = home / "bastion" / "journal"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._day = ""
        self._file: IO[bytes] | None = None
        # Sessions run on one event loop, but password checks run in threads and may log refusals.
        self._lock = threading.Lock()

    def path_for(self, day: str) -> Path:
        return self.dir / f"{day}.ndjson"

    def write(self, doc: dict[str, Any], *, sync: bool = False) -> None:
        """Append one document; ``sync`` fsyncs it (and everything before it) to disk."""
        line = orjson.dumps(doc) + b"\n"
        with self._lock:
            day = str(doc["@timestamp"])[:10]
            if day != self._day or self._file is None:
                if self._file is not None:
                    self._file.close()
                self._file = self.path_for(day).open("ab")
                self._day = day
            self._file.write(line)
            # Flushed at once so the pipeline's reader sees it; fsynced only when it decides something.
            self._file.flush()
            if sync:
                os.fsync(self._file.fileno())

    def sync(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()
                os.fsync(self._file.fileno())

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
                self._file = None

    @staticmethod
    def document(
        action: str,
        outcome: Outcome,
        *,
        user: str | None,
        source_ip: str,
        session_id: str | None = None,
        host: str | None = None,
        host_ip: str | None = None,
        labels: dict[str, str] | None = None,
        system_user: str | None = None,
        command_line: str | None = None,
        cwd: str | None = None,
        offset: float | None = None,
        verdict: str | None = None,
        rule: str | None = None,
        group: str | None = None,
        risk: str | None = None,
        reason: str | None = None,
        extra: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        """One ECS document per the spec's "Events" section; absent values are left out, not nulled."""
        stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC)
        category = {"bastion-login": ["authentication"], "bastion-sftp": ["file"], "bastion-session": ["session"]}
        etype = {"bastion-login": ["start"] if outcome == "success" else ["denied"], "bastion-session": ["info"]}
        doc: dict[str, Any] = {
            "@timestamp": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "event": {
                "kind": "event",
                "category": category.get(action, ["process"]),
                "type": etype.get(action, ["start"]),
                "action": action,
                "outcome": outcome,
                "module": "bastion",
            },
            "source": {"ip": source_ip},
        }
        if user:
            doc["user"] = {"name": user}
        if host:
            doc["host"] = {"name": host, **({"ip": [host_ip]} if host_ip else {})}
        if labels:
            doc["labels"] = dict(labels)
        if session_id:
            doc["session"] = {"id": session_id}
            if offset is not None:
                doc["url"] = {"full": f"/bastion/sessions/{session_id}?t={offset:.3f}"}
        process: dict[str, Any] = {}
        if command_line is not None:
            process["command_line"] = command_line
        if cwd:
            process["working_directory"] = cwd
        if system_user:
            process["user"] = {"name": system_user}
        if process:
            doc["process"] = process
        if risk in _RISK:
            doc["event"]["risk_score"] = _RISK[risk]
        if reason:
            doc["event"]["reason"] = reason
        bastion = {k: v for k, v in (("verdict", verdict), ("rule", rule), ("group", group)) if v}
        if bastion:
            doc["cloudsoc"] = {"bastion": bastion}
        if extra:
            _merge(doc, extra)
        return doc


def _merge(doc: dict[str, Any], extra: dict[str, Any]) -> None:
    """Deep-merge ``extra`` into ``doc`` (objects merge, anything else replaces)."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            _merge(doc[key], value)
        else:
            doc[key] = value
