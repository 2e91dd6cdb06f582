"""A real interactive shell on a pseudo-terminal, typed at like a person, with both directions recorded.

Every byte the shell writes goes to a CastWriter and a CommandExtractor (what the bastion's session does), and
every key typed goes to both before it reaches the shell, so tests compare what was typed with what was read."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time
from collections.abc import Callable
from pathlib import Path

from cloudsoc.bastion.asciicast import CastWriter
from cloudsoc.bastion.terminal import Command, CommandExtractor


class PtyShell:
    def __init__(
        self,
        argv: list[str],
        home: Path,
        *,
        env: dict[str, str] | None = None,
        width: int = 80,
        height: int = 24,
        record: Path | None = None,
        chunk_secs: float = 10.0,
    ) -> None:
        self.extractor = CommandExtractor(width, height)
        self.writer = (
            CastWriter(record, width=width, height=height, timestamp=int(time.time()), chunk_secs=chunk_secs)
            if record
            else None
        )
        self.commands: list[Command] = []
        self.output_bytes = 0
        self.start = time.monotonic()
        base = {"TERM": "xterm", "HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        pid, fd = pty.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.chdir(home)
                os.execvpe(argv[0], argv, {**base, **(env or {})})
            finally:
                os._exit(127)  # never return into the caller's code (its cleanup would run twice)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def now(self) -> float:
        return time.monotonic() - self.start

    def pump(self, quiet: float = 0.15, limit: float = 10.0, first: float = 0.0) -> bytes:
        """Read output until the shell has been quiet for `quiet` seconds (or `limit` passed); the first byte may
        take up to `first` seconds (a loaded machine echoes late, and a key typed before the echo of the one before
        is typeahead, which shells treat differently)."""
        got = bytearray()
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], quiet if got else max(quiet, first))
            if not ready:
                break
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # the shell exited
                break
            if not data:
                break
            got += data
            self.feed_output(data)
        return bytes(got)

    def pump_until(self, done: Callable[[], bool], limit: float = 10.0) -> None:
        """Read output until ``done()`` holds (a full-screen program has drawn, a prompt is back) or `limit` passed."""
        deadline = time.monotonic() + limit
        while not done() and time.monotonic() < deadline:
            self.pump(quiet=0.05, limit=0.5)

    def wait_for(self, needle: bytes, limit: float = 10.0) -> bytes:
        got = bytearray()
        deadline = time.monotonic() + limit
        while needle not in got and time.monotonic() < deadline:
            got += self.pump(quiet=0.05, limit=0.5)
        return bytes(got)

    def feed_output(self, data: bytes) -> None:
        t = self.now()
        self.output_bytes += len(data)
        if self.writer:
            self.writer.output(t, data)
        self.commands += self.extractor.output(t, data)

    def send(self, keys: str | bytes) -> None:
        data = keys.encode() if isinstance(keys, str) else keys
        t = self.now()
        if self.writer:
            self.writer.input(t, data)
        self.commands += self.extractor.input(t, data)
        os.write(self.fd, data)

    def type(self, keys: str, delay: float = 0.01, settle: float = 0.15) -> None:
        """Keys one at a time (escape sequences whole), reading the echo between them, then wait for quiet."""
        i = 0
        while i < len(keys):
            j = i + 1
            if keys[i] == "\x1b" and keys[i + 1 : i + 2] in ("[", "O"):
                j = i + 3
            self.send(keys[i:j])
            self.pump(quiet=delay, limit=1.0, first=0.5)
            i = j
        self.pump(quiet=settle)

    def resize(self, width: int, height: int) -> None:
        """The window changes size: the kernel tells the shell (SIGWINCH), the recorder and extractor are told."""
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        if self.writer:
            self.writer.resize(self.now(), width, height)
        self.extractor.resize(width, height)
        self.pump()

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGHUP)
        self.pump(quiet=0.05, limit=1.0)
        deadline = time.monotonic() + 5
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:  # a shell that ignores the hang-up must not hang the test run
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.02)
        os.close(self.fd)
        self.commands += self.extractor.close(self.now())
        if self.writer:
            self.writer.close()
