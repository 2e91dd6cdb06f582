"""Stand-ins for the parts other branches build, written to their contracts in docs/specs/bastion.md so the real
Gate, CastWriter, CommandExtractor and CommandFilter replace them at merge. Only what the server tests need."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import asyncssh
import orjson
import pyotp

from cloudsoc.config.bastion import BastionConfig


@dataclass
class Identity:
    user: str
    groups: list[str]
    source: str = "local"


@dataclass
class Target:
    host: str
    address: str
    port: int
    system_user: str
    labels: dict[str, str] = field(default_factory=dict)
    host_groups: list[str] = field(default_factory=list)
    port_forwarding: bool = False


@dataclass(repr=False)
class Credential:
    password: str | None
    private_key: str | None


class StubGate:
    """One user (password, keys, TOTP secret) granted the config's hosts as the grants' first system user."""

    def __init__(
        self,
        cfg: BastionConfig,
        home: Path,
        *,
        user: str = "alice",
        password: str = "",
        totp_secret: str = "",
        keys: Iterable[asyncssh.SSHKey] = (),
        upstream_key: str = "",
    ) -> None:
        self.cfg, self.home = cfg, home
        self.user, self.secret, self.keys = user, totp_secret, list(keys)
        self._password = password
        self.upstream_key = upstream_key
        self.pins: dict[str, bytes] = {}
        self.failures: list[tuple[str, str]] = []

    def source_allowed(self, ip: str, user: str | None = None) -> bool:
        import ipaddress

        ranges = self.cfg.user_allow.get(user, self.cfg.allow) if user else self.cfg.allow
        return any(ipaddress.ip_address(ip) in ipaddress.ip_network(r) for r in ranges)

    def locked(self, user: str, ip: str) -> bool:
        return len(self.failures) >= self.cfg.max_failures

    def password(self, user: str, password: str, ip: str) -> Identity | None:
        if user == self.user and password and password == self._password:
            return Identity(user, ["ops"])
        self.failures.append((user, ip))
        return None

    def public_key(self, user: str, key: asyncssh.SSHKey, ip: str) -> Identity | None:
        known = {k.public_data for k in self.keys}
        return Identity(user, ["ops"]) if user == self.user and key.public_data in known else None

    def mfa_needed(self, who: Identity, ip: str, key_fingerprint: str | None) -> bool:
        return self.cfg.mfa != "off" and bool(self.secret)

    def totp(self, who: Identity, code: str, ip: str, key_fingerprint: str | None) -> bool:
        ok = pyotp.TOTP(self.secret).verify(code, valid_window=1)
        if not ok:
            self.failures.append((who.user, ip))
        return ok

    def targets(self, who: Identity) -> list[Target]:
        out = []
        for grant in self.cfg.grants:
            if who.user not in grant.users and not set(who.groups) & set(grant.groups):
                continue
            for name in grant.hosts:
                host = self.cfg.hosts[name]
                for system_user in grant.system_users:
                    out.append(
                        Target(
                            name,
                            host.address,
                            host.port,
                            system_user,
                            dict(host.labels),
                            list(host.groups),
                            grant.port_forwarding,
                        )
                    )
        return out

    def credential(self, target: Target) -> Credential:
        return Credential(password=None, private_key=self.upstream_key)

    def close(self) -> None:
        pass

    def pin_host_key(self, target: Target, key: asyncssh.SSHKey) -> Literal["pinned", "new", "mismatch"]:
        known = self.pins.get(target.host)
        if known is None:
            self.pins[target.host] = key.public_data
            return "new"
        return "pinned" if known == key.public_data else "mismatch"


class PlainCast:
    """CastWriter's contract, writing plain (uncompressed) asciicast v2 lines."""

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        timestamp: int,
        title: str = "",
        env: dict[str, str] | None = None,
        chunk_secs: float = 10.0,
    ) -> None:
        self.path = path
        self.file = path.open("wb")
        header = {"version": 2, "width": width, "height": height, "timestamp": timestamp, "title": title}
        self.file.write(orjson.dumps(header) + b"\n")
        self.events = 0

    def _event(self, t: float, code: str, data: str) -> None:
        self.events += 1
        self.file.write(orjson.dumps([round(t, 6), code, data]) + b"\n")

    def output(self, t: float, data: bytes) -> None:
        self._event(t, "o", data.decode("utf-8", "replace"))

    def input(self, t: float, data: bytes) -> None:
        self._event(t, "i", data.decode("utf-8", "replace"))

    def resize(self, t: float, width: int, height: int) -> None:
        self._event(t, "r", f"{width}x{height}")

    def marker(self, t: float, label: str) -> None:
        self._event(t, "m", label)

    def close(self) -> dict[str, Any]:
        self.file.close()
        return {"path": self.path, "events": self.events}


@dataclass
class Command:
    text: str
    time: float
    prompt: str = ""
    cwd: str | None = None
    interrupted: bool = False


class LineSplitter:
    """CommandExtractor's contract without a terminal: the typed input, split on Enter (\\r)."""

    def __init__(self, width: int = 80, height: int = 24) -> None:
        self.line = ""

    def output(self, t: float, data: bytes) -> list[Command]:
        return []

    def input(self, t: float, data: bytes) -> list[Command]:
        done = []
        for ch in data.decode("utf-8", "replace"):
            if ch == "\r":
                if self.line.strip():
                    done.append(Command(self.line, t))
                self.line = ""
            elif ch in "\x15\x03":
                self.line = ""
            elif ch == "\x7f":
                self.line = self.line[:-1]
            elif ch.isprintable():
                self.line += ch
        return done

    def resize(self, width: int, height: int) -> None:
        pass

    def pending(self) -> str | None:
        return self.line

    def close(self, t: float) -> list[Command]:
        return []


@dataclass
class Verdict:
    action: Literal["accept", "warn", "review", "reject"]
    rule: str = ""
    group: str = ""
    risk: str = "low"
    reason: str = ""


class PrefixFilter:
    """CommandFilter's contract: lines starting with one of the prefixes are rejected."""

    def __init__(self, prefixes: Iterable[str] = ("rm -rf /",), warn: Iterable[str] = ()) -> None:
        self.prefixes, self.warn = tuple(prefixes), tuple(warn)

    def check(self, line: str, *, user: str, groups: Iterable[str] = (), host_groups: Iterable[str] = ()) -> Verdict:
        line = line.strip()
        for prefix in self.prefixes:
            if line.startswith(prefix):
                return Verdict("reject", f"prefix:{prefix}", "test", "critical", f"`{prefix}` is not allowed here")
        for prefix in self.warn:
            if line.startswith(prefix):
                return Verdict("warn", f"warn:{prefix}", "test", "medium", "flagged")
        return Verdict("accept")
