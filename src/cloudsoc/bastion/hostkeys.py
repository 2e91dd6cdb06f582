"""Upstream host keys, trusted on first use per host:port; a different key later is refused."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Literal

import asyncssh
import msgspec

from cloudsoc.storage.sqlite import SqliteStore

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS host_keys (
    endpoint TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, key TEXT NOT NULL, first_seen REAL NOT NULL);
"""
PinResult = Literal["pinned", "new", "mismatch"]


class Pin(msgspec.Struct):
    endpoint: str
    fingerprint: str
    key: str
    first_seen: float


class HostKeyPins(SqliteStore):
    """``check`` answers "pinned" (the known key), "new" (first contact, now pinned) or "mismatch" (refuse)."""

    what = "bastion host-key pins"

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    @staticmethod
    def endpoint(host: str, port: int) -> str:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def check(self, host: str, port: int, key: asyncssh.SSHKey) -> PinResult:
        endpoint = self.endpoint(host, port)
        line = key.export_public_key("openssh").decode().split()
        blob = " ".join(line[:2])  # type and key, without the comment
        fingerprint = key.get_fingerprint("sha256")
        with self.transaction() as conn:
            row = conn.execute("SELECT key, fingerprint FROM host_keys WHERE endpoint = ?", (endpoint,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO host_keys VALUES (?, ?, ?, ?)", (endpoint, fingerprint, blob, time.time()))
                log.info("bastion: pinned the host key of %s on first use (%s)", endpoint, fingerprint)
                return "new"
        if row[0] == blob:
            return "pinned"
        log.error(
            "bastion: host key of %s changed: pinned %s, offered %s; connection refused", endpoint, row[1], fingerprint
        )
        return "mismatch"

    def get(self, host: str, port: int) -> Pin | None:
        row = self.conn.execute("SELECT * FROM host_keys WHERE endpoint = ?", (self.endpoint(host, port),)).fetchone()
        return Pin(*row) if row is not None else None

    def forget(self, host: str, port: int) -> Pin | None:
        """Drop a pin (after a host was rebuilt): the next connection pins the new key. Returns what was pinned."""
        with self.transaction() as conn:
            row = conn.execute("DELETE FROM host_keys WHERE endpoint = ? RETURNING *", (self.endpoint(host, port),))
            dropped = row.fetchone()
        return Pin(*dropped) if dropped is not None else None
