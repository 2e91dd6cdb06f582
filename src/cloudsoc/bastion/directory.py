"""Who a user is: local users in bastion.db (argon2 passwords, OpenSSH public keys, groups) or an LDAP bind."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import time
from pathlib import Path
from typing import Any

import asyncssh
import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from ldap3 import BASE, Connection, Server
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from cloudsoc.config.bastion import LdapConfig
from cloudsoc.errors import BastionError
from cloudsoc.storage.sqlite import SqliteStore

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, password TEXT, disabled INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS user_groups (
    name TEXT NOT NULL REFERENCES users(name), grp TEXT NOT NULL, PRIMARY KEY (name, grp));
CREATE TABLE IF NOT EXISTS user_keys (
    name TEXT NOT NULL REFERENCES users(name), fingerprint TEXT NOT NULL, key TEXT NOT NULL, comment TEXT,
    PRIMARY KEY (name, fingerprint));
"""
# Login names travel in "user+host" SSH names and LDAP DNs: keep them to what every system accepts.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class Identity(msgspec.Struct):
    """An authenticated user: name, bastion groups, and where the answer came from ("local" | "ldap")."""

    user: str
    groups: list[str]
    source: str


class LocalUser(msgspec.Struct):
    name: str
    groups: list[str]
    keys: list[str]
    has_password: bool
    disabled: bool
    created: float


def valid_name(user: str) -> bool:
    return bool(_NAME.match(user))


class LocalDirectory(SqliteStore):
    """Users kept by the bastion itself."""

    what = "bastion user directory"

    def __init__(self, path: Path, hasher: PasswordHasher | None = None) -> None:
        super().__init__(path, _SCHEMA)
        self._hasher = hasher or PasswordHasher()
        # Verified against when the user does not exist, so that "no such user" takes as long as "wrong password";
        # made at the first log-in (a hash costs ~0.2 s), not by every CLI command that opens the directory.
        self._dummy_hash: str | None = None

    # -- log-ins (the same three calls as LdapDirectory's)

    def password(self, user: str, password: str) -> Identity | None:
        row = self.conn.execute("SELECT password, disabled FROM users WHERE name = ?", (user,)).fetchone()
        if row is None or not row[0]:
            if self._dummy_hash is None:
                self._dummy_hash = self._hasher.hash("cloudsoc-no-such-user")
            stored = self._dummy_hash
        else:
            stored = row[0]
        try:
            self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or not row[0] or row[1]:
            return None
        if self._hasher.check_needs_rehash(stored):
            with self.transaction() as conn:
                conn.execute("UPDATE users SET password = ? WHERE name = ?", (self._hasher.hash(password), user))
        return self.identity(user)

    def public_keys(self, user: str) -> list[asyncssh.SSHKey]:
        if self.identity(user) is None:
            return []
        rows = self.conn.execute("SELECT key FROM user_keys WHERE name = ? ORDER BY key", (user,)).fetchall()
        return [asyncssh.import_public_key(r[0]) for r in rows]

    def identity(self, user: str) -> Identity | None:
        """The user if they exist and are not disabled."""
        row = self.conn.execute("SELECT disabled FROM users WHERE name = ?", (user,)).fetchone()
        if row is None or row[0]:
            return None
        return Identity(user=user, groups=self._groups(user), source="local")

    # -- administration (the CLI)

    def exists(self, user: str) -> bool:
        return self.conn.execute("SELECT 1 FROM users WHERE name = ?", (user,)).fetchone() is not None

    def add(self, user: str, *, groups: list[str] | None = None, password: str | None = None) -> None:
        if not valid_name(user):
            raise BastionError(f"{user!r}: a user name is letters, digits and . _ @ - (at most 64)")
        if self.exists(user):
            raise BastionError(f"user {user} exists already")
        hashed = self._hasher.hash(password) if password else None
        with self.transaction() as conn:
            conn.execute("INSERT INTO users VALUES (?, ?, 0, ?)", (user, hashed, time.time()))
            conn.executemany("INSERT OR IGNORE INTO user_groups VALUES (?, ?)", [(user, g) for g in groups or []])

    def _need(self, user: str) -> None:
        if not self.exists(user):
            raise BastionError(f"no bastion user {user}: add it with `cloudsoc bastion users add {user}`")

    def set_password(self, user: str, password: str) -> None:
        self._need(user)
        with self.transaction() as conn:
            conn.execute("UPDATE users SET password = ? WHERE name = ?", (self._hasher.hash(password), user))

    def set_disabled(self, user: str, disabled: bool) -> None:
        self._need(user)
        with self.transaction() as conn:
            conn.execute("UPDATE users SET disabled = ? WHERE name = ?", (int(disabled), user))

    def add_key(self, user: str, openssh: str) -> str:
        """Add an authorized key (one OpenSSH public key line); returns its SHA256 fingerprint."""
        self._need(user)
        try:
            key = asyncssh.import_public_key(openssh.strip())
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise BastionError(f"not an OpenSSH public key: {exc}") from None
        fingerprint = key.get_fingerprint("sha256")
        line = key.export_public_key("openssh").decode().strip()
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO user_keys VALUES (?, ?, ?, ?)", (user, fingerprint, line, key.get_comment())
            )
        return fingerprint

    def _groups(self, user: str) -> list[str]:
        rows = self.conn.execute("SELECT grp FROM user_groups WHERE name = ? ORDER BY grp", (user,)).fetchall()
        return [r[0] for r in rows]

    def users(self) -> list[LocalUser]:
        rows = self.conn.execute("SELECT name, password, disabled, created FROM users ORDER BY name").fetchall()
        result = []
        for name, pw, disabled, created in rows:
            keys = [
                r[0] for r in self.conn.execute("SELECT fingerprint FROM user_keys WHERE name = ? ORDER BY 1", (name,))
            ]
            result.append(LocalUser(name, self._groups(name), keys, bool(pw), bool(disabled), created))
        return result


class LdapDirectory:
    """Users in LDAP: the bastion binds as the user (so LDAP checks the password), then looks up their groups."""

    def __init__(self, cfg: LdapConfig) -> None:
        self.cfg = cfg

    def password(self, user: str, password: str) -> Identity | None:
        # An empty password is an "unauthenticated bind" that LDAP servers accept as anonymous: never a log-in.
        # Any printable name is let through to LDAP: escaping, not a character list, is what stops injection.
        if not password or not self._name_ok(user):
            return None
        dn = self._dn(user)
        conn: Connection | None = None
        try:
            conn = self._bind(dn, password)
            if not conn.bound:
                return None
            groups = self._groups(conn, user, dn)
        except LDAPException as exc:
            log.error("bastion: LDAP server %s cannot be used (%s): log-in of %s refused", self.cfg.url, exc, user)
            return None
        finally:
            _unbind(conn)
        return Identity(user=user, groups=groups, source="ldap")

    def _bind(self, dn: str, password: str) -> Connection:
        """A connection that tried to bind as ``dn`` (``.bound`` says whether it did); LDAPException when the
        server cannot be used."""
        # ldap3 packs the receive timeout into a C struct: whole seconds only.
        timeout = max(1, math.ceil(self.cfg.timeout_secs))
        # A Server per bind: ldap3 remembers addresses that failed, and a restarted LDAP must be tried afresh.
        server = Server(self.cfg.url, connect_timeout=self.cfg.timeout_secs)
        conn = Connection(server, user=dn, password=password, receive_timeout=timeout, raise_exceptions=False)
        conn.bind()
        return conn

    def _groups(self, conn: Connection, user: str, dn: str) -> list[str]:
        if not self.cfg.group_base:
            return []
        query = self.cfg.group_filter.format(dn=escape_filter_chars(dn), user=escape_filter_chars(user))
        if not conn.search(self.cfg.group_base, query, attributes=[self.cfg.group_attr]):
            return []
        found: set[str] = set()
        for entry in conn.response or []:
            for name in (entry.get("attributes") or {}).get(self.cfg.group_attr) or []:
                mapped = self.cfg.groups.get(str(name))
                if mapped:
                    found.add(mapped)
        return sorted(found)

    def _name_ok(self, user: str) -> bool:
        return bool(user) and len(user) <= 256 and user.isprintable()

    def _dn(self, user: str) -> str:
        return self.cfg.user_dn.format(user=escape_rdn(user))

    def _service(self) -> Connection | None:
        """A connection bound as the service account (``bind_dn``), or None (not configured, or it failed)."""
        if not self.cfg.bind_dn:
            return None
        password = os.environ.get(self.cfg.bind_password_env, "")
        if not password:
            log.error(
                "bastion: LDAP key log-ins need the service account's password in $%s", self.cfg.bind_password_env
            )
            return None
        try:
            conn = self._bind(self.cfg.bind_dn, password)
            if conn.bound:
                return conn
            log.error(
                "bastion: LDAP service account %s cannot bind: %s", self.cfg.bind_dn, conn.result.get("description")
            )
            _unbind(conn)
        except LDAPException as exc:
            log.error("bastion: LDAP server %s cannot be used (%s)", self.cfg.url, exc)
        return None

    def _entry(self, conn: Connection, dn: str) -> dict[str, Any] | None:
        if not conn.search(dn, "(objectClass=*)", search_scope=BASE, attributes=[self.cfg.key_attr]):
            return None
        found = conn.response or []
        return dict(found[0].get("attributes") or {}) if found else None

    def public_keys(self, user: str) -> list[asyncssh.SSHKey]:
        """The user's keys from their entry (``key_attr``, read with the service account); none without one."""
        if not self._name_ok(user):
            return []
        conn = self._service()
        if conn is None:
            return []
        try:
            entry = self._entry(conn, self._dn(user))
        except LDAPException as exc:
            log.error("bastion: LDAP server %s cannot be used (%s): keys of %s not read", self.cfg.url, exc, user)
            return []
        finally:
            _unbind(conn)
        keys: list[asyncssh.SSHKey] = []
        values = (entry or {}).get(self.cfg.key_attr) or []
        for value in values if isinstance(values, list) else [values]:
            line = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
            try:
                keys.append(asyncssh.import_public_key(line.strip()))
            except (asyncssh.KeyImportError, ValueError):
                log.warning(
                    "bastion: LDAP entry of %s holds a %s value that is not an OpenSSH key", user, self.cfg.key_attr
                )
        return keys

    def identity(self, user: str) -> Identity | None:
        """Who a user is after a key log-in: their entry must exist; groups as for a password log-in."""
        if not self._name_ok(user):
            return None
        conn = self._service()
        if conn is None:
            return None
        dn = self._dn(user)
        try:
            if self._entry(conn, dn) is None:
                return None
            groups = self._groups(conn, user, dn)
        except LDAPException as exc:
            log.error("bastion: LDAP server %s cannot be used (%s): log-in of %s refused", self.cfg.url, exc, user)
            return None
        finally:
            _unbind(conn)
        return Identity(user=user, groups=groups, source="ldap")


def _unbind(conn: Connection | None) -> None:
    if conn is not None:
        with contextlib.suppress(LDAPException, OSError):
            conn.unbind()
