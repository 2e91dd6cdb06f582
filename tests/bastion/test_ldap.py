"""LdapDirectory against a real slapd: bind as the user, groups mapped, injection refused, dead server refused."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudsoc.bastion.directory import Identity, LdapDirectory
from cloudsoc.bastion.gate import Gate
from cloudsoc.config.bastion import BastionConfig, LdapConfig
from tests.servers.ldap import SUFFIX, LdapServer, available

pytestmark = pytest.mark.skipif(not available(), reason="slapd and ldap-utils are not installed")


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    server = LdapServer(tmp_path_factory.mktemp("slapd")).start()
    yield server
    server.stop()


def config(url: str, timeout: float = 5.0) -> LdapConfig:
    return LdapConfig(
        url=url,
        user_dn=f"uid={{user}},ou=people,{SUFFIX}",
        group_base=f"ou=groups,{SUFFIX}",
        group_filter="(member={dn})",
        groups={"ops": "operators"},
        timeout_secs=timeout,
    )


def test_good_bind_gives_the_mapped_group(slapd: LdapServer) -> None:
    directory = LdapDirectory(config(slapd.url))
    assert directory.password("alice", slapd.users["alice"]) == Identity("alice", ["operators"], "ldap")
    # bob binds but is in no group: he is someone, with no group to be granted through.
    assert directory.password("bob", slapd.users["bob"]) == Identity("bob", [], "ldap")


def test_unmapped_groups_do_not_count(slapd: LdapServer) -> None:
    cfg = config(slapd.url).model_copy(update={"groups": {"admins": "root"}})
    who = LdapDirectory(cfg).password("alice", slapd.users["alice"])
    assert who is not None and who.groups == []


def test_wrong_password_empty_password_and_unknown_user_are_refused(slapd: LdapServer) -> None:
    directory = LdapDirectory(config(slapd.url))
    assert directory.password("alice", "not-her-password") is None
    assert directory.password("alice", slapd.users["bob"]) is None
    # An empty password would be an anonymous ("unauthenticated") bind, which slapd accepts.
    assert directory.password("alice", "") is None
    assert directory.password("carol", "whatever") is None


@pytest.mark.parametrize("name", ["*)(uid=*", "alice)(|(uid=*", "*", "alice,ou=people", "uid=alice", "alice\x00"])
def test_injection_in_the_user_name_does_not_log_in(slapd: LdapServer, name: str) -> None:
    directory = LdapDirectory(config(slapd.url))
    assert directory.password(name, slapd.users["alice"]) is None


def test_a_stopped_server_is_a_refusal_with_a_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = LdapServer(tmp_path).start()
    url = server.url
    server.stop()
    directory = LdapDirectory(config(url, timeout=2))
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="cloudsoc.bastion.directory"):
        assert directory.password("alice", server.users["alice"]) is None
    assert time.monotonic() - started < 3
    assert any(url in r.getMessage() and "refused" in r.getMessage() for r in caplog.records)


def test_a_server_that_never_answers_is_refused_within_the_timeout(caplog: pytest.LogCaptureFixture) -> None:
    # A listener that accepts and stays silent: the connect works, the bind reply never comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"ldap://127.0.0.1:{silent.getsockname()[1]}"
        directory = LdapDirectory(config(url, timeout=1))
        started = time.monotonic()
        with caplog.at_level(logging.ERROR, logger="cloudsoc.bastion.directory"):
            assert directory.password("alice", "alice-pw") is None
        elapsed = time.monotonic() - started
    assert elapsed < 3, elapsed
    assert any("cannot be used" in r.getMessage() for r in caplog.records)


def test_gate_with_ldap_users_and_grants_by_mapped_group(
    slapd: LdapServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = BastionConfig.model_validate(
        {
            "ldap": config(slapd.url).model_dump(),
            "mfa": "off",
            "max_failures": 2,
            "hosts": {"web-1": {"address": "10.0.1.10", "groups": ["web"]}},
            "grants": [{"groups": ["operators"], "hosts": ["group:web"], "system_users": ["deploy"]}],
        }
    )
    gate = Gate(cfg, tmp_path)
    alice = gate.password("alice", slapd.users["alice"], "127.0.0.1")
    assert alice == Identity("alice", ["operators"], "ldap")
    assert [(t.host, t.system_user) for t in gate.targets(alice)] == [("web-1", "deploy")]
    bob = gate.password("bob", slapd.users["bob"], "127.0.0.1")
    assert bob is not None and gate.targets(bob) == []
    # LDAP refusals count toward the lock-out like local ones
    assert gate.password("bob", "guess-1", "127.0.0.1") is None
    assert gate.password("bob", "guess-2", "127.0.0.1") is None
    assert gate.locked("bob", "127.0.0.2")
    assert gate.password("bob", slapd.users["bob"], "127.0.0.1") is None
    gate.close()
