"""Fixtures for the bastion server tests: a real upstream sshd, a bastion on a free port built the way
`cloudsoc bastion serve` builds it (`BastionServer.from_config`: the real gate, command filter, asciicast writer
and command extractor), and the real OpenSSH client with an askpass script for password and TOTP.

alice is a local user (argon2 password, an ed25519 key, group ops) enrolled in TOTP; the upstream's root key is
in the vault, sealed with a key from the environment."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import orjson
import pyotp
import pytest

from cloudsoc.bastion.gate import Gate
from cloudsoc.bastion.server import BastionServer
from cloudsoc.bastion.vault import new_key
from cloudsoc.config.bastion import BastionConfig
from tests.servers.sshd import SshServer, free_port

PASSWORD = "correct horse battery staple"
PYTHON = Path(__file__).resolve().parents[2].parent / "main" / ".venv" / "bin" / "python"
VAULT_ENV = "CLOUDSOC_TEST_BASTION_VAULT_KEY"
# The next TOTP code not used yet: the gate refuses a code (or an older one) already used, so a test that logs in
# twice in one 30-second step answers with the next step's code, which the gate's one-step window accepts.
NEXT_CODE = """import sys, time, pyotp
from pathlib import Path
secret, state = sys.argv[1], Path(sys.argv[2])
totp = pyotp.TOTP(secret)
now = int(time.time()) // totp.interval
last = int(state.read_text()) if state.exists() else -1
step = max(now, last + 1)
state.write_text(str(step))
print(totp.generate_otp(step))
"""


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
    gate: Gate
    home: Path
    key_path: Path
    secret: str
    askpass: Path
    next_code: Path

    @property
    def key(self) -> asyncssh.SSHKey:
        return asyncssh.read_private_key(self.key_path)

    def journal(self) -> list[dict[str, Any]]:
        out = []
        for path in self.server.journal.segments():
            out += [orjson.loads(line) for line in path.read_bytes().splitlines()]
        return out

    def code(self) -> str:
        """A fresh TOTP code (never one this test used before)."""
        state = self.next_code.with_suffix(".last")
        totp = pyotp.TOTP(self.secret)
        step = max(int(time.time()) // totp.interval, int(state.read_text()) + 1 if state.exists() else -1)
        state.write_text(str(step))
        return totp.generate_otp(step)

    async def ssh(
        self, login: str, *args: str, code: str | None = None, key: bool = True, options: tuple[str, ...] = ()
    ) -> tuple[int, str, str]:
        """The real OpenSSH client, non-interactive; prompts are answered by the askpass script."""
        argv = ["ssh", "-v", "-p", str(self.port), *options, f"{login}@127.0.0.1", *args]
        return await self._openssh(argv, code=code, key=key)

    async def scp(self, *args: str, code: str | None = None) -> tuple[int, str, str]:
        """The real OpenSSH scp (remote paths as ``LOGIN@127.0.0.1:PATH``); ``-O`` in ``args``: the legacy protocol."""
        return await self._openssh(["scp", "-P", str(self.port), *args], code=code, key=True)

    async def _openssh(self, argv: list[str], *, code: str | None, key: bool) -> tuple[int, str, str]:
        env = dict(
            os.environ,
            SSH_ASKPASS=str(self.askpass),
            SSH_ASKPASS_REQUIRE="force",
            ASKPASS_CODE=code or "",
            DISPLAY="none",
        )
        options = [
            "-F",
            "/dev/null",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=5",
        ]
        options += ["-i", str(self.key_path)] if key else ["-o", "PubkeyAuthentication=no"]
        proc = await asyncio.create_subprocess_exec(
            argv[0],
            *options,
            *argv[1:],
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
        fresh = self.code

        class Client(asyncssh.SSHClient):
            def kbdint_auth_requested(self) -> str:
                return ""

            def kbdint_challenge_received(self, name: str, instructions: str, lang: str, prompts: Any) -> list[str]:
                return [password if "assword" in p else (code or fresh()) for p, _ in prompts]

        return await asyncssh.connect(
            "127.0.0.1",
            self.port,
            username=login,
            password=password,
            client_factory=Client,
            kbdint_auth=True,
            known_hosts=None,
            client_keys=None,
            agent_path=None,
            config=None,
            **kw,
        )


MakeBastion = Callable[..., Awaitable[Bastion]]


def command_rules(reject: tuple[str, ...], warn: tuple[str, ...]) -> dict[str, Any]:
    """Configured command groups and rules for lines starting with the given texts (beside the built-in set)."""
    groups: dict[str, Any] = {}
    rules: list[dict[str, Any]] = []
    for action, prefixes in (("reject", reject), ("warn", warn)):
        if prefixes:
            groups[f"test-{action}"] = {
                "regex": [rf"^\s*{re.escape(p)}" for p in prefixes],
                "risk": "critical" if action == "reject" else "medium",
                "description": f"lines this test {action}s",
            }
            rules.append({"name": f"test-{action}", "groups": [f"test-{action}"], "action": action})
    return {"command_groups": groups, "command_rules": rules}


@pytest.fixture
async def make_bastion(
    tmp_path: Path, upstream: SshServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[MakeBastion]:
    started: list[BastionServer] = []
    monkeypatch.setenv(VAULT_ENV, new_key())

    async def make(
        *, reject: tuple[str, ...] = (), warn: tuple[str, ...] = (), forwarding: bool = False, **cfg: Any
    ) -> Bastion:
        n = len(started)
        home = tmp_path / f"home{n}"
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": free_port(),
            "vault_key_env": VAULT_ENV,
            "hosts": {
                "web-01": {
                    "address": "127.0.0.1",
                    "port": upstream.port,
                    "labels": {"env": "prod", "cloud": "aws"},
                    "groups": ["web"],
                }
            },
            "grants": [
                {"groups": ["ops"], "hosts": ["web-01"], "system_users": ["root"], "port_forwarding": forwarding}
            ],
            **command_rules(reject, warn),
        }
        settings.update(cfg)
        config = BastionConfig.model_validate(settings)
        server = BastionServer.from_config(config, home)
        gate = server.gate
        assert isinstance(gate, Gate)
        key = asyncssh.generate_private_key("ssh-ed25519")
        key_path = tmp_path / f"alice_key{n}"
        key_path.write_bytes(key.export_private_key())
        key_path.chmod(0o600)
        gate.local.add("alice", groups=["ops"], password=PASSWORD)
        gate.local.add_key("alice", key.export_public_key("openssh").decode())
        uri = gate.totp_store.enrol("alice").uri
        secret = re.search(r"secret=([A-Z2-7]+)", uri).group(1)  # type: ignore[union-attr]
        gate.vault.set("web-01", "root", private_key=upstream.private_key)
        next_code = tmp_path / f"next_code{n}.py"
        next_code.write_text(NEXT_CODE)
        askpass = tmp_path / f"askpass{n}"
        askpass.write_text(
            "#!/bin/sh\n"
            f'echo "$1" >> {tmp_path}/askpass{n}.log\n'
            f'case "$1" in *assword*) echo "{PASSWORD}";; *code*) if [ -n "$ASKPASS_CODE" ]; then '
            f'echo "$ASKPASS_CODE"; else {PYTHON} {next_code} {secret} {next_code.with_suffix(".last")}; fi;; '
            "*) echo no;; esac\n"
        )
        askpass.chmod(0o755)
        port = await server.start()
        started.append(server)
        return Bastion(server, port, gate, home, key_path, secret, askpass, next_code)

    yield make
    for server in started:
        await server.close()
