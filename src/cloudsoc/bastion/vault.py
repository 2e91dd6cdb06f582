"""Upstream credentials, encrypted: AES-GCM with a key the bastion reads from the environment or a 0600 file.

The key never touches bastion.db, a log line or an error message. Each sealed value is bound (as associated
data) to the row it belongs to, so a ciphertext copied onto another host's row does not decrypt."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
import time
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cloudsoc.errors import VaultError
from cloudsoc.storage.sqlite import SqliteStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vault_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS vault_credentials (
    host TEXT NOT NULL, system_user TEXT NOT NULL, password BLOB, private_key BLOB, updated REAL NOT NULL,
    PRIMARY KEY (host, system_user));
"""
_CHECK = b"cloudsoc-vault-key-check"
_NONCE = 12


class Credential(msgspec.Struct):
    """What the bastion logs in upstream with. Its repr hides both values: it may end up in a traceback."""

    password: str | None
    private_key: str | None

    def __repr__(self) -> str:
        return (
            f"Credential(password={'<set>' if self.password else None}, "
            f"private_key={'<set>' if self.private_key else None})"
        )

    __str__ = __repr__


class CredentialInfo(msgspec.Struct):
    """A vault entry without its secrets (for listings)."""

    host: str
    system_user: str
    password: bool
    private_key: bool
    updated: float


def new_key() -> str:
    """A fresh vault key, base64 of 32 random bytes."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


class Vault(SqliteStore):
    """Credentials per (host or ``*``, system user); the key is read on first use, so a vault never used needs none."""

    what = "bastion vault"

    def __init__(self, path: Path, *, key_env: str = "CLOUDSOC_VAULT_KEY", key_file: Path | None = None) -> None:
        super().__init__(path, _SCHEMA)
        self.key_env = key_env
        self.key_file = key_file
        self._aead: AESGCM | None = None

    def __repr__(self) -> str:
        return f"Vault({self.path})"

    def _how(self) -> str:
        return f"set {self.key_env} (make one with `cloudsoc bastion vault keygen`) or bastion.vault_key_file"

    def _read_key(self) -> bytes:
        raw = os.environ.get(self.key_env)
        source = f"the environment variable {self.key_env}"
        if not raw and self.key_file is not None:
            source = f"the key file {self.key_file}"
            try:
                mode = self.key_file.stat().st_mode
            except OSError as exc:
                raise VaultError(f"{source} cannot be read ({exc.strerror}): {self._how()}") from None
            # Group or other access to the key is access to every credential: refuse rather than warn.
            if stat.S_IMODE(mode) & 0o077:
                raise VaultError(f"{source} must be readable by its owner only: chmod 600 {self.key_file}")
            raw = self.key_file.read_text().strip()
        if not raw:
            raise VaultError(f"the vault has no key: {self._how()}")
        try:
            key = base64.b64decode(raw.strip(), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            raise VaultError(f"{source} does not hold a vault key (base64 of 32 bytes): {self._how()}")
        return key

    def _cipher(self) -> AESGCM:
        if self._aead is not None:
            return self._aead
        aead = AESGCM(self._read_key())
        row = self.conn.execute("SELECT value FROM vault_meta WHERE name = 'check'").fetchone()
        if row is None:
            with self.transaction() as conn:
                nonce = secrets.token_bytes(_NONCE)
                check = nonce + aead.encrypt(nonce, _CHECK, b"check")
                conn.execute("INSERT OR IGNORE INTO vault_meta VALUES ('check', ?)", (check,))
            row = self.conn.execute("SELECT value FROM vault_meta WHERE name = 'check'").fetchone()
        try:
            aead.decrypt(row[0][:_NONCE], row[0][_NONCE:], b"check")
        except InvalidTag:
            raise VaultError(
                f"the vault key in {self.key_env} (or bastion.vault_key_file) is not the one this vault was made "
                f"with ({self.path}): set the right key"
            ) from None
        self._aead = aead
        return aead

    def seal(self, data: bytes, context: str) -> bytes:
        """``data`` encrypted, bound to ``context`` (what row it belongs to)."""
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._cipher().encrypt(nonce, data, context.encode())

    def unseal(self, blob: bytes, context: str) -> bytes:
        try:
            return self._cipher().decrypt(blob[:_NONCE], blob[_NONCE:], context.encode())
        except InvalidTag:
            raise VaultError(f"a vault entry ({context}) does not decrypt: it was altered or moved") from None

    def set(self, host: str, system_user: str, *, password: str | None = None, private_key: str | None = None) -> None:
        """Store (replace) the credential of ``system_user`` on ``host`` (``*``: every host without its own)."""
        if password is None and private_key is None:
            raise VaultError(f"{host} {system_user}: give a password or a private key")
        ctx = f"{host}\x00{system_user}"
        pw = self.seal(password.encode(), ctx + "\x00password") if password is not None else None
        pk = self.seal(private_key.encode(), ctx + "\x00private_key") if private_key is not None else None
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO vault_credentials VALUES (?, ?, ?, ?, ?)",
                (host, system_user, pw, pk, time.time()),
            )

    def get(self, host: str, system_user: str) -> Credential:
        """The credential for ``system_user`` on ``host``, else the ``*`` one; VaultError when there is none."""
        for h in (host, "*"):
            row = self.conn.execute(
                "SELECT password, private_key FROM vault_credentials WHERE host = ? AND system_user = ?",
                (h, system_user),
            ).fetchone()
            if row is not None:
                ctx = f"{h}\x00{system_user}"
                pw = self.unseal(row[0], ctx + "\x00password").decode() if row[0] is not None else None
                pk = self.unseal(row[1], ctx + "\x00private_key").decode() if row[1] is not None else None
                return Credential(password=pw, private_key=pk)
        raise VaultError(
            f"no credential for {system_user}@{host} in the vault: "
            f"cloudsoc bastion vault set {host} {system_user} --key-file FILE (or '*' for every host)"
        )

    def delete(self, host: str, system_user: str) -> bool:
        with self.transaction() as conn:
            cur = conn.execute("DELETE FROM vault_credentials WHERE host = ? AND system_user = ?", (host, system_user))
        return cur.rowcount > 0

    def entries(self) -> list[CredentialInfo]:
        rows = self.conn.execute(
            "SELECT host, system_user, password IS NOT NULL, private_key IS NOT NULL, updated "
            "FROM vault_credentials ORDER BY host, system_user"
        ).fetchall()
        return [CredentialInfo(h, u, bool(p), bool(k), t) for h, u, p, k, t in rows]
