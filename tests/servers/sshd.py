"""A real OpenSSH server (Debian's /usr/sbin/sshd) on 127.0.0.1 for the bastion's upstream hosts.

Key-only root log-ins with a client key made here; ``rekey()`` restarts it on the same port with a new host
key (what a re-installed or intercepted host looks like to the bastion's pinning)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SshServer:
    def __init__(self, directory: Path, extra: tuple[str, ...] = ()) -> None:
        self.dir = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.client_key = directory / "client_key"
        self.host_key = directory / "host_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.client_key)], check=True)
        (directory / "authorized_keys").write_bytes(self.client_key.with_suffix(".pub").read_bytes())
        self._keygen()
        config = [
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"PidFile {directory / 'sshd.pid'}",
            f"AuthorizedKeysFile {directory / 'authorized_keys'}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "PrintMotd no",
            "PrintLastLog no",
            "Subsystem sftp /usr/lib/openssh/sftp-server",
            *extra,
        ]
        (directory / "sshd_config").write_text("\n".join(config) + "\n")

    def _keygen(self) -> None:
        for path in (self.host_key, self.host_key.with_suffix(".pub")):
            path.unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)], check=True)

    @property
    def private_key(self) -> str:
        return self.client_key.read_text()

    def start(self) -> SshServer:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        log = (self.dir / "sshd.log").open("ab")
        argv = [SSHD, "-D", "-e", "-f", str(self.dir / "sshd_config"), "-p", str(self.port)]
        self.proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 15
        ready = f"Server listening on 127.0.0.1 port {self.port}."
        while ready not in (self.dir / "sshd.log").read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start:\n{(self.dir / 'sshd.log').read_text(errors='replace')}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None
        (self.dir / "sshd.log").write_text("")

    def rekey(self) -> None:
        """Same port, new host key."""
        self.stop()
        self._keygen()
        self.start()
