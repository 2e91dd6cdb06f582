"""TOTP second factor: secrets sealed with the vault key, enrolment URI and terminal QR, replay refusal, grace.

Grace decision: only public-key log-ins get grace, keyed by (user, address, key fingerprint). The key is
something the user has, so a second session within the grace still needs two factors' worth of proof. A
password-only log-in gets no grace: an office or VPN shares one address among many people, and a password
seen over a shoulder would then open sessions from that address without the code."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pyotp
import segno

from cloudsoc.bastion.vault import Vault
from cloudsoc.storage.sqlite import SqliteStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mfa_secrets (
    user TEXT PRIMARY KEY, secret BLOB NOT NULL, enrolled REAL NOT NULL, last_step INTEGER NOT NULL DEFAULT -1);
CREATE TABLE IF NOT EXISTS mfa_grace (
    user TEXT NOT NULL, ip TEXT NOT NULL, fingerprint TEXT NOT NULL, until REAL NOT NULL,
    PRIMARY KEY (user, ip, fingerprint));
"""
ISSUER = "cloudsoc-bastion"
Clock = Callable[[], float]


class Enrolment(msgspec.Struct):
    user: str
    uri: str

    def qr(self) -> str:
        """The URI as a QR code drawn with half blocks, for a terminal."""
        buf = io.StringIO()
        segno.make(self.uri, error="m").terminal(out=buf, compact=True)
        return buf.getvalue()


class Totp(SqliteStore):
    """RFC 6238 codes (30 s, 6 digits); a code (or an older one) already used is refused."""

    what = "bastion MFA store"

    def __init__(self, path: Path, vault: Vault, clock: Clock = time.time) -> None:
        super().__init__(path, _SCHEMA)
        self._vault = vault
        self._clock = clock

    def enrol(self, user: str) -> Enrolment:
        """A new secret for ``user`` (replacing any): the URI to scan."""
        secret = pyotp.random_base32()
        sealed = self._vault.seal(secret.encode(), f"totp\x00{user}")
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO mfa_secrets VALUES (?, ?, ?, -1)", (user, sealed, self._clock()))
        uri = pyotp.TOTP(secret).provisioning_uri(name=user, issuer_name=ISSUER)
        return Enrolment(user=user, uri=uri)

    def enrolled(self, user: str) -> bool:
        return self.conn.execute("SELECT 1 FROM mfa_secrets WHERE user = ?", (user,)).fetchone() is not None

    def reset(self, user: str) -> bool:
        with self.transaction() as conn:
            cur = conn.execute("DELETE FROM mfa_secrets WHERE user = ?", (user,))
            conn.execute("DELETE FROM mfa_grace WHERE user = ?", (user,))
        return cur.rowcount > 0

    def verify(self, user: str, code: str) -> bool:
        """Whether ``code`` is ``user``'s current code (one step either side), never seen before."""
        code = code.strip()
        if not (code.isdigit() and len(code) == 6):
            return False
        row = self.conn.execute("SELECT secret, last_step FROM mfa_secrets WHERE user = ?", (user,)).fetchone()
        if row is None:
            return False
        totp = pyotp.TOTP(self._vault.unseal(row[0], f"totp\x00{user}").decode())
        now_step = int(self._clock()) // totp.interval
        # valid_window=1 by hand: pyotp's verify cannot say which step matched, and the step is what stops replay.
        for step in (now_step - 1, now_step, now_step + 1):
            if pyotp.utils.strings_equal(totp.generate_otp(step), code):
                with self.transaction() as conn:
                    # Compare-and-set: of two sessions racing with one code, one wins.
                    cur = conn.execute(
                        "UPDATE mfa_secrets SET last_step = ? WHERE user = ? AND last_step < ?", (step, user, step)
                    )
                return cur.rowcount == 1
        return False


class MfaGrace:
    """After a good code, new sessions from the same (user, address, key) skip the code for a while."""

    def __init__(self, store: Totp, minutes: float, clock: Clock = time.time) -> None:
        self._store = store
        self.minutes = minutes
        self._clock = clock

    def start(self, user: str, ip: str, fingerprint: str | None) -> None:
        if not fingerprint or self.minutes <= 0:
            return  # password log-ins get no grace (module docstring)
        now = self._clock()
        with self._store.transaction() as conn:
            conn.execute("DELETE FROM mfa_grace WHERE until <= ?", (now,))
            conn.execute(
                "INSERT OR REPLACE INTO mfa_grace VALUES (?, ?, ?, ?)", (user, ip, fingerprint, now + self.minutes * 60)
            )

    def active(self, user: str, ip: str, fingerprint: str | None) -> bool:
        if not fingerprint or self.minutes <= 0:
            return False
        row = self._store.conn.execute(
            "SELECT until FROM mfa_grace WHERE user = ? AND ip = ? AND fingerprint = ?", (user, ip, fingerprint)
        ).fetchone()
        return row is not None and row[0] > self._clock()
