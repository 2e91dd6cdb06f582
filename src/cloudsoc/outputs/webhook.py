"""Generic webhook: the alert as JSON (or a template's output) in one HTTP request, optionally HMAC-signed.

Signature (when ``secret`` is set), for the receiver to check::

    X-Cloudsoc-Timestamp: <unix seconds>
    X-Cloudsoc-Signature: sha256=<hex HMAC-SHA256(key=secret, msg=timestamp + "." + body)>

``body`` is the exact request body in bytes. Receivers should reject timestamps far from their clock (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any, ClassVar

import httpx
import jinja2
import orjson

from cloudsoc.config.outputs import WebhookOutputConfig
from cloudsoc.detect.alert import Alert
from cloudsoc.outputs.base import Output
from cloudsoc.outputs.render import Renderer

TIMESTAMP_HEADER = "X-Cloudsoc-Timestamp"
SIGNATURE_HEADER = "X-Cloudsoc-Signature"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Cloudsoc-Signature`` value of ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class Webhook(Output):
    name: ClassVar[str] = "webhook"
    flavour: ClassVar[str] = "text"
    config: WebhookOutputConfig

    def __init__(self, key: str, config: WebhookOutputConfig, *, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(key, config, client=client)
        self._body_template = (
            self.renderer.compile(config.body_template, "body_template") if config.body_template else None
        )
        self._headers = {name: value.get_secret_value() for name, value in config.headers.items()}
        content_type = next((v for k, v in self._headers.items() if k.lower() == "content-type"), None)
        if content_type is None:
            content_type = "application/json"
            self._headers["Content-Type"] = content_type
        self._json = "json" in content_type.lower()

    def body(self, alert: Alert) -> bytes:
        """The request body: the alert as JSON (the shape of ``cloudsoc alerts show --json``: ``rule.id``,
        ``severity``, ``event.ids``, ``matched``, the events …), or ``body_template`` rendered with the alert,
        ``title`` and ``message`` (the rendered ``template``)."""
        if self._body_template is None:
            return orjson.dumps(alert.export(with_events=True), default=str)
        context, title, message = self.texts(alert)
        extra: dict[str, Any] = {"title": title, "message": message}
        try:
            body = Renderer.render(self._body_template, {**context, **extra}).encode()
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as exc:
            raise self.fail(f"body_template error: {type(exc).__name__}: {exc}", retryable=False) from None
        if self._json:
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise self.fail(f"body_template did not produce JSON: {exc}", retryable=False) from None
        return body

    async def send(self, alert: Alert) -> None:
        body = self.body(alert)
        headers = {"User-Agent": "cloudsoc", "X-Cloudsoc-Alert-Id": alert.id, **self._headers}
        if self.config.secret is not None:
            timestamp = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = signature(self.config.secret.get_secret_value(), timestamp, body)
        await self.request(self.config.url.get_secret_value(), content=body, method=self.config.method, headers=headers)
