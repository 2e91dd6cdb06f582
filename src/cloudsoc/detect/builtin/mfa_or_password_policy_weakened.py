"""``mfa_or_password_policy_weakened``: MFA removed from a user or no longer required, or the account password
policy set below the baseline (deleted, shorter than 14 characters, fewer than 5 remembered passwords, or —
Alibaba Cloud — no or lax lockout after failed sign-ins).

Turning protections on (binding MFA, a stricter policy) never fires. Baselines follow the CIS benchmarks for
both clouds and Alibaba's own landing-zone alerts. AWS applies defaults to the settings an
``UpdateAccountPasswordPolicy`` call leaves out, so missing ones count as unset; Alibaba Cloud's
``SetPasswordPolicy`` leaves them as they were, so only the settings present are judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin.base import ActionRule, BuiltinRule, Check, Detection
from cloudsoc.detect.builtin.trail import ALIYUN, AWS, Trail, flag
from cloudsoc.detect.rule import Hit

META: Final = Detection(
    name="mfa_or_password_policy_weakened",
    title="MFA removed or password policy weakened",
    title_zh="MFA 被解绑或密码策略被削弱",
    severity=Severity.MEDIUM,
    tags=("attack.defense_evasion", "attack.persistence", "attack.t1556.006", "attack.t1556"),
    description=(
        "MFA was removed from a user or is no longer enforced at sign-in, or the password policy now allows "
        "short or recycled passwords (or unlimited guessing). Attackers remove MFA from an account they took "
        "over so the password alone gets them back in; weak policies make guessing and reuse attacks work."
    ),
    response=(
        "Confirm the change with the caller. Re-bind MFA for the user (or re-enforce it), restore the password "
        "policy (≥ 14 characters, ≥ 5 remembered, lockout after ≤ 5 failures on Alibaba Cloud), and check the "
        "affected users' recent sign-ins."
    ),
    description_zh=(
        "某个用户的 MFA 被解绑或登录时不再强制 MFA，或者密码策略被放宽，允许短密码、"
        "重复使用旧密码（或不限制登录重试次数）。攻击者接管账号后会解绑 MFA，以便之后仅凭密码就能再次登录；"
        "宽松的密码策略则让猜密码和撞库更容易得手。"
    ),
    response_zh=(
        "与调用者确认这项变更。为该用户重新绑定（或重新强制启用）MFA，恢复密码策略（阿里云上建议："
        "长度不少于 14 位、不能与最近 5 次的密码重复、连续登录失败不超过 5 次即锁定），"
        "并检查受影响用户最近的登录记录。"
    ),
)

MIN_LENGTH: Final = 14
MIN_REUSE_PREVENTION: Final = 5
MAX_LOGIN_ATTEMPTS: Final = 5


def _number(value: object) -> int | None:
    if type(value) is int:
        return value
    if type(value) is str and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _mfa_removed(trail: Trail) -> Check:
    def check(doc: Mapping[str, Any]) -> list[Hit] | None:
        params = trail.params(doc)
        user = params.get(trail.user_key) or params.get("serialNumber") or params.get("SerialNumber")
        return [("mfa_of", user or trail.caller(doc))]

    return check


def _aws_password_policy(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = AWS.params(doc)
    hits: list[Hit] = []
    length = _number(params.get("minimumPasswordLength"))
    if length is None or length < MIN_LENGTH:
        hits.append(("minimumPasswordLength", length if length is not None else "default (8)"))
    reuse = _number(params.get("passwordReusePrevention"))
    if reuse is None or reuse < MIN_REUSE_PREVENTION:
        hits.append(("passwordReusePrevention", reuse if reuse is not None else "not set"))
    return hits or None


def _aws_policy_deleted(doc: Mapping[str, Any]) -> list[Hit] | None:
    return [("password_policy", "deleted")]


def _aliyun_password_policy(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = ALIYUN.params(doc)
    hits: list[Hit] = []
    length = _number(params.get("MinimumPasswordLength"))
    if length is not None and length < MIN_LENGTH:
        hits.append(("MinimumPasswordLength", length))
    reuse = _number(params.get("PasswordReusePrevention"))
    if reuse is not None and reuse < MIN_REUSE_PREVENTION:
        hits.append(("PasswordReusePrevention", reuse))
    # The API's own spelling is MaxLoginAttemps; 0 turns the lockout off.
    attempts = _number(params.get("MaxLoginAttemps", params.get("MaxLoginAttempts")))
    if attempts is not None and (attempts == 0 or attempts > MAX_LOGIN_ATTEMPTS):
        hits.append(("MaxLoginAttemps", attempts))
    return hits or None


def _aliyun_security_preference(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = ALIYUN.params(doc)
    if flag(params.get("EnforceMFAForLogin")) is False:
        return [("EnforceMFAForLogin", False)]
    return None


def _aliyun_login_profile(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = ALIYUN.params(doc)
    if flag(params.get("MFABindRequired")) is False:
        return [("user.target.name", params.get("UserName")), ("MFABindRequired", False)]
    return None


_AWS_CHECKS: Final[dict[str, Check]] = {
    "UpdateAccountPasswordPolicy": _aws_password_policy,
    "DeleteAccountPasswordPolicy": _aws_policy_deleted,
    "DeactivateMFADevice": _mfa_removed(AWS),
    "DeleteVirtualMFADevice": _mfa_removed(AWS),
}
_ALIYUN_CHECKS: Final[dict[str, Check]] = {
    "SetPasswordPolicy": _aliyun_password_policy,
    "SetSecurityPreference": _aliyun_security_preference,
    "UpdateLoginProfile": _aliyun_login_profile,
    "UnbindMFADevice": _mfa_removed(ALIYUN),
    "DeleteVirtualMFADevice": _mfa_removed(ALIYUN),
}


def rules() -> list[BuiltinRule]:
    return [ActionRule(META, "aws", _AWS_CHECKS), ActionRule(META, "aliyun", _ALIYUN_CHECKS)]
