"""``org_or_region_tampering``: the account leaving (or being moved out of) its organisation / resource
directory, organisation guard-rails (SCPs, Alibaba control policies) removed, or AWS opt-in regions enabled or
disabled.

Leaving the organisation is reported even when it was denied: trying is the signal. Alibaba Cloud has no
opt-in regions (every region is open to every account), so the region part is AWS only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin.base import ActionRule, BuiltinRule, Check, Detection
from cloudsoc.detect.builtin.trail import ALIYUN, AWS, Trail
from cloudsoc.detect.rule import Hit

META: Final = Detection(
    name="org_or_region_tampering",
    title="Organisation or region settings tampered with",
    title_zh="组织/资源目录或地域设置被篡改",
    severity=Severity.HIGH,
    tags=("attack.defense_evasion", "attack.t1666", "attack.t1535", "attack.impact"),
    description=(
        "An account tried to leave its organisation (or resource directory), was moved or removed, "
        "organisation guard-rail policies were detached or disabled, or an AWS region was enabled or disabled. "
        "Leaving the organisation drops its SCPs, central logging and billing control; a freshly enabled region "
        "is where attackers run miners and hide resources nobody looks at."
    ),
    response=(
        "Confirm with the cloud/finance owner. Re-attach the account or policy; for a region enabled by "
        "surprise, list everything created there and disable it again (AWS Account Management)."
    ),
    description_zh=(
        "某个账号试图离开所属的组织（或资源目录），被移动或移出，组织层面的防护策略（阿里云管控策略、"
        "AWS SCP）被解绑或禁用，或者某个 AWS 区域被启用或禁用。账号一旦离开组织，这些策略、"
        "集中审计日志和账单管控都随之失效；新启用的区域则是攻击者部署挖矿程序、藏匿资源的地方，"
        "因为平时没人去看。"
    ),
    response_zh=(
        "与云资源负责人或财务负责人确认。把账号重新加回组织，或重新绑定策略；对于意外启用的区域，"
        "清点在那里创建的所有资源，然后再次禁用该区域（AWS Account Management）。"
    ),
    limits="Alibaba Cloud has no opt-in regions; only resource-directory changes are watched there.",
)


def _named(trail: Trail, *keys: str, service: str = "") -> Check:
    """Always fires (for ``service`` only, when given: several services share these action names)."""

    def check(doc: Mapping[str, Any]) -> list[Hit] | None:
        if service and not str(doc["event"].get("provider", "")).startswith(service):
            return None
        params = trail.params(doc)
        found = [(key, params[key]) for key in keys if params.get(key) not in (None, "")]
        return [*found, ("outcome", doc["event"].get("outcome"))]

    return check


_AWS_CHECKS: Final[dict[str, Check]] = {
    "LeaveOrganization": _named(AWS),
    "RemoveAccountFromOrganization": _named(AWS, "accountId"),
    "DeleteOrganization": _named(AWS),
    "DetachPolicy": _named(AWS, "policyId", "targetId", service="organizations."),
    "DisablePolicyType": _named(AWS, "policyType", "rootId"),
    "DisableAWSServiceAccess": _named(AWS, "servicePrincipal"),
    "EnableRegion": _named(AWS, "RegionName", "regionName"),
    "DisableRegion": _named(AWS, "RegionName", "regionName"),
}
_ALIYUN_CHECKS: Final[dict[str, Check]] = {
    "MoveAccount": _named(ALIYUN, "AccountId", "DestinationFolderId"),
    "RemoveCloudAccount": _named(ALIYUN, "AccountId"),
    "DestroyResourceDirectory": _named(ALIYUN),
    "DeleteAccount": _named(ALIYUN, "AccountId", service="resourcemanager."),
    "DetachControlPolicy": _named(ALIYUN, "PolicyId", "TargetId"),
    "DisableControlPolicy": _named(ALIYUN),
    "DeregisterDelegatedAdministrator": _named(ALIYUN, "AccountId", "ServicePrincipal"),
}
_AWS_ATTEMPTS: Final = frozenset({"LeaveOrganization"})
_ALIYUN_ATTEMPTS: Final = frozenset({"RemoveCloudAccount", "DestroyResourceDirectory"})


def rules() -> list[BuiltinRule]:
    return [
        ActionRule(META, "aws", _AWS_CHECKS, attempts=_AWS_ATTEMPTS),
        ActionRule(META, "aliyun", _ALIYUN_CHECKS, attempts=_ALIYUN_ATTEMPTS),
    ]
