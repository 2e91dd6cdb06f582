"""`cloudsoc bastion` as an operator runs it, in a subprocess; what it writes is checked through the Gate."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import orjson
import pyotp
import pytest
from typer.testing import CliRunner

from cloudsoc.bastion.gate import Gate, db_path
from cloudsoc.bastion.vault import new_key
from cloudsoc.cli.main import app
from cloudsoc.config.loader import load_config

ENV = "CLOUDSOC_TEST_VAULT_KEY"
CONFIG = f"""
bastion:
  vault_key_env: {ENV}
  mfa: required
  hosts:
    web-aws-1: {{address: 10.0.1.10, labels: {{cloud: aws, env: prod}}, groups: [web]}}
    web-gcp-1: {{address: 10.1.1.10, port: 2022, labels: {{cloud: gcp, env: prod}}, groups: [web]}}
  grants:
    - {{groups: [ops], hosts: ["group:web"], system_users: [deploy]}}
"""


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run(
    home: Path, cfg: Path | None, *args: str, key: str | None = None, stdin: str = "", check: bool = True
) -> Result:
    # In-process (typer's runner) rather than a subprocess per command: the same code path, a second less each.
    env = {ENV: key}  # None: unset
    argv = ["--home", str(home), "bastion", *args, *(["-c", str(cfg)] if cfg else [])]
    got = CliRunner().invoke(app, argv, input=stdin, env=env, catch_exceptions=False)
    result = Result(got.exit_code, got.stdout, got.stderr)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_the_command_is_registered(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cloudsoc", "bastion", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert all(group in proc.stdout for group in ("users", "mfa", "vault", "hosts"))


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "cloudsoc.yml"
    path.write_text(CONFIG)
    return path


def test_operator_flow(tmp_path: Path, cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    key = new_key()
    user_key = asyncssh.generate_private_key("ssh-ed25519", comment="alice@laptop")
    pub = tmp_path / "alice.pub"
    pub.write_bytes(user_key.export_public_key("openssh"))
    run(
        home,
        cfg,
        "users",
        "add",
        "alice",
        "--group",
        "ops",
        "--key",
        str(pub),
        "--password-stdin",
        stdin="pw-alice-1\n",
    )
    run(home, cfg, "users", "add", "bob", "--password-stdin", stdin="pw-bob-1\n")
    second = asyncssh.generate_private_key("ssh-ed25519")
    pub2 = tmp_path / "alice2.pub"
    pub2.write_bytes(second.export_public_key("openssh"))
    added = run(home, cfg, "users", "key-add", "alice", str(pub2)).stdout
    assert second.get_fingerprint("sha256") in added
    run(home, cfg, "users", "disable", "bob")
    users = orjson.loads(run(home, cfg, "users", "list", "--json").stdout)
    assert [(u["name"], u["groups"], len(u["keys"]), u["password"], u["disabled"]) for u in users] == [
        ("alice", ["ops"], 2, True, False),
        ("bob", [], 0, True, True),
    ]
    duplicate = run(home, cfg, "users", "add", "alice", check=False)
    assert duplicate.returncode == 2 and "exists already" in duplicate.stderr

    # MFA enrolment needs the vault key, and says so
    no_key = run(home, cfg, "mfa", "enrol", "alice", check=False)
    assert no_key.returncode == 2 and ENV in no_key.stderr
    enrol = run(home, cfg, "mfa", "enrol", "alice", key=key).stdout
    assert "otpauth://totp/cloudsoc-bastion:alice?" in enrol and ("▀" in enrol or "▄" in enrol)
    uri = orjson.loads(run(home, cfg, "mfa", "enrol", "alice", "--json", key=key).stdout)["uri"]
    secret = uri.split("secret=")[1].split("&")[0]

    # the vault, never showing a secret
    upstream = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "deploy_key"
    key_file.write_bytes(upstream.export_private_key("openssh"))
    run(home, cfg, "vault", "set", "*", "deploy", "--key-file", str(key_file), key=key)
    run(home, cfg, "vault", "set", "web-gcp-1", "deploy", "--password-stdin", key=key, stdin="gcp-deploy-pw\n")
    unknown = run(home, cfg, "vault", "set", "web-99", "deploy", "--password-stdin", key=key, stdin="x\n", check=False)
    assert unknown.returncode == 2 and "web-99" in unknown.stderr
    listing = run(home, cfg, "vault", "list", key=key).stdout
    assert "web-gcp-1" in listing and "gcp-deploy-pw" not in listing and "OPENSSH" not in listing
    assert key not in listing
    rows = orjson.loads(run(home, cfg, "vault", "list", "--json", key=key).stdout)
    assert {(r["host"], r["password"], r["private_key"]) for r in rows} == {
        ("*", False, True),
        ("web-gcp-1", True, False),
    }

    hosts = orjson.loads(run(home, cfg, "hosts", "list", "--json").stdout)
    assert [(h["name"], h["labels"]["cloud"], h["host_key"]) for h in hosts] == [
        ("web-aws-1", "aws", None),
        ("web-gcp-1", "gcp", None),
    ]
    assert "not pinned yet" in run(home, cfg, "hosts", "list").stdout

    # what the CLI wrote is what the Gate reads
    monkeypatch.setenv(ENV, key)
    gate = Gate(load_config(cfg).bastion, home)
    assert db_path(home).exists()
    alice = gate.public_key("alice", second.convert_to_public(), "127.0.0.1")
    assert alice is not None and alice.groups == ["ops"]
    assert gate.password("bob", "pw-bob-1", "127.0.0.1") is None  # disabled
    assert gate.mfa_needed(alice, "127.0.0.1", None)
    assert gate.totp(alice, pyotp.TOTP(secret).now(), "127.0.0.1", None)
    targets = gate.targets(alice)
    assert gate.credential(targets[0]).private_key == key_file.read_text()
    assert gate.credential(targets[1]).password == "gcp-deploy-pw"
    assert gate.pin_host_key(targets[1], upstream) == "new"
    gate.close()
    pinned = orjson.loads(run(home, cfg, "hosts", "list", "--json").stdout)
    assert pinned[1]["host_key"] == upstream.get_fingerprint("sha256")
    # a rebuilt host: the administrator drops the pin, the next connection pins the new key
    forgot = orjson.loads(run(home, cfg, "hosts", "forget", "web-gcp-1", "--json").stdout)
    assert forgot == {"name": "web-gcp-1", "forgotten": upstream.get_fingerprint("sha256")}
    assert orjson.loads(run(home, cfg, "hosts", "list", "--json").stdout)[1]["host_key"] is None
    assert "no key was pinned" in run(home, cfg, "hosts", "forget", "web-gcp-1").stdout
    unknown_host = run(home, cfg, "hosts", "forget", "web-9", check=False)
    assert unknown_host.returncode == 2 and "web-aws-1, web-gcp-1" in unknown_host.stderr
    rebuilt = asyncssh.generate_private_key("ssh-ed25519")
    gate = Gate(load_config(cfg).bastion, home)
    assert gate.pin_host_key(targets[1], rebuilt) == "new"
    assert gate.pin_host_key(targets[1], upstream) == "mismatch"
    gate.close()

    run(home, cfg, "mfa", "reset", "alice", key=key)
    assert orjson.loads(run(home, cfg, "users", "list", "--json").stdout)[0]["mfa"] is False


def test_keygen_prints_a_usable_key(tmp_path: Path, cfg: Path) -> None:
    key = run(tmp_path / "home", None, "vault", "keygen").stdout.strip()
    run(tmp_path / "home", cfg, "vault", "set", "*", "root", "--password-stdin", key=key, stdin="pw\n")
    wrong = run(
        tmp_path / "home",
        cfg,
        "vault",
        "set",
        "*",
        "root",
        "--password-stdin",
        key=new_key(),
        stdin="pw\n",
        check=False,
    )
    assert wrong.returncode == 2 and ENV in wrong.stderr and key not in wrong.stderr
