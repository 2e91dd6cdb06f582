"""DingTalk custom group robot (钉钉自定义机器人): a markdown (or text) message.

Signing ("加签", per DingTalk's robot security settings)::

    string_to_sign = f"{timestamp}\\n{secret}"          # timestamp: unix milliseconds
    sign = urlencode(base64(HMAC-SHA256(key=secret, msg=string_to_sign)))
    POST <webhook url>&timestamp=<timestamp>&sign=<sign>

DingTalk rejects a timestamp more than an hour off. Every reply is HTTP 200 with ``errcode`` (0 = sent).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, ClassVar, Final

import orjson

from cloudsoc.config.outputs import DingtalkOutputConfig
from cloudsoc.detect.alert import Alert
from cloudsoc.outputs.base import Output
from cloudsoc.outputs.render import clip_bytes, escape

# A robot message may hold 20,000 bytes of content; longer ones are cut, not rejected.
MAX_CONTENT_BYTES: Final = 20_000
# errcodes worth retrying: system busy, sending too fast (20 messages a minute per robot).
RETRYABLE: Final = frozenset({-1, 130101, 130102, 410100})


def sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` query value (before URL-encoding) for ``timestamp_ms``."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Dingtalk(Output):
    name: ClassVar[str] = "dingtalk"
    flavour: ClassVar[str] = "markdown"
    config: DingtalkOutputConfig

    @classmethod
    def flavour_of(cls, config: Any) -> str:
        return "text" if getattr(config, "msgtype", "markdown") == "text" else "markdown"

    def message(self, alert: Alert) -> dict[str, Any]:
        """The robot message of ``alert``."""
        _, title, body = self.texts(alert)
        at = {"atMobiles": list(self.config.at_mobiles), "isAtAll": self.config.at_all}
        # DingTalk only notifies a mentioned mobile if it also appears as @<mobile> in the content.
        mentions = " ".join(f"@{m}" for m in self.config.at_mobiles)
        if self.config.msgtype == "text":
            content = clip_bytes(f"{title}\n{body}", MAX_CONTENT_BYTES - len(mentions.encode()) - 2)
            return {"msgtype": "text", "text": {"content": f"{content}\n{mentions}".rstrip()}, "at": at}
        text = clip_bytes(
            f"### {escape(title, 'markdown', 500)}\n\n{body}", MAX_CONTENT_BYTES - len(mentions.encode()) - 2
        )
        markdown = {"title": title[:100], "text": f"{text}\n\n{mentions}".rstrip()}
        return {"msgtype": "markdown", "markdown": markdown, "at": at}

    async def send(self, alert: Alert) -> None:
        body = orjson.dumps(self.message(alert))
        params: dict[str, str] = {}
        if self.config.secret is not None:
            timestamp = int(time.time() * 1000)
            params = {"timestamp": str(timestamp), "sign": sign(self.config.secret.get_secret_value(), timestamp)}
        response = await self.request(
            self.config.url.get_secret_value(),
            content=body,
            headers={"Content-Type": "application/json; charset=utf-8"},
            params=params or None,
        )
        code, message = self.vendor_reply(response, "errcode", "errmsg")
        if code != 0:
            raise self.fail(f"DingTalk refused the message: errcode {code}: {message}", retryable=code in RETRYABLE)
