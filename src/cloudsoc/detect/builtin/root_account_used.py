"""``root_account_used``: the account's root identity (AWS root user, Alibaba Cloud main account) doing something
that matters — signing in without MFA, calling APIs with a root AccessKey, or changing anything.

A root sign-in with MFA followed only by reads (billing, the monthly check) is the sanctioned break-glass use
and stays quiet; everything else root does is worth a look, because root cannot be limited by any policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin.base import BuiltinRule, Detection
from cloudsoc.detect.rule import Hit

META: Final = Detection(
    name="root_account_used",
    title="Root / main account used",
    title_zh="主账号（根用户）被使用",
    severity=Severity.HIGH,
    tags=("attack.initial_access", "attack.privilege_escalation", "attack.t1078.004"),
    description=(
        "The root identity (AWS root user, Alibaba Cloud main account) signed in without MFA, used a root "
        "AccessKey, or changed something. Root bypasses every IAM/RAM policy and cannot be restricted, so "
        "day-to-day work must use RAM/IAM users or roles; root AccessKeys should not exist at all."
    ),
    response=(
        "Confirm with the account owner that they did this. If not: change the root password, enforce MFA on "
        "root, delete any root AccessKey, and review every change made in the session (event ids in the alert). "
        "If it was them, move the task to a RAM/IAM identity."
    ),
    description_zh=(
        "根身份（阿里云主账号、AWS 根用户）在未使用 MFA 的情况下登录、使用了主账号 AccessKey，"
        "或者做了变更操作。主账号不受任何 RAM / IAM 策略约束，也无法被限制权限，"
        "因此日常工作应使用 RAM 用户 / IAM 用户或角色；主账号的 AccessKey 根本不应该存在。"
    ),
    response_zh=(
        "与账号所有人确认是否本人操作。如果不是：修改主账号密码，为主账号强制启用 MFA，"
        "删除所有主账号 AccessKey，并逐一核查这次会话中的所有变更（事件 ID 见告警）。如果确是本人操作，"
        "请把这项工作交给 RAM 用户 / IAM 用户或角色来做。"
    ),
)

# Sign-in flow events of AWS (besides ConsoleLogin itself): part of a login, judged by its ConsoleLogin.
_AWS_SIGNIN_STEPS: Final = frozenset(
    {"CheckMfa", "CredentialVerification", "CredentialChallenge", "ExternalIdPDirectoryLogin", "ConsoleLogout"}
)
# Side effects the console itself causes when root opens a page (service-linked roles are created on demand).
_CONSOLE_SIDE_EFFECTS: Final = frozenset({"CreateServiceLinkedRole"})
_LOGIN: Final = {"aws": "ConsoleLogin", "aliyun": "ConsoleSignin"}


class RootAccountUsed(BuiltinRule):
    """Every event of the root identity is looked at (one dict read for the others)."""

    def __init__(self, cloud: str) -> None:
        # One alert per hour of root activity, however many calls the session makes.
        super().__init__(META, cloud, actions=None, realert_secs=3600.0)
        self._login = _LOGIN[cloud]

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        derived = doc.get("cloudsoc")
        if type(derived) is not dict or derived.get("identity_type") != "root":
            return None
        trail = self.successful_call(doc)
        if trail is None:
            return None
        event = doc["event"]
        action = event.get("action")
        raw = trail.record(doc)
        hits: list[Hit] = [("cloudsoc.identity_type", "root"), ("event.action", action)]
        if action == self._login:
            if derived.get("mfa") is True:
                return None
            return [*hits, ("cloudsoc.mfa", derived.get("mfa", False))]
        if action in _AWS_SIGNIN_STEPS or action in _CONSOLE_SIDE_EFFECTS or action == "ConsoleSignout":
            return None
        key = derived.get("access_key_id")
        if type(key) is str and key and not derived.get("console") and trail.long_term_key(key):
            return [*hits, ("cloudsoc.access_key_id", key)]
        if _read_only(raw, event):
            return None
        return hits


def _read_only(raw: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    flag = raw.get("readOnly")
    if flag is True or flag == "true":
        return True
    if flag is False or flag == "false":
        return False
    rw = raw.get("eventRW")
    if rw == "Read":
        return True
    if rw == "Write":
        return False
    kinds = event.get("type")
    return type(kinds) is list and "access" in kinds


def rules() -> list[BuiltinRule]:
    return [RootAccountUsed("aws"), RootAccountUsed("aliyun")]
