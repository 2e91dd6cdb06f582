"""The alert store: alerts, their triage history, analyst suppressions, rule state and the output outbox.

SQLite, not the DuckDB event store: triage happens while the daemon is writing (`cloudsoc alerts ack` in another
terminal, the console), and DuckDB allows one writing process per file. SQLite in WAL mode lets each process take
short write transactions in turn. Alert volumes are small (thousands, not billions), so SQLite is plenty.

Alert ids are deterministic (rule, group, first event), so storing the same alert twice (a replay after a crash)
keeps the first and its triage.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec
import orjson

from cloudsoc.detect.alert import Alert, Severity, Status
from cloudsoc.errors import CloudsocError, StorageError
from cloudsoc.outputs.store import Outbox
from cloudsoc.storage.sqlite import SqliteStore

ALERTS_FILE: Final = "alerts.db"

# Which triage moves are allowed: anything may be reopened to new; closed alerts are not acknowledged again.
_TRANSITIONS: Final = {
    Status.NEW: {Status.ACKNOWLEDGED, Status.RESOLVED, Status.FALSE_POSITIVE},
    Status.ACKNOWLEDGED: {Status.NEW, Status.RESOLVED, Status.FALSE_POSITIVE},
    Status.RESOLVED: {Status.NEW},
    Status.FALSE_POSITIVE: {Status.NEW},
}

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    severity TEXT NOT NULL,
    severity_rank INTEGER NOT NULL,
    status TEXT NOT NULL,
    assignee TEXT,
    group_key TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_time TEXT NOT NULL,
    last_time TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    doc BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_created ON alerts (created);
CREATE INDEX IF NOT EXISTS alerts_status ON alerts (status, severity_rank);
CREATE INDEX IF NOT EXISTS alerts_rule ON alerts (rule_id);
CREATE TABLE IF NOT EXISTS alert_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    old TEXT,
    new TEXT,
    comment TEXT
);
CREATE INDEX IF NOT EXISTS alert_history_alert ON alert_history (alert_id, seq);
CREATE TABLE IF NOT EXISTS suppressions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule TEXT NOT NULL,
    conditions BLOB NOT NULL,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created TEXT NOT NULL,
    expires TEXT,
    hits INTEGER NOT NULL DEFAULT 0,
    removed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS rule_settings (
    rule_id TEXT PRIMARY KEY,
    enabled INTEGER NOT NULL,
    actor TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_state (
    rule_id TEXT PRIMARY KEY,
    state BLOB NOT NULL,
    updated TEXT NOT NULL
);
"""


def _filters(
    status: Sequence[Status],
    min_severity: Severity | None,
    rule: str | None,
    assignee: str | None,
    since: datetime | None,
) -> tuple[str, list[Any]]:
    where: list[str] = ["1=1"]
    params: list[Any] = []
    if status:
        where.append(f"status IN ({','.join('?' * len(status))})")
        params.extend(s.value for s in status)
    if min_severity is not None:
        where.append("severity_rank >= ?")
        params.append(min_severity.rank)
    if rule:
        where.append("rule_id GLOB ?")
        params.append(rule)
    if assignee:
        where.append("assignee = ?")
        params.append(assignee)
    if since is not None:
        where.append("created >= ?")
        params.append(since.astimezone(UTC).isoformat(timespec="seconds"))
    return " AND ".join(where), params


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class StoredAlert(msgspec.Struct, kw_only=True):
    """An alert as stored, with its triage state."""

    alert: Alert
    status: Status
    assignee: str | None
    updated: str


class HistoryEntry(msgspec.Struct, kw_only=True):
    at: str
    actor: str
    action: str
    old: str | None = None
    new: str | None = None
    comment: str | None = None


class SuppressionRow(msgspec.Struct, kw_only=True):
    id: int
    rule: str
    conditions: dict[str, str]
    reason: str
    created_by: str
    created: str
    expires: str | None
    hits: int


class AlertStore(SqliteStore):
    """Alerts and triage in ``<home>/alerts.db``; safe to open from several processes at once."""

    what = "alert store"

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)
        try:
            Outbox.create(self.conn)
        except sqlite3.Error as exc:
            raise StorageError(f"{path}: cannot open the alert store's outbox: {exc}") from None
        self._decode = msgspec.json.Decoder(Alert).decode
        self._encode = msgspec.json.Encoder().encode

    def outbox(self) -> Outbox:
        """An outbox on a connection of its own (the dispatcher uses it from its own thread)."""
        return Outbox(self.connect())

    # -- alerts -----------------------------------------------------------------------------------------------

    def add(self, conn: sqlite3.Connection, alerts: Iterable[Alert]) -> list[Alert]:
        """Insert alerts inside an open transaction; returns those that were new (a replayed id is kept once)."""
        added = []
        now = _now()
        for a in alerts:
            cur = conn.execute(
                "INSERT OR IGNORE INTO alerts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    a.id,
                    a.rule_id,
                    a.severity.value,
                    a.severity.rank,
                    a.status.value,
                    a.assignee,
                    a.group_key,
                    a.count,
                    a.first_time,
                    a.last_time,
                    a.created or now,
                    now,
                    self._encode(a),
                ),
            )
            if cur.rowcount:
                added.append(a)
                conn.execute(
                    "INSERT INTO alert_history (alert_id, at, actor, action, new) VALUES (?,?,?,?,?)",
                    (a.id, now, "cloudsoc", "raised", Status.NEW.value),
                )
        return added

    def get(self, alert_id: str) -> StoredAlert | None:
        rows = self.conn.execute(
            "SELECT doc, status, assignee, updated FROM alerts WHERE id = ? OR id LIKE ? LIMIT 2",
            (alert_id, alert_id + "%"),
        ).fetchall()
        if len(rows) > 1 and not any(r for r in rows if self._decode(r[0]).id == alert_id):
            raise CloudsocError(f"alert id prefix {alert_id!r} is ambiguous; give more characters")
        return self._row(rows[0]) if rows else None

    def query(
        self,
        *,
        status: Sequence[Status] = (),
        min_severity: Severity | None = None,
        rule: str | None = None,
        assignee: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredAlert]:
        where, params = _filters(status, min_severity, rule, assignee, since)
        sql = (
            f"SELECT doc, status, assignee, updated FROM alerts WHERE {where} "
            "ORDER BY created DESC, first_time DESC, id LIMIT ? OFFSET ?"
        )
        return [self._row(r) for r in self.conn.execute(sql, [*params, limit, offset]).fetchall()]

    def count(
        self,
        *,
        status: Sequence[Status] = (),
        min_severity: Severity | None = None,
        rule: str | None = None,
        assignee: str | None = None,
        since: datetime | None = None,
    ) -> int:
        """How many alerts :meth:`query` would list without a limit (for paging)."""
        where, params = _filters(status, min_severity, rule, assignee, since)
        return int(self.conn.execute(f"SELECT count(*) FROM alerts WHERE {where}", params).fetchone()[0])

    def last_seq(self) -> int:
        """The storage sequence number of the newest alert (SQLite's rowid grows with every insert)."""
        return int(self.conn.execute("SELECT coalesce(max(rowid), 0) FROM alerts").fetchone()[0])

    def added_after(self, seq: int, *, limit: int = 100) -> list[tuple[int, StoredAlert]]:
        """Alerts stored after sequence number ``seq``, oldest first, with their numbers (live streams poll this)."""
        rows = self.conn.execute(
            "SELECT rowid, doc, status, assignee, updated FROM alerts WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (seq, limit),
        ).fetchall()
        return [(int(r[0]), self._row(r[1:])) for r in rows]

    def rule_hits(self) -> dict[str, tuple[int, int, str]]:
        """Per rule id: (alerts, open alerts, the newest alert's creation time)."""
        rows = self.conn.execute(
            "SELECT rule_id, count(*), sum(status IN ('new', 'acknowledged')), max(created) FROM alerts GROUP BY 1"
        ).fetchall()
        return {str(r[0]): (int(r[1]), int(r[2] or 0), str(r[3] or "")) for r in rows}

    def counts(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT status, count(*) FROM alerts GROUP BY status").fetchall()
        return {str(s): int(n) for s, n in rows}

    def _row(self, row: tuple[Any, ...]) -> StoredAlert:
        alert = self._decode(row[0])
        alert.status = Status(row[1])
        alert.assignee = row[2]
        return StoredAlert(alert=alert, status=alert.status, assignee=alert.assignee, updated=row[3])

    # -- triage -----------------------------------------------------------------------------------------------

    def set_status(self, alert_id: str, status: Status, *, actor: str, comment: str | None = None) -> StoredAlert:
        current = self._require(alert_id)
        if status != current.status and status not in _TRANSITIONS[current.status]:
            raise CloudsocError(
                f"alert {current.alert.id} is {current.status.value}; it cannot become {status.value} "
                f"(reopen it first: status new)"
            )
        with self.transaction() as conn:
            conn.execute(
                "UPDATE alerts SET status = ?, updated = ? WHERE id = ?", (status.value, _now(), current.alert.id)
            )
            self._history(conn, current.alert.id, actor, "status", current.status.value, status.value, comment)
        return self._require(current.alert.id)

    def assign(self, alert_id: str, assignee: str | None, *, actor: str) -> StoredAlert:
        current = self._require(alert_id)
        with self.transaction() as conn:
            conn.execute(
                "UPDATE alerts SET assignee = ?, updated = ? WHERE id = ?", (assignee, _now(), current.alert.id)
            )
            self._history(conn, current.alert.id, actor, "assign", current.assignee, assignee, None)
        return self._require(current.alert.id)

    def comment(self, alert_id: str, text: str, *, actor: str) -> StoredAlert:
        if not text.strip():
            raise CloudsocError("a comment needs some text")
        current = self._require(alert_id)
        with self.transaction() as conn:
            conn.execute("UPDATE alerts SET updated = ? WHERE id = ?", (_now(), current.alert.id))
            self._history(conn, current.alert.id, actor, "comment", None, None, text)
        return self._require(current.alert.id)

    def history(self, alert_id: str) -> list[HistoryEntry]:
        rows = self.conn.execute(
            "SELECT at, actor, action, old, new, comment FROM alert_history WHERE alert_id = ? ORDER BY seq",
            (alert_id,),
        ).fetchall()
        return [HistoryEntry(at=r[0], actor=r[1], action=r[2], old=r[3], new=r[4], comment=r[5]) for r in rows]

    def _history(
        self, conn: sqlite3.Connection, alert_id: str, actor: str, action: str, old: Any, new: Any, comment: Any
    ) -> None:
        conn.execute(
            "INSERT INTO alert_history (alert_id, at, actor, action, old, new, comment) VALUES (?,?,?,?,?,?,?)",
            (alert_id, _now(), actor, action, old, new, comment),
        )

    def _require(self, alert_id: str) -> StoredAlert:
        found = self.get(alert_id)
        if found is None:
            raise CloudsocError(f"no alert {alert_id!r}; `cloudsoc alerts list` shows the ids")
        return found

    # -- suppressions -----------------------------------------------------------------------------------------

    def add_suppression(
        self, rule: str, conditions: dict[str, str], reason: str, *, actor: str, expires: datetime | None
    ) -> int:
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO suppressions (rule, conditions, reason, created_by, created, expires) "
                "VALUES (?,?,?,?,?,?)",
                (
                    rule,
                    orjson.dumps(conditions),
                    reason,
                    actor,
                    _now(),
                    expires.astimezone(UTC).isoformat(timespec="seconds") if expires else None,
                ),
            )
            return int(cur.lastrowid or 0)

    def remove_suppression(self, suppression_id: int) -> bool:
        with self.transaction() as conn:
            return bool(conn.execute("UPDATE suppressions SET removed = 1 WHERE id = ?", (suppression_id,)).rowcount)

    def suppressions(self, *, active_at: datetime | None = None) -> list[SuppressionRow]:
        sql = (
            "SELECT id, rule, conditions, reason, created_by, created, expires, hits FROM suppressions WHERE removed=0"
        )
        params: list[Any] = []
        if active_at is not None:
            sql += " AND (expires IS NULL OR expires > ?)"
            params.append(active_at.astimezone(UTC).isoformat(timespec="seconds"))
        rows = self.conn.execute(sql + " ORDER BY id", params).fetchall()
        return [
            SuppressionRow(
                id=r[0],
                rule=r[1],
                conditions=orjson.loads(r[2]),
                reason=r[3],
                created_by=r[4],
                created=r[5],
                expires=r[6],
                hits=r[7],
            )
            for r in rows
        ]

    def count_suppressed(self, conn: sqlite3.Connection, hits: dict[int, int]) -> None:
        for sid, n in hits.items():
            conn.execute("UPDATE suppressions SET hits = hits + ? WHERE id = ?", (n, sid))

    # -- rule settings (the console's enable / disable) ----------------------------------------------------------

    def set_rule_enabled(self, rule_id: str, enabled: bool, *, actor: str) -> None:
        """Turn a rule on or off for every process of this home (the daemon re-reads this with suppressions)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO rule_settings VALUES (?,?,?,?) ON CONFLICT (rule_id) DO UPDATE SET "
                "enabled=excluded.enabled, actor=excluded.actor, updated=excluded.updated",
                (rule_id, int(enabled), actor, _now()),
            )

    def rule_settings(self) -> dict[str, bool]:
        """Rule id -> enabled, for the rules switched in the console (they win over `detection.disabled`)."""
        return {str(r[0]): bool(r[1]) for r in self.conn.execute("SELECT rule_id, enabled FROM rule_settings")}

    # -- rule state -------------------------------------------------------------------------------------------

    def save_state(self, conn: sqlite3.Connection, states: dict[str, bytes]) -> None:
        now = _now()
        conn.executemany(
            "INSERT INTO rule_state VALUES (?,?,?) ON CONFLICT (rule_id) DO UPDATE SET state=excluded.state, "
            "updated=excluded.updated",
            [(rid, state, now) for rid, state in states.items()],
        )

    def load_state(self) -> dict[str, bytes]:
        return {str(r[0]): bytes(r[1]) for r in self.conn.execute("SELECT rule_id, state FROM rule_state").fetchall()}
