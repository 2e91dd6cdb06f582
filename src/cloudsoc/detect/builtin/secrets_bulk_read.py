"""``secrets_bulk_read``: one identity reading many different secrets within minutes — Secrets Manager / KMS
secrets, SSM / OOS parameters fetched decrypted, KMS Decrypt calls.

Distinct secrets are counted, not calls: an application re-reading its own two secrets all day is normal, a
caller walking through twenty different ones is collecting credentials. Denied reads count too (trying is the
signal). A batch read whose filters only exclude (``!tag``) returns every secret at once and fires by itself.
Decrypts that a service performs for a resource (S3, EBS, Lambda environment: an ``aws:*`` encryption context)
are the platform working and do not count; decrypts that name no key count once per identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin.base import BuiltinRule, Detection
from cloudsoc.detect.builtin.trail import Trail, flag, items, strings
from cloudsoc.detect.builtin.window import BurstRule
from cloudsoc.detect.rule import Finding, Hit, Match

META: Final = Detection(
    name="secrets_bulk_read",
    title="Many secrets read by one identity",
    title_zh="单一身份批量读取密钥/凭据",
    severity=Severity.HIGH,
    tags=("attack.credential_access", "attack.t1555.006", "attack.t1552"),
    description=(
        "One identity read (or tried to read) many different secrets or decrypted parameters within a few "
        "minutes. Applications read the few secrets they need; walking through all of them is how an attacker "
        "with a foothold collects database passwords and API keys to move on."
    ),
    response=(
        "Check whether the caller is a deployment or backup job that legitimately reads all secrets. If not, "
        "revoke its credentials and rotate every secret it read (listed in the alert)."
    ),
    description_zh=(
        "同一身份在几分钟内读取（或尝试读取）了大量不同的凭据（KMS 凭据管家、Secrets Manager）"
        "或加密参数（Parameter Store）。应用程序只会读取自己需要的少数几个凭据；把所有凭据挨个读一遍，"
        "正是攻击者取得立足点后收集数据库密码和 API 密钥、进一步横向移动的做法。"
    ),
    response_zh=(
        "确认调用者是不是需要读取全部凭据的部署或备份任务。如果不是，吊销它的访问凭证，"
        "并轮换它读取过的每一个凭据（清单见告警）。"
    ),
)

THRESHOLD: Final = 10
WINDOW_SECS: Final = 600.0
CATCH_ALL: Final = "<every secret: exclude-only filters>"

_AWS_ACTIONS: Final = frozenset(
    {"GetSecretValue", "BatchGetSecretValue", "GetParameter", "GetParameters", "GetParametersByPath", "Decrypt"}
)
_ALIYUN_ACTIONS: Final = frozenset(
    {"GetSecretValue", "Decrypt", "GetSecretParameter", "GetSecretParameters", "GetSecretParametersByPath"}
)
_PARAMETER_READS: Final = frozenset({"GetParameter", "GetParameters", "GetParametersByPath"})


def _names(value: object) -> list[str]:
    if type(value) is str and value.startswith("["):
        try:
            loaded = orjson.loads(value)
        except orjson.JSONDecodeError:
            return [value]
        return [str(v) for v in loaded] if type(loaded) is list else [value]
    return strings(value)


class SecretsBulkRead(BurstRule):
    counted_field = "secrets"

    def __init__(self, cloud: str, threshold: int = THRESHOLD, window_secs: float = WINDOW_SECS) -> None:
        actions = _AWS_ACTIONS if cloud == "aws" else _ALIYUN_ACTIONS
        super().__init__(
            META,
            cloud,
            actions=frozenset(a.lower() for a in actions),
            threshold=threshold,
            window_secs=window_secs,
        )

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        trail = self.trail
        assert trail is not None
        if trail.service_actor(doc):
            return None
        action = doc["event"].get("action")
        params = trail.params(doc)
        secrets = _secrets(trail, action, params)
        if not secrets:
            return None
        return [("event.action", action), ("user.name", trail.caller(doc)), ("secrets", secrets)]

    def values(self, doc: Mapping[str, Any]) -> tuple[str, ...]:
        assert self.trail is not None
        action = doc["event"].get("action")
        secrets = _secrets(self.trail, action, self.trail.params(doc))
        if "?" in secrets:
            # Reads that name nothing (a masked ciphertext) cannot be told apart from one application's
            # routine use: per identity they count as one secret, or the key the record names.
            named = _resource(self.trail.record(doc))
            secrets = [s if s != "?" else f"{action}:{named or 'unnamed'}" for s in secrets]
        return tuple(secrets)

    def observe(self, match: Match) -> list[Finding]:
        if dict(match.hits).get("secrets") == [CATCH_ALL]:
            return [self.finding(match, text=f"{self.group(match.doc)} asked for every secret in one batch read")]
        return super().observe(match)


def _secrets(trail: Trail, action: object, params: Mapping[str, Any]) -> list[str]:
    """The secrets one call reads ("?" for one that is not named), or [] when the call reads none."""
    if trail.cloud == "aws":
        if action == "GetSecretValue":
            return [str(params.get("secretId") or "?")]
        if action == "BatchGetSecretValue":
            listed = strings(params.get("secretIdList"))
            if listed:
                return listed
            filters = [f for f in items(params.get("filters")) if type(f) is dict]
            values = [v for f in filters for v in strings(f.get("values"))]
            if values and all(v.startswith("!") for v in values):
                return [CATCH_ALL]
            return [f"filter:{v}" for v in values] or ["?"]
        if action in _PARAMETER_READS:
            if flag(params.get("withDecryption")) is not True:
                return []
            return _names(params.get("names")) or [str(params.get("name") or params.get("path") or "?")]
        if action == "Decrypt":
            context = params.get("encryptionContext")
            if type(context) is dict and any(str(k).startswith("aws:") for k in context):
                return []
            key = params.get("keyId")
            return [f"kms:{key}" if key else "?"]
        return []
    if action == "GetSecretValue":
        return [str(params.get("SecretName") or "?")]
    if action == "Decrypt":
        return ["?"]
    if flag(params.get("WithDecryption")) is not True:
        return []
    return _names(params.get("Names")) or [str(params.get("Name") or params.get("Path") or "?")]


def _resource(raw: Mapping[str, Any]) -> str | None:
    """The key or secret a record names outside its parameters (CloudTrail ``resources``, ActionTrail
    ``resourceName``)."""
    for resource in items(raw.get("resources")):
        if type(resource) is dict and resource.get("ARN"):
            return str(resource["ARN"])
    name = raw.get("resourceName")
    return name if type(name) is str and name else None


def rules() -> list[BuiltinRule]:
    return [SecretsBulkRead("aws"), SecretsBulkRead("aliyun")]
