"""`cloudsoc bastion` as an operator runs it: users, MFA, vault and hosts set up with the CLI, `bastion serve` in
its own process, the real OpenSSH client through it to a real sshd, then `sessions`, `replay` and the daemon
storing the bastion's events."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyotp
import pytest

from tests.e2e.cli import cloudsoc
from tests.servers.sshd import SshServer, free_port


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[SshServer]:
    directory = tmp_path / "upstream"
    directory.mkdir()
    server = SshServer(directory).start()
    yield server
    server.stop()


def test_operator_sets_up_serves_and_audits(tmp_path: Path, upstream: SshServer) -> None:
    home = tmp_path / "home"
    port = free_port()
    cfg = tmp_path / "cloudsoc.yaml"
    cfg.write_text(
        f"""bastion:
  host: 127.0.0.1
  port: {port}
  mfa: required
  hosts:
    web-01: {{address: 127.0.0.1, port: {upstream.port}, groups: [web], labels: {{cloud: aliyun, env: prod}}}}
  grants:
    - {{groups: [ops], hosts: ["group:web"], system_users: [root]}}
  command_groups:
    no-touch-secret: {{regex: ['touch /tmp/forbidden'], risk: high}}
  command_rules:
    - {{name: no-forbidden, groups: [no-touch-secret], action: reject, priority: 10}}
"""
    )
    key = os.environ.get("CLOUDSOC_VAULT_KEY") or cloudsoc(home, "bastion", "vault", "keygen").stdout.strip()
    env = {"CLOUDSOC_VAULT_KEY": key}
    os.environ.update(env)
    try:
        client_key = tmp_path / "alice_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(client_key)], check=True)
        c = str(cfg)
        cloudsoc(home, "bastion", "users", "add", "alice", "-g", "ops", "--key", str(client_key) + ".pub", "-c", c)
        uri = json.loads(cloudsoc(home, "bastion", "mfa", "enrol", "alice", "--json", "-c", c).stdout)["uri"]
        totp = pyotp.parse_uri(uri)
        cloudsoc(home, "bastion", "vault", "set", "web-01", "root", "--key-file", str(upstream.client_key), "-c", c)
        listed = json.loads(cloudsoc(home, "bastion", "vault", "list", "--json", "-c", c).stdout)
        assert key not in json.dumps(listed) and "PRIVATE KEY" not in json.dumps(listed)

        serve = subprocess.Popen(
            [sys.executable, "-m", "cloudsoc", "--home", str(home), "bastion", "serve", "-c", c],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **env},
            start_new_session=True,
        )
        try:
            banner = serve.stdout.readline() if serve.stdout else ""
            assert f"bastion listening on 127.0.0.1:{port}" in banner, banner
            askpass = tmp_path / "askpass"
            askpass.write_text(f'#!/bin/sh\necho "{totp.now()}"\n')
            askpass.chmod(0o755)
            ssh = [
                "ssh", "-F", "/dev/null", "-p", str(port), "-i", str(client_key), "-o", "IdentitiesOnly=yes",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "ConnectTimeout=10",
            ]  # fmt: skip
            ssh_env = {**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": "none"}
            ok = subprocess.run(
                [*ssh, "alice+web-01@127.0.0.1", "echo $((6*7)); whoami"],
                capture_output=True, text=True, env=ssh_env, stdin=subprocess.DEVNULL, timeout=30,
            )  # fmt: skip
            assert ok.returncode == 0, ok.stderr
            assert ok.stdout.split() == ["42", "root"]
            refused = subprocess.run(
                [*ssh, "alice+web-01@127.0.0.1", f"touch /tmp/forbidden-{port}"],
                capture_output=True, text=True, env=ssh_env, stdin=subprocess.DEVNULL, timeout=30,
            )  # fmt: skip
            assert refused.returncode != 0
            assert not Path(f"/tmp/forbidden-{port}").exists()  # never reached the host
        finally:
            os.killpg(serve.pid, signal.SIGTERM)
            rest = serve.communicate(timeout=30)[0]
        assert serve.returncode == 0, rest
        assert "bastion stopped" in rest

        sessions = [
            orjson.loads(line) for line in cloudsoc(home, "bastion", "sessions", "list", "--json").stdout.split()
        ]
        assert {s["user"] for s in sessions} == {"alice"} and {s["target"] for s in sessions} == {"web-01"}
        first = min(sessions, key=lambda s: float(s["started"]))
        screen = cloudsoc(home, "bastion", "replay", first["id"]).stdout
        assert "42" in screen.split() and "root" in screen.split()
        exported = tmp_path / "s.cast"
        cloudsoc(home, "bastion", "replay", first["id"], "--export", str(exported))
        header = orjson.loads(exported.read_bytes().splitlines()[0])
        assert header["version"] == 2 and header["width"] > 0

        run_cfg = tmp_path / "run.yaml"
        run_cfg.write_text(cfg.read_text() + "pipeline:\n  batch_max_events: 100\n")
        cloudsoc(home, "run", "--once", "--no-console", "-c", str(run_cfg))
        found = cloudsoc(home, "search", "--json", "--since", "1d", "event.action:bastion-exec")
        docs = [orjson.loads(line) for line in found.stdout.splitlines()]
        lines = {d["process"]["command_line"]: d for d in docs}
        assert lines["echo $((6*7)); whoami"]["event"]["outcome"] == "success"
        rejected = lines[f"touch /tmp/forbidden-{port}"]
        assert rejected["event"]["outcome"] == "failure"
        assert rejected["cloudsoc"]["bastion"]["verdict"] == "reject"
        assert all(d["user"]["name"] == "alice" and d["host"]["name"] == "web-01" for d in docs)
    finally:
        for name in env:
            os.environ.pop(name, None)
