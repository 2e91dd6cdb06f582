"""The bastion's SSH server: the source check, the log-in chain, target selection, and the channels.

Order per connection: the source address is checked when the TCP connection is made, before any key
exchange or authentication; then a first factor (public key, password, or a "Password:" keyboard-interactive
prompt for clients that only do that); then, when the gate says so, a TOTP code as keyboard-interactive.
asyncssh's server has no partial success: a method that succeeds ends authentication. The one hook we add is
per connection: while a second factor is owed, "success" is answered as a failure with partial_success=True
offering only keyboard-interactive, which is what RFC 4252 §5.1 and OpenSSH's AuthenticationMethods do."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import asyncssh

from cloudsoc.bastion.asciicast import CastWriter
from cloudsoc.bastion.audit import AuditJournal
from cloudsoc.bastion.filters import CommandFilter
from cloudsoc.bastion.gate import Gate
from cloudsoc.bastion.layout import BastionLayout
from cloudsoc.bastion.reviews import ReviewQueue
from cloudsoc.bastion.session import ExtractorFactory, Filter, GateLike, ProxySession, RecorderFactory
from cloudsoc.bastion.sessions import SessionLog
from cloudsoc.bastion.terminal import CommandExtractor
from cloudsoc.config.bastion import BastionConfig

# Offered to clients: AEAD first; chacha20-poly1305 is left out on purpose (asyncssh's runs at a third of
# AES-GCM's speed and a client that lists it first would get it); every OpenSSH since 6.2 has AES-GCM.
CLIENT_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr")
_PASSWORD_PROMPT = ("", "", "", [("Password: ", False)])
_TOTP_PROMPT = ("", "Two-factor authentication", "", [("Verification code: ", True)])


def split_login(login: str) -> tuple[str, str | None, str | None]:
    """``alice`` / ``alice+web-01`` / ``alice+deploy@web-01`` → (user, host, system user)."""
    user, plus, rest = login.partition("+")
    if not plus or not rest:
        return user, None, None
    system_user, at, host = rest.rpartition("@")
    return (user, host, system_user) if at else (user, rest, None)


class _Door(asyncssh.SSHServer):
    """One client connection's authentication state and channel requests."""

    def __init__(self, bastion: BastionServer) -> None:
        self.b = bastion
        self.conn: asyncssh.SSHServerConnection | None = None
        self.ip = ""
        self.user = ""
        self.host: str | None = None
        self.system_user: str | None = None
        self.who: Any = None
        self.key_fp: str | None = None
        self.mfa = False
        self.totp_ok = False
        self.first_done = False
        self.kbd_stage = "password"
        self.failures = 0

    # -- connection and the source check ----------------------------------------------------------------

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername")
        self.ip = str(peer[0]) if peer else ""
        if not self.b.gate.source_allowed(self.ip):
            self.b.login_event(None, self.ip, "failure", "source address not allowed", sync=True)
            conn.abort()
            return
        original = conn.send_userauth_success

        async def success_or_partial() -> None:
            # The single hook for two-factor log-ins (see the module docstring).
            if self.who is not None and self.mfa and not self.totp_ok:
                self.first_done = True
                self.kbd_stage = "totp"
                conn.send_userauth_failure(True)
                return
            await original()

        conn.send_userauth_success = success_or_partial  # type: ignore[method-assign]

    def begin_auth(self, username: str) -> bool:
        self.user, self.host, self.system_user = split_login(username)
        self.who, self.key_fp, self.mfa, self.totp_ok, self.first_done = None, None, False, False, False
        self.kbd_stage = "password"
        if not self.b.gate.source_allowed(self.ip, self.user):
            self._refuse("source address not allowed for this user")
        if self.b.gate.locked(self.user, self.ip):
            self._refuse("locked out after failed log-ins")
        return True

    def _refuse(self, reason: str) -> None:
        self.b.login_event(self.user or None, self.ip, "failure", reason, sync=True)
        raise asyncssh.DisconnectError(asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE, f"bastion: {reason}")

    def _failed(self, reason: str) -> None:
        self.failures += 1
        self.b.login_event(self.user, self.ip, "failure", reason)
        # asyncssh has no MaxAuthTries: a client re-answering keyboard-interactive would loop for ever.
        if self.failures >= self.b.cfg.max_failures:
            self._refuse(f"too many failed attempts ({self.failures})")

    def _first_factor(self, who: Any, key_fp: str | None) -> None:
        self.who, self.key_fp = who, key_fp
        self.mfa = self.b.gate.mfa_needed(who, self.ip, key_fp)

    # -- first factor -------------------------------------------------------------------------------------

    def public_key_auth_supported(self) -> bool:
        return not self.first_done

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # Called for the key query and again with the signature; only a verified signature ends in success.
        # In a thread: the keys of an LDAP user come from the directory.
        loop = asyncio.get_running_loop()
        who = await loop.run_in_executor(None, self.b.gate.public_key, self.user, key, self.ip)
        if who is None:
            return False
        self._first_factor(who, key.get_fingerprint())
        return True

    def password_auth_supported(self) -> bool:
        return not self.first_done

    async def validate_password(self, username: str, password: str) -> bool:
        return await self._password(password)

    async def _password(self, password: str) -> bool:
        loop = asyncio.get_running_loop()
        who = await loop.run_in_executor(None, self.b.gate.password, self.user, password, self.ip)
        if who is None:
            self._failed("wrong password")
            return False
        self._first_factor(who, None)
        return True

    # -- keyboard-interactive: a password for kbdint-only clients, then the TOTP code ---------------------

    def kbdint_auth_supported(self) -> bool:
        return True

    def get_kbdint_challenge(self, username: str, lang: str, submethods: str) -> Any:
        return _TOTP_PROMPT if self.kbd_stage == "totp" else _PASSWORD_PROMPT

    async def validate_kbdint_response(self, username: str, responses: Any) -> Any:
        if len(responses) != 1:
            return False
        if self.kbd_stage == "password":
            if not await self._password(responses[0]):
                return False
            self.first_done = True
            if self.mfa:
                self.kbd_stage = "totp"
                return _TOTP_PROMPT
            return True
        if self.who is None:
            return False
        # Off the event loop, like the password check: a code's check commits (replay guard, lock-out, grace).
        loop = asyncio.get_running_loop()
        if await loop.run_in_executor(None, self.b.gate.totp, self.who, responses[0].strip(), self.ip, self.key_fp):
            self.totp_ok = True
            return True
        self._failed("wrong TOTP code")
        return False

    def auth_completed(self) -> None:
        self.b.login_event(self.user, self.ip, "success", "mfa" if self.totp_ok else "single factor")

    # -- channels -----------------------------------------------------------------------------------------

    def session_requested(self) -> asyncssh.SSHServerSession[bytes]:
        targets = self.b.gate.targets(self.who)
        target, refusal = None, None
        if self.host is not None:
            fits = [t for t in targets if t.host == self.host and self.system_user in (None, t.system_user)]
            if len(fits) == 1:
                target = fits[0]
            elif fits:
                # Never a guess between accounts: root and a read-only user differ in what the session may do.
                names = ", ".join(t.system_user for t in fits)
                refusal = (
                    f"{self.host} has {len(fits)} system users granted to {self.user} ({names}): name one, "
                    f"e.g. ssh {self.user}+{fits[0].system_user}@{self.host}@<bastion>"
                )
            else:
                who = f"{self.system_user}@{self.host}" if self.system_user else self.host
                refusal = f"{who} is not granted to {self.user}"
        return ProxySession(
            cfg=self.b.cfg,
            home=self.b.home,
            gate=self.b.gate,
            who=self.who,
            source_ip=self.ip,
            target=target,
            targets=targets,
            refusal=refusal,
            command_filter=self.b.command_filter,
            recorder=self.b.recorder,
            extractor=self.b.extractor,
            journal=self.b.journal,
            log=self.b.log,
            reviews=self.b.reviews,
        )

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> Any:
        # `ssh -J alice@bastion deploy@web-01` asks for "web-01":22; the inventory name or its address both match,
        # and the connection goes to the inventory's address and port, never to a name the client chose.
        granted = [t for t in self.b.gate.targets(self.who) if dest_host in (t.host, t.address) and dest_port == t.port]
        allowed = [t for t in granted if t.port_forwarding]
        where = f"{dest_host}:{dest_port}"
        extra = {"destination": {"address": dest_host, "port": dest_port}}
        if not allowed or self.conn is None:
            reason = "port forwarding not granted" if granted else "not a granted host"
            self.b.login_event(self.user, self.ip, "failure", f"direct-tcpip to {where}: {reason}", extra=extra)
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, f"bastion: {where}: {reason}")
        target = allowed[0]
        self.b.login_event(self.user, self.ip, "success", f"direct-tcpip to {target.host} ({where})", extra=extra)
        return self.conn.forward_connection(target.address, target.port)

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        self.b.login_event(self.user, self.ip, "failure", f"remote forwarding {listen_host}:{listen_port} refused")
        return False


class BastionServer:
    """``cloudsoc bastion serve``: listens, authenticates through the gate, proxies sessions to granted hosts."""

    def __init__(
        self,
        cfg: BastionConfig,
        home: Path,
        gate: GateLike,
        *,
        command_filter: Filter,
        recorder: RecorderFactory,
        extractor: ExtractorFactory,
    ) -> None:
        self.cfg, self.home, self.gate = cfg, home, gate
        self.command_filter, self.recorder, self.extractor = command_filter, recorder, extractor
        self.journal = AuditJournal(home)
        self.log = SessionLog(home)
        self.reviews = ReviewQueue(home)
        self.server: asyncssh.SSHAcceptor | None = None
        self.poller: asyncio.Task[None] | None = None

    @classmethod
    def from_config(cls, cfg: BastionConfig, home: Path) -> BastionServer:
        """The production wiring: the real gate (directory, MFA, vault, pins under ``<home>/bastion``), the
        built-in and configured command filter, asciicast recordings and the terminal command extractor.
        Raises BastionError for an invalid inventory or command set, so ``serve`` fails before listening."""
        return cls(
            cfg,
            home,
            Gate(cfg, home),
            command_filter=CommandFilter.from_config(cfg),
            recorder=CastWriter,
            extractor=CommandExtractor,
        )

    def host_key(self) -> asyncssh.SSHKey:
        """The bastion's own key: generated (ed25519, mode 0600) on first start."""
        path = self.cfg.host_key or BastionLayout.of(self.home).host_key
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            key = asyncssh.generate_private_key("ssh-ed25519")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
            with os.fdopen(fd, "wb") as out:
                out.write(key.export_private_key())
            path.with_name(path.name + ".pub").write_bytes(key.export_public_key())
        return asyncssh.read_private_key(path)

    async def start(self, *, reuse_port: bool = False) -> int:
        """Listen; returns the port.

        ``reuse_port``: several worker processes, each with its own BastionServer, share the port (SO_REUSEPORT)
        and the kernel spreads connections over them. One asyncio process relays every byte of its sessions
        twice; at some thousands of keystrokes a second it fills a core, so run one worker per core. Sessions,
        kills and the journal are shared through bastion.db and O_APPEND files, so any worker serves any user.
        Generate the host key (``host_key()``) before starting the workers."""
        self.server = await asyncssh.create_server(
            lambda: _Door(self),
            self.cfg.host,
            self.cfg.port,
            server_host_keys=[self.host_key()],
            agent_forwarding=False,
            allow_scp=False,
            x11_forwarding=False,
            login_timeout=60,
            encoding=None,
            encryption_algs=list(CLIENT_CIPHERS),
            reuse_port=reuse_port,
        )
        self.poller = asyncio.get_running_loop().create_task(self._poll_kills())
        return int(self.server.sockets[0].getsockname()[1])

    async def _poll_kills(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.log.poll_kills()

    async def close(self) -> None:
        if self.poller is not None:
            self.poller.cancel()
        if self.server is not None:
            self.server.close()
            # asyncssh leaves open connections open: end them, so recordings are sealed and sessions journalled
            for session_id in self.log.live():
                self.log.kill(session_id, "stopped by an administrator: the bastion is shutting down")
            await self.server.wait_closed()
        self.log.close()  # first: its writer thread may still sync the journal
        self.reviews.close()
        self.journal.close()
        self.gate.close()

    def login_event(
        self,
        user: str | None,
        ip: str,
        outcome: Any,
        reason: str,
        *,
        sync: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> None:
        doc = AuditJournal.document("bastion-login", outcome, user=user, source_ip=ip, reason=reason, extra=extra)
        self.journal.write(doc, sync=sync or outcome != "success")
