"""The log-in decision the SSH server asks for, in order: allow-list, lock-out, directory, MFA, grants, vault.

Every answer is a plain yes/no or value; refusals are logged here with the reason, and the server tells the user
no more than "refused" (a reason would help an attacker tell a wrong password from a locked account)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import asyncssh

from cloudsoc.bastion.allowlist import SourcePolicy
from cloudsoc.bastion.directory import Identity, LdapDirectory, LocalDirectory
from cloudsoc.bastion.hostkeys import HostKeyPins
from cloudsoc.bastion.inventory import Inventory, Target
from cloudsoc.bastion.layout import BastionLayout
from cloudsoc.bastion.lockout import Lockout
from cloudsoc.bastion.mfa import MfaGrace, Totp
from cloudsoc.bastion.vault import Credential, Vault
from cloudsoc.config.bastion import BastionConfig
from cloudsoc.errors import VaultError

__all__ = ["Credential", "Gate", "Identity", "Target"]

log = logging.getLogger(__name__)


def db_path(home: Path) -> Path:
    return BastionLayout.of(home).db


class Gate:
    """One per bastion process; its stores share ``<home>/bastion/bastion.db``."""

    def __init__(self, cfg: BastionConfig, home: Path, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        path = db_path(home)
        self.sources = SourcePolicy(cfg.allow, cfg.user_allow)
        self.local = LocalDirectory(path)
        self.ldap = LdapDirectory(cfg.ldap) if cfg.ldap is not None else None
        self.lockout = Lockout(
            path, cfg.max_failures, cfg.lockout_minutes, clock, address_max_failures=cfg.address_max_failures
        )
        self.vault = Vault(path, key_env=cfg.vault_key_env, key_file=cfg.vault_key_file)
        self.totp_store = Totp(path, self.vault, clock)
        self.grace = MfaGrace(self.totp_store, cfg.mfa_grace_minutes, clock)
        self.inventory = Inventory(cfg)
        self.pins = HostKeyPins(path)

    def close(self) -> None:
        for store in (self.local, self.lockout, self.vault, self.totp_store, self.pins):
            store.close()

    def source_allowed(self, ip: str, user: str | None = None) -> bool:
        ok = self.sources.allowed(ip, user)
        if not ok:
            log.warning("bastion: refused %s%s: source address not allowed", ip, f" ({user})" if user else "")
        return ok

    def locked(self, user: str, ip: str) -> bool:
        return self.lockout.locked(user, ip)

    def _fail(self, user: str, ip: str, why: str) -> None:
        locked = self.lockout.failure(user, ip)
        log.warning("bastion: log-in of %s from %s refused: %s%s", user, ip, why, "; now locked out" if locked else "")

    def password(self, user: str, password: str, ip: str) -> Identity | None:
        if self.lockout.locked(user, ip):
            log.warning("bastion: log-in of %s from %s refused: locked out", user, ip)
            return None
        # A local entry decides for its user (even disabled): LDAP is asked only about names the bastion lacks.
        if self.local.exists(user) or self.ldap is None:
            who = self.local.password(user, password)
        else:
            who = self.ldap.password(user, password)
        if who is None:
            self._fail(user, ip, "wrong password, unknown or disabled user")
            return None
        self.lockout.success(user)
        return who

    def public_key(self, user: str, key: asyncssh.SSHKey, ip: str) -> Identity | None:
        # A key that does not match is not counted as a failure: clients offer each of their keys in turn.
        if self.lockout.locked(user, ip):
            return None
        wanted = key.export_public_key("openssh").split()[:2]
        # As for passwords, a local entry decides for its user; LDAP (its service account) is asked about others.
        directory: LocalDirectory | LdapDirectory = (
            self.local if self.ldap is None or self.local.exists(user) else self.ldap
        )
        for known in directory.public_keys(user):
            if known.export_public_key("openssh").split()[:2] == wanted:
                return directory.identity(user)
        return None

    def mfa_needed(self, who: Identity, ip: str, key_fingerprint: str | None) -> bool:
        if self.cfg.mfa == "off":
            return False
        if self.cfg.mfa == "optional" and not self.totp_store.enrolled(who.user):
            return False
        return not self.grace.active(who.user, ip, key_fingerprint)

    def totp(self, who: Identity, code: str, ip: str, key_fingerprint: str | None) -> bool:
        if self.lockout.locked(who.user, ip):
            return False
        if not self.totp_store.enrolled(who.user):
            self._fail(who.user, ip, f"no TOTP secret (cloudsoc bastion mfa enrol {who.user})")
            return False
        try:
            good = self.totp_store.verify(who.user, code)
        except VaultError as exc:
            # The secrets are sealed with the vault key: without it nobody passes, and the operator must hear why.
            log.error("bastion: TOTP of %s cannot be checked: %s", who.user, exc)
            return False
        if not good:
            self._fail(who.user, ip, "wrong or reused TOTP code")
            return False
        self.lockout.success(who.user)
        self.grace.start(who.user, ip, key_fingerprint)
        return True

    def targets(self, who: Identity) -> list[Target]:
        return self.inventory.targets(who.user, who.groups)

    def credential(self, target: Target) -> Credential:
        return self.vault.get(target.host, target.system_user)

    def pin_host_key(self, target: Target, key: asyncssh.SSHKey) -> Literal["pinned", "new", "mismatch"]:
        return self.pins.check(target.address, target.port, key)
