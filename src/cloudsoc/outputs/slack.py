"""Slack incoming webhook: ``text`` (the notification line) plus Block Kit ``blocks`` (header and mrkdwn sections).

The webhook URL is the credential (no signature), so it is a secret. Slack answers ``ok`` (HTTP 200) or an error
status with a short reason (``invalid_payload`` 400, ``invalid_token`` 403, ``no_service`` 404, 429 with
``Retry-After``). Block limits: header 150 characters, section text 3000, 50 blocks.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

import orjson

from cloudsoc.config.outputs import SlackOutputConfig
from cloudsoc.detect.alert import Alert
from cloudsoc.outputs.base import Output
from cloudsoc.outputs.render import escape

MAX_HEADER_CHARS: Final = 150
MAX_SECTION_CHARS: Final = 3000
MAX_SECTIONS: Final = 40


def sections(body: str) -> list[str]:
    """``body`` split at line ends into chunks a section block accepts."""
    chunks: list[str] = []
    current = ""
    for line in body.splitlines():
        line = line[:MAX_SECTION_CHARS]
        if current and len(current) + 1 + len(line) > MAX_SECTION_CHARS:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current.strip():
        chunks.append(current)
    return chunks[:MAX_SECTIONS]


class Slack(Output):
    name: ClassVar[str] = "slack"
    flavour: ClassVar[str] = "slack"
    config: SlackOutputConfig

    def message(self, alert: Alert) -> dict[str, Any]:
        """The webhook payload of ``alert``."""
        _, title, body = self.texts(alert)
        header = title if len(title) <= MAX_HEADER_CHARS else title[: MAX_HEADER_CHARS - 1] + "…"
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
            *({"type": "section", "text": {"type": "mrkdwn", "text": chunk}} for chunk in sections(body)),
        ]
        return {"text": escape(title, "slack", 3000), "blocks": blocks}

    async def send(self, alert: Alert) -> None:
        await self.request(
            self.config.url.get_secret_value(),
            content=orjson.dumps(self.message(alert)),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
