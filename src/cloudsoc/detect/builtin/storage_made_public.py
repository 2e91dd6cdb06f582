"""``storage_made_public``: a bucket or object made readable (or writable) by anyone — a public ACL, a policy
allowing principal ``*`` without a restricting condition, or the public-access block removed or switched off.
On AWS other resource policies that expose data the same way count too (ECR, SQS, SNS, KMS, Secrets Manager,
OpenSearch, Glacier, Lambda).

Setting a bucket private, switching the public-access block on, and policies whose ``*`` is pinned to the own
organisation, accounts, VPCs or addresses by a condition do not fire.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin import policy
from cloudsoc.detect.builtin.base import ActionRule, BuiltinRule, Check, Detection
from cloudsoc.detect.builtin.trail import ALIYUN, AWS, flag, items, strings
from cloudsoc.detect.rule import Hit

META: Final = Detection(
    name="storage_made_public",
    title="Storage made public",
    title_zh="存储桶/对象被设为公开",
    severity=Severity.HIGH,
    tags=("attack.exfiltration", "attack.t1537", "attack.collection", "attack.t1530"),
    description=(
        "A bucket, object or other data resource was opened to everyone on the Internet (public ACL, a policy "
        "for principal *, or the public-access block removed). Public buckets are found by scanners within "
        "hours; backups and exports in them are the most common cloud data leak."
    ),
    response=(
        "Set the resource back to private (and turn the public-access block on) unless it is a documented public "
        "website bucket; check the access logs for downloads since the change and who made it."
    ),
    description_zh=(
        "存储桶、对象或其他数据资源被开放给了互联网上的所有人（公共读 / 公共读写 ACL、"
        "Principal 为 * 的 Bucket Policy，或关闭了阻止公共访问）。公开的 OSS Bucket / S3 存储桶几小时内就会被"
        "扫描器发现；里面的备份和导出文件，是最常见的云上数据泄露来源。"
    ),
    response_zh=(
        "除非是登记在案的公开静态网站 Bucket，否则把资源改回私有（并开启阻止公共访问）；查看访问日志，"
        "确认变更之后有没有人下载过数据，并查清是谁做的变更。"
    ),
)

_PUBLIC_ACLS: Final = frozenset({"public-read", "public-read-write", "authenticated-read"})
_PUBLIC_GROUPS: Final = (
    "acs.amazonaws.com/groups/global/AllUsers",
    "acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
_AWS_GRANT_HEADERS: Final = (
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
)
_BLOCK_FLAGS: Final = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def _canned(params: Mapping[str, Any], *keys: str) -> list[str]:
    found: list[str] = []
    for key in keys:
        found += [v.lower() for v in strings(params.get(key)) if v.lower() in _PUBLIC_ACLS]
    return found


# --- AWS ----------------------------------------------------------------------------------------------------


def _s3(check: Check) -> Check:
    """``check`` for S3 events only (bucket action names are S3's, but a record's own source is what counts)."""

    def on_s3(doc: Mapping[str, Any]) -> list[Hit] | None:
        provider = doc["event"].get("provider")
        return check(doc) if type(provider) is str and provider.startswith("s3") else None

    return on_s3


def _aws_acl(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = AWS.params(doc)
    hits: list[Hit] = []
    canned = _canned(params, "x-amz-acl")
    if canned:
        hits.append(("x-amz-acl", canned))
    for header in _AWS_GRANT_HEADERS:
        value = params.get(header)
        text = " ".join(strings(value)) if not isinstance(value, str) else value
        if any(group in text for group in _PUBLIC_GROUPS):
            hits.append((header, text))
    acl = params.get("AccessControlPolicy")
    acl_list = acl.get("AccessControlList") if type(acl) is dict else None
    grants = items(acl_list.get("Grant")) if type(acl_list) is dict else []
    for grant in grants:
        grantee = grant.get("Grantee") if type(grant) is dict else None
        uri = grantee.get("URI") if type(grantee) is dict else None
        if type(uri) is str and any(group in uri for group in _PUBLIC_GROUPS):
            hits.append(("AccessControlPolicy.Grant", f"{uri} {grant.get('Permission', '')}".strip()))
    if not hits:
        return None
    return [("bucket", params.get("bucketName")), ("key", params.get("key")), *hits]


def _public_document(*keys: str) -> Check:
    def check(doc: Mapping[str, Any]) -> list[Hit] | None:
        params = AWS.params(doc)
        document = policy.document(params, *keys)
        public = policy.public_statements(document)
        if not public:
            return None
        resource = params.get("bucketName") or params.get("repositoryName") or params.get("keyId")
        return [("resource", resource), ("public_statements", public[:3])]

    return check


def _aws_sqs(doc: Mapping[str, Any]) -> list[Hit] | None:
    attributes = AWS.params(doc).get("attributes")
    if type(attributes) is not dict:
        return None
    public = policy.public_statements(policy.document(attributes, "Policy"))
    return [("queue", AWS.params(doc).get("queueUrl")), ("public_statements", public[:3])] if public else None


def _aws_sns(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = AWS.params(doc)
    if str(params.get("attributeName", "")).lower() != "policy":
        return None
    public = policy.public_statements(policy.document(params, "attributeValue"))
    return [("topic", params.get("topicArn")), ("public_statements", public[:3])] if public else None


def _aws_glacier(doc: Mapping[str, Any]) -> list[Hit] | None:
    holder = AWS.params(doc).get("policy")
    document = policy.document(holder, "policy") if type(holder) is dict else policy.load(holder)
    public = policy.public_statements(document)
    return [("vault", AWS.params(doc).get("vaultName")), ("public_statements", public[:3])] if public else None


def _aws_lambda_permission(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = AWS.params(doc)
    if params.get("principal") != "*":
        return None
    if any(params.get(k) for k in ("sourceArn", "sourceAccount", "principalOrgID", "functionUrlAuthType")):
        return None
    return [("function", params.get("functionName")), ("principal", "*"), ("action", params.get("action"))]


def _aws_block_removed(doc: Mapping[str, Any]) -> list[Hit] | None:
    return [("bucket", AWS.params(doc).get("bucketName")), ("public_access_block", "deleted")]


def _aws_block_put(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = AWS.params(doc)
    config = params.get("PublicAccessBlockConfiguration") or params.get("publicAccessBlockConfiguration")
    if type(config) is not dict:
        return None
    off = [name for name in _BLOCK_FLAGS if flag(config.get(name, config.get(name[0].lower() + name[1:]))) is False]
    return [("bucket", params.get("bucketName")), ("public_access_block_off", off)] if off else None


_AWS_CHECKS: Final[dict[str, Check]] = {
    "PutBucketAcl": _s3(_aws_acl),
    "PutObjectAcl": _s3(_aws_acl),
    "CreateBucket": _s3(_aws_acl),
    "PutBucketPolicy": _s3(_public_document("bucketPolicy", "policy")),
    "DeleteBucketPublicAccessBlock": _s3(_aws_block_removed),
    "PutBucketPublicAccessBlock": _s3(_aws_block_put),
    "DeleteAccountPublicAccessBlock": _s3(_aws_block_removed),
    "PutAccountPublicAccessBlock": _s3(_aws_block_put),
    "SetRepositoryPolicy": _public_document("policyText"),
    "CreateElasticsearchDomain": _public_document("accessPolicies"),
    "UpdateElasticsearchDomainConfig": _public_document("accessPolicies"),
    "CreateDomain": _public_document("accessPolicies"),
    "UpdateDomainConfig": _public_document("accessPolicies"),
    "PutKeyPolicy": _public_document("policy"),
    "PutResourcePolicy": _public_document("resourcePolicy"),
    "SetQueueAttributes": _aws_sqs,
    "SetTopicAttributes": _aws_sns,
    "SetVaultAccessPolicy": _aws_glacier,
    "AddPermission20150331": _aws_lambda_permission,
    "AddPermission20150331v2": _aws_lambda_permission,
}


# --- Alibaba Cloud OSS --------------------------------------------------------------------------------------


def _aliyun_acl(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = ALIYUN.params(doc)
    canned = _canned(params, "x-oss-acl", "x-oss-object-acl", "acl", "Acl", "ACL", "AclType")
    if not canned:
        return None
    return [("BucketName", params.get("BucketName")), ("ObjectName", params.get("ObjectName")), ("acl", canned)]


def _aliyun_policy(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = ALIYUN.params(doc)
    public = policy.public_statements(policy.document(params, "Policy", "policy", "BucketPolicy"))
    return [("BucketName", params.get("BucketName")), ("public_statements", public[:3])] if public else None


def _aliyun_block_removed(doc: Mapping[str, Any]) -> list[Hit] | None:
    return [("BucketName", ALIYUN.params(doc).get("BucketName")), ("public_access_block", "deleted")]


def _aliyun_block_put(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = ALIYUN.params(doc)
    if flag(params.get("BlockPublicAccess")) is not False:
        return None
    return [("BucketName", params.get("BucketName")), ("BlockPublicAccess", False)]


_ALIYUN_CHECKS: Final[dict[str, Check]] = {
    "PutBucketAcl": _aliyun_acl,
    "PutObjectAcl": _aliyun_acl,
    "PutBucket": _aliyun_acl,
    "PutBucketPolicy": _aliyun_policy,
    "DeleteBucketPublicAccessBlock": _aliyun_block_removed,
    "DeletePublicAccessBlock": _aliyun_block_removed,
    "PutBucketPublicAccessBlock": _aliyun_block_put,
    "PutPublicAccessBlock": _aliyun_block_put,
}


def rules() -> list[BuiltinRule]:
    return [ActionRule(META, "aws", _AWS_CHECKS), ActionRule(META, "aliyun", _ALIYUN_CHECKS)]
