"""The access layer piece by piece and the Gate end to end, with an injectable clock instead of sleeps."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pyotp
import pytest
import yaml

from cloudsoc.bastion.allowlist import SourcePolicy
from cloudsoc.bastion.directory import Identity, LocalDirectory
from cloudsoc.bastion.gate import Gate, db_path
from cloudsoc.bastion.hostkeys import HostKeyPins
from cloudsoc.bastion.inventory import Inventory
from cloudsoc.bastion.lockout import Lockout
from cloudsoc.bastion.mfa import MfaGrace, Totp
from cloudsoc.bastion.vault import Credential, Vault, new_key
from cloudsoc.config.bastion import BastionConfig
from cloudsoc.errors import BastionError, VaultError

ENV = "CLOUDSOC_TEST_VAULT_KEY"
T0 = 1_800_000_000.0  # a step boundary: 1.8e9 / 30 is whole


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Vault:
    monkeypatch.setenv(ENV, new_key())
    return Vault(tmp_path / "bastion.db", key_env=ENV)


def secret_of(uri: str) -> str:
    return uri.split("secret=")[1].split("&")[0]


# -- allow-list


def test_allow_list_v4_v6_and_per_user_override() -> None:
    policy = SourcePolicy(["10.8.0.0/16", "2001:db8:1::/48"], {"carol": ["203.0.113.7/32"]})
    assert policy.allowed("10.8.3.4") and policy.allowed("10.8.3.4", "alice")
    assert policy.allowed("2001:db8:1:ff::9", "alice")
    assert not policy.allowed("10.9.0.1", "alice") and not policy.allowed("2001:db8:2::1", "alice")
    assert policy.allowed("::ffff:10.8.0.1", "alice")  # an IPv4 client seen through a dual-stack socket
    assert not policy.allowed("not an address") and not policy.allowed("", "alice")
    # carol's own list replaces the global one: the office range no longer lets her in, her address does.
    assert policy.allowed("203.0.113.7", "carol") and not policy.allowed("10.8.3.4", "carol")
    assert not policy.allowed("203.0.113.7", "alice")
    # before the user name is known, an address some user may come from goes on to authentication
    assert policy.allowed("203.0.113.7") and not policy.allowed("198.51.100.1")


def test_allow_list_rejects_a_bad_range() -> None:
    with pytest.raises(BastionError, match=r"bastion.user_allow.bob: '10.0.0.0/33'"):
        SourcePolicy(["10.0.0.0/8"], {"bob": ["10.0.0.0/33"]})


# -- lock-out


def test_lockout_after_n_failures_expires_and_success_resets(tmp_path: Path) -> None:
    clock = Clock()
    lock = Lockout(tmp_path / "bastion.db", max_failures=3, minutes=15, clock=clock)
    assert not lock.failure("alice", "10.0.0.1") and not lock.failure("alice", "10.0.0.1")
    lock.success("alice")  # resets the user
    assert not lock.failure("alice", "10.0.0.2")
    assert not lock.failure("alice", "10.0.0.2")
    assert lock.failure("alice", "10.0.0.2")
    assert lock.locked("alice", "10.9.9.9")  # the user is locked from anywhere
    assert lock.locked("bob", "10.0.0.2")  # the address is locked for anyone
    assert not lock.locked("bob", "10.0.0.3")
    clock.now += 15 * 60 + 1
    assert not lock.locked("alice", "10.0.0.2")
    # after a lock has run out the count starts again
    assert not lock.failure("alice", "10.0.0.4")


def test_success_does_not_reset_the_address(tmp_path: Path) -> None:
    lock = Lockout(tmp_path / "bastion.db", max_failures=2, minutes=1, clock=Clock())
    lock.failure("alice", "10.0.0.1")
    lock.success("mallory")
    assert lock.failure("bob", "10.0.0.1")  # second failure from the address locks it
    assert lock.locked("mallory", "10.0.0.1")


def test_an_address_has_its_own_higher_limit(tmp_path: Path) -> None:
    # One address guessing at many users (password spraying) is locked without any one user reaching theirs.
    lock = Lockout(tmp_path / "bastion.db", max_failures=3, minutes=5, clock=Clock(), address_max_failures=5)
    for user in ("u1", "u2", "u3", "u4"):
        assert not lock.failure(user, "10.0.0.7")
    assert not lock.locked("u5", "10.0.0.7")
    assert lock.failure("u5", "10.0.0.7")
    assert lock.locked("u6", "10.0.0.7") and not lock.locked("u1", "10.0.0.8")


# -- TOTP and grace


def test_totp_real_code_wrong_code_replay_and_window(tmp_path: Path, vault: Vault) -> None:
    clock = Clock()
    totp = Totp(tmp_path / "bastion.db", vault, clock)
    enrolment = totp.enrol("alice")
    assert enrolment.uri.startswith("otpauth://totp/cloudsoc-bastion:alice?")
    assert "issuer=cloudsoc-bastion" in enrolment.uri
    qr = enrolment.qr()
    assert len(qr.splitlines()) > 10 and "█" in qr
    real = pyotp.TOTP(secret_of(enrolment.uri))
    code = real.at(clock.now)
    assert not totp.verify("alice", "000000" if code != "000000" else "111111")
    assert not totp.verify("alice", "12ab56") and not totp.verify("bob", code)
    assert totp.verify("alice", code)
    assert not totp.verify("alice", code)  # replayed within its window
    clock.now += 30
    assert totp.verify("alice", real.at(clock.now))
    # one step either side is accepted (clock drift), two are not
    clock.now += 90
    assert totp.verify("alice", real.at(clock.now - 30))
    assert not totp.verify("alice", real.at(clock.now - 60))
    assert not totp.verify("alice", real.at(clock.now + 90))
    assert totp.reset("alice") and not totp.enrolled("alice")


def test_grace_per_user_address_and_key_and_expiry(tmp_path: Path, vault: Vault) -> None:
    clock = Clock()
    totp = Totp(tmp_path / "bastion.db", vault, clock)
    grace = MfaGrace(totp, minutes=10, clock=clock)
    grace.start("alice", "10.0.0.1", "SHA256:key1")
    assert grace.active("alice", "10.0.0.1", "SHA256:key1")
    assert not grace.active("alice", "10.0.0.2", "SHA256:key1")
    assert not grace.active("alice", "10.0.0.1", "SHA256:key2")
    assert not grace.active("bob", "10.0.0.1", "SHA256:key1")
    clock.now += 10 * 60 - 1
    assert grace.active("alice", "10.0.0.1", "SHA256:key1")
    clock.now += 2
    assert not grace.active("alice", "10.0.0.1", "SHA256:key1")
    # password log-ins get no grace
    grace.start("alice", "10.0.0.1", None)
    assert not grace.active("alice", "10.0.0.1", None)


# -- host keys


def test_host_key_pinned_on_first_use_and_mismatch_refused(tmp_path: Path) -> None:
    pins = HostKeyPins(tmp_path / "bastion.db")
    first = asyncssh.generate_private_key("ssh-ed25519")
    other = asyncssh.generate_private_key("ssh-ed25519")
    assert pins.check("10.0.1.5", 22, first) == "new"
    assert pins.check("10.0.1.5", 22, first.convert_to_public()) == "pinned"
    assert pins.check("10.0.1.5", 22, other) == "mismatch"
    assert pins.check("10.0.1.5", 2222, other) == "new"  # per host:port
    assert pins.check("10.0.1.5", 22, first) == "pinned"  # the mismatch did not replace the pin
    pin = pins.get("10.0.1.5", 22)
    assert pin is not None and pin.fingerprint == first.get_fingerprint("sha256")
    assert pins.forget("10.0.1.5", 22) and pins.check("10.0.1.5", 22, other) == "new"


# -- inventory and the Gate


def two_clouds(**extra: object) -> BastionConfig:
    return BastionConfig.model_validate(
        {
            "allow": ["127.0.0.0/8", "10.8.0.0/16"],
            "user_allow": {"carol": ["192.0.2.10/32"]},
            "vault_key_env": ENV,
            "max_failures": 3,
            "hosts": {
                "web-aws-1": {"address": "10.0.1.10", "labels": {"cloud": "aws", "env": "prod"}, "groups": ["web"]},
                "web-gcp-1": {
                    "address": "10.1.1.10",
                    "port": 2022,
                    "labels": {"cloud": "gcp", "env": "prod"},
                    "groups": ["web"],
                },
                "db-aws-1": {"address": "10.0.2.20", "labels": {"cloud": "aws"}, "groups": ["db"]},
            },
            "grants": [
                {"groups": ["ops"], "hosts": ["group:web", "group:db"], "system_users": ["deploy"]},
                {"groups": ["ops"], "hosts": ["db-aws-1"], "system_users": ["deploy"], "port_forwarding": True},
                {"users": ["bob"], "hosts": ["web-gcp-1"], "system_users": ["readonly"]},
            ],
            **extra,
        }
    )


def test_inventory_expands_host_groups_and_merges_grants() -> None:
    inv = Inventory(two_clouds())
    ops = inv.targets("alice", ["ops"])
    assert [(t.host, t.system_user, t.port_forwarding) for t in ops] == [
        ("db-aws-1", "deploy", True),
        ("web-aws-1", "deploy", False),
        ("web-gcp-1", "deploy", False),
    ]
    gcp = ops[2]
    assert (gcp.address, gcp.port, gcp.labels, gcp.host_groups) == (
        "10.1.1.10",
        2022,
        {"cloud": "gcp", "env": "prod"},
        ["web"],
    )
    assert [(t.host, t.system_user) for t in inv.targets("bob")] == [("web-gcp-1", "readonly")]
    assert inv.targets("mallory", ["devs"]) == []


def test_inventory_refuses_unknown_hosts_and_groups() -> None:
    cfg = two_clouds()
    with pytest.raises(BastionError, match=r"grants\[0\]: no host 'web-02'"):
        Inventory(cfg.model_copy(update={"grants": [cfg.grants[0].model_copy(update={"hosts": ["web-02"]})]}))
    with pytest.raises(BastionError, match="host group 'cache'"):
        Inventory(cfg.model_copy(update={"grants": [cfg.grants[0].model_copy(update={"hosts": ["group:cache"]})]}))


def test_gate_end_to_end(tmp_path: Path, vault: Vault) -> None:
    clock = Clock()
    cfg = two_clouds()
    directory = LocalDirectory(db_path(tmp_path))
    directory.add("alice", groups=["ops"], password="alice-pw-123")
    directory.add("bob", password="bob-pw-123")
    key = asyncssh.generate_private_key("ssh-ed25519")
    directory.add_key("alice", key.export_public_key("openssh").decode())
    directory.close()
    gate = Gate(cfg, tmp_path, clock=clock)
    ip = "10.8.0.5"

    # 1. the door
    assert gate.source_allowed(ip) and not gate.source_allowed("198.51.100.7")
    assert gate.source_allowed("192.0.2.10") and not gate.source_allowed("192.0.2.10", "alice")
    assert gate.source_allowed("192.0.2.10", "carol") and not gate.source_allowed(ip, "carol")

    # 2. credentials
    assert gate.password("alice", "wrong", ip) is None
    alice = gate.password("alice", "alice-pw-123", ip)
    assert alice == Identity("alice", ["ops"], "local")
    assert gate.public_key("alice", key.convert_to_public(), ip) == alice
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    assert gate.public_key("alice", stranger, ip) is None and gate.public_key("bob", key, ip) is None

    # 3. MFA: required, so alice is asked; bob, not enrolled, is asked and cannot answer
    fp = key.get_fingerprint("sha256")
    assert gate.mfa_needed(alice, ip, fp)
    real = pyotp.TOTP(secret_of(gate.totp_store.enrol("alice").uri))
    assert not gate.totp(alice, "999999" if real.at(clock.now) != "999999" else "888888", ip, fp)
    assert gate.totp(alice, real.at(clock.now), ip, fp)
    assert not gate.mfa_needed(alice, ip, fp)  # grace: same user, address and key
    assert gate.mfa_needed(alice, "10.8.0.6", fp) and gate.mfa_needed(alice, ip, None)
    assert not gate.totp(alice, real.at(clock.now), "10.8.0.6", fp)  # the used code is spent
    clock.now += cfg.mfa_grace_minutes * 60 + 1
    assert gate.mfa_needed(alice, ip, fp)
    bob = gate.password("bob", "bob-pw-123", ip)
    assert bob is not None and gate.mfa_needed(bob, ip, None) and not gate.totp(bob, "123456", ip, None)

    # 4. what alice may open, and the credentials for it
    targets = gate.targets(alice)
    assert {t.labels["cloud"] for t in targets} == {"aws", "gcp"}
    assert [t.host for t in gate.targets(bob)] == ["web-gcp-1"]
    with pytest.raises(VaultError, match="vault set db-aws-1 deploy"):
        gate.credential(targets[0])
    gate.vault.set("*", "deploy", password="deploy-pw")
    assert gate.credential(targets[0]) == Credential(password="deploy-pw", private_key=None)

    # 5. upstream host keys
    upstream = asyncssh.generate_private_key("ssh-ed25519")
    assert gate.pin_host_key(targets[1], upstream) == "new"
    assert gate.pin_host_key(targets[1], upstream) == "pinned"
    assert gate.pin_host_key(targets[1], stranger) == "mismatch"

    # 6. lock-out: max_failures=3 wrong passwords lock alice, even her right password then fails
    for _ in range(3):
        assert gate.password("alice", "guess", "10.8.0.9") is None
    assert gate.locked("alice", ip)
    assert gate.password("alice", "alice-pw-123", ip) is None
    assert gate.public_key("alice", key, ip) is None
    clock.now += cfg.lockout_minutes * 60 + 1
    assert gate.password("alice", "alice-pw-123", ip) == alice
    gate.close()


def test_gate_disabled_user_and_mfa_modes(tmp_path: Path, vault: Vault) -> None:
    directory = LocalDirectory(db_path(tmp_path))
    directory.add("alice", groups=["ops"], password="alice-pw-123")
    directory.add("dave", password="dave-pw-123")
    directory.set_disabled("dave", True)
    gate = Gate(two_clouds(mfa="optional"), tmp_path)
    assert gate.lockout.limits == {"user": 3, "ip": 20}
    assert gate.password("dave", "dave-pw-123", "127.0.0.1") is None
    alice = gate.password("alice", "alice-pw-123", "127.0.0.1")
    assert alice is not None and not gate.mfa_needed(alice, "127.0.0.1", None)  # optional and not enrolled
    gate.totp_store.enrol("alice")
    assert gate.mfa_needed(alice, "127.0.0.1", None)
    off = Gate(two_clouds(mfa="off"), tmp_path)
    assert not off.mfa_needed(alice, "127.0.0.1", None)


def test_totp_without_the_vault_key_is_a_logged_refusal(
    tmp_path: Path, vault: Vault, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    LocalDirectory(db_path(tmp_path)).add("alice", groups=["ops"], password="alice-pw-123")
    gate = Gate(two_clouds(), tmp_path)
    real = pyotp.TOTP(secret_of(gate.totp_store.enrol("alice").uri))
    gate.close()
    monkeypatch.delenv(ENV)
    gate = Gate(two_clouds(), tmp_path)
    alice = Identity("alice", ["ops"], "local")
    with caplog.at_level("ERROR", logger="cloudsoc.bastion.gate"):
        assert not gate.totp(alice, real.now(), "127.0.0.1", None)
    assert any(ENV in r.getMessage() for r in caplog.records)


def test_the_spec_examples_are_valid_config() -> None:
    spec = Path(__file__).resolve().parents[2] / "docs" / "specs" / "bastion.md"
    text = spec.read_text()
    merged: dict[str, object] = {}
    for title in ("## Users and MFA", "## Hosts, grants and the vault"):
        block = text.split(title, 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
        merged.update(yaml.safe_load(block)["bastion"])
    cfg = BastionConfig.model_validate(merged)
    assert cfg.ldap is not None and cfg.ldap.groups == {"ops": "ops", "dba": "dba"}
    targets = Inventory(cfg).targets("alice", ["ops"])
    assert [(t.host, t.system_user, t.port_forwarding) for t in targets] == [
        ("db-aws-1", "deploy", False),
        ("db-aws-1", "postgres", True),
        ("web-aws-1", "deploy", False),
        ("web-gcp-1", "deploy", False),
    ]
