"""The console account store: users, argon2 hashes, lock-out, session expiry, tokens and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from cloudsoc.api.accounts import ConsoleStore
from cloudsoc.api.permissions import Permission, Role
from cloudsoc.errors import ConsoleError
from tests.console.harness import CHEAP, PASSWORD


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> ConsoleStore:
    return ConsoleStore(tmp_path / "console.db", hasher=CHEAP, clock=clock)


def test_passwords_are_argon2_hashes_and_verify(store: ConsoleStore) -> None:
    store.add_user("alice", PASSWORD, Role.ANALYST)
    digest = store.conn.execute("SELECT hash FROM users WHERE name = 'alice'").fetchone()[0]
    assert digest.startswith("$argon2id$") and PASSWORD not in digest
    assert store.check_password("alice", PASSWORD) is not None
    assert store.check_password("alice", PASSWORD + "x") is None
    assert store.check_password("nobody", PASSWORD) is None


def test_hash_is_upgraded_when_parameters_change(tmp_path: Path) -> None:
    ConsoleStore(tmp_path / "c.db", hasher=CHEAP).add_user("alice", PASSWORD, Role.VIEWER)
    stronger = PasswordHasher(time_cost=2, memory_cost=128, parallelism=1)
    store = ConsoleStore(tmp_path / "c.db", hasher=stronger)
    assert store.check_password("alice", PASSWORD) is not None
    digest = store.conn.execute("SELECT hash FROM users").fetchone()[0]
    assert not stronger.check_needs_rehash(digest)


def test_product_default_is_argon2_cffi_default(tmp_path: Path) -> None:
    assert ConsoleStore(tmp_path / "c.db").hasher.time_cost == PasswordHasher().time_cost


@pytest.mark.parametrize("name", ["", "a b", "<script>", "../x", "x" * 65, "-lead"])
def test_bad_user_names_refused(store: ConsoleStore, name: str) -> None:
    with pytest.raises(ConsoleError, match="user name"):
        store.add_user(name, PASSWORD, Role.VIEWER)


def test_short_password_and_duplicate_refused(store: ConsoleStore) -> None:
    with pytest.raises(ConsoleError, match="at least 10"):
        store.add_user("alice", "short", Role.VIEWER)
    store.add_user("alice", PASSWORD, Role.VIEWER)
    with pytest.raises(ConsoleError, match="already exists") as exc:
        store.add_user("alice", PASSWORD, Role.VIEWER)
    assert exc.value.status == 409


def test_first_start_creates_admin_once(store: ConsoleStore) -> None:
    password = store.ensure_admin()
    assert password and len(password) >= 20
    assert store.check_password("admin", password) is not None
    assert store.user("admin").role is Role.ADMIN
    assert store.ensure_admin() is None


def test_lockout_after_failures_and_expiry(store: ConsoleStore, clock: Clock) -> None:
    store.add_user("alice", PASSWORD, Role.VIEWER)
    for _ in range(2):
        user = store.record_failure("alice", max_failures=3, lockout=timedelta(minutes=15))
        assert user is not None and not user.locked(clock.now)
    user = store.record_failure("alice", max_failures=3, lockout=timedelta(minutes=15))
    assert user is not None and user.locked(clock.now)
    clock.now += timedelta(minutes=16)
    assert not store.user("alice").locked(clock.now)
    # An expired lock starts a fresh count: one more typo does not lock again.
    user = store.record_failure("alice", max_failures=3, lockout=timedelta(minutes=15))
    assert user is not None and user.failures == 1 and not user.locked(clock.now)
    assert store.record_failure("nobody", max_failures=3, lockout=timedelta(minutes=15)) is None


def test_session_absolute_and_idle_expiry(store: ConsoleStore, clock: Clock) -> None:
    store.add_user("alice", PASSWORD, Role.VIEWER)
    token, session = store.create_session("alice", ip="127.0.0.1", user_agent="t", lifetime=timedelta(hours=2))
    stored = store.conn.execute("SELECT id_hash FROM sessions").fetchall()
    assert [r[0] for r in stored] == [session.id_hash] and token not in session.id_hash
    idle = timedelta(minutes=30)
    for _ in range(3):  # active use keeps it alive past the idle limit …
        clock.now += timedelta(minutes=20)
        assert store.session(token, idle=idle) is not None
    clock.now += timedelta(minutes=61)  # … until the absolute limit
    assert store.session(token, idle=idle) is None
    token, _ = store.create_session("alice", ip="127.0.0.1", user_agent="t", lifetime=timedelta(hours=2))
    clock.now += timedelta(minutes=31)
    assert store.session(token, idle=idle) is None
    assert store.conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0


def test_password_change_and_disable_end_sessions(store: ConsoleStore) -> None:
    store.add_user("alice", PASSWORD, Role.VIEWER)
    t1, _ = store.create_session("alice", ip="", user_agent="", lifetime=timedelta(hours=1))
    store.set_password("alice", "another long password")
    assert store.session(t1, idle=timedelta(hours=1)) is None
    t2, _ = store.create_session("alice", ip="", user_agent="", lifetime=timedelta(hours=1))
    store.set_disabled("alice", True)
    assert store.session(t2, idle=timedelta(hours=1)) is None


def test_tokens_hashed_scoped_and_revocable(store: ConsoleStore) -> None:
    store.add_user("alice", PASSWORD, Role.ANALYST)
    secret, token = store.create_token("alice", "ingest script", [Permission.READ, Permission.INGEST])
    assert secret not in str(store.conn.execute("SELECT * FROM api_tokens").fetchall())
    found = store.token_for(secret)
    assert found is not None and found.scopes == {Permission.READ, Permission.INGEST}
    assert store.token_for(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert store.token_for("cst_nothing_here") is None and store.token_for("garbage") is None
    store.revoke_token(token.id)
    assert store.token_for(secret) is None
    with pytest.raises(ConsoleError, match="already revoked"):
        store.revoke_token(token.id)


def test_token_scopes_within_role(store: ConsoleStore) -> None:
    store.add_user("vic", PASSWORD, Role.VIEWER)
    with pytest.raises(ConsoleError, match="triage exceed") as exc:
        store.create_token("vic", "x", [Permission.READ, Permission.TRIAGE])
    assert exc.value.status == 403
    store.add_user("root", PASSWORD, Role.ADMIN)
    with pytest.raises(ConsoleError, match="cannot be given to a token"):
        store.create_token("root", "x", [Permission.ADMIN])


def test_audit_filters_and_pages(store: ConsoleStore) -> None:
    for i in range(5):
        store.audit("alice", "user.create", f"u{i}", ip="127.0.0.1")
    store.audit("bob", "login", outcome="failure", detail={"reason": "bad_password"})
    entries, total = store.audit_entries(limit=2)
    assert total == 6 and [e.action for e in entries] == ["login", "user.create"]
    entries, total = store.audit_entries(action="user.*", limit=10, offset=3)
    assert total == 5 and [e.target for e in entries] == ["u1", "u0"]
    entries, total = store.audit_entries(user="bob")
    assert total == 1 and entries[0].detail == {"reason": "bad_password"}
    assert store.audit_entries(action="user_*")[1] == 0  # "_" is a literal, not a LIKE wildcard
