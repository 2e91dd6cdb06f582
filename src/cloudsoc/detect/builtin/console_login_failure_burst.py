"""``console_login_failure_burst``: many failed console sign-ins for one user within a few minutes — password
guessing against that user (including root). A single mistyped password is normal and never fires.
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
    name="console_login_failure_burst",
    title="Burst of failed console sign-ins",
    title_zh="控制台登录连续失败",
    severity=Severity.MEDIUM,
    tags=("attack.credential_access", "attack.t1110.001", "attack.t1110.003"),
    description=(
        "Several console sign-ins of one user failed within minutes: someone is guessing or spraying "
        "passwords, or trying a leaked one. Alibaba Cloud's own landing-zone alert fires on more than five "
        "failures in 30 minutes."
    ),
    response=(
        "Check the source addresses in the alert. If they are not the user's, make sure the user has MFA and a "
        "strong password, consider a sign-in IP restriction (RAM security preference / IAM aws:SourceIp), and "
        "watch for a successful sign-in from the same addresses."
    ),
    description_zh=(
        "同一用户在几分钟内多次登录控制台失败：有人在猜密码、做密码喷洒，或者在试一个已泄露的密码。"
        "阿里云 Landing Zone 自带的告警规则是 30 分钟内失败超过 5 次。"
    ),
    response_zh=(
        "检查告警中的来源 IP。如果不是该用户自己的地址，确认该用户已绑定 MFA 且使用强密码，"
        "考虑限制登录 IP（RAM 访问控制的安全设置 / IAM 策略中的 aws:SourceIp 条件），"
        "并留意这些地址之后是否出现登录成功。"
    ),
)

_LOGIN: Final = {"aws": "ConsoleLogin", "aliyun": "ConsoleSignin"}
THRESHOLD: Final = 5
WINDOW_SECS: Final = 900.0


class ConsoleLoginFailureBurst(BurstRule):
    counted_field = "failed_sign_ins"

    def __init__(self, cloud: str, threshold: int = THRESHOLD, window_secs: float = WINDOW_SECS) -> None:
        super().__init__(
            META, cloud, actions=frozenset({_LOGIN[cloud].lower()}), threshold=threshold, window_secs=window_secs
        )

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        if doc["event"].get("outcome") != "failure":
            return None
        assert self.trail is not None
        error = doc.get("error")
        reason = error.get("message") or error.get("code") if type(error) is dict else None
        return [
            ("event.action", doc["event"].get("action")),
            ("user.name", self.trail.caller(doc)),
            ("source.ip", source_ip(doc)),
            ("error.message", reason),
        ]


def rules() -> list[BuiltinRule]:
    return [ConsoleLoginFailureBurst("aws"), ConsoleLoginFailureBurst("aliyun")]
