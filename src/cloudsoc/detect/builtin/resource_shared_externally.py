"""``resource_shared_externally``: a disk snapshot, machine image, database snapshot or KMS key shared with
another account, or with everyone.

Only additions count (``add`` / ``valuesToAdd`` / ``AddAccount``): removing a share is the fix, not the
problem. Sharing with the own account id stays quiet. Alibaba Cloud shares ECS images (a snapshot is shared by
making an image of it) and, through Resource Sharing, other resources; it has no cross-account snapshot or KMS
grant API, so those parts are AWS only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin import policy
from cloudsoc.detect.builtin.base import ActionRule, BuiltinRule, Check, Detection
from cloudsoc.detect.builtin.trail import ALIYUN, AWS, Trail, items, strings
from cloudsoc.detect.rule import Hit

META: Final = Detection(
    name="resource_shared_externally",
    title="Resource shared with another account or made public",
    title_zh="资源被共享给外部账号或公开",
    severity=Severity.HIGH,
    tags=("attack.exfiltration", "attack.t1537"),
    description=(
        "A snapshot, image, database snapshot or key was shared with another cloud account or with everyone. "
        "Sharing a snapshot to an account the attacker controls copies a whole disk or database out of the "
        "company in seconds, without any data leaving through the network the company watches."
    ),
    response=(
        "Check the receiving account id against the company's own accounts. If unknown, remove the share at "
        "once, find out what the resource contained, and treat its data (and any secrets on it) as leaked."
    ),
    description_zh=(
        "快照、镜像、数据库快照或密钥被共享给了其他云账号，或者被公开给所有人。把快照共享给攻击者控制的账号，"
        "几秒钟就能把整块云盘或整个数据库复制出企业，而且没有任何数据经过企业监控的网络。"
    ),
    response_zh=(
        "核对接收方账号 ID 是否属于本企业。如果不认识，立即取消共享，查清该资源里有哪些内容，"
        "并将其中的数据（以及上面存放的任何密钥、口令）视为已经泄露。"
    ),
    limits="Alibaba Cloud: images and Resource Sharing only (no cross-account snapshot or KMS grant APIs).",
)


def _outside(accounts: list[str], own: str) -> list[str]:
    return [a for a in accounts if a and a != own]


# --- AWS ----------------------------------------------------------------------------------------------------


def _aws_permission(attribute: str) -> Check:
    """ModifySnapshotAttribute / ModifyImageAttribute: ``<attribute>.add.items[]`` of userId or group ``all``."""

    def check(doc: Mapping[str, Any]) -> list[Hit] | None:
        params = AWS.params(doc)
        permission = params.get(attribute)
        added = permission.get("add") if type(permission) is dict else None
        accounts: list[str] = []
        for item in items(added):
            if type(item) is not dict:
                continue
            if str(item.get("group", "")).lower() == "all":
                accounts.append("all (public)")
            elif item.get("userId"):
                accounts.append(str(item["userId"]))
        outside = _outside(accounts, AWS.account(doc))
        if not outside:
            return None
        resource = params.get("snapshotId") or params.get("imageId")
        return [("resource", resource), ("shared_with", outside)]

    return check


def _aws_db_snapshot(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = AWS.params(doc)
    if str(params.get("attributeName", "")).lower() != "restore":
        return None
    added = ["all (public)" if v == "all" else v for v in strings(params.get("valuesToAdd"))]
    outside = _outside(added, AWS.account(doc))
    if not outside:
        return None
    snapshot = params.get("dBSnapshotIdentifier") or params.get("dBClusterSnapshotIdentifier")
    return [("resource", snapshot), ("shared_with", outside)]


def _aws_kms_grant(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = AWS.params(doc)
    principal = params.get("granteePrincipal")
    if type(principal) is not str:
        return None
    account = policy.account_of(principal)
    if account is None or account == AWS.account(doc):
        return None
    return [("keyId", params.get("keyId")), ("granteePrincipal", principal), ("shared_with", [account])]


def _aws_resource_share(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = AWS.params(doc)
    accounts = [policy.account_of(p) or p for p in strings(params.get("principals"))]
    outside = [a for a in _outside(accounts, AWS.account(doc)) if a.isdigit()]
    if not outside:
        return None
    return [("resourceShare", params.get("name") or params.get("resourceShareArn")), ("shared_with", outside)]


_AWS_CHECKS: Final[dict[str, Check]] = {
    "ModifySnapshotAttribute": _aws_permission("createVolumePermission"),
    "ModifyImageAttribute": _aws_permission("launchPermission"),
    "ModifyDBSnapshotAttribute": _aws_db_snapshot,
    "ModifyDBClusterSnapshotAttribute": _aws_db_snapshot,
    "CreateGrant": _aws_kms_grant,
    "CreateResourceShare": _aws_resource_share,
    "AssociateResourceShare": _aws_resource_share,
}


# --- Alibaba Cloud ------------------------------------------------------------------------------------------


def _listed(params: Mapping[str, Any], key: str) -> list[str]:
    """``AddAccount.1``…: nested by the parser into a list, or still flat, or a JSON/comma list."""
    value = params.get(key)
    if type(value) is list:
        return [str(v) for v in value if v not in (None, "")]
    found = strings(value)
    prefix = key + "."
    found += [str(v) for k, v in params.items() if k.startswith(prefix) and v not in (None, "")]
    return found


def _aliyun_image_share(trail: Trail) -> Check:
    def check(doc: Mapping[str, Any]) -> list[Hit] | None:
        params = trail.params(doc)
        added = _outside(_listed(params, "AddAccount"), trail.account(doc))
        if str(params.get("IsPublic", "")).lower() == "true":
            added.append("all (public)")
        if not added:
            return None
        return [("ImageId", params.get("ImageId")), ("shared_with", added)]

    return check


def _aliyun_image_group(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = ALIYUN.params(doc)
    if "all" not in [g.lower() for g in _listed(params, "AddGroup")]:
        return None
    return [("ImageId", params.get("ImageId")), ("shared_with", ["all (public)"])]


def _aliyun_resource_share(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = ALIYUN.params(doc)
    targets = _outside(_listed(params, "Targets"), ALIYUN.account(doc))
    outside = [t for t in targets if t.isdigit()]
    if not outside:
        return None
    return [
        ("ResourceShare", params.get("ResourceShareName") or params.get("ResourceShareId")),
        ("shared_with", outside),
    ]


_ALIYUN_CHECKS: Final[dict[str, Check]] = {
    "ModifyImageSharePermission": _aliyun_image_share(ALIYUN),
    "ModifyImageShareGroupPermission": _aliyun_image_group,
    "CreateResourceShare": _aliyun_resource_share,
    "AssociateResourceShare": _aliyun_resource_share,
}


def rules() -> list[BuiltinRule]:
    return [ActionRule(META, "aws", _AWS_CHECKS), ActionRule(META, "aliyun", _ALIYUN_CHECKS)]
