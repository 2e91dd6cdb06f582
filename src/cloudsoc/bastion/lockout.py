"""Brute-force lock-out: failed log-ins counted per user and per source address in bastion.db."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from cloudsoc.storage.sqlite import SqliteStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lockout (
    kind TEXT NOT NULL, name TEXT NOT NULL, failures INTEGER NOT NULL, locked_until REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, name));
"""


class LockState(msgspec.Struct):
    kind: str  # "user" | "ip"
    name: str
    failures: int
    locked_until: float


class Lockout(SqliteStore):
    """After ``max_failures`` failures a user (``address_max_failures`` an address) is locked for ``minutes``.

    A success clears the user's count but not the address's: otherwise an attacker holding one account could
    reset their address between guesses at others."""

    what = "bastion lock-out store"

    def __init__(
        self,
        path: Path,
        max_failures: int,
        minutes: float,
        clock: Callable[[], float] = time.time,
        *,
        address_max_failures: int | None = None,
    ) -> None:
        super().__init__(path, _SCHEMA)
        self.limits = {"user": max_failures, "ip": address_max_failures or max_failures}
        self.seconds = minutes * 60
        self._clock = clock

    def locked(self, user: str | None, ip: str) -> bool:
        now = self._clock()
        keys = [("ip", ip)] + ([("user", user)] if user else [])
        for kind, name in keys:
            row = self.conn.execute(
                "SELECT locked_until FROM lockout WHERE kind = ? AND name = ?", (kind, name)
            ).fetchone()
            if row is not None and row[0] > now:
                return True
        return False

    def failure(self, user: str, ip: str) -> bool:
        """Count a failure; True when it locked the user or the address."""
        now = self._clock()
        locked = False
        with self.transaction() as conn:
            for kind, name in (("user", user), ("ip", ip)):
                row = conn.execute(
                    "SELECT failures, locked_until FROM lockout WHERE kind = ? AND name = ?", (kind, name)
                ).fetchone()
                # A lock that has run out starts a fresh count.
                failures = 1 if row is None or (row[1] and row[1] <= now) else row[0] + 1
                until = 0.0
                if failures >= self.limits[kind]:
                    until, locked = now + self.seconds, True
                conn.execute("INSERT OR REPLACE INTO lockout VALUES (?, ?, ?, ?)", (kind, name, failures, until))
        return locked

    def success(self, user: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM lockout WHERE kind = 'user' AND name = ?", (user,))

    def unlock(self, user: str) -> None:
        self.success(user)

    def states(self) -> list[LockState]:
        rows = self.conn.execute("SELECT kind, name, failures, locked_until FROM lockout ORDER BY 1, 2").fetchall()
        return [LockState(*r) for r in rows]
