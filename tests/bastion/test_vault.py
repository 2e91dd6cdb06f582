"""The vault: AES-GCM round trips, key from env or a 0600 file, clear errors, and no secret in the file or messages."""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh
import pytest

from cloudsoc.bastion.mfa import Totp
from cloudsoc.bastion.vault import Credential, Vault, new_key
from cloudsoc.errors import VaultError

ENV = "CLOUDSOC_TEST_VAULT_KEY"
PASSWORD = "upstream-S3cret-pw-4711"


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    value = new_key()
    monkeypatch.setenv(ENV, value)
    return value


@pytest.fixture
def private_key() -> str:
    return asyncssh.generate_private_key("ssh-ed25519").export_private_key("openssh").decode()


def db_bytes(directory: Path) -> bytes:
    # The WAL holds fresh pages until a checkpoint: look at every file SQLite keeps, not only the main one.
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file())


def test_round_trip_and_the_star_fallback(tmp_path: Path, key: str, private_key: str) -> None:
    vault = Vault(tmp_path / "bastion.db", key_env=ENV)
    vault.set("web-01", "deploy", password=PASSWORD)
    vault.set("*", "deploy", private_key=private_key)
    vault.set("*", "root", password="root-pw-1", private_key=private_key)
    vault.close()
    again = Vault(tmp_path / "bastion.db", key_env=ENV)
    assert again.get("web-01", "deploy") == Credential(password=PASSWORD, private_key=None)
    assert again.get("db-01", "deploy") == Credential(password=None, private_key=private_key)
    assert again.get("db-01", "root").password == "root-pw-1"
    assert [(e.host, e.system_user, e.password, e.private_key) for e in again.entries()] == [
        ("*", "deploy", False, True),
        ("*", "root", True, True),
        ("web-01", "deploy", True, False),
    ]
    with pytest.raises(VaultError, match=r"no credential for nobody@web-01.*vault set web-01 nobody"):
        again.get("web-01", "nobody")


def test_secrets_and_the_key_are_not_in_the_database_files(
    tmp_path: Path, key: str, private_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bastion.db"
    vault = Vault(path, key_env=ENV)
    vault.set("web-01", "deploy", password=PASSWORD, private_key=private_key)
    totp = Totp(path, vault)
    secret_uri = totp.enrol("alice").uri
    secret = secret_uri.split("secret=")[1].split("&")[0]
    data = db_bytes(tmp_path)
    assert b"web-01" in data  # the test does look at the right bytes
    body = "".join(private_key.splitlines()[1:-1])
    for needle in (PASSWORD, key, body[:40], secret):
        assert needle.encode() not in data
    # repr, str and messages of what holds secrets
    cred = vault.get("web-01", "deploy")
    for text in (repr(cred), str(cred), repr(vault)):
        assert PASSWORD not in text and "OPENSSH" not in text and key not in text


def test_no_key_says_what_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    vault = Vault(tmp_path / "bastion.db", key_env=ENV)
    with pytest.raises(VaultError, match=f"set {ENV}.*vault keygen"):
        vault.set("web-01", "deploy", password=PASSWORD)


def test_a_malformed_key_is_refused_without_echoing_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "not-base64-but-secretish!!")
    with pytest.raises(VaultError) as err:
        Vault(tmp_path / "bastion.db", key_env=ENV).set("h", "u", password="x")
    assert ENV in str(err.value) and "secretish" not in str(err.value)


def test_wrong_key_names_the_variable_and_never_the_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    right, wrong = new_key(), new_key()
    monkeypatch.setenv(ENV, right)
    Vault(tmp_path / "bastion.db", key_env=ENV).set("web-01", "deploy", password=PASSWORD)
    monkeypatch.setenv(ENV, wrong)
    vault = Vault(tmp_path / "bastion.db", key_env=ENV)
    with pytest.raises(VaultError) as err:
        vault.get("web-01", "deploy")
    message = str(err.value)
    assert ENV in message and "not the one" in message
    assert right not in message and wrong not in message and PASSWORD not in message


def test_key_file_must_be_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    key_file = tmp_path / "vault.key"
    key_file.write_text(new_key() + "\n")
    os.chmod(key_file, 0o644)
    vault = Vault(tmp_path / "bastion.db", key_env=ENV, key_file=key_file)
    with pytest.raises(VaultError, match="chmod 600"):
        vault.set("web-01", "deploy", password=PASSWORD)
    os.chmod(key_file, 0o600)
    vault.set("web-01", "deploy", password=PASSWORD)
    assert vault.get("web-01", "deploy").password == PASSWORD


def test_a_ciphertext_moved_to_another_row_does_not_decrypt(tmp_path: Path, key: str) -> None:
    vault = Vault(tmp_path / "bastion.db", key_env=ENV)
    vault.set("web-01", "root", password=PASSWORD)
    vault.set("db-01", "root", password="db-pw")
    with vault.transaction() as conn:
        blob = conn.execute("SELECT password FROM vault_credentials WHERE host = 'web-01'").fetchone()[0]
        conn.execute("UPDATE vault_credentials SET password = ? WHERE host = 'db-01'", (blob,))
    with pytest.raises(VaultError, match="altered or moved") as err:
        vault.get("db-01", "root")
    assert PASSWORD not in str(err.value)
