"""``admin_privilege_granted``: full administrator rights given to a user, group or role — the managed
``AdministratorAccess`` policy attached, or a policy allowing Action ``*`` on Resource ``*`` written inline,
created, made the default version, or (once created as such) attached.

Policy documents are parsed (they arrive as JSON strings): a policy that merely *mentions* ``*`` somewhere, or
allows ``*`` on a few resources, is not administrator. Custom admin policies are remembered by name/ARN, so
attaching one later fires too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin import policy
from cloudsoc.detect.builtin.base import BuiltinRule, Detection
from cloudsoc.detect.builtin.trail import Trail, flag, source_ip
from cloudsoc.detect.rule import Finding, Hit, Match

META: Final = Detection(
    name="admin_privilege_granted",
    title="Administrator privileges granted",
    title_zh="授予了管理员权限",
    severity=Severity.HIGH,
    tags=("attack.privilege_escalation", "attack.persistence", "attack.t1098.003", "attack.t1078.004"),
    description=(
        "A user, group or role received full administrator rights: AdministratorAccess, or a policy allowing "
        "every action on every resource. Attackers escalate this way as soon as a mis-granted IAM/RAM permission "
        "lets them; admins granting themselves '*' to save time is the other common cause."
    ),
    response=(
        "Verify the grant was requested and approved. If not, detach the policy (and delete the custom one), "
        "disable the caller's keys and review what the identity did with the new rights. Prefer scoped policies."
    ),
    description_zh=(
        "某个用户、用户组或角色被授予了完整的管理员权限：AdministratorAccess，"
        "或者允许对所有资源执行所有操作（Action 和 Resource 均为 *）的策略。"
        "攻击者一旦发现 RAM / IAM 权限配置不当，就会用这种方式提权；另一个常见原因是管理员图省事，"
        "直接给自己授权 *。"
    ),
    response_zh=(
        "确认这次授权是否经过申请和审批。如果没有，解除该策略授权（自定义策略一并删除），"
        "禁用调用者的 AccessKey，并排查该身份拿到新权限后做了什么。日常授权应按最小权限原则，"
        "限定操作和资源范围。"
    ),
)

ADMIN_MANAGED: Final = "AdministratorAccess"
_AWS_ATTACH: Final = frozenset({"AttachUserPolicy", "AttachRolePolicy", "AttachGroupPolicy"})
_AWS_INLINE: Final = frozenset({"PutUserPolicy", "PutRolePolicy", "PutGroupPolicy"})
_ALIYUN_ATTACH: Final = frozenset({"AttachPolicyToUser", "AttachPolicyToRole", "AttachPolicyToGroup", "AttachPolicy"})


def _target(params: Mapping[str, Any]) -> object:
    for key in ("userName", "roleName", "groupName", "UserName", "RoleName", "GroupName", "PrincipalName"):
        value = params.get(key)
        if value:
            return value
    return None


class AdminPrivilegeGranted(BuiltinRule):
    def __init__(self, cloud: str) -> None:
        if cloud == "aws":
            actions = _AWS_ATTACH | _AWS_INLINE | {"CreatePolicy", "CreatePolicyVersion"}
        else:
            actions = _ALIYUN_ATTACH | {"CreatePolicy", "CreatePolicyVersion"}
        super().__init__(META, cloud, actions=frozenset(a.lower() for a in actions))
        # Custom policies seen created with administrator rights: account → policy names / ARNs.
        self._admin_policies: dict[str, set[str]] = {}

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        trail = self.successful_call(doc)
        if trail is None:
            return None
        action = doc["event"].get("action")
        params = trail.params(doc)
        base: list[Hit] = [("event.action", action), ("user.name", trail.caller(doc)), ("source.ip", source_ip(doc))]
        if trail.cloud == "aws":
            return _aws(trail, doc, action, params, base)
        return _aliyun(action, params, base)

    def observe(self, match: Match) -> list[Finding]:
        hits = dict(match.hits)
        assert self.trail is not None
        account = self.trail.account(match.doc)
        created = hits.get("created_admin_policy")
        if type(created) is str:
            self._admin_policies.setdefault(account, set()).add(created)
            return [self.finding(match)]
        if hits.get("admin") is True:
            return [self.finding(match)]
        name = hits.get("policy")
        if type(name) is str and name in self._admin_policies.get(account, ()):
            return [self.finding(match, text=f"custom administrator policy {name} attached to {hits.get('target')}")]
        return []

    def snapshot(self) -> bytes | None:
        return orjson.dumps({a: sorted(p) for a, p in self._admin_policies.items()})

    def restore(self, state: bytes) -> None:
        self._admin_policies = {a: set(p) for a, p in orjson.loads(state).items()}

    def reset(self) -> None:
        self._admin_policies.clear()


def _aws(
    trail: Trail, doc: Mapping[str, Any], action: str, params: Mapping[str, Any], base: list[Hit]
) -> list[Hit] | None:
    if action in _AWS_ATTACH:
        arn = params.get("policyArn")
        if type(arn) is not str:
            return None
        managed = arn.endswith(":policy/" + ADMIN_MANAGED)
        # A custom policy's attach is only interesting if it was created as admin (decided in observe).
        return [*base, ("policy", arn), ("target", _target(params)), ("admin", managed)]
    document = policy.document(params, "policyDocument")
    if not policy.grants_admin(document):
        return None
    if action in _AWS_INLINE:
        return [*base, ("policy", params.get("policyName")), ("target", _target(params)), ("admin", True)]
    if action == "CreatePolicyVersion":
        if flag(params.get("setAsDefault")) is not True:
            return None
        return [*base, ("policy", params.get("policyArn")), ("admin", True)]
    created = trail.response(doc).get("policy")
    arn = created.get("arn") if type(created) is dict else None
    if type(arn) is not str:
        path = params.get("path") or "/"
        arn = f"arn:aws:iam::{trail.account(doc)}:policy{path}{params.get('policyName')}"
    return [*base, ("policy", params.get("policyName")), ("created_admin_policy", arn)]


def _aliyun(action: str, params: Mapping[str, Any], base: list[Hit]) -> list[Hit] | None:
    name = params.get("PolicyName")
    if action in _ALIYUN_ATTACH:
        if type(name) is not str:
            return None
        managed = name == ADMIN_MANAGED and str(params.get("PolicyType", "System")).lower() == "system"
        return [*base, ("policy", name), ("target", _target(params)), ("admin", managed)]
    if not policy.grants_admin(policy.document(params, "PolicyDocument")):
        return None
    if action == "CreatePolicyVersion":
        if flag(params.get("SetAsDefault")) is not True:
            return None
        return [*base, ("policy", name), ("admin", True)]
    return [*base, ("policy", name), ("created_admin_policy", name)]


def rules() -> list[BuiltinRule]:
    return [AdminPrivilegeGranted("aws"), AdminPrivilegeGranted("aliyun")]
