"""A local SMTP server (aiosmtpd on 127.0.0.1) with STARTTLS or implicit TLS and AUTH, for e-mail tests.

The TLS certificate is self-signed, made for the test with the ``openssl`` command (the ``cryptography``
package is not a dependency); clients must connect with ``verify_tls: false`` or trust ``cert_path``.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) for CN=localhost, IP 127.0.0.1, valid one day."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the openssl command is needed to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    authenticated: bool


@dataclass
class SmtpServer:
    cert: Path
    key: Path
    username: str = "alerts@example.com"
    password: str = "smtp-password-0123456789"
    implicit_tls: bool = False
    messages: list[Delivered] = field(default_factory=list)
    # (Not named auth_*: aiosmtpd takes handler attributes named so for AUTH mechanisms.)
    rejected_logins: int = 0
    arrived: threading.Condition = field(default_factory=threading.Condition)
    port: int = 0
    _controller: Controller | None = None

    def start(self) -> SmtpServer:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        self.port = free_port()
        options: dict[str, Any] = {"authenticator": self._authenticate, "auth_required": True}
        if self.implicit_tls:
            # aiosmtpd only counts STARTTLS as TLS for AUTH; this connection is TLS from the first byte.
            options.update(ssl_context=context, auth_require_tls=False)
        else:
            options.update(tls_context=context, require_starttls=True)
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.username
            and data.password.decode() == self.password
        )
        if not ok:
            self.rejected_logins += 1
        # handled=False: aiosmtpd then answers 535 itself (handled=True would leave the client waiting).
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        delivered = Delivered(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            message=message,
            tls=server.transport.get_extra_info("ssl_object") is not None,
            authenticated=bool(session.authenticated),
        )
        with self.arrived:
            self.messages.append(delivered)
            self.arrived.notify_all()
        return "250 Message accepted for delivery"
