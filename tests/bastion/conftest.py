"""Fixtures for the bastion server tests: a real upstream sshd, a bastion on a free port with stand-ins for the
parts built in other branches, and the real OpenSSH client with an askpass script for password and TOTP."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import orjson
import pyotp
import pytest

from cloudsoc.bastion.server import BastionServer
from cloudsoc.config.bastion import BastionConfig
from tests.bastion.standins import LineSplitter, PlainCast, PrefixFilter, StubGate
from tests.servers.sshd import SshServer, free_port

PASSWORD = "correct horse battery staple"
PYTHON = Path(__file__).resolve().parents[2].parent / "main" / ".venv" / "bin" / "python"


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[SshServer]:
    directory = tmp_path / "upstream"
    directory.mkdir()
    server = SshServer(directory).start()
    yield server
    server.stop()


@dataclass
class Bastion:
    server: BastionServer
    port: int
    gate: StubGate
    home: Path
    key_path: Path
    secret: str
    askpass: Path

    def journal(self) -> list[dict[str, Any]]:
        out = []
        for path in self.server.journal.segments():
            out += [orjson.loads(line) for line in path.read_bytes().splitlines()]
        return out

    def code(self) -> str:
        return pyotp.TOTP(self.secret).now()

    async def ssh(
        self, login: str, *args: str, code: str | None = None, key: bool = True, options: tuple[str, ...] = ()
    ) -> tuple[int, str, str]:
        """The real OpenSSH client, non-interactive; prompts are answered by the askpass script."""
        env = dict(
            os.environ,
            SSH_ASKPASS=str(self.askpass),
            SSH_ASKPASS_REQUIRE="force",
            ASKPASS_CODE=code or "",
            DISPLAY="none",
        )
        argv = [
            "ssh",
            "-F",
            "/dev/null",
            "-v",
            "-p",
            str(self.port),
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=5",
            *options,
        ]
        argv += ["-i", str(self.key_path)] if key else ["-o", "PubkeyAuthentication=no"]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            f"{login}@127.0.0.1",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        return proc.returncode or 0, out.decode(), err.decode()

    async def connect(
        self, login: str, *, code: str | None = None, password: str = PASSWORD, **kw: Any
    ) -> asyncssh.SSHClientConnection:
        """asyncssh as the client: password first, then the TOTP code as keyboard-interactive."""
        secret = self.secret

        class Client(asyncssh.SSHClient):
            def kbdint_auth_requested(self) -> str:
                return ""

            def kbdint_challenge_received(self, name: str, instructions: str, lang: str, prompts: Any) -> list[str]:
                return [password if "assword" in p else (code or pyotp.TOTP(secret).now()) for p, _ in prompts]

        return await asyncssh.connect(
            "127.0.0.1",
            self.port,
            username=login,
            password=PASSWORD,
            client_factory=Client,
            kbdint_auth=True,
            known_hosts=None,
            client_keys=None,
            agent_path=None,
            config=None,
            **kw,
        )


MakeBastion = Callable[..., Awaitable[Bastion]]


@pytest.fixture
async def make_bastion(tmp_path: Path, upstream: SshServer) -> AsyncIterator[MakeBastion]:
    started: list[BastionServer] = []

    async def make(
        *, reject: tuple[str, ...] = ("rm -rf /",), warn: tuple[str, ...] = (), forwarding: bool = False, **cfg: Any
    ) -> Bastion:
        home = tmp_path / f"home{len(started)}"
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": free_port(),
            "hosts": {
                "web-01": {
                    "address": "127.0.0.1",
                    "port": upstream.port,
                    "labels": {"env": "prod", "cloud": "aws"},
                    "groups": ["web"],
                }
            },
            "grants": [
                {"users": ["alice"], "hosts": ["web-01"], "system_users": ["root"], "port_forwarding": forwarding}
            ],
        }
        settings.update(cfg)
        config = BastionConfig.model_validate(settings)
        key = asyncssh.generate_private_key("ssh-ed25519")
        key_path = tmp_path / f"alice_key{len(started)}"
        key_path.write_bytes(key.export_private_key())
        key_path.chmod(0o600)
        secret = pyotp.random_base32()
        gate = StubGate(
            config, home, password=PASSWORD, totp_secret=secret, keys=[key], upstream_key=upstream.private_key
        )
        askpass = tmp_path / f"askpass{len(started)}"
        askpass.write_text(
            "#!/bin/sh\n"
            f'case "$1" in *assword*) echo "{PASSWORD}";; *code*) if [ -n "$ASKPASS_CODE" ]; then '
            f'echo "$ASKPASS_CODE"; else {PYTHON} -c "import pyotp; print(pyotp.TOTP(\'{secret}\').now())"; fi;; '
            "*) echo no;; esac\n"
        )
        askpass.chmod(0o755)
        server = BastionServer(
            config, home, gate, command_filter=PrefixFilter(reject, warn), recorder=PlainCast, extractor=LineSplitter
        )
        port = await server.start()
        started.append(server)
        return Bastion(server, port, gate, home, key_path, secret, askpass)

    yield make
    for server in started:
        await server.close()
