"""The console's accounts: users, login sessions, API tokens and the audit log, in ``<home>/console.db``.

Secrets never rest in clear: passwords are argon2 hashes, session ids and token secrets are kept as SHA-256
(they are long random values, so a fast hash is enough and lets a request be checked with one index look-up).
The console server and the ``cloudsoc users``/``tokens`` commands use the file at the same time (WAL).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cloudsoc.api.permissions import Permission, Role
from cloudsoc.errors import ConsoleError
from cloudsoc.storage.sqlite import SqliteStore

CONSOLE_FILE: Final = "console.db"
TOKEN_PREFIX: Final = "cst_"
MIN_PASSWORD_CHARS: Final = 10
# Scripts get read/triage/ingest-style scopes; an admin token would turn one leaked secret into new accounts.
TOKEN_SCOPES: Final = frozenset(Permission) - {Permission.ADMIN}
# Touching last_seen on every request would make each page view a write transaction.
_TOUCH_SECS: Final = 60

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
  name TEXT PRIMARY KEY,
  hash TEXT NOT NULL,
  role TEXT NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0,
  failures INTEGER NOT NULL DEFAULT 0,
  locked_until TEXT,
  created TEXT NOT NULL,
  last_login TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
  id_hash TEXT PRIMARY KEY,
  user TEXT NOT NULL REFERENCES users(name),
  csrf_token TEXT NOT NULL,
  created TEXT NOT NULL,
  last_seen TEXT NOT NULL,
  expires TEXT NOT NULL,
  ip TEXT NOT NULL,
  user_agent TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user);
CREATE TABLE IF NOT EXISTS api_tokens (
  id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  user TEXT NOT NULL REFERENCES users(name),
  name TEXT NOT NULL,
  scopes TEXT NOT NULL,
  created TEXT NOT NULL,
  last_used TEXT,
  revoked TEXT
);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time TEXT NOT NULL,
  user TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  ip TEXT NOT NULL,
  outcome TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_time ON audit(time);
"""


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds")


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_name(name: str) -> str:
    """A user name: letters, digits and ``._@-``, up to 64 characters (it shows in logs, URLs and pages)."""
    if not _NAME.fullmatch(name):
        raise ConsoleError(
            f"user name {name[:64]!r}: use 1-64 letters, digits, '.', '_', '@' or '-' (starting with a letter or digit)"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise ConsoleError(f"password: use at least {MIN_PASSWORD_CHARS} characters")
    return password


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    disabled: bool
    failures: int
    locked_until: str | None
    created: str
    last_login: str | None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and datetime.fromisoformat(self.locked_until) > now

    def export(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role.value,
            "disabled": self.disabled,
            "failures": self.failures,
            "locked_until": self.locked_until,
            "created": self.created,
            "last_login": self.last_login,
        }


@dataclass(frozen=True, slots=True)
class Session:
    id_hash: str
    user: str
    csrf_token: str
    created: str
    last_seen: str
    expires: str
    ip: str
    user_agent: str


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: str
    user: str
    name: str
    scopes: frozenset[Permission]
    created: str
    last_used: str | None
    revoked: str | None

    def export(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "name": self.name,
            "scopes": sorted(s.value for s in self.scopes),
            "created": self.created,
            "last_used": self.last_used,
            "revoked": self.revoked,
        }


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    time: str
    user: str
    action: str
    target: str
    ip: str
    outcome: str
    detail: dict[str, Any]

    def export(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "user": self.user,
            "action": self.action,
            "target": self.target,
            "ip": self.ip,
            "outcome": self.outcome,
            "detail": self.detail,
        }


def _user(row: sqlite3.Row | tuple[Any, ...]) -> User:
    return User(row[0], Role(row[1]), bool(row[2]), row[3], row[4], row[5], row[6])


def _token(row: tuple[Any, ...]) -> ApiToken:
    return ApiToken(
        row[0], row[1], row[2], frozenset(Permission(s) for s in orjson.loads(row[3])), row[4], row[5], row[6]
    )


_USER_COLS = "name, role, disabled, failures, locked_until, created, last_login"
_TOKEN_COLS = "id, user, name, scopes, created, last_used, revoked"


class ConsoleStore(SqliteStore):
    """Users, sessions, API tokens and the audit log of the console."""

    what = "console account store"

    def __init__(
        self,
        path: Path,
        *,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(path, _SCHEMA)
        # The argon2-cffi defaults (~230 ms per hash); tests pass cheaper parameters.
        self.hasher = hasher or PasswordHasher()
        self.clock = clock or (lambda: datetime.now(UTC))
        self._dummy_hash: str | None = None

    # -- users -------------------------------------------------------------------------------------------------

    def has_users(self) -> bool:
        return self.conn.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def add_user(self, name: str, password: str, role: Role) -> User:
        check_name(name)
        digest = self.hasher.hash(check_password(password))
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise ConsoleError(f"user {name!r} already exists", status=409)
            conn.execute(
                "INSERT INTO users (name, hash, role, created) VALUES (?, ?, ?, ?)",
                (name, digest, role.value, _iso(self.clock())),
            )
        return self.user(name)

    def ensure_admin(self) -> str | None:
        """First start: with no user at all, create ``admin`` with a random password and return it (else None)."""
        if self.has_users():
            return None
        password = secrets.token_urlsafe(18)
        try:
            self.add_user("admin", password, Role.ADMIN)
        except ConsoleError:  # another process created it between the check and the insert
            return None
        return password

    def get_user(self, name: str) -> User | None:
        row = self.conn.execute(f"SELECT {_USER_COLS} FROM users WHERE name = ?", (name,)).fetchone()
        return _user(row) if row else None

    def user(self, name: str) -> User:
        found = self.get_user(name)
        if found is None:
            raise ConsoleError(f"no user {name!r}", status=404)
        return found

    def users(self, *, limit: int = 1000, offset: int = 0) -> tuple[list[User], int]:
        rows = self.conn.execute(
            f"SELECT {_USER_COLS} FROM users ORDER BY name LIMIT ? OFFSET ?", (limit, offset)
        ).fetchall()
        total = self.conn.execute("SELECT count(*) FROM users").fetchone()[0]
        return [_user(r) for r in rows], total

    def set_password(self, name: str, password: str) -> None:
        digest = self.hasher.hash(check_password(password))
        self._update(name, "hash = ?, failures = 0, locked_until = NULL", digest)
        self.end_sessions(name)

    def set_role(self, name: str, role: Role) -> None:
        with self.transaction() as conn:
            if role is not Role.ADMIN:
                self._keep_an_admin(conn, name)
            self._update_in(conn, name, "role = ?", role.value)

    def set_disabled(self, name: str, disabled: bool) -> None:
        with self.transaction() as conn:
            if disabled:
                self._keep_an_admin(conn, name)
            self._update_in(conn, name, "disabled = ?", int(disabled))
        if disabled:
            self.end_sessions(name)

    @staticmethod
    def _keep_an_admin(conn: sqlite3.Connection, name: str) -> None:
        """Refuse to take ``name`` out of the enabled admins when it is the last one (nobody could manage users).

        Checked in the same transaction as the change, so two admins demoting each other at once cannot both win;
        the ``cloudsoc users`` commands meet the same rule as the API."""
        others = conn.execute(
            "SELECT count(*) FROM users WHERE role = ? AND disabled = 0 AND name != ?", (Role.ADMIN.value, name)
        ).fetchone()[0]
        row = conn.execute("SELECT role, disabled FROM users WHERE name = ?", (name,)).fetchone()
        if row is not None and row[0] == Role.ADMIN.value and not row[1] and others == 0:
            raise ConsoleError(f"{name!r} is the last enabled admin: make another admin first", status=409)

    def unlock(self, name: str) -> None:
        self._update(name, "failures = 0, locked_until = NULL")

    def _update(self, name: str, assignments: str, *values: Any) -> None:
        with self.transaction() as conn:
            self._update_in(conn, name, assignments, *values)

    @staticmethod
    def _update_in(conn: sqlite3.Connection, name: str, assignments: str, *values: Any) -> None:
        cur = conn.execute(f"UPDATE users SET {assignments} WHERE name = ?", (*values, name))
        if cur.rowcount == 0:
            raise ConsoleError(f"no user {name!r}", status=404)

    def check_password(self, name: str, password: str) -> User | None:
        """The user if the password is right and the account usable; None otherwise (failures counted by caller).

        An unknown name costs one argon2 verification too, so timing does not tell which names exist."""
        row = self.conn.execute(f"SELECT hash, {_USER_COLS} FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            self._verify(self._dummy(), password)
            return None
        digest, user = row[0], _user(row[1:])
        if not self._verify(digest, password):
            return None
        if self.hasher.check_needs_rehash(digest):
            with self.transaction() as conn:
                conn.execute("UPDATE users SET hash = ? WHERE name = ?", (self.hasher.hash(password), name))
        return user

    def _verify(self, digest: str, password: str) -> bool:
        try:
            return self.hasher.verify(digest, password)
        except (VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    def record_failure(self, name: str, *, max_failures: int, lockout: timedelta) -> User | None:
        """Count a failed log-in for an existing user; lock the account after ``max_failures`` in a row."""
        with self.transaction() as conn:
            row = conn.execute("SELECT failures, locked_until FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                return None
            now = self.clock()
            expired = row[1] is not None and datetime.fromisoformat(row[1]) <= now
            # A lock that has run out starts a fresh count rather than re-locking on the next typo.
            failures = 1 if expired else row[0] + 1
            locked = _iso(now + lockout) if failures >= max_failures else None
            conn.execute(
                "UPDATE users SET failures = ?, locked_until = ? WHERE name = ?",
                (failures, locked or (None if expired else row[1]), name),
            )
        return self.get_user(name)

    def record_login(self, name: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE users SET failures = 0, locked_until = NULL, last_login = ? WHERE name = ?",
                (_iso(self.clock()), name),
            )

    # -- sessions ----------------------------------------------------------------------------------------------

    def create_session(self, user: str, *, ip: str, user_agent: str, lifetime: timedelta) -> tuple[str, Session]:
        """A new session; returns the token for the cookie (only its hash is stored) and the session."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        session = Session(
            _sha256(token), user, secrets.token_urlsafe(32), _iso(now), _iso(now), _iso(now + lifetime), ip,
            user_agent[:300],
        )  # fmt: skip
        with self.transaction() as conn:
            conn.execute("DELETE FROM sessions WHERE expires < ?", (_iso(now),))
            conn.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", astuple(session))
        return token, session

    def session(self, token: str, *, idle: timedelta) -> Session | None:
        """The live session of a cookie token; None when unknown, expired or idle too long (then it is deleted)."""
        id_hash = _sha256(token)
        row = self.conn.execute("SELECT * FROM sessions WHERE id_hash = ?", (id_hash,)).fetchone()
        if row is None:
            return None
        session = Session(*row)
        now = self.clock()
        last_seen = datetime.fromisoformat(session.last_seen)
        if datetime.fromisoformat(session.expires) <= now or last_seen + idle <= now:
            self.end_session(token)
            return None
        if (now - last_seen).total_seconds() >= _TOUCH_SECS:
            with self.transaction() as conn:
                conn.execute("UPDATE sessions SET last_seen = ? WHERE id_hash = ?", (_iso(now), id_hash))
        return session

    def end_session(self, token: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM sessions WHERE id_hash = ?", (_sha256(token),))

    def end_sessions(self, user: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM sessions WHERE user = ?", (user,))

    # -- API tokens --------------------------------------------------------------------------------------------

    def create_token(self, user: str, name: str, scopes: Iterable[Permission]) -> tuple[str, ApiToken]:
        """A token for ``user`` with ``scopes`` (a subset of the user's permissions); returns the secret once."""
        owner = self.user(user)
        wanted = frozenset(scopes)
        if not wanted:
            raise ConsoleError("scopes: give at least one scope")
        if not wanted <= TOKEN_SCOPES:
            raise ConsoleError(f"scopes: {Permission.ADMIN.value!r} cannot be given to a token; use a login")
        beyond = wanted - owner.role.permissions
        if beyond:
            raise ConsoleError(
                f"scopes: {', '.join(sorted(beyond))} exceed what role {owner.role.value!r} of {user!r} may do",
                status=403,
            )
        if not 1 <= len(name) <= 100:
            raise ConsoleError("name: use 1-100 characters")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        token = ApiToken(token_id, user, name, wanted, _iso(self.clock()), None, None)
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)",
                (token_id, _sha256(secret), user, name, orjson.dumps(sorted(wanted)).decode(), token.created),
            )
        return f"{TOKEN_PREFIX}{token_id}_{secret}", token

    def token_for(self, presented: str) -> ApiToken | None:
        """The live token a bearer secret belongs to; None when malformed, unknown, wrong or revoked."""
        if not presented.startswith(TOKEN_PREFIX):
            return None
        token_id, _, secret = presented[len(TOKEN_PREFIX) :].partition("_")
        row = self.conn.execute(
            f"SELECT secret_hash, {_TOKEN_COLS} FROM api_tokens WHERE id = ?", (token_id,)
        ).fetchone()
        if row is None or not hmac.compare_digest(row[0], _sha256(secret)):
            return None
        token = _token(row[1:])
        if token.revoked is not None:
            return None
        now = self.clock()
        if token.last_used is None or (now - datetime.fromisoformat(token.last_used)).total_seconds() >= _TOUCH_SECS:
            with self.transaction() as conn:
                conn.execute("UPDATE api_tokens SET last_used = ? WHERE id = ?", (_iso(now), token_id))
        return token

    def tokens(self, *, user: str | None = None, limit: int = 1000, offset: int = 0) -> tuple[list[ApiToken], int]:
        where, args = ("WHERE user = ?", (user,)) if user else ("", ())
        rows = self.conn.execute(
            f"SELECT {_TOKEN_COLS} FROM api_tokens {where} ORDER BY created DESC, id LIMIT ? OFFSET ?",
            (*args, limit, offset),
        ).fetchall()
        total = self.conn.execute(f"SELECT count(*) FROM api_tokens {where}", args).fetchone()[0]
        return [_token(r) for r in rows], total

    def get_token(self, token_id: str) -> ApiToken | None:
        row = self.conn.execute(f"SELECT {_TOKEN_COLS} FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
        return _token(row) if row else None

    def revoke_token(self, token_id: str) -> ApiToken:
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE api_tokens SET revoked = ? WHERE id = ? AND revoked IS NULL", (_iso(self.clock()), token_id)
            )
            row = conn.execute(f"SELECT {_TOKEN_COLS} FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
        if row is None:
            raise ConsoleError(f"no API token {token_id!r}", status=404)
        if cur.rowcount == 0:
            raise ConsoleError(f"API token {token_id!r} is already revoked", status=409)
        return _token(row)

    # -- audit -------------------------------------------------------------------------------------------------

    def audit(
        self,
        user: str,
        action: str,
        target: str = "",
        *,
        ip: str = "",
        outcome: str = "success",
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one entry to the audit log (never a secret in ``detail``)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO audit (time, user, action, target, ip, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (_iso(self.clock()), user, action, target, ip, outcome, orjson.dumps(detail or {}).decode()),
            )

    def audit_entries(
        self,
        *,
        user: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[AuditEntry], int]:
        """Newest first; ``action`` may end in ``*`` (``user.*``); ``[since, until)`` bounds the time."""
        clauses, args = [], []
        if user:
            clauses.append("user = ?")
            args.append(user)
        if outcome:
            clauses.append("outcome = ?")
            args.append(outcome)
        # Times are stored as UTC ISO text of one width, so text order is time order.
        if since is not None:
            clauses.append("time >= ?")
            args.append(_iso(since))
        if until is not None:
            clauses.append("time < ?")
            args.append(_iso(until))
        if action:
            if action.endswith("*"):
                clauses.append("action LIKE ? ESCAPE '\\'")
                args.append(action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
            else:
                clauses.append("action = ?")
                args.append(action)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.conn.execute(
            f"SELECT id, time, user, action, target, ip, outcome, detail FROM audit {where} "
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            (*args, limit, offset),
        ).fetchall()
        total = self.conn.execute(f"SELECT count(*) FROM audit {where}", args).fetchone()[0]
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], orjson.loads(r[7])) for r in rows], total
