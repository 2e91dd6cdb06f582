"""The bastion's audit journal: ECS documents for commands, exec requests, SFTP operations, sessions and log-ins.

Documents are appended to an open segment, ``<home>/bastion/journal/.<pid>-<n>.part``, flushed at once; a
segment is sealed — fsynced and renamed to ``journal/YYYY/MM/DD/<time>-<pid>-<n>.ndjson`` — when it is a second
old (a background thread looks twice a second) or the journal closes. The daemon (`cloudsoc run`) reads each
sealed segment once, like any file input: a reader never meets a half-written line, and within about two seconds
a command is searchable. A document that decides something (a rejected or flagged command, a refused log-in, a
session's end) is fsynced before the bastion acts. Segments a crashed bastion left open are sealed at the next
start, so a restart of either side loses nothing that was flushed. A writer holds an flock on its open segment,
so a starting worker seals only segments whose writer is gone, never a live sibling worker's."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, Literal

import orjson

from cloudsoc.bastion.layout import BastionLayout

Outcome = Literal["success", "failure", "unknown"]

_RISK = {"low": 21, "medium": 47, "high": 73, "critical": 99}
SEAL_SECS: Final = 1.0
_PART = ".part"


class AuditJournal:
    """Append-only NDJSON journal in sealed segments that the pipeline reads."""

    def __init__(self, home: Path, *, seal_secs: float = SEAL_SECS) -> None:
        self.dir = BastionLayout.of(home).journal
        self.dir.mkdir(parents=True, exist_ok=True)
        self.seal_secs = seal_secs
        self._seq = 0
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._opened = 0.0
        # Sessions run on one event loop, but password checks run in threads and may log refusals.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # Open segments of a bastion that crashed (and an empty one it had not yet named).
        for left in sorted([*self.dir.glob(f".*{_PART}"), *self.dir.glob(f".*{_PART}.new")]):
            self._seal_abandoned(left)
        self._sealer = threading.Thread(target=self._seal_loop, name="bastion-journal", daemon=True)
        self._sealer.start()

    def write(self, doc: dict[str, Any], *, sync: bool = False) -> None:
        """Append one document; ``sync`` fsyncs it (and everything before it) to disk."""
        line = orjson.dumps(doc) + b"\n"
        with self._lock:
            if self._file is None:
                self._seq += 1
                self._path = self.dir / f".{os.getpid()}-{self._seq:06d}{_PART}"
                # Locked before it takes the name other journals look for (the lock goes when this process dies).
                fresh = self._path.with_name(self._path.name + ".new")
                self._file = fresh.open("ab")
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
                os.replace(fresh, self._path)
                self._opened = time.monotonic()
            self._file.write(line)
            self._file.flush()
            if sync:
                os.fsync(self._file.fileno())

    def sync(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()
                os.fsync(self._file.fileno())

    def seal(self) -> None:
        """Seal the open segment now (the pipeline reads it at its next poll)."""
        with self._lock:
            self._seal_open()

    def close(self) -> None:
        self._stop.set()
        self._sealer.join(5)
        self.seal()

    def segments(self) -> list[Path]:
        """Sealed segments, oldest first, and then the open ones (for tests and `bastion` tools)."""
        return sorted(self.dir.rglob(BastionLayout.JOURNAL_SEGMENTS)) + sorted(self.dir.glob(f".*{_PART}"))

    def _seal_loop(self) -> None:
        while not self._stop.wait(self.seal_secs / 2):
            with self._lock:
                if self._file is not None and time.monotonic() - self._opened >= self.seal_secs:
                    self._seal_open()

    def _seal_open(self) -> None:
        if self._file is None or self._path is None:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        self._seal_file(self._path)

    def _seal_abandoned(self, path: Path) -> None:
        """Seal a segment another journal left open, if its writer is gone (a crashed bastion); a sibling worker
        still writing holds its lock."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # sealed by its writer a moment ago
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            with contextlib.suppress(FileNotFoundError):
                self._seal_file(path)
        finally:
            os.close(fd)

    def _seal_file(self, path: Path) -> None:
        if path.stat().st_size == 0:
            path.unlink()
            return
        now = datetime.now(UTC)
        folder = self.dir / now.strftime("%Y/%m/%d")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{path.name[1 : -len(_PART)]}.ndjson"
        os.replace(path, target)
        # The rename must reach the disk before anything relies on the document being journalled.
        for directory in (folder, self.dir):
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

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
        category = {
            "bastion-login": ["authentication"],
            "bastion-sftp": ["file"],
            "bastion-scp": ["file"],
            "bastion-session": ["session"],
        }
        etype = {"bastion-login": ["start"] if outcome == "success" else ["denied"], "bastion-session": ["info"]}
        doc: dict[str, Any] = {
            "@timestamp": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "event": {
                # The pipeline de-duplicates by it: a segment read twice stores nothing twice.
                "id": uuid.uuid4().hex,
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
