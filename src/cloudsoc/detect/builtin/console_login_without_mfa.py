"""``console_login_without_mfa``: a RAM/IAM user (or root) signed in to the web console with a password alone.

Federated sign-ins (SAML/SSO, role sessions) are left out: the identity provider does MFA there and the trail
cannot see it. The finding is about a user's set-up, so it is reported once a week per user and network, not
at every sign-in — but a sign-in from a network the user was not reported from comes through at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin.base import BuiltinRule, Detection, identity_key
from cloudsoc.detect.builtin.network import ip_prefix
from cloudsoc.detect.builtin.trail import source_ip
from cloudsoc.detect.rule import Hit

META: Final = Detection(
    name="console_login_without_mfa",
    title="Console sign-in without MFA",
    title_zh="控制台登录未使用 MFA",
    severity=Severity.MEDIUM,
    tags=("attack.initial_access", "attack.t1078.004", "attack.credential_access"),
    description=(
        "A user signed in to the cloud console with only a password. A phished, reused or leaked password is "
        "then all an attacker needs; CIS (AWS 1.10, Alibaba Cloud 1.4) requires MFA for every console user."
    ),
    response=(
        "Ask the user to bind an MFA device now, then enforce it (RAM: MFABindRequired / security preference "
        "EnforceMFAForLogin; IAM: a policy denying all without aws:MultiFactorAuthPresent). If the user did "
        "not sign in at that time or from that address, reset the password and review the session."
    ),
    description_zh=(
        "有用户仅凭密码登录了云控制台。这样一来，只要密码被钓鱼、撞库或泄露，攻击者就能直接登录；"
        "CIS 基线（AWS 1.10、阿里云 1.4）要求所有控制台用户都启用 MFA。"
    ),
    response_zh=(
        "请该用户立即绑定 MFA 设备，然后强制启用（RAM：MFABindRequired / 安全设置中的 EnforceMFAForLogin；"
        "IAM：添加一条在没有 aws:MultiFactorAuthPresent 时拒绝所有操作的策略）。如果该用户在那个时间、"
        "从那个地址并没有登录过，立即重置密码并排查这次会话的操作。"
    ),
)

_LOGIN: Final = {"aws": "ConsoleLogin", "aliyun": "ConsoleSignin"}
_PEOPLE: Final = frozenset({"user", "root"})
WEEK_SECS: Final = 7 * 86400.0


class ConsoleLoginWithoutMfa(BuiltinRule):
    def __init__(self, cloud: str) -> None:
        super().__init__(META, cloud, actions=frozenset({_LOGIN[cloud].lower()}), realert_secs=WEEK_SECS)

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        if doc["event"].get("outcome") != "success":
            return None
        derived = doc.get("cloudsoc")
        # Only an explicit "no": a record without the MFA flag says nothing either way.
        if type(derived) is not dict or derived.get("mfa") is not False:
            return None
        kind = derived.get("identity_type")
        if kind not in _PEOPLE:
            return None
        assert self.trail is not None
        extra = self.trail.record(doc).get("additionalEventData")
        if type(extra) is dict and (extra.get("SamlProviderArn") or extra.get("samlProviderArn")):
            return None
        return [
            ("event.action", doc["event"].get("action")),
            ("user.name", self.trail.caller(doc)),
            ("cloudsoc.identity_type", kind),
            ("cloudsoc.mfa", False),
            ("source.ip", source_ip(doc)),
        ]

    def group(self, doc: Mapping[str, Any]) -> str:
        ip = source_ip(doc)
        return f"{identity_key(doc)}|{ip_prefix(ip) if ip else ''}"


def rules() -> list[BuiltinRule]:
    return [ConsoleLoginWithoutMfa("aws"), ConsoleLoginWithoutMfa("aliyun")]
