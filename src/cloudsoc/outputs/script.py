"""Run a program per alert with the alert JSON on stdin (ElastAlert's ``command`` alerter).

``argv`` is executed directly, never through a shell, so alert values cannot inject commands. The program gets a
minimal environment (PATH, HOME, LANG, LC_ALL, TZ), the configured ``env``, and ``CLOUDSOC_ALERT_ID``,
``CLOUDSOC_RULE_ID``, ``CLOUDSOC_SEVERITY``, ``CLOUDSOC_ALERT_TITLE``, ``CLOUDSOC_OUTPUT`` — not cloudsoc's own
environment, which holds the secrets the config refers to. Exit status 0 is success; another status or running
past ``timeout_secs`` is a failure (the program and its children are killed) whose error quotes the end of stderr,
with configured secret values scrubbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import ClassVar, Final

import msgspec

from cloudsoc.config.outputs import ScriptOutputConfig
from cloudsoc.detect.alert import Alert
from cloudsoc.outputs.base import Output

PASSED_ENV: Final = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
# How much of stderr is kept (the end of it) and quoted in an error.
STDERR_KEEP_BYTES: Final = 4096
STDERR_QUOTE_CHARS: Final = 500


class Script(Output):
    name: ClassVar[str] = "script"
    flavour: ClassVar[str] = "text"
    config: ScriptOutputConfig

    def environment(self, alert: Alert, title: str) -> dict[str, str]:
        env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
        env.update((name, value.get_secret_value()) for name, value in self.config.env.items())
        env.update(
            CLOUDSOC_ALERT_ID=alert.id,
            CLOUDSOC_RULE_ID=alert.rule_id,
            CLOUDSOC_SEVERITY=alert.severity.value,
            CLOUDSOC_ALERT_TITLE=title,
            CLOUDSOC_OUTPUT=self.key,
        )
        return env

    async def send(self, alert: Alert) -> None:
        _, title, _ = self.texts(alert)
        program = os.path.basename(self.config.argv[0])
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.config.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=self.environment(alert, title),
                # Its own process group, so a timeout kills the children it started too.
                start_new_session=True,
            )
        except OSError as exc:
            raise self.fail(f"cannot run {program!r}: {exc.strerror or type(exc).__name__}", retryable=False) from None
        stderr = bytearray()
        try:
            async with asyncio.timeout(self.config.timeout_secs):
                await asyncio.gather(self._feed(proc, msgspec.json.encode(alert)), self._drain(proc, stderr))
                status = await proc.wait()
        except TimeoutError:
            await self._kill(proc)
            raise self.fail(
                f"{program!r} still running after {self.config.timeout_secs:g} s (killed){self._tail(stderr)}"
            ) from None
        except asyncio.CancelledError:
            await self._kill(proc)
            raise
        if status != 0:
            raise self.fail(f"{program!r} exited with status {status}{self._tail(stderr)}")

    @staticmethod
    async def _feed(proc: asyncio.subprocess.Process, payload: bytes) -> None:
        assert proc.stdin is not None
        # A program that does not read its input (or exits early) is not an error of ours.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(payload)
            await proc.stdin.drain()
        proc.stdin.close()

    @staticmethod
    async def _drain(proc: asyncio.subprocess.Process, into: bytearray) -> None:
        assert proc.stderr is not None
        while chunk := await proc.stderr.read(65536):
            into += chunk
            if len(into) > STDERR_KEEP_BYTES:
                del into[:-STDERR_KEEP_BYTES]

    @staticmethod
    async def _kill(proc: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()

    def _tail(self, stderr: bytearray) -> str:
        raw = bytes(stderr).decode(errors="replace")
        if len(stderr) >= STDERR_KEEP_BYTES:
            # The front was cut away, maybe inside a secret that scrub() would no longer recognise.
            raw = raw.split(None, 1)[1] if len(raw.split(None, 1)) == 2 else ""
        text = " ".join(self.scrub(raw).split())
        if not text:
            return ""
        return f"; stderr: {'…' if len(text) > STDERR_QUOTE_CHARS else ''}{text[-STDERR_QUOTE_CHARS:]}"
