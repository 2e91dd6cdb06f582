"""``identity_backdoor``: a way in for someone else — a console password or AccessKey given to another existing
user, a user created by a script with someone's personal AccessKey, or a role's trust policy opened to another
account or to everyone.

On-boarding stays quiet: a user created in the last day getting their first password and key. So do admin
password resets that force the user to choose a new password, trust policies naming cloud services or identity
providers, and trust within the own account.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin import policy
from cloudsoc.detect.builtin.base import BuiltinRule, Detection
from cloudsoc.detect.builtin.provisioning import Provisioning
from cloudsoc.detect.builtin.trail import Trail, flag, source_ip
from cloudsoc.detect.rule import Finding, Hit, Match

META: Final = Detection(
    name="identity_backdoor",
    title="Identity backdoor: credentials for another user, or a role trusted by another account",
    title_zh="身份后门：为他人创建凭证或角色信任外部账号",
    severity=Severity.HIGH,
    tags=("attack.persistence", "attack.t1098", "attack.t1098.001", "attack.t1136.003"),
    description=(
        "Someone gave another existing user a console password or an AccessKey, created a user with a personal "
        "AccessKey from a script, or let another account (or anyone) assume a role. These are the classic ways "
        "to keep access after the first foothold is found and closed, and they look like ordinary admin work."
    ),
    response=(
        "Ask the caller and the target user whether this was requested. If not: delete the new login profile or "
        "AccessKey (or the new user), restore the role's trust policy, and investigate the caller's other "
        "actions. For trust changes, check the external account id against your organisation's accounts."
    ),
    description_zh=(
        "有人为另一个已有用户设置了控制台登录密码或创建了 AccessKey，用脚本创建了带个人 AccessKey 的新用户，"
        "或者允许其他账号（甚至任何人）扮演某个角色。这些都是在最初的入侵点被发现并封堵后保住访问权限的经典手"
        "法，而且看起来和日常的管理操作没什么两样。"
    ),
    response_zh=(
        "向调用者和目标用户确认是否有人提出过申请。如果没有：删除新建的登录配置或 AccessKey（或新建的用户），"
        "恢复角色的信任策略，并排查调用者的其他操作。对于信任策略的变更，"
        "核对其中的外部账号 ID 是否属于本企业（资源目录 / AWS Organizations 中的成员账号）。"
    ),
)

_PASSWORD_UPDATE: Final = frozenset({"UpdateLoginProfile"})
_TRUST_DOCUMENTS: Final = {
    "aws": {"UpdateAssumeRolePolicy": ("policyDocument",), "CreateRole": ("assumeRolePolicyDocument",)},
    "aliyun": {"UpdateRole": ("NewAssumeRolePolicyDocument",), "CreateRole": ("AssumeRolePolicyDocument",)},
}
_RESET_REQUIRED: Final = {"aws": "passwordResetRequired", "aliyun": "PasswordResetRequired"}


class IdentityBackdoor(BuiltinRule):
    def __init__(self, cloud: str) -> None:
        self._trust = _TRUST_DOCUMENTS[cloud]
        actions = {"createuser", "createloginprofile", "updateloginprofile", "createaccesskey"}
        actions |= {a.lower() for a in self._trust}
        super().__init__(META, cloud, actions=frozenset(actions))
        self._users = Provisioning()

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        trail = self.successful_call(doc)
        if trail is None:
            return None
        action = doc["event"].get("action")
        base: list[Hit] = [("event.action", action), ("user.name", trail.caller(doc)), ("source.ip", source_ip(doc))]
        if action in self._trust:
            return self._trust_hits(trail, doc, action, base)
        if action == "CreateUser":
            # Kept for on-boarding memory; suspicious by itself only when a script did it with a personal key.
            return [*base, ("user.target.name", trail.target_user(doc)), ("programmatic", _programmatic(trail, doc))]
        target = trail.for_another_user(doc)
        if target is None:
            return None
        if action in _PASSWORD_UPDATE and flag(trail.params(doc).get(_RESET_REQUIRED[trail.cloud])) is True:
            return None  # an admin reset: the user must choose a new password at the next sign-in
        return [*base, ("user.target.name", target)]

    def _trust_hits(self, trail: Trail, doc: Mapping[str, Any], action: str, base: list[Hit]) -> list[Hit] | None:
        document = policy.document(trail.params(doc), *self._trust[action])
        own = trail.account(doc)
        outside = [a for a in policy.principal_accounts(document) if a != own]
        if not outside:
            return None
        params = trail.params(doc)
        role = params.get("roleName") or params.get("RoleName")
        return [*base, ("role", role), ("trusted_accounts", outside)]

    def observe(self, match: Match) -> list[Finding]:
        doc = match.doc
        assert self.trail is not None
        hits = dict(match.hits)
        action = hits.get("event.action")
        account = self.trail.account(doc)
        target = str(hits.get("user.target.name") or "")
        at = match.time.timestamp()
        if action == "CreateUser":
            if target:
                self._users.created(account, target, at)
            if hits.get("programmatic") is not True:
                return []
            return [
                self.finding(match, text=f"user {target} created with the personal AccessKey of {hits['user.name']}")
            ]
        if target and self._users.recent(account, target, at):
            return []
        return [self.finding(match)]

    def snapshot(self) -> bytes | None:
        return orjson.dumps(self._users.state())

    def restore(self, state: bytes) -> None:
        self._users.load(orjson.loads(state))

    def reset(self) -> None:
        self._users.clear()


def _programmatic(trail: Trail, doc: Mapping[str, Any]) -> bool:
    """Called outside the console with a user's (or root's) own long-term AccessKey."""
    if trail.console(doc):
        return False
    key = trail.access_key(doc)
    return key is not None and trail.long_term_key(key) and trail.identity_type(doc) in ("user", "root")


def rules() -> list[BuiltinRule]:
    return [IdentityBackdoor("aws"), IdentityBackdoor("aliyun")]
