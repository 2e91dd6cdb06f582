"""``access_denied_burst``: one identity denied on many *different* APIs within minutes — someone exploring
what a key can do (enumeration with a stolen key is mostly denied).

Different APIs are counted, not denials: a misconfigured job retrying one forbidden call all day is an
operations problem, not reconnaissance. Denials the AWS console causes by itself (``aws-internal`` agents) and
calls relayed by cloud services are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin.base import BuiltinRule, Detection
from cloudsoc.detect.builtin.trail import source_ip
from cloudsoc.detect.builtin.window import BurstRule
from cloudsoc.detect.rule import Hit

META: Final = Detection(
    name="access_denied_burst",
    title="Burst of access-denied calls (enumeration)",
    title_zh="短时间大量越权/拒绝访问调用（权限探测）",
    severity=Severity.MEDIUM,
    tags=("attack.discovery", "attack.t1087.004", "attack.t1580", "attack.t1526"),
    description=(
        "One identity was denied on many different APIs within a few minutes. That is what an attacker does "
        "with a freshly stolen AccessKey: try everything to learn what the key may do. Alibaba's landing zone "
        "alerts on unauthorised API calls; counting distinct APIs keeps one broken job from firing."
    ),
    response=(
        "Look at the source address and the APIs tried. If this is not a developer testing a new policy, "
        "disable the AccessKey, check what the identity *was* allowed to do in the same period, and rotate it."
    ),
    description_zh=(
        "同一身份在几分钟内调用了大量不同的 API，且都被拒绝。这是攻击者刚拿到一个泄露的 AccessKey 时的典型动"
        "作：把各种接口都试一遍，摸清这个 AccessKey 能做什么。阿里云 Landing Zone 的安全基线也会对未授权的 AP"
        "I 调用告警；这里按被拒绝的不同 API 个数计数，避免某个配置有误的任务反复失败就触发告警。"
    ),
    response_zh=(
        "查看来源 IP 和被尝试的 API。如果不是开发人员在调试新的权限策略，立即禁用该 AccessKey，"
        "核查该身份在同一时段内实际成功执行了哪些操作，然后轮换 AccessKey。"
    ),
)

THRESHOLD: Final = 8
WINDOW_SECS: Final = 600.0

_DENIED_CODES: Final = frozenset(
    {
        "accessdenied",
        "accessdeniedexception",
        "client.unauthorizedoperation",
        "unauthorizedoperation",
        "unauthorizedaccess",
        "authorizationerror",
        "authorizationerrorexception",
        "forbidden",
        "forbiddenexception",
        "forbbiden",
        "accessforbidden",
        "notauthorized",
        "nopermission",
    }
)
_DENIED_PREFIXES: Final = ("nopermission.", "forbidden.", "forbbiden.", "accessdenied.")


def denied(code: object) -> bool:
    """Whether an error code means "not allowed" (both clouds' spellings, incl. ``Forbidden.RAM``)."""
    if type(code) is not str:
        return False
    low = code.lower()
    return low in _DENIED_CODES or low.startswith(_DENIED_PREFIXES)


class AccessDeniedBurst(BurstRule):
    counted_field = "denied_apis"

    def __init__(self, cloud: str, threshold: int = THRESHOLD, window_secs: float = WINDOW_SECS) -> None:
        super().__init__(META, cloud, actions=None, threshold=threshold, window_secs=window_secs)

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        error = doc.get("error")
        if type(error) is not dict:
            return None
        code = error.get("code")
        if not denied(code):
            return None
        ip = source_ip(doc)
        if ip is None:
            return None  # a service relayed the call (its name stands where an address would be)
        agent = doc.get("user_agent")
        if type(agent) is dict and str(agent.get("original", "")).startswith("aws-internal/"):
            return None
        assert self.trail is not None
        if self.trail.service_actor(doc):
            return None
        return [("event.action", doc["event"].get("action")), ("error.code", code), ("source.ip", ip)]

    def values(self, doc: Mapping[str, Any]) -> tuple[str, ...]:
        event = doc["event"]
        return (f"{event.get('provider', '')}:{event.get('action', '')}",)


def rules() -> list[BuiltinRule]:
    return [AccessDeniedBurst("aws"), AccessDeniedBurst("aliyun")]
