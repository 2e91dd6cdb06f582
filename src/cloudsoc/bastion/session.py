"""One proxied channel: the user's SSH channel on the bastion bridged to a channel on the upstream host.

Bytes go both ways at once, with flow control (a slow side pauses the other), and everything else is off
that path: the recorder and the command extractor get the bytes in batches (every 50 ms, and before each
Enter is judged), because a terminal emulator costs far more per byte than forwarding does. At Enter in a
shell the line being typed is checked by the command filter; a rejected line is erased upstream with Ctrl-U
instead of being run."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import asyncssh
from asyncssh.misc import TermModes, TermSize

from cloudsoc.bastion.audit import AuditJournal
from cloudsoc.bastion.layout import BastionLayout
from cloudsoc.bastion.reviews import ReviewQueue
from cloudsoc.bastion.scplog import ScpMonitor
from cloudsoc.bastion.sessions import SessionLog
from cloudsoc.bastion.sftplog import SftpMonitor
from cloudsoc.bastion.terminal import SECRET_PROMPT
from cloudsoc.errors import BastionError

if TYPE_CHECKING:
    from cloudsoc.config.bastion import BastionConfig

_BATCH_SECS = 0.05
# An Enter that arrives before the shell echoed the keys typed before it (a paste, a script, a fast typist) is
# held until the echo is on the screen, else the filter would judge the line without them: the echo counts as
# complete once output pauses for _ECHO_SETTLE, and the wait ends at _ECHO_WAIT (a secret prompt never echoes).
_ECHO_SETTLE = 0.015
_ECHO_WAIT = 0.4
# Output of an exec request without a terminal (`ssh host cat file`, scp-like use) is a transfer, not a screen:
# the recording keeps its first MiB and a marker with the size of the rest, the journal keeps the command.
_EXEC_RECORD_CAP = 1 << 20
_RELAY_BUFFER = 1 << 20
_EXTRACT_TAIL = 64 << 10
# The upstream leg's ciphers: asyncssh's chacha20-poly1305 takes several cryptography calls per packet, AES-GCM
# one (with AES-NI); the bastion carries every byte twice, so this is most of its throughput.
UPSTREAM_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr")
_RED, _RESET = "\x1b[1;31m", "\x1b[0m"
_YELLOW, _GREEN = "\x1b[1;33m", "\x1b[1;32m"
# How often a held command's request is read for a decision (a reviewer acts from another process).
_REVIEW_POLL = 0.5


class Recorder(Protocol):
    """What a session needs of ``asciicast.CastWriter``."""

    def output(self, t: float, data: bytes) -> None: ...
    def input(self, t: float, data: bytes) -> None: ...
    def resize(self, t: float, width: int, height: int) -> None: ...
    def marker(self, t: float, label: str) -> None: ...
    def close(self) -> Any: ...


class Extractor(Protocol):
    """What a session needs of ``terminal.CommandExtractor``; returned commands have text/time/cwd."""

    screen: Any  # screen.TermScreen: the filter asks it for full-screen mode and secret prompts

    def output(self, t: float, data: bytes) -> list[Any]: ...
    def input(self, t: float, data: bytes) -> list[Any]: ...
    def resize(self, width: int, height: int) -> None: ...
    def pending(self) -> str | None: ...
    def close(self, t: float) -> list[Any]: ...


class Filter(Protocol):
    """What a session needs of ``filters.CommandFilter``; the verdict has action/rule/group/risk/reason."""

    def check(self, line: str, *, user: str, groups: Iterable[str] = (), host_groups: Iterable[str] = ()) -> Any: ...


class GateLike(Protocol):
    """What the server and sessions ask of ``gate.Gate`` (docs/specs/bastion.md)."""

    def source_allowed(self, ip: str, user: str | None = None) -> bool: ...
    def locked(self, user: str, ip: str) -> bool: ...
    def password(self, user: str, password: str, ip: str) -> Any: ...
    def public_key(self, user: str, key: asyncssh.SSHKey, ip: str) -> Any: ...
    def mfa_needed(self, who: Any, ip: str, key_fingerprint: str | None) -> bool: ...
    def totp(self, who: Any, code: str, ip: str, key_fingerprint: str | None) -> bool: ...
    def targets(self, who: Any) -> list[Any]: ...
    def credential(self, target: Any) -> Any: ...
    def pin_host_key(self, target: Any, key: asyncssh.SSHKey) -> Literal["pinned", "new", "mismatch"]: ...
    def close(self) -> None: ...


RecorderFactory = Callable[..., Recorder]
ExtractorFactory = Callable[[int, int], Extractor]


def refusal_text(verdict: Any) -> str:
    """What the user's terminal shows when a typed line is refused (the demo's recordings show the same)."""
    return f"\r\n{_RED}[bastion] command refused: {verdict.reason or verdict.rule}{_RESET}\r\n"


class _Held:
    """A command waiting for a reviewer: what to send upstream once approved, and what to journal."""

    def __init__(self, review_id: str, t: float, line: str, enter: bytes, fields: dict[str, Any]) -> None:
        self.id, self.t, self.line, self.enter, self.fields = review_id, t, line, enter, fields
        self.task: asyncio.Task[None] | None = None


def _review_extra(review_id: str, status: str, by: str | None = None) -> dict[str, Any]:
    review = {"id": review_id, "status": status, **({"by": by} if by else {})}
    return {"cloudsoc": {"bastion": {"review": review}}}


class _Upstream(asyncssh.SSHClientSession[bytes]):
    """asyncssh's callbacks for the upstream channel, handed straight to the ProxySession."""

    def __init__(self, proxy: ProxySession) -> None:
        self.proxy = proxy

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self.proxy.upstream_data(data, datatype)

    def eof_received(self) -> bool:
        self.proxy.upstream_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.proxy.upstream_closed(exc)

    def pause_writing(self) -> None:
        self.proxy.pause_client()

    def resume_writing(self) -> None:
        self.proxy.resume_client()


class ProxySession(asyncssh.SSHServerSession[bytes]):
    """The user's channel: pty/shell/exec/sftp requests, then a bridge to the chosen host (or the host menu)."""

    def __init__(
        self,
        *,
        cfg: BastionConfig,
        home: Path,
        gate: GateLike,
        who: Any,
        source_ip: str,
        target: Any | None,
        targets: list[Any],
        command_filter: Filter,
        recorder: RecorderFactory,
        extractor: ExtractorFactory,
        journal: AuditJournal,
        log: SessionLog,
        reviews: ReviewQueue | None = None,
        refusal: str | None = None,
    ) -> None:
        self.cfg, self.home, self.gate, self.who = cfg, home, gate, who
        self.user = str(who.user)
        self.source_ip = source_ip
        self.target = target
        self.targets = targets
        self.refusal = refusal
        self.filter = command_filter
        self.make_recorder, self.make_extractor = recorder, extractor
        self.journal, self.log, self.reviews = journal, log, reviews
        self.id = uuid.uuid4().hex[:16]
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.up_conn: asyncssh.SSHClientConnection | None = None
        self.up_chan: asyncssh.SSHClientChannel[bytes] | None = None
        self.term: str | None = None
        self.width, self.height = 80, 24
        self.kind: Literal["shell", "exec", "sftp"] = "shell"
        self.command: str | None = None
        self.start = time.monotonic()
        self.last_activity = self.start
        self.recording: Recorder | None = None
        self.recording_path: Path | None = None
        self.extract: Extractor | None = None
        self.batch: list[tuple[str, float, bytes]] = []
        self.batch_handle: asyncio.TimerHandle | None = None
        self.bytes_in = self.bytes_out = 0
        self.commands = 0
        self.status = "closed"
        self.closed = False
        self.menu_line = ""
        self.menu_filter = ""
        self.timers: list[asyncio.TimerHandle] = []
        self.pending_input: list[bytes] = []
        self.transfers: SftpMonitor | ScpMonitor | None = None  # a file-transfer protocol being watched
        self.unrecorded = 0
        self.exec_verdict: dict[str, Any] = {}
        # The line as typed since the last Enter/Ctrl-U/Ctrl-C while it holds only printable keys and backspaces:
        # then it is exactly what the shell gets, whatever the screen shows (typed ahead of a prompt, its echo
        # lands before the prompt); None once a key edits in ways only the screen shows (Tab, arrows, Ctrl-R).
        self.typed: bytearray | None = bytearray()
        # Lines already journalled at Enter (warn/review), so the extractor's copy is not journalled twice.
        self.judged: list[str] = []
        self.unechoed = False  # keys sent upstream since its last output
        self.held: list[bytes] | None = None  # client bytes from a held Enter on (see _ECHO_WAIT)
        self.held_timers: list[asyncio.TimerHandle] = []
        self.review: _Held | None = None  # a command waiting for a reviewer (see reviews.py)
        self.out: list[bytes] = []  # upstream output for the user, joined per event-loop tick (_send_out)
        self.out_handle: asyncio.Handle | None = None

    # -- the user's channel -------------------------------------------------------------------------------

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self.chan = chan

    def pty_requested(self, term_type: str, term_size: TermSize, term_modes: TermModes) -> bool:
        self.term = term_type
        if term_size[0] and term_size[1]:
            self.width, self.height = term_size[0], term_size[1]
        return True

    def shell_requested(self) -> bool:
        self.kind = "shell"
        return True

    def exec_requested(self, command: str) -> bool:
        self.kind, self.command = "exec", command
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        if subsystem != "sftp":
            return False
        self.kind = "sftp"
        return True

    def session_started(self) -> None:
        assert self.chan is not None
        if self.refusal:
            self._refuse(self.refusal)
        elif self.target is None and self.kind == "shell" and self.term:
            self._menu_render()
        elif self.target is None:
            self._refuse("choose a host: ssh USER+HOST@bastion (or log in with a terminal for the host menu)")
        elif self.kind == "exec" and not self._exec_allowed():
            return
        else:
            self.chan.pause_reading()
            if self.review is None:
                asyncio.get_running_loop().create_task(self._open_upstream())

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        now = time.monotonic()
        self.last_activity = now
        if self.up_chan is None:
            if self.target is None:
                self._menu_input(data)
            else:
                self.pending_input.append(data)
            return
        self.bytes_in += len(data)
        if self.transfers is not None:
            self.up_chan.write(data)
            self._journal_transfers(self.transfers.client(data))
            return
        if self.kind == "shell":
            self._shell_input(now - self.start, data)
            return
        self.up_chan.write(data)
        self._queue("i", now - self.start, data)

    def eof_received(self) -> bool:
        if self.up_chan is not None:
            self.up_chan.write_eof()
        return True

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        self.width, self.height = width, height
        if self.up_chan is not None:
            self.up_chan.change_terminal_size(width, height, pixwidth, pixheight)
        self._flush()
        t = time.monotonic() - self.start
        if self.recording is not None:
            self.recording.resize(t, width, height)
        if self.extract is not None:
            self.extract.resize(width, height)

    def signal_received(self, signal: str) -> None:
        if self.up_chan is not None:
            self.up_chan.send_signal(signal)

    def break_received(self, msec: int) -> bool:
        if self.up_chan is not None:
            self.up_chan.send_break(msec)
        return True

    def pause_writing(self) -> None:
        if self.up_chan is not None:
            self.up_chan.pause_reading()

    def resume_writing(self) -> None:
        if self.up_chan is not None:
            self.up_chan.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end("closed" if exc is None else "error")

    # -- the upstream channel (called by _Upstream) ---------------------------------------------------------

    def upstream_data(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self.chan is None or self.closed:
            return
        now = time.monotonic()
        self.last_activity = now
        self.bytes_out += len(data)
        if datatype is None:
            # Joined with the rest of this burst and sent once the event loop is done with it (same tick): a pty
            # hands over ~4 KiB at a time, and one SSH packet (and one socket write) per piece was a third of
            # the bastion's CPU in a flood.
            self.out.append(data)
            if self.out_handle is None:
                self.out_handle = asyncio.get_running_loop().call_soon(self._send_out)
        else:
            self._send_out()
            self.chan.write(data, datatype)
        self.unechoed = False
        if self.held is not None:
            self._hold_timer(_ECHO_SETTLE)
        if self.transfers is not None:
            self._journal_transfers(self.transfers.server(data))
        elif self.kind == "exec" and self.term is None and self.bytes_out > _EXEC_RECORD_CAP:
            self.unrecorded += len(data)
        elif datatype is None:
            self._queue("o", now - self.start, data)

    def _send_out(self) -> None:
        """Send the user the upstream output waiting to be joined (before anything else is written to them)."""
        if self.out_handle is not None:
            self.out_handle.cancel()
            self.out_handle = None
        if not self.out:
            return
        data = self.out[0] if len(self.out) == 1 else b"".join(self.out)
        self.out.clear()
        if self.chan is not None and not self.closed:
            with contextlib.suppress(BrokenPipeError):  # the user's channel closed under it: nobody to tell
                self.chan.write(data)

    def upstream_eof(self) -> None:
        self._send_out()
        if self.chan is not None and not self.closed:
            self.chan.write_eof()

    def upstream_closed(self, exc: Exception | None) -> None:
        self._send_out()
        chan, up = self.chan, self.up_chan
        if chan is None or up is None or self.closed:
            return
        signal = up.get_exit_signal()
        status = up.get_exit_status()
        if signal:
            name, core, msg, lang = signal
            chan.exit_with_signal(name, core, msg, lang)
        else:
            chan.exit(status if status is not None and status >= 0 else 255)

    def pause_client(self) -> None:
        if self.chan is not None:
            self.chan.pause_reading()

    def resume_client(self) -> None:
        if self.chan is not None:
            self.chan.resume_reading()

    # -- opening the upstream -------------------------------------------------------------------------------

    async def _open_upstream(self) -> None:
        assert self.chan is not None and self.target is not None
        target = self.target
        mismatch = False

        gate = self.gate

        class _Pin(asyncssh.SSHClient):
            def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
                nonlocal mismatch
                verdict = gate.pin_host_key(target, key)
                mismatch = verdict == "mismatch"
                return not mismatch

        try:
            cred = self.gate.credential(target)
            keys = [asyncssh.import_private_key(cred.private_key)] if cred.private_key else []
            self.up_conn = await asyncio.wait_for(
                asyncssh.connect(
                    target.address,
                    target.port,
                    username=target.system_user,
                    client_factory=_Pin,
                    known_hosts=([], [], []),
                    client_keys=keys,
                    password=cred.password,
                    agent_path=None,
                    config=None,
                    preferred_auth=["publickey", "password", "keyboard-interactive"],
                    encryption_algs=list(UPSTREAM_CIPHERS),
                ),
                timeout=15,
            )
            self.up_chan, _ = await self.up_conn.create_session(
                lambda: _Upstream(self),
                self.command if self.kind == "exec" else None,
                subsystem="sftp" if self.kind == "sftp" else None,
                term_type=self.term if self.kind != "sftp" else None,
                term_size=(self.width, self.height) if self.term else None,
                encoding=None,
            )
        except (OSError, asyncssh.Error, BastionError, TimeoutError, ValueError) as exc:
            # ValueError: asyncssh's KeyImportError, a vault entry that is not a usable private key.
            if mismatch:
                self._audit("bastion-login", "failure", reason="upstream host key mismatch", risk="critical", sync=True)
                self._refuse(
                    f"the host key of {target.host} does not match the pinned one: refused (possible "
                    f"interception; if the host was rebuilt, an administrator checks its new key and runs "
                    f"`cloudsoc bastion hosts forget {target.host}`)"
                )
            else:
                self._refuse(f"cannot reach {target.host}: {exc}")
            return
        self._started()

    def _started(self) -> None:
        assert self.chan is not None and self.up_chan is not None and self.target is not None
        # asyncssh pauses a writer at 64 KiB buffered; a relay that stops reading that early stalls each hop
        # in turn. A deeper buffer keeps both windows flowing (still bounded: reading pauses beyond it).
        self.chan.set_write_buffer_limits(high=_RELAY_BUFFER)
        self.up_chan.set_write_buffer_limits(high=_RELAY_BUFFER)
        stamp = datetime.now(UTC)
        if self.kind != "sftp":
            self.recording_path = (
                BastionLayout.of(self.home).recordings / stamp.strftime("%Y/%m/%d") / f"{self.id}.cast.gz"
            )
            self.recording_path.parent.mkdir(parents=True, exist_ok=True)
            self.recording = self.make_recorder(
                self.recording_path,
                width=self.width,
                height=self.height,
                timestamp=int(stamp.timestamp()),
                title=f"{self.user}@{self.target.host}",
                env={"TERM": self.term or "", "SHELL": self.command or ""},
            )
        if self.kind == "shell":
            self.extract = self.make_extractor(self.width, self.height)
        self.log.register(self.id, self.terminate)
        self.log.background(
            self.log.start,
            self.id,
            user=self.user,
            source_ip=self.source_ip,
            target=self.target.host,
            system_user=self.target.system_user,
            kind=self.kind,
            recording=self.recording_path,
        )
        self._audit("bastion-session", "success", reason=f"{self.kind} started")
        if self.kind == "exec":
            self.commands += 1
            self._audit(
                "bastion-exec", "success", command_line=self.command, offset=0.0, sync=True, **self.exec_verdict
            )
        if self.kind == "sftp":
            self.transfers = SftpMonitor()
        elif self.kind == "exec" and self.command is not None:
            self.transfers = ScpMonitor.for_command(self.command)  # legacy `scp -O`: files named in the byte stream
        loop = asyncio.get_running_loop()
        self._arm_idle()
        self.timers.append(loop.call_later(self.cfg.max_session_hours * 3600, self.terminate, "maximum session length"))
        for data in self.pending_input:
            self.data_received(data, None)
        self.pending_input.clear()
        self.chan.resume_reading()

    def _exec_allowed(self) -> bool:
        """`ssh user+host@bastion CMD` goes through the same filter as a line typed in a shell."""
        assert self.target is not None and self.command is not None
        verdict = self.filter.check(
            self.command, user=self.user, groups=getattr(self.who, "groups", ()), host_groups=self.target.host_groups
        )
        if verdict.action == "accept":
            return True
        fields = {"verdict": verdict.action, "rule": verdict.rule, "group": verdict.group, "risk": verdict.risk}
        if verdict.action == "review" and self.reviews is not None:
            self.exec_verdict = {**fields, "reason": verdict.reason}
            self._hold_for_review(0.0, self.command, b"", verdict)
            return True
        if verdict.action != "reject":
            self.exec_verdict = {**fields, "reason": verdict.reason}
            return True
        self._audit("bastion-exec", "failure", command_line=self.command, reason=verdict.reason, sync=True, **fields)
        self._refuse(f"command refused: {verdict.reason or verdict.rule}")
        return False

    # -- Enter in a shell: the command filter ---------------------------------------------------------------

    def _shell_input(self, t: float, data: bytes) -> None:
        assert self.up_chan is not None
        if self.review is not None:
            self._review_input(data)
            return
        if self.held is not None:
            self.held.append(data)  # behind a held Enter: order is kept
            return
        start = 0
        for i, byte in enumerate(data):
            if byte not in (13, 10):
                continue
            self._send_keys(t, data[start:i])
            if self.unechoed and self.typed is None and self.extract is not None:
                self.held = [data[i:]]
                assert self.chan is not None
                self.chan.pause_reading()
                self._hold_timer(_ECHO_WAIT)
                return
            self._enter(t, data[i : i + 1])
            start = i + 1
            if self.review is not None:
                self._review_input(data[start:])
                return
        self._send_keys(t, data[start:])

    def _send_keys(self, t: float, keys: bytes) -> None:
        if not keys:
            return
        assert self.up_chan is not None
        self.up_chan.write(keys)
        self._queue("i", t, keys)
        self.unechoed = True
        for byte in keys:
            if byte in (0x15, 0x03):
                self.typed = bytearray()
            elif self.typed is None:
                continue
            elif byte in (0x7F, 0x08):
                if self.typed:
                    del self.typed[-1]
            elif 0x20 <= byte < 0x7F:
                self.typed.append(byte)
            else:
                self.typed = None

    def _hold_timer(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        if delay == _ECHO_WAIT:
            self.held_timers.append(loop.call_later(delay, self._release))
        else:
            # Each output moves the settle point; the _ECHO_WAIT deadline (the first timer) stays.
            for timer in self.held_timers[1:]:
                timer.cancel()
            del self.held_timers[1:]
            self.held_timers.append(loop.call_later(delay, self._release))

    def _release(self) -> None:
        """The echo is in (or will not come): judge the held Enter, then go on with what followed it."""
        for timer in self.held_timers:
            timer.cancel()
        self.held_timers.clear()
        if self.held is None or self.closed or self.up_chan is None:
            self.held = None
            return
        data, self.held = b"".join(self.held), None
        self.unechoed = False
        t = time.monotonic() - self.start
        self._enter(t, data[:1])
        if len(data) > 1:
            self._shell_input(t, data[1:])
        if self.held is None and self.chan is not None:
            self.chan.resume_reading()

    def _enter(self, t: float, enter: bytes) -> None:
        """Enter in a shell: the line (as typed, else as the screen shows it) goes through the filter."""
        assert self.up_chan is not None
        self._flush()
        typed, self.typed = self.typed, bytearray()
        screen = self.extract.screen if self.extract is not None else None
        line: str | None = None
        if screen is not None and screen.alt:
            line = None  # a full-screen program has the keys, not the shell
        elif screen is not None and SECRET_PROMPT.search(screen.text(screen.cursor.y, 0, screen.cursor.x)):
            line = None  # a password is neither a command nor to be journalled
        elif typed is not None:
            line = typed.decode()
        elif self.extract is not None:
            line = self.extract.pending()
        if line and line.strip():
            enter = self._judge(t, line, enter)
        if enter:  # nothing while the line waits for a reviewer
            self.up_chan.write(enter)
            self._queue("i", t, enter)

    def _judge(self, t: float, line: str, enter: bytes) -> bytes:
        assert self.target is not None and self.chan is not None
        verdict = self.filter.check(
            line, user=self.user, groups=getattr(self.who, "groups", ()), host_groups=self.target.host_groups
        )
        if verdict.action == "accept":
            return enter
        self.commands += 1
        fields: dict[str, Any] = {
            "command_line": line,
            "offset": t,
            "verdict": verdict.action,
            "rule": verdict.rule,
            "group": verdict.group,
            "risk": verdict.risk,
            "reason": verdict.reason,
            "sync": True,
        }
        if verdict.action == "review" and self.reviews is not None:
            self.judged.append(line.strip())
            self._hold_for_review(t, line, enter, verdict)
            return b""
        if verdict.action != "reject":
            self.judged.append(line.strip())
            self._audit("bastion-command", "success", **fields)
            return enter
        self._flush()
        if self.recording is not None:
            self.recording.marker(t, f"rejected: {line} ({verdict.rule})")
        self._audit("bastion-command", "failure", **fields)
        self._send_out()
        self.chan.write(refusal_text(verdict).encode())
        return b"\x15"

    # -- review: a command held until a reviewer decides -------------------------------------------------

    def _hold_for_review(self, t: float, line: str, enter: bytes, verdict: Any) -> None:
        """Hold ``line`` (its Enter not sent; an exec not started), ask for a review, and wait for the decision."""
        assert self.chan is not None and self.target is not None and self.reviews is not None
        timeout = self.cfg.review_timeout_minutes * 60
        review_id = self.reviews.request(
            session_id=self.id,
            user=self.user,
            source_ip=self.source_ip,
            target=self.target.host,
            system_user=self.target.system_user,
            kind=self.kind,
            command=line,
            rule=verdict.rule or "",
            group=verdict.group or "",
            reason=verdict.reason or "",
            risk=verdict.risk or "",
            timeout_secs=timeout,
        )
        fields = {"verdict": "review", "rule": verdict.rule, "group": verdict.group, "risk": verdict.risk}
        self.review = _Held(review_id, t, line, enter, {**fields, "reason": verdict.reason})
        self._flush()
        if self.recording is not None:
            self.recording.marker(t, f"held for review {review_id}: {line} ({verdict.rule})")
        # Journalled now, so the alert (and its outputs) reach the reviewers while the user waits.
        self._audit(
            "bastion-exec" if self.kind == "exec" else "bastion-command",
            "unknown",
            command_line=line,
            offset=t,
            sync=True,
            extra=_review_extra(review_id, "pending"),
            **self.review.fields,
        )
        minutes = f"{self.cfg.review_timeout_minutes:g}"
        message = (
            f"[bastion] this command needs a reviewer's approval ({verdict.reason or verdict.rule}).\r\n"
            f"[bastion] request {review_id}: `cloudsoc bastion reviews approve {review_id}` or the console's "
            f"Bastion page; waiting up to {minutes} min"
            + (", Ctrl-C cancels" if self.kind == "shell" else "")
            + ".\r\n"
        )
        self._send_out()
        if self.kind == "shell":
            self.chan.write(f"\r\n{_YELLOW}{message}{_RESET}".encode())
        else:
            self.chan.write_stderr(message.encode())
        self.review.task = asyncio.get_running_loop().create_task(self._await_review(timeout))

    async def _await_review(self, timeout: float) -> None:
        held, reviews = self.review, self.reviews
        assert held is not None and reviews is not None
        deadline = time.monotonic() + timeout
        status: str | None = "pending"
        while status == "pending" and not self.closed:
            await asyncio.sleep(_REVIEW_POLL)
            status = reviews.status(held.id)
            if status == "pending" and time.monotonic() >= deadline:
                status = reviews.settle(held.id, "expired")
        if not self.closed:
            self._reviewed(status or "expired")

    def _review_input(self, data: bytes) -> None:
        """Keys while a command waits: Ctrl-C cancels it; the rest is dropped (nothing runs behind its back)."""
        if b"\x03" in data and self.review is not None and self.reviews is not None:
            if self.review.task is not None:
                self.review.task.cancel()
            self._reviewed(self.reviews.settle(self.review.id, "cancelled"))

    def _reviewed(self, status: str) -> None:
        """The decision: approved → the Enter goes (or the exec starts); anything else → the line is erased."""
        held, self.review = self.review, None
        if held is None or self.chan is None or self.closed:
            return
        decided = self.reviews.get(held.id) if self.reviews is not None else None
        by = (decided or {}).get("decided_by")
        t = time.monotonic() - self.start
        approved = status == "approved"
        self._flush()
        if self.recording is not None:
            self.recording.marker(t, f"review {held.id} {status}" + (f" by {by}" if by else ""))
        if self.kind != "exec" or not approved:
            self._audit(
                "bastion-exec" if self.kind == "exec" else "bastion-command",
                "success" if approved else "failure",
                command_line=held.line,
                offset=held.t,
                sync=True,
                extra=_review_extra(held.id, status, by),
                **held.fields,
            )
        note = f"[bastion] request {held.id} {status}" + (f" by {by}" if by else "")
        if self.kind == "exec":
            if approved:
                # Journalled (outcome success) when the upstream exec starts, as an exec without review is.
                self.exec_verdict = {**held.fields, "extra": _review_extra(held.id, status, by)}
                self.chan.write_stderr(f"{note}\r\n".encode())
                asyncio.get_running_loop().create_task(self._open_upstream())
            else:
                self._refuse(f"command not run: request {held.id} {status}" + (f" by {by}" if by else ""))
            return
        assert self.up_chan is not None
        color = _GREEN if approved else _RED
        self._send_out()
        self.chan.write(f"{color}{note}{'' if approved else ': not run'}{_RESET}\r\n".encode())
        keys = held.enter if approved else b"\x15\r"
        self.up_chan.write(keys)
        self._queue("i", t, keys)

    # -- batches for the recorder and the extractor ------------------------------------------------------

    def _queue(self, code: str, t: float, data: bytes) -> None:
        if self.recording is None and self.extract is None:
            return
        self.batch.append((code, t, data))
        if self.batch_handle is None:
            self.batch_handle = asyncio.get_running_loop().call_later(_BATCH_SECS, self._flush)

    def _flush(self) -> None:
        if self.batch_handle is not None:
            self.batch_handle.cancel()
            self.batch_handle = None
        batch, self.batch = self.batch, []
        rec, ext = self.recording, self.extract
        if rec is not None:
            for code, t, data in self._coalesce(batch):
                if code == "o":
                    rec.output(t, data)
                else:
                    rec.input(t, data)
        if ext is None:
            return
        skip_until = self._extract_from(batch)
        # The batch's first output stays too: it holds the echo's line feed that a command waiting is read at.
        first = next((i for i, entry in enumerate(batch) if entry[0] == "o"), 0)
        kept = [entry for i, entry in enumerate(batch) if entry[0] != "o" or i >= skip_until or i == first]
        for code, t, data in self._coalesce(kept):
            self._commands(ext.output(t, data) if code == "o" else ext.input(t, data))

    @staticmethod
    def _coalesce(batch: list[tuple[str, float, bytes]]) -> list[tuple[str, float, bytes]]:
        """Runs of output chunks joined (at the first one's time): a pty hands over output in 4 KiB reads, and
        each call costs the recorder an event and the emulator a draw; one text lets the screen skip what
        scrolls off (screen.TermScreen.feed). Input chunks stay apart (each is a moment the replay shows)."""
        out: list[tuple[str, float, bytes]] = []
        run: list[bytes] = []
        t0 = 0.0
        for code, t, data in batch:
            if code == "o":
                if not run:
                    t0 = t
                run.append(data)
                continue
            if run:
                out.append(("o", t0, b"".join(run)))
                run = []
            out.append((code, t, data))
        if run:
            out.append(("o", t0, b"".join(run)))
        return out

    @staticmethod
    def _extract_from(batch: list[tuple[str, float, bytes]]) -> int:
        """Index of the first output chunk the terminal emulator needs to see.

        A terminal emulator costs microseconds per byte and runs on the event loop all sessions share: a flood
        (`cat` of a big file in a shell) would stall every session. Only the last _EXTRACT_TAIL bytes of output
        in a batch can still be on a screen, so earlier chunks are recorded but not emulated."""
        total = 0
        for i in range(len(batch) - 1, -1, -1):
            code, _, data = batch[i]
            if code == "o":
                total += len(data)
                if total > _EXTRACT_TAIL:
                    return i  # this chunk still goes in whole: SSH delivers at most 32 KiB or so at a time
        return 0

    def _commands(self, commands: list[Any]) -> None:
        for command in commands:
            if getattr(command, "interrupted", False):
                continue  # Ctrl-C on a typed line: nothing ran (the recording still shows it)
            if command.text.strip() in self.judged:
                self.judged.remove(command.text.strip())
                continue
            self.commands += 1
            self._audit(
                "bastion-command",
                "success",
                command_line=command.text,
                cwd=getattr(command, "cwd", None),
                offset=command.time,
                verdict="accept",
            )

    def _journal_transfers(self, ops: list[dict[str, Any]]) -> None:
        """Journal the file operations an SFTP or legacy SCP monitor saw."""
        etype = {"upload": "creation", "download": "access", "remove": "deletion", "rmdir": "deletion"}
        action = "bastion-scp" if isinstance(self.transfers, ScpMonitor) else "bastion-sftp"
        for op in ops:
            size = {"size": op["bytes"]} if "bytes" in op else {}
            file: dict[str, Any] = {"path": op["path"], **size}
            if "name" in op:
                file["name"] = op["name"]
            if "target" in op:
                file["target_path"] = op["target"]
            self.commands += 1
            self._audit(
                action,
                "success" if op["ok"] else "failure",
                command_line=f"{op['op']} {op['path']}" + (f" {op['target']}" if "target" in op else ""),
                offset=time.monotonic() - self.start,
                reason=op.get("error") or None,
                extra={"file": file, "event": {"type": [etype.get(op["op"], "change")]}},
            )

    # -- timers, kill, end --------------------------------------------------------------------------------

    def _arm_idle(self) -> None:
        idle = self.cfg.idle_minutes * 60
        wait = self.last_activity + idle - time.monotonic()
        if wait <= 0:
            self.terminate(f"idle for {self.cfg.idle_minutes:g} minutes")
            return
        self.timers.append(asyncio.get_running_loop().call_later(wait, self._arm_idle))

    def terminate(self, reason: str) -> None:
        """Close the session and tell the user why (idle, too long, killed)."""
        if self.closed or self.chan is None:
            return
        self.status = "killed" if "administrator" in reason else "timeout"
        self._audit("bastion-session", "success", reason=f"closed: {reason}")
        self._send_out()
        self.chan.write(f"\r\n{_RED}[bastion] session closed: {reason}{_RESET}\r\n".encode())
        self.chan.exit(255)
        self._end(self.status)

    def _refuse(self, message: str) -> None:
        assert self.chan is not None
        self.status = "refused"
        self._send_out()
        self.chan.write_stderr(f"[bastion] {message}\r\n".encode())
        self.chan.exit(1)

    def _end(self, status: str) -> None:
        if self.closed:
            return
        self._send_out()
        self.closed = True
        for timer in self.timers + self.held_timers:
            timer.cancel()
        if self.review is not None and self.reviews is not None:
            if self.review.task is not None:
                self.review.task.cancel()
            self.reviews.settle(self.review.id, "cancelled")  # the user left: nobody should approve it any more
            self.review = None
        self._flush()
        t = time.monotonic() - self.start
        if self.extract is not None:
            self._commands(self.extract.close(t))
        if self.recording is not None:
            if self.unrecorded:
                self.recording.marker(t, f"{self.unrecorded} more bytes of output not recorded (exec without a pty)")
            self.recording.close()
        if self.up_conn is not None:
            self.up_conn.close()
        if self.target is not None and self.up_chan is not None:
            final = self.status if self.status != "closed" else status
            self.log.forget(self.id)
            self.log.background(
                self.log.finish,
                self.id,
                status=final,
                bytes_in=self.bytes_in,
                bytes_out=self.bytes_out,
                commands=self.commands,
            )
            self._audit("bastion-session", "success", reason=f"ended ({final})", extra_end=True)
        self.log.background(self.journal.sync)

    def _audit(self, action: str, outcome: Literal["success", "failure", "unknown"], **fields: Any) -> None:
        sync = bool(fields.pop("sync", False))
        end = bool(fields.pop("extra_end", False))
        target = self.target
        extra: dict[str, Any] = fields.pop("extra", {})
        if end:
            extra["cloudsoc"] = {
                "bastion": {"bytes_in": self.bytes_in, "bytes_out": self.bytes_out, "commands": self.commands}
            }
        doc = AuditJournal.document(
            action,
            outcome,
            user=self.user,
            source_ip=self.source_ip,
            session_id=self.id,
            host=target.host if target is not None else None,
            host_ip=target.address if target is not None else None,
            labels=target.labels if target is not None else None,
            system_user=target.system_user if target is not None else None,
            extra=extra,
            **fields,
        )
        self.journal.write(doc, sync=sync)

    # -- the host menu (plain `alice` with a terminal) ------------------------------------------------------

    def _menu_choices(self) -> list[Any]:
        words = self.menu_filter.lower().split()
        return [
            t
            for t in self.targets
            if all(
                w in f"{t.host} {t.system_user} {' '.join(f'{k}={v}' for k, v in t.labels.items())}".lower()
                for w in words
            )
        ]

    def _menu_render(self, note: str = "") -> None:
        assert self.chan is not None
        lines = ["\x1b[2J\x1b[H\x1b[1mcloudsoc bastion\x1b[0m — hosts you may open", ""]
        choices = self._menu_choices()
        for n, t in enumerate(choices, 1):
            labels = " ".join(f"{k}={v}" for k, v in sorted(t.labels.items()))
            lines.append(f"  {n:>3}) {t.host:<24} {t.system_user:<12} {labels}")
        if not choices:
            lines.append("  (no host matches)")
        lines += [
            "",
            f"filter: {self.menu_filter}" if self.menu_filter else "",
            "number or name to connect, other text filters, empty clears, q quits",
        ]
        if note:
            lines.append(note)
        self.chan.write(("\r\n".join(lines) + "\r\nhost> ").encode())

    def _menu_input(self, data: bytes) -> None:
        assert self.chan is not None
        for ch in data.decode("utf-8", "replace"):
            if ch in "\r\n":
                self._menu_enter(self.menu_line.strip())
                self.menu_line = ""
                if self.target is not None or self.closed:
                    return
            elif ch in "\x7f\x08":
                if self.menu_line:
                    self.menu_line = self.menu_line[:-1]
                    self.chan.write(b"\x08 \x08")
            elif ch in "\x03\x04":
                self.chan.write(b"\r\n")
                self.chan.exit(0)
                return
            elif ch.isprintable():
                self.menu_line += ch
                self.chan.write(ch.encode())

    def _menu_enter(self, text: str) -> None:
        assert self.chan is not None
        if text == "q":
            self.chan.write(b"\r\nbye\r\n")
            self.chan.exit(0)
            return
        choices = self._menu_choices()
        chosen = None
        if text.isdigit() and 1 <= int(text) <= len(choices):
            chosen = choices[int(text) - 1]
        else:
            named = [t for t in self.targets if text in (t.host, f"{t.system_user}@{t.host}")]
            chosen = named[0] if named else None
        if chosen is None:
            self.menu_filter = text
            self._menu_render()
            return
        self.target = chosen
        self.chan.write(f"\r\nconnecting to {chosen.system_user}@{chosen.host} ...\r\n".encode())
        self.chan.pause_reading()
        asyncio.get_running_loop().create_task(self._open_upstream())
