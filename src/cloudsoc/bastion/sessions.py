"""Bastion sessions, live and past, in ``bastion.db``; kill requests from any process.

The server process keeps the live ones in a registry (id → a close callback). Another process (the console,
``cloudsoc bastion sessions kill``) cannot reach that registry, so it sets a row flag that the server polls
every second: simple, and it survives neither side needing to know where the other runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

from cloudsoc.bastion.layout import BastionLayout
from cloudsoc.storage.sqlite import SqliteStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bastion_sessions (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    target TEXT NOT NULL,
    system_user TEXT NOT NULL,
    kind TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    recording TEXT,
    bytes_in INTEGER NOT NULL DEFAULT 0,
    bytes_out INTEGER NOT NULL DEFAULT 0,
    commands INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    kill_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS bastion_sessions_started ON bastion_sessions (started);
"""

COLUMNS: Final = [
    "id",
    "user",
    "source_ip",
    "target",
    "system_user",
    "kind",
    "started",
    "ended",
    "recording",
    "bytes_in",
    "bytes_out",
    "commands",
    "status",
]


class SessionLog(SqliteStore):
    """The ``bastion_sessions`` table plus, in the server process, the registry of live sessions."""

    what = "bastion session log"

    def __init__(self, home: Path) -> None:
        super().__init__(BastionLayout.of(home).db, _SCHEMA)
        self._live: dict[str, Callable[[str], None]] = {}
        # A durable commit (fsync) takes milliseconds; the server's event loop carries every session's bytes, so
        # its writes go through one thread, in order.
        self._writer: ThreadPoolExecutor | None = None

    def background(self, fn: Callable[..., object], *args: object, **kwargs: object) -> Future[object]:
        """Run one of this log's writes (or another blocking call) on the writer thread, after earlier ones."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bastion-sessions")
        return self._writer.submit(fn, *args, **kwargs)

    def register(self, session_id: str, close: Callable[[str], None]) -> None:
        """A live session of this process, for kill()."""
        self._live[session_id] = close

    def forget(self, session_id: str) -> None:
        self._live.pop(session_id, None)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        super().close()

    def start(
        self,
        session_id: str,
        *,
        user: str,
        source_ip: str,
        target: str,
        system_user: str,
        kind: str,
        recording: Path | None,
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO bastion_sessions (id, user, source_ip, target, system_user, kind, started, recording,"
                " status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active')",
                (session_id, user, source_ip, target, system_user, kind, time.time(), str(recording or "")),
            )

    def finish(self, session_id: str, *, status: str, bytes_in: int, bytes_out: int, commands: int) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE bastion_sessions SET ended = ?, status = ?, bytes_in = ?, bytes_out = ?, commands = ?"
                " WHERE id = ?",
                (time.time(), status, bytes_in, bytes_out, commands, session_id),
            )

    def record(self, rows: list[dict[str, Any]]) -> None:
        """Past sessions, whole (``COLUMNS`` each), in one transaction: replayed or imported ones, such as the
        demo's. A row with the same id is replaced."""
        names = ", ".join(COLUMNS)
        marks = ", ".join("?" for _ in COLUMNS)
        with self.transaction() as conn:
            conn.executemany(
                f"INSERT OR REPLACE INTO bastion_sessions ({names}) VALUES ({marks})",
                [tuple(row[c] for c in COLUMNS) for row in rows],
            )

    def kill(self, session_id: str, reason: str = "killed by an administrator") -> bool:
        """Close a live session: at once if it runs in this process, else through the row flag."""
        close = self._live.get(session_id)
        if close is not None:
            close(reason)
            return True
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE bastion_sessions SET kill_requested = 1 WHERE id = ? AND status = 'active'", (session_id,)
            )
        return cur.rowcount > 0

    def poll_kills(self) -> list[str]:
        """Kill the live sessions of this process that another process asked to end; returns their ids."""
        if not self._live:
            return []
        rows = self.conn.execute(
            "SELECT id FROM bastion_sessions WHERE kill_requested = 1 AND status = 'active'"
        ).fetchall()
        killed = [row[0] for row in rows if row[0] in self._live]
        for session_id in killed:
            self._live[session_id]("killed by an administrator")
        return killed

    def live(self) -> list[str]:
        return list(self._live)

    def get(self, session_id: str) -> dict[str, Any] | None:
        found = self.dicts(f"SELECT {', '.join(COLUMNS)} FROM bastion_sessions WHERE id = ?", (session_id,))
        return found[0] if found else None

    def list(self, *, active: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        where = "WHERE status = 'active'" if active else ""
        return self.dicts(
            f"SELECT {', '.join(COLUMNS)} FROM bastion_sessions {where} ORDER BY started DESC LIMIT ?", (limit,)
        )
