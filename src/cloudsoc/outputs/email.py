"""E-mail over SMTP: STARTTLS (default) or implicit TLS, optional AUTH, plain text plus optional HTML.

smtplib runs in a worker thread: it is the standard, well-trodden client, and one alert mail at a time does not
need an asyncio SMTP stack. STARTTLS is required when asked for: a server that does not offer it is an error,
never a silent fall-back to clear text.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import ClassVar

import jinja2

from cloudsoc.config.outputs import EmailOutputConfig
from cloudsoc.detect.alert import Alert
from cloudsoc.outputs.base import DeliveryError, Output

logger = logging.getLogger(__name__)


class Email(Output):
    name: ClassVar[str] = "email"
    flavour: ClassVar[str] = "text"
    config: EmailOutputConfig

    def message(self, alert: Alert) -> EmailMessage:
        """The mail of ``alert``: subject = title, text body, HTML alternative when ``html`` is on."""
        context, title, body = self.texts(alert)
        try:
            html = self.renderer.html(context, title)
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as exc:
            raise self.fail(f"html_template error: {type(exc).__name__}: {exc}", retryable=False) from None
        config = self.config
        domain = config.from_addr.rpartition("@")[2].strip("> ") or "cloudsoc.invalid"
        msg = EmailMessage()
        msg["Subject"] = title
        msg["From"] = config.from_addr
        msg["To"] = ", ".join(config.to)
        if config.cc:
            msg["Cc"] = ", ".join(config.cc)
        msg["Date"] = format_datetime(datetime.now(UTC))
        # An explicit domain: make_msgid() would otherwise ask DNS for this host's name.
        msg["Message-ID"] = make_msgid(idstring=alert.id[:24], domain=domain)
        msg["X-Cloudsoc-Alert-Id"] = alert.id
        msg["X-Cloudsoc-Severity"] = alert.severity.value
        msg.set_content(body)
        if html is not None:
            msg.add_alternative(html, subtype="html")
        return msg

    async def send(self, alert: Alert) -> None:
        msg = self.message(alert)
        await asyncio.to_thread(self._submit, msg)

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.config.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _submit(self, msg: EmailMessage) -> None:
        config = self.config
        where = f"{config.smtp_host}:{config.smtp_port}"
        try:
            smtp: smtplib.SMTP
            if config.implicit_tls:
                smtp = smtplib.SMTP_SSL(
                    config.smtp_host, config.smtp_port, timeout=config.timeout_secs, context=self._tls()
                )
            else:
                smtp = smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.timeout_secs)
            with smtp:
                smtp.ehlo()
                if config.starttls:
                    smtp.starttls(context=self._tls())
                    smtp.ehlo()
                if config.username is not None and config.password is not None:
                    self._login(smtp, config.username, config.password.get_secret_value())
                refused = smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise self.fail(f"{where}: authentication failed ({exc.smtp_code})", retryable=False) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise self.fail(f"{where}: server does not support what is configured: {exc}", retryable=False) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise self.fail(f"{where}: every recipient refused ({len(exc.recipients)})", retryable=False) from None
        except smtplib.SMTPResponseException as exc:
            raise self._refused(where, exc.smtp_code, exc.smtp_error) from None
        except ssl.SSLCertVerificationError as exc:
            raise self.fail(f"{where}: TLS certificate not trusted: {exc.verify_message}", retryable=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise self.fail(f"{where}: {type(exc).__name__}: {exc}") from None
        if refused:
            # The others got it; sending again would duplicate their mail.
            logger.warning("output %r: %d of the recipients were refused by %s", self.key, len(refused), where)

    @staticmethod
    def _login(smtp: smtplib.SMTP, username: str, password: str) -> None:
        # One mechanism, tried once: smtplib's login() would send a refused password again with every other
        # mechanism the server offers, each counting towards the account's lock-out. Over TLS PLAIN is as good
        # as any (CRAM-MD5 needs the server to keep the password in clear).
        offered = smtp.esmtp_features.get("auth", "").upper().split()
        smtp.user, smtp.password = username, password
        for mechanism, answer in (("PLAIN", smtp.auth_plain), ("LOGIN", smtp.auth_login)):
            if mechanism in offered:
                smtp.auth(mechanism, answer, initial_response_ok=mechanism == "PLAIN")
                return
        smtp.login(username, password)

    def _refused(self, where: str, code: int, reply: bytes | str) -> DeliveryError:
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        # 4xx replies are temporary by SMTP's own definition; 5xx are permanent.
        return self.fail(f"{where}: server replied {code} {' '.join(text.split())[:300]}", retryable=code < 500)
