"""Who makes a cloud API call: an identity as the trail writes it, from where and with which client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Actor:
    """One caller in one session. ``identity`` is the trail's ``userIdentity`` object, shared by its records."""

    identity: dict[str, Any]
    ip: str
    user_agent: str
    console: bool = False  # a browser session (console calls, not an SDK)
    arn: str = ""  # the caller's ARN, for AWS AccessDenied messages
