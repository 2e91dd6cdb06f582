"""The generated records of both clouds, in the order they happened."""

from __future__ import annotations

import time
from typing import Any

ACTIONTRAIL = "aliyun_actiontrail"
CLOUDTRAIL = "aws_cloudtrail"


def iso(t: int) -> str:
    """Epoch seconds as the clouds write event times: ``2026-11-18T03:02:41Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Timeline:
    """Collects ``(epoch seconds, sequence, provider, region, record)``; :meth:`sorted` orders them stably."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[tuple[int, int, str, str, dict[str, Any]]] = []

    def add(self, t: int, provider: str, region: str, record: dict[str, Any]) -> None:
        self.items.append((t, len(self.items), provider, region, record))

    def __len__(self) -> int:
        return len(self.items)

    def sorted(self) -> list[tuple[int, int, str, str, dict[str, Any]]]:
        return sorted(self.items, key=lambda item: (item[0], item[1]))
