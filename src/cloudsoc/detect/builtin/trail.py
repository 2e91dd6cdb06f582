"""Reading a cloud-audit event the same way on both clouds: the raw record, its parameters, who called, for whom.

CloudTrail and ActionTrail describe the same things with different spellings (``userName`` / ``UserName``,
``AWSService`` / ``system``). Rules ask a :class:`Trail` instead of spelling paths themselves, so a rule written
for one cloud reads like the other's. Everything here is a pure function of the document.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

_EMPTY: Final[dict[str, Any]] = {}

# AWS services that carry a person's intent when they call on their behalf (a CloudFormation stack is the
# user's own change); any other ``invokedBy`` service acts for the account by itself.
_USER_PROXIES: Final = frozenset(
    {"signin.amazonaws.com", "cloudformation.amazonaws.com", "servicecatalog.amazonaws.com", "AWS Internal"}
)


class Trail:
    """One cloud's audit trail: where the raw record sits in our documents and how it names things."""

    def __init__(self, cloud: str, dataset: str, root: tuple[str, str], user_key: str) -> None:
        self.cloud = cloud
        self.dataset = dataset
        self._root = root
        # The request parameter naming the user an IAM/RAM call is about.
        self.user_key = user_key

    def record(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """The original trail record kept under ``aws.cloudtrail`` / ``aliyun.actiontrail``."""
        top = doc.get(self._root[0])
        raw = top.get(self._root[1]) if type(top) is dict else None
        return raw if type(raw) is dict else _EMPTY

    def params(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """The request parameters as a nested dict: ActionTrail's flat ``Permissions.1.X`` keys nested, and its
        SLS ``requestParameterJson`` string used when that is all there is."""
        raw = self.record(doc)
        params = raw.get("requestParameters_expanded") or raw.get("requestParameters")
        if type(params) is dict and params:
            return params
        parsed = raw.get("requestParameterJson_parsed")
        return parsed if type(parsed) is dict else _EMPTY

    def response(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        value = self.record(doc).get("responseElements")
        return value if type(value) is dict else _EMPTY

    def identity(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        value = self.record(doc).get("userIdentity")
        return value if type(value) is dict else _EMPTY

    def service_actor(self, doc: Mapping[str, Any]) -> bool:
        """Whether a cloud service made the call for the account by itself (auto scaling, snapshots, service-linked
        roles): such calls are the platform working, not someone's decision."""
        raw = self.record(doc)
        identity = raw.get("userIdentity")
        if type(identity) is not dict:
            return False
        kind = identity.get("type")
        if self.cloud == "aws":
            if kind == "AWSService":
                return True
            invoked = identity.get("invokedBy")
            if type(invoked) is str and invoked.endswith(".amazonaws.com") and invoked not in _USER_PROXIES:
                return True
            issuer = _issuer(identity)
            arn = issuer.get("arn")
            return type(arn) is str and ":role/aws-service-role/" in arn
        if kind == "system" or raw.get("eventType") == "AliyunServiceEvent":
            return True
        if kind == "assumed-role":
            issuer = _issuer(identity)
            role = issuer.get("userName") or issuer.get("arn") or identity.get("arn") or ""
            if type(role) is str and "aliyunservicerole" in role.lower():
                return True
        source = raw.get("sourceIpAddress")
        return type(source) is str and source.endswith(".aliyuncs.com")

    def caller(self, doc: Mapping[str, Any]) -> str:
        """The user name of the caller (``root`` for the main account), or its principal id."""
        user = doc.get("user")
        if type(user) is dict:
            return str(user.get("name") or user.get("id") or "")
        return ""

    def identity_type(self, doc: Mapping[str, Any]) -> str:
        """Our normalised identity type (``root``, ``user``, ``assumed_role``, ``service``, …)."""
        derived = doc.get("cloudsoc")
        return str(derived.get("identity_type", "unknown")) if type(derived) is dict else "unknown"

    def target_user(self, doc: Mapping[str, Any]) -> str | None:
        """The user an IAM/RAM call names in its parameters, or None (the call is about the caller)."""
        value = self.params(doc).get(self.user_key)
        return value if type(value) is str and value else None

    def for_another_user(self, doc: Mapping[str, Any]) -> str | None:
        """The other user an IAM/RAM call is about, or None when it is about the caller."""
        target = self.target_user(doc)
        if target is None or target == self.caller(doc):
            return None
        return target

    def account(self, doc: Mapping[str, Any]) -> str:
        cloud = doc.get("cloud")
        account = cloud.get("account") if type(cloud) is dict else None
        return str(account.get("id", "")) if type(account) is dict else ""

    def access_key(self, doc: Mapping[str, Any]) -> str | None:
        derived = doc.get("cloudsoc")
        key = derived.get("access_key_id") if type(derived) is dict else None
        return key if type(key) is str and key else None

    def long_term_key(self, key: str) -> bool:
        """A user's or the root's own AccessKey (not a temporary STS credential, which changes every session)."""
        if self.cloud == "aws":
            return key.startswith("AKIA")
        return not key.startswith("STS.")

    def console(self, doc: Mapping[str, Any]) -> bool:
        derived = doc.get("cloudsoc")
        return type(derived) is dict and derived.get("console") is True


def _issuer(identity: dict[str, Any]) -> dict[str, Any]:
    context = identity.get("sessionContext")
    issuer = context.get("sessionIssuer") if type(context) is dict else None
    return issuer if type(issuer) is dict else _EMPTY


AWS: Final = Trail("aws", "aws.cloudtrail", ("aws", "cloudtrail"), "userName")
ALIYUN: Final = Trail("aliyun", "aliyun.actiontrail", ("aliyun", "actiontrail"), "UserName")
CLOUDS: Final = {"aws": AWS, "aliyun": ALIYUN}


def source_ip(doc: Mapping[str, Any]) -> str | None:
    source = doc.get("source")
    ip = source.get("ip") if type(source) is dict else None
    return ip if type(ip) is str else None


@lru_cache(maxsize=65536)
def public_ip(ip: str) -> bool:
    """Whether ``ip`` is a global (Internet) address: RFC 1918, loopback, CGNAT and link-local are internal."""
    try:
        return ipaddress.ip_address(ip).is_global
    except ValueError:
        return False


def flag(value: object) -> bool | None:
    """A request parameter as a boolean: ``true``, ``"true"``, ``"True"``, ``1``; None when absent or unclear."""
    if value is True or value is False:
        return value
    if type(value) is str:
        low = value.strip().lower()
        if low in ("true", "1", "yes", "on", "enable", "enabled"):
            return True
        if low in ("false", "0", "no", "off", "disable", "disabled"):
            return False
    if type(value) is int:
        return value != 0
    return None


def items(value: object) -> list[Any]:
    """CloudTrail's lists: ``{"items": [...]}``, a bare list, or one object; always a list."""
    if type(value) is dict:
        inner = value.get("items")
        if type(inner) is list:
            return inner
        return [value] if value else []
    if type(value) is list:
        return value
    return []


def strings(value: object) -> list[str]:
    """A parameter that may be one string, a list of strings or a comma-separated string, as a list."""
    if type(value) is str:
        return [part.strip() for part in value.split(",") if part.strip()]
    if type(value) is list:
        return [v for v in value if type(v) is str]
    return []
