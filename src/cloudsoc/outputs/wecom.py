"""WeCom group robot (企业微信群机器人): a markdown (or text) message.

The robot has no signature: its ``key`` in the webhook URL is the credential, so the URL is a secret. Markdown
content may hold 4096 bytes (UTF-8) and text 2048; longer content is refused with an errcode, so it is cut here.
Every reply is HTTP 200 with ``errcode`` (0 = sent).
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

import orjson

from cloudsoc.config.outputs import WecomOutputConfig
from cloudsoc.detect.alert import Alert
from cloudsoc.outputs.base import Output
from cloudsoc.outputs.render import clip_bytes, escape

MAX_MARKDOWN_BYTES: Final = 4096
MAX_TEXT_BYTES: Final = 2048
# errcodes worth retrying: system busy, too many messages (20 a minute per robot).
RETRYABLE: Final = frozenset({-1, 45009, 45033})


class Wecom(Output):
    name: ClassVar[str] = "wecom"
    flavour: ClassVar[str] = "markdown"
    config: WecomOutputConfig

    @classmethod
    def flavour_of(cls, config: Any) -> str:
        return "text" if getattr(config, "msgtype", "markdown") == "text" else "markdown"

    def message(self, alert: Alert) -> dict[str, Any]:
        """The robot message of ``alert``, cut to the robot's byte limits."""
        _, title, body = self.texts(alert)
        if self.config.msgtype == "text":
            text = {
                "content": clip_bytes(f"{title}\n{body}", MAX_TEXT_BYTES),
                "mentioned_mobile_list": list(self.config.mentioned_mobiles),
            }
            return {"msgtype": "text", "text": text}
        content = clip_bytes(f"### {escape(title, 'markdown', 500)}\n{body}", MAX_MARKDOWN_BYTES)
        return {"msgtype": "markdown", "markdown": {"content": content}}

    async def send(self, alert: Alert) -> None:
        response = await self.request(
            self.config.url.get_secret_value(),
            content=orjson.dumps(self.message(alert)),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        code, message = self.vendor_reply(response, "errcode", "errmsg")
        if code != 0:
            raise self.fail(f"WeCom refused the message: errcode {code}: {message}", retryable=code in RETRYABLE)
