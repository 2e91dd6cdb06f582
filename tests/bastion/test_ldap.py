"""LdapDirectory against a real slapd: bind as the user, groups mapped, injection refused, dead server refused."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from cloudsoc.bastion.directory import Identity, LdapDirectory
from cloudsoc.bastion.gate import Gate
from cloudsoc.config.bastion import BastionConfig, LdapConfig
from tests.servers.ldap import SUFFIX, LdapServer, available

pytestmark = pytest.mark.skipif(not available(), reason="slapd and ldap-utils are not installed")


ALICE_KEY = asyncssh.generate_private_key("ssh-ed25519")
ALICE_OTHER_KEY = asyncssh.generate_private_key("ssh-ed25519")


def _line(key: asyncssh.SSHKey) -> str:
    return key.export_public_key("openssh").decode().strip()


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    server = LdapServer(tmp_path_factory.mktemp("slapd"), keys={"alice": [_line(ALICE_KEY), "not a key at all"]})
    server.start()
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


def keyed(slapd: LdapServer, monkeypatch: pytest.MonkeyPatch, password: str | None = None) -> LdapConfig:
    monkeypatch.setenv("CLOUDSOC_LDAP_BIND_PASSWORD", slapd.service_password if password is None else password)
    return config(slapd.url).model_copy(update={"bind_dn": slapd.service_dn})


def test_keys_and_groups_are_read_with_the_service_account(
    slapd: LdapServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    directory = LdapDirectory(keyed(slapd, monkeypatch))
    with caplog.at_level(logging.WARNING):
        keys = directory.public_keys("alice")
    # the entry's value that is not a key is skipped, and said
    assert [_line(k) for k in keys] == [_line(ALICE_KEY)]
    assert any("not an OpenSSH key" in r.getMessage() for r in caplog.records)
    assert directory.identity("alice") == Identity("alice", ["operators"], "ldap")
    assert directory.public_keys("bob") == [] and directory.identity("bob") == Identity("bob", [], "ldap")
    assert directory.public_keys("carol") == [] and directory.identity("carol") is None
    assert directory.public_keys("*)(uid=*") == [] and directory.identity("alice,ou=people") is None
    # without a service account LDAP users have passwords only (the bastion cannot read their entry)
    assert LdapDirectory(config(slapd.url)).public_keys("alice") == []


def test_a_wrong_service_password_reads_nothing_and_is_not_logged(
    slapd: LdapServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    directory = LdapDirectory(keyed(slapd, monkeypatch, password="svc-wrong-pw-91"))
    with caplog.at_level(logging.ERROR):
        assert directory.public_keys("alice") == [] and directory.identity("alice") is None
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "cannot bind" in said and "svc-wrong-pw-91" not in said
    monkeypatch.delenv("CLOUDSOC_LDAP_BIND_PASSWORD")
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert directory.public_keys("alice") == []
    assert any("CLOUDSOC_LDAP_BIND_PASSWORD" in r.getMessage() for r in caplog.records)


def test_gate_key_log_in_of_an_ldap_user(slapd: LdapServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = BastionConfig.model_validate(
        {
            "ldap": keyed(slapd, monkeypatch).model_dump(),
            "mfa": "off",
            "hosts": {"web-1": {"address": "10.0.1.10", "groups": ["web"]}},
            "grants": [{"groups": ["operators"], "hosts": ["group:web"], "system_users": ["deploy"]}],
        }
    )
    gate = Gate(cfg, tmp_path)
    try:
        alice = gate.public_key("alice", ALICE_KEY, "127.0.0.1")
        assert alice == Identity("alice", ["operators"], "ldap")
        assert [(t.host, t.system_user) for t in gate.targets(alice)] == [("web-1", "deploy")]
        assert gate.public_key("alice", ALICE_OTHER_KEY, "127.0.0.1") is None
        assert gate.public_key("bob", ALICE_KEY, "127.0.0.1") is None
        # a local user of the same name decides for that name: LDAP's keys are not asked
        gate.local.add("alice", groups=["ops"])
        assert gate.public_key("alice", ALICE_KEY, "127.0.0.1") is None
        gate.local.add_key("alice", _line(ALICE_OTHER_KEY))
        assert gate.public_key("alice", ALICE_OTHER_KEY, "127.0.0.1") == Identity("alice", ["ops"], "local")
    finally:
        gate.close()
