"""Scripted bash sessions through the bastion (asyncssh client with a pty → bastion → Debian's sshd): the command
events in the journal, the recording against the client's own screen, asciinema reading the recording, the
filter judging what the screen shows, and the log-in rules (MFA grace, lock-out) through the real gate."""

from __future__ import annotations

import asyncio
import gzip
import os
import pty
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from cloudsoc.bastion.replay import render
from cloudsoc.bastion.screen import TermScreen
from tests.bastion.conftest import Bastion, MakeBastion
from tests.bastion.test_server import ended

PROMPT = "# "  # root's bash prompt on the upstream: `root@host:~# `
COLS, ROWS = 100, 30


class Terminal:
    """The client's side of a pty session: what it typed, and a screen fed with every byte it received."""

    def __init__(self, proc: asyncssh.SSHClientProcess[bytes]) -> None:
        self.proc = proc
        self.screen = TermScreen(COLS, ROWS)
        self.received = b""
        self.mark = 0  # len(received) when keys were last typed

    async def until(self, needle: str, timeout: float = 8.0) -> None:
        deadline = time.monotonic() + timeout
        while needle.encode() not in self.received:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not seen in {self.received[-400:]!r}")
            try:
                data = await asyncio.wait_for(self.proc.stdout.read(65536), left)
            except TimeoutError:
                continue
            if not data:
                raise AssertionError(f"EOF before {needle!r}: {self.received[-400:]!r}")
            self.received += data
            self.screen.feed(data.decode("utf-8", "replace"), skip=False)

    async def prompt(self, timeout: float = 8.0) -> None:
        """Wait, as a person does, until output since the last keys leaves a prompt left of the cursor."""
        deadline = time.monotonic() + timeout
        while not (len(self.received) > self.mark and self.left_of_cursor().endswith(PROMPT)):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no prompt at the end of {self.received[-400:]!r}")
            try:
                data = await asyncio.wait_for(self.proc.stdout.read(65536), min(left, 0.5))
            except TimeoutError:
                continue
            if not data:
                raise AssertionError("EOF before a prompt")
            self.received += data
            self.screen.feed(data.decode("utf-8", "replace"), skip=False)

    def left_of_cursor(self) -> str:
        return self.screen.text(self.screen.cursor.y, 0, self.screen.cursor.x)

    def type(self, keys: str) -> None:
        self.mark = len(self.received)
        self.proc.stdin.write(keys.encode())

    async def settle(self, secs: float = 0.3) -> None:
        """Read whatever arrives for a moment (a completion, a redraw)."""
        deadline = time.monotonic() + secs
        while (left := deadline - time.monotonic()) > 0:
            try:
                data = await asyncio.wait_for(self.proc.stdout.read(65536), left)
            except TimeoutError:
                break
            if not data:
                break
            self.received += data
            self.screen.feed(data.decode("utf-8", "replace"), skip=False)


async def shell(b: Bastion) -> tuple[asyncssh.SSHClientConnection, Terminal]:
    conn = await b.connect("alice+web-01")
    proc = await conn.create_process(term_type="xterm", term_size=(COLS, ROWS), encoding=None)
    term = Terminal(proc)
    # A prompt without the host name's variations, so that every test reads the same one.
    await term.until(PROMPT)
    return conn, term


def commands(b: Bastion) -> list[tuple[str, str, str]]:
    return [
        (d["process"]["command_line"], d["event"]["outcome"], d["cloudsoc"]["bastion"]["verdict"])
        for d in b.journal()
        if d["event"]["action"] == "bastion-command"
    ]


async def finish(b: Bastion, conn: asyncssh.SSHClientConnection, term: Terminal) -> dict[str, Any]:
    term.type("exit\r")
    await asyncio.wait_for(term.proc.wait_closed(), 8)
    term.screen.feed((await term.proc.stdout.read()).decode("utf-8", "replace"), skip=False)
    conn.close()
    (session,) = {d["session"]["id"] for d in b.journal() if d["event"]["action"] == "bastion-session"}
    return await ended(b.home, session)


@pytest.mark.skipif(shutil.which("vim") is None, reason="vim (Debian package) is not installed")
async def test_scripted_bash_commands_are_extracted_and_the_recording_replays(make_bastion: MakeBastion) -> None:
    b = await make_bastion()
    tag = uuid.uuid4().hex[:10]
    target = Path(f"/tmp/bwire-{tag}-complete.txt")
    edited = Path(f"/tmp/bwire-{tag}-vim.txt")
    conn, term = await shell(b)
    try:
        term.type(f"echo one-$((1)) > {target}\r")
        await term.prompt()
        # Tab completion: the shell finishes the name; the command is the completed one.
        term.type(f"cat /tmp/bwire-{tag}-comp\t")
        await term.settle()
        term.type("\r")
        await term.until("one-1")
        await term.prompt()
        # History recall: Up brings back the cat line, Ctrl-A and an edit at the start of it.
        term.type("\x1b[A")
        await term.settle()
        term.type("\x01wc -c < \x05 ; : recalled\r")
        await term.prompt()
        # Ctrl-C on a typed line: nothing runs, nothing is journalled as run.
        term.type("sleep 100")
        await term.settle(0.2)
        term.type("\x03")
        await term.prompt()
        # A full-screen program: the keys typed inside vim are not commands.
        term.type(f"vim -u NONE -n {edited}\r")
        await term.until("\x1b[?1049h")
        await term.settle(0.5)
        term.type("ihello from vim\x1b")
        await term.settle(0.2)
        term.type(":wq\r")
        await term.prompt()
        term.type("printf '\\033[1;32mgreen\\033[0m\\n'; seq 1 40\r")
        await term.until("40\r\n")
        await term.prompt()
        row = await finish(b, conn, term)
    finally:
        conn.close()
    assert edited.read_text() == "hello from vim\n"
    ran = [c for c, _, _ in commands(b)]
    assert ran == [
        f"echo one-$((1)) > {target}",
        f"cat {target}",
        f"wc -c < cat {target}  ; : recalled",  # the completion's space, recalled from history
        f"vim -u NONE -n {edited}",
        "printf '\\033[1;32mgreen\\033[0m\\n'; seq 1 40",
        "exit",
    ]
    # The recording, replayed, is the screen the client ended with.
    recording = Path(row["recording"])
    client = term.screen.rows()
    assert render(recording) == client
    assert "40" in client and any(line.endswith("# exit") for line in client)


async def test_asciinema_reads_the_recording_and_a_password_is_masked(
    make_bastion: MakeBastion, tmp_path: Path
) -> None:
    if shutil.which("asciinema") is None:
        pytest.skip("asciinema (Debian package) is not installed")
    b = await make_bastion()
    conn, term = await shell(b)
    try:
        term.type("read -s -p 'Password: ' pw; echo; echo got-${#pw}\r")
        await term.until("Password: ")
        await term.settle(0.2)
        term.type("hunter2-secret\r")
        await term.until("got-14")
        await term.prompt()
        term.type("echo visible-$((2*3))\r")
        await term.until("visible-6")
        await term.prompt()
        row = await finish(b, conn, term)
    finally:
        conn.close()
    text = gzip.decompress(Path(row["recording"]).read_bytes())
    assert b"hunter2" not in text and b"visible-6" in text
    assert "hunter2" not in str(b.journal())
    plain = tmp_path / "session.cast"
    plain.write_bytes(text)
    # asciinema cat opens /dev/tty, so it runs on a pseudo-terminal of its own (as in test_asciicast.py).
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("asciinema", ["asciinema", "cat", str(plain)])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out[-500:]
    assert b"visible-6" in out and b"got-14" in out


async def test_a_completed_line_is_judged_as_the_screen_shows_it(make_bastion: MakeBastion) -> None:
    """The built-in rules on a line finished by Tab: the typed keys alone do not say what would run."""
    b = await make_bastion()
    tag = uuid.uuid4().hex[:10]
    marker = Path(f"/tmp/bwire-{tag}-ran")
    image = Path(f"/tmp/bwire-{tag}-disk.img")
    image.write_bytes(b"")
    conn, term = await shell(b)
    try:
        term.type(f"touch {marker}; mkfs.ext4 -q /tmp/bwire-{tag}-di\t")
        await term.settle()
        term.type("\r")
        await term.until("command refused")
        await term.prompt()
        term.type("echo still-$((3+4))\r")
        await term.until("still-7")
        await term.prompt()
        await finish(b, conn, term)
    finally:
        conn.close()
        image.unlink()
    assert not marker.exists()
    (refused,) = [c for c in commands(b) if c[1] == "failure"]
    assert refused == (f"touch {marker}; mkfs.ext4 -q {image}", "failure", "reject")
    assert "echo still-$((3+4))" in [c for c, _, _ in commands(b)]


async def test_mfa_grace_for_the_same_key_and_address_with_the_real_client(make_bastion: MakeBastion) -> None:
    b = await make_bastion()
    asked = b.askpass.with_suffix(".log")
    rc, out, err = await b.ssh("alice+web-01", "echo first")
    assert (rc, out.strip()) == (0, "first"), err
    assert "code" in asked.read_text()
    asked.write_text("")
    # Within the grace, the same key from the same address is not asked: a wrong code would have failed.
    rc, out, err = await b.ssh("alice+web-01", "echo second", code="000000")
    assert (rc, out.strip()) == (0, "second"), err
    assert "code" not in asked.read_text()
    assert "partial success" not in err
    # A password log-in gets no grace (mfa.py): asked, and the wrong code refuses it.
    rc, out, _ = await b.ssh(
        "alice+web-01", "echo third", key=False, code="000000", options=("-o", "NumberOfPasswordPrompts=1")
    )
    assert rc == 255 and "third" not in out
    assert "code" in asked.read_text()


async def test_lockout_through_the_gate_refuses_even_the_right_password(make_bastion: MakeBastion) -> None:
    b = await make_bastion(max_failures=2)
    with pytest.raises(asyncssh.PermissionDenied):
        await b.connect("alice+web-01", password="wrong")
    assert b.gate.locked("alice", "127.0.0.1")
    with pytest.raises((asyncssh.PermissionDenied, asyncssh.DisconnectError)):
        await b.connect("alice+web-01")
    reasons = [d["event"].get("reason") for d in b.journal() if d["event"]["action"] == "bastion-login"]
    assert reasons[-1] == "locked out after failed log-ins"
    assert "success" not in [d["event"]["outcome"] for d in b.journal()]
    # The operator's unlock lets the right password in again.
    b.gate.lockout.unlock("alice")
    async with await b.connect("alice+web-01") as conn:
        assert (await conn.run("echo back", check=True)).stdout == "back\n"
