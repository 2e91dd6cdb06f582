"""Commands held for review (JumpServer's 复核): a ``review`` verdict holds the command until someone approves it.

The session that holds a command writes a request here and polls its row; a reviewer decides from any process
(`cloudsoc bastion reviews`, the console), like kill requests in ``sessions.py``. A request nobody decides in
time expires; the user may cancel it with Ctrl-C. Only a pending request can be decided, once, so two reviewers
cannot both act on it, and the user who asked cannot approve their own command.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Final, Literal

from cloudsoc.bastion.layout import BastionLayout
from cloudsoc.errors import BastionError
from cloudsoc.storage.sqlite import SqliteStore

Status = Literal["pending", "approved", "rejected", "expired", "cancelled"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS bastion_reviews (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    user TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    target TEXT NOT NULL,
    system_user TEXT NOT NULL,
    kind TEXT NOT NULL,
    command TEXT NOT NULL,
    rule TEXT NOT NULL,
    command_group TEXT NOT NULL,
    reason TEXT NOT NULL,
    risk TEXT NOT NULL,
    requested REAL NOT NULL,
    expires REAL NOT NULL,
    status TEXT NOT NULL,
    decided_by TEXT,
    decided REAL,
    note TEXT
);
CREATE INDEX IF NOT EXISTS bastion_reviews_status ON bastion_reviews (status, requested);
"""

COLUMNS: Final = [
    "id",
    "session_id",
    "user",
    "source_ip",
    "target",
    "system_user",
    "kind",
    "command",
    "rule",
    "command_group",
    "reason",
    "risk",
    "requested",
    "expires",
    "status",
    "decided_by",
    "decided",
    "note",
]


class ReviewQueue(SqliteStore):
    """The ``bastion_reviews`` table of ``bastion.db``."""

    what = "bastion review queue"

    def __init__(self, home: Path) -> None:
        super().__init__(BastionLayout.of(home).db, _SCHEMA)

    def request(
        self,
        *,
        session_id: str,
        user: str,
        source_ip: str,
        target: str,
        system_user: str,
        kind: str,
        command: str,
        rule: str,
        group: str,
        reason: str,
        risk: str,
        timeout_secs: float,
    ) -> str:
        """Hold a command for review; returns the request's id (short: the user reads it to a reviewer)."""
        review_id = uuid.uuid4().hex[:8]
        now = time.time()
        with self.transaction() as conn:
            conn.execute(
                f"INSERT INTO bastion_reviews ({', '.join(COLUMNS[:15])}) VALUES ({', '.join('?' * 15)})",
                (
                    review_id,
                    session_id,
                    user,
                    source_ip,
                    target,
                    system_user,
                    kind,
                    command,
                    rule,
                    group,
                    reason,
                    risk,
                    now,
                    now + timeout_secs,
                    "pending",
                ),
            )
        return review_id

    def decide(self, review_id: str, *, approve: bool, by: str, note: str = "") -> dict[str, Any]:
        """Approve or reject a pending request; BastionError if it is unknown, decided, expired or the reviewer's
        own."""
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT user, status, expires FROM bastion_reviews WHERE id = ?", (review_id,)
            ).fetchone()
            if row is None:
                raise BastionError(f"no review request {review_id!r} (`cloudsoc bastion reviews list` shows them)")
            user, status, expires = row
            if status == "pending" and expires <= time.time():
                status = "expired"
                conn.execute("UPDATE bastion_reviews SET status = 'expired' WHERE id = ?", (review_id,))
            if status != "pending":
                raise BastionError(f"review request {review_id} is already {status}")
            if user == by:
                raise BastionError(f"review request {review_id} is {by}'s own command: another reviewer must decide")
            conn.execute(
                "UPDATE bastion_reviews SET status = ?, decided_by = ?, decided = ?, note = ? WHERE id = ?",
                ("approved" if approve else "rejected", by, time.time(), note or None, review_id),
            )
        found = self.get(review_id)
        assert found is not None
        return found

    def settle(self, review_id: str, status: Literal["expired", "cancelled"]) -> str:
        """The holding session gives up (timeout, Ctrl-C, session closed) unless a reviewer decided first; returns
        the request's final status."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE bastion_reviews SET status = ? WHERE id = ? AND status = 'pending'", (status, review_id)
            )
            row = conn.execute("SELECT status FROM bastion_reviews WHERE id = ?", (review_id,)).fetchone()
        return str(row[0]) if row else status

    def status(self, review_id: str) -> Status | None:
        row = self.conn.execute("SELECT status FROM bastion_reviews WHERE id = ?", (review_id,)).fetchone()
        return row[0] if row else None

    def get(self, review_id: str) -> dict[str, Any] | None:
        found = self.dicts(f"SELECT {', '.join(COLUMNS)} FROM bastion_reviews WHERE id = ?", (review_id,))
        return found[0] if found else None

    def list(self, *, pending: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first; ``pending``: only those still waiting (and not past their expiry)."""
        where = "WHERE status = 'pending' AND expires > ?" if pending else "WHERE ? IS NOT NULL"
        return self.dicts(
            f"SELECT {', '.join(COLUMNS)} FROM bastion_reviews {where} ORDER BY requested DESC LIMIT ?",
            (time.time(), limit),
        )
