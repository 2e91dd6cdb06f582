"""Feishu / Lark custom bot (飞书自定义机器人): an interactive card coloured by severity, a rich-text post, or
text.

Signing ("签名校验", per Feishu's custom bot guide) — note the unusual shape: the string to sign is the HMAC
*key* and the message is empty::

    string_to_sign = f"{timestamp}\\n{secret}"          # timestamp: unix seconds
    sign = base64(HMAC-SHA256(key=string_to_sign, msg=b""))
    body = {"timestamp": "<timestamp>", "sign": "<sign>", "msg_type": ..., ...}

Feishu rejects a timestamp more than an hour off (code 19021). Replies carry ``code`` (0 = sent); a request
body may hold 20 KB.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, ClassVar, Final

import orjson

from cloudsoc.config.outputs import FeishuOutputConfig
from cloudsoc.detect.alert import Alert
from cloudsoc.outputs.base import Output
from cloudsoc.outputs.render import clip_bytes

# The request body may be 20 KB; the content leaves room for the card around it.
MAX_CONTENT_BYTES: Final = 18_000
# Codes worth retrying: rate limited (100 a minute, 5 a second per bot).
RETRYABLE: Final = frozenset({11232})
CARD_TEMPLATES: Final = {
    "informational": "grey",
    "low": "blue",
    "medium": "yellow",
    "high": "orange",
    "critical": "red",
}


def sign(secret: str, timestamp: int) -> str:
    """The ``sign`` body field for ``timestamp`` (unix seconds)."""
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Feishu(Output):
    name: ClassVar[str] = "feishu"
    flavour: ClassVar[str] = "markdown"
    config: FeishuOutputConfig

    @classmethod
    def flavour_of(cls, config: Any) -> str:
        return "markdown" if getattr(config, "msgtype", "interactive") == "interactive" else "text"

    def message(self, alert: Alert) -> dict[str, Any]:
        """The bot message of ``alert`` (without the signature fields)."""
        _, title, body = self.texts(alert)
        body = clip_bytes(body, MAX_CONTENT_BYTES)
        if self.config.msgtype == "text":
            return {"msg_type": "text", "content": {"text": f"{title}\n{body}"}}
        if self.config.msgtype == "post":
            lines = [[{"tag": "text", "text": line}] for line in body.splitlines() if line.strip()]
            locale = "zh_cn" if self.config.language == "zh" else "en_us"
            return {"msg_type": "post", "content": {"post": {locale: {"title": title, "content": lines}}}}
        card = {
            "config": {"wide_screen_mode": True},
            "header": {
                "template": CARD_TEMPLATES[alert.severity.value],
                "title": {"tag": "plain_text", "content": title},
            },
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": body}}],
        }
        return {"msg_type": "interactive", "card": card}

    async def send(self, alert: Alert) -> None:
        message = self.message(alert)
        if self.config.secret is not None:
            timestamp = int(time.time())
            message = {
                "timestamp": str(timestamp),
                "sign": sign(self.config.secret.get_secret_value(), timestamp),
                **message,
            }
        response = await self.request(
            self.config.url.get_secret_value(),
            content=orjson.dumps(message),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        code, text = self.vendor_reply(response, "code", "msg")
        if code != 0:
            raise self.fail(f"Feishu refused the message: code {code}: {text}", retryable=code in RETRYABLE)
