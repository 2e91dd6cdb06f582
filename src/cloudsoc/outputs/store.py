"""The outbox: alert deliveries waiting, done or given up, in SQLite beside the alerts.

The alert store owns the connection and its transaction: it calls :meth:`Outbox.enqueue` inside the transaction
that stores the alert, so an alert and its deliveries are committed together or not at all (no alert is lost
between "stored" and "sent", none is sent that was not stored). ``(alert_id, output)`` is unique and alert ids
are deterministic, so replaying events after a crash does not queue a second delivery.

Transactions: a method commits only what it started itself. Called while the connection is already inside a
transaction (the caller's), it leaves the commit to the caller.

Times are unix seconds (float). Rows are kept after delivery (``delivered``) and after giving up (``failed``,
with the last error) until :meth:`purge` removes old ones.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Iterable
from typing import Final, Literal

import msgspec

Status = Literal["pending", "delivered", "failed"]
STATUSES: Final = ("pending", "delivered", "failed")
# Errors are kept this long in the row (the head of the message says what went wrong).
MAX_ERROR_CHARS: Final = 2000

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY,
        alert_id TEXT NOT NULL,
        output TEXT NOT NULL,
        payload BLOB NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        next_attempt_at REAL NOT NULL,
        last_attempt_at REAL,
        delivered_at REAL,
        last_error TEXT,
        UNIQUE (alert_id, output)
    )""",
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at)",
)
_COLUMNS: Final = (
    "id, alert_id, output, payload, status, attempts, created_at, next_attempt_at, last_attempt_at, "
    "delivered_at, last_error"
)


class OutboxItem(msgspec.Struct, frozen=True):
    """One delivery of one alert to one output."""

    id: int
    alert_id: str
    output: str
    payload: bytes
    status: Status
    attempts: int
    created_at: float
    next_attempt_at: float
    last_attempt_at: float | None = None
    delivered_at: float | None = None
    last_error: str | None = None


def _placeholders(values: Collection[object]) -> str:
    return ",".join("?" * len(values))


class Outbox:
    """Deliveries in the ``outbox`` table of an open SQLite connection (WAL and busy timeout are the owner's)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @staticmethod
    def create(conn: sqlite3.Connection) -> None:
        """Create the table and index if missing."""
        mine = not conn.in_transaction
        for statement in _SCHEMA:
            conn.execute(statement)
        if mine:
            conn.commit()

    def _write(self, sql: str, params: Iterable[object]) -> int:
        mine = not self.conn.in_transaction
        cursor = self.conn.execute(sql, tuple(params))
        if mine:
            self.conn.commit()
        return cursor.rowcount

    def enqueue(self, alert_id: str, output_name: str, payload: bytes, *, now: float | None = None) -> bool:
        """Queue ``payload`` (the alert's JSON) for ``output_name``; False when this alert was already queued
        for it (a replay)."""
        at = time.time() if now is None else now
        return (
            self._write(
                "INSERT OR IGNORE INTO outbox (alert_id, output, payload, created_at, next_attempt_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (alert_id, output_name, payload, at, at),
            )
            == 1
        )

    def due(self, now: float, limit: int = 100, exclude: Collection[int] = ()) -> list[OutboxItem]:
        """Pending deliveries whose time has come, oldest first (``exclude``: ids already being delivered)."""
        skip = f" AND id NOT IN ({_placeholders(exclude)})" if exclude else ""
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?{skip} "
            "ORDER BY next_attempt_at, id LIMIT ?",
            (now, *exclude, limit),
        ).fetchall()
        return [OutboxItem(*row) for row in rows]

    def next_due(self, exclude: Collection[int] = ()) -> float | None:
        """When the next pending delivery (not in ``exclude``) is due, or None when nothing is pending."""
        skip = f" AND id NOT IN ({_placeholders(exclude)})" if exclude else ""
        row = self.conn.execute(
            f"SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'{skip}", tuple(exclude)
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def get(self, item_id: int) -> OutboxItem | None:
        row = self.conn.execute(f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", (item_id,)).fetchone()
        return None if row is None else OutboxItem(*row)

    def mark_delivered(self, item_id: int, *, now: float | None = None) -> None:
        at = time.time() if now is None else now
        self._write(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, last_attempt_at = ?, "
            "delivered_at = ?, last_error = NULL WHERE id = ?",
            (at, at, item_id),
        )

    def mark_failed(self, item_id: int, error: str, next_attempt_at: float | None, *, now: float | None = None) -> None:
        """Record a failed attempt: try again at ``next_attempt_at``, or give up (status ``failed``) when None."""
        at = time.time() if now is None else now
        if next_attempt_at is None:
            self._write(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_attempt_at = ?, "
                "last_error = ? WHERE id = ?",
                (at, error[:MAX_ERROR_CHARS], item_id),
            )
        else:
            self._write(
                "UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ?, next_attempt_at = ?, "
                "last_error = ? WHERE id = ?",
                (at, next_attempt_at, error[:MAX_ERROR_CHARS], item_id),
            )

    def counts(self) -> dict[str, int]:
        """Number of deliveries per status (every status present, 0 when none)."""
        found = dict(self.conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall())
        return {status: int(found.get(status, 0)) for status in STATUSES}

    def failed(self, limit: int = 100) -> list[OutboxItem]:
        """Given-up deliveries, newest first, with their last error (for the health page and the CLI)."""
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE status = 'failed' ORDER BY last_attempt_at DESC, id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [OutboxItem(*row) for row in rows]

    def requeue(self, item_ids: Collection[int] | None = None, *, now: float | None = None) -> int:
        """Give failed deliveries (all, or these ids) a fresh set of attempts, due now; returns how many."""
        at = time.time() if now is None else now
        only = f" AND id IN ({_placeholders(item_ids)})" if item_ids is not None else ""
        if item_ids is not None and not item_ids:
            return 0
        return self._write(
            f"UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ? WHERE status = 'failed'{only}",
            (at, *(item_ids or ())),
        )

    def purge(self, before: float, statuses: tuple[Status, ...] = ("delivered",)) -> int:
        """Delete rows of these statuses that got there (delivered, or last tried) before ``before``; returns how
        many."""
        if not statuses:
            return 0
        return self._write(
            "DELETE FROM outbox WHERE COALESCE(delivered_at, last_attempt_at, created_at) < ? "
            f"AND status IN ({_placeholders(statuses)})",
            (before, *statuses),
        )

    def close(self) -> None:
        """Close the connection (only for an Outbox whose connection was opened for it, e.g. the dispatcher's)."""
        self.conn.close()
