"""Alibaba Cloud ActionTrail: one event (already unwrapped from SLS ``event``, EventBridge ``detail`` or an
OSS delivery file) → one ECS document.

The original event is kept whole under ``aliyun.actiontrail``, so rules can use the same field paths as
Alibaba's own SLS alert queries (``event.additionalEventData.mfaChecked``, ``event.requestParameterJson`` …).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar, Final

from cloudsoc.parsers.base import Parser
from cloudsoc.parsers.cloud_audit import (
    PARSED_SUFFIX,
    action_kind,
    bad_time_error,
    expand_flat_keys,
    expand_json_strings,
    iam_types,
    missing_fields_error,
    normalise_ip,
    session_name,
    stable_id,
    text,
    to_bool,
    utc_timestamp,
)

# ``requestParameterJson`` is the SLS logstore's JSON-string copy of the parameters; policy documents hide in
# requestParameters as strings too.
_JSON_KEYS: Final = (
    "requestParameters",
    "requestParameterJson",
    "responseElements",
    "additionalEventData",
    "serviceEventDetails",
)
_IDENTITY_TYPES: Final = {
    "root-account": "root",
    "ram-user": "user",
    "assumed-role": "assumed_role",
    "system": "system",
    "alibaba-cloud-account": "account",
}
_IAM_SERVICES: Final = frozenset({"ram", "ims", "sts"})
_AUTH_ACTIONS: Final = frozenset(
    {"ConsoleSignin", "AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithOIDC", "GetFederationToken"}
)
_LOGOUT_ACTIONS: Final = frozenset({"ConsoleSignout", "ConsoleLogout", "Logout"})
_CONSOLE_EVENT_TYPES: Final = frozenset({"ConsoleSignin", "ConsoleSignout", "ConsoleOperation"})
# ``errorCode``/``errorMessage`` values that mean "no error": ConsoleSignin writes errorMessage "success", and
# exports through SLS turn a JSON null into the text "null".
_NO_ERROR: Final = frozenset({"success", "null"})


@lru_cache(maxsize=8192)
def _classify(service: str, action: str, read_only: bool | None, event_type: str) -> tuple[str, tuple[str, ...]]:
    """ECS (category, types) of an action; cached because the set of (service, action) pairs is small."""
    if action in _LOGOUT_ACTIONS:
        return "authentication", ("end",)
    if action in _AUTH_ACTIONS or event_type == "ConsoleSignin":
        return "authentication", ("start",)
    kind = action_kind(action, read_only)
    if service.lower() in _IAM_SERVICES:
        return "iam", iam_types(action, kind)
    if kind == "read":
        return "configuration", ("access",)
    return "configuration", (kind,)


class AliyunActiontrail(Parser):
    """One ActionTrail event (ApiCall, ConsoleSignin, ConsoleOperation, AliyunServiceEvent) → ECS."""

    name: ClassVar[str] = "aliyun_actiontrail"

    def matches(self, record: dict[str, Any]) -> bool:
        if type(record) is not dict:
            return False
        if "acsRegion" in record:
            return True
        source = record.get("eventSource")
        if type(source) is str and (source.endswith(".aliyuncs.com") or source.endswith(".aliyun.com")):
            return True  # ConsoleSignin comes from signin.aliyun.com, APIs from *.aliyuncs.com
        if "eventId" in record and "serviceName" in record:
            return True
        identity = record.get("userIdentity")
        if type(identity) is not dict:
            return False
        kind = identity.get("type")
        return type(kind) is str and kind in _IDENTITY_TYPES

    def parse(self, record: dict[str, Any]) -> dict[str, Any]:
        if type(record) is not dict:
            raise missing_fields_error(record, "eventTime", "eventName")
        get = record.get
        action = get("eventName")
        raw_time = get("eventTime")
        if type(action) is not str or not action or raw_time is None:
            raise missing_fields_error(record, "eventTime", "eventName")
        try:
            timestamp = utc_timestamp(raw_time)
        except (ValueError, OverflowError):
            raise bad_time_error(raw_time, "eventTime") from None

        original = _expand(record)
        provider = text(get("eventSource"))
        service = text(get("serviceName"))
        event_id = get("eventId")
        if type(event_id) is not str or not event_id:
            event_id = text(event_id) or stable_id(record)

        error_code = get("errorCode")
        if error_code is not None:
            error_code = text(error_code)
            if error_code is not None and error_code.lower() in _NO_ERROR:
                error_code = None
        error_message = get("errorMessage")
        if error_message is not None:
            error_message = text(error_message)
            if error_message is not None and error_message.lower() in _NO_ERROR:
                error_message = None
        failed = error_code is not None or error_message is not None or to_bool(get("isError")) is True

        event_type = get("eventType")
        if type(event_type) is not str:
            event_type = ""
        rw = get("eventRW")
        category, types = _classify(
            service or "",
            action,
            True if rw == "Read" else False if rw == "Write" else None,
            event_type,
        )
        event: dict[str, Any] = {
            "id": event_id,
            "action": action,
            "kind": "event",
            "category": [category],
            "type": list(types),
            "outcome": "failure" if failed else "success",
            "dataset": "aliyun.actiontrail",
        }
        if provider:
            event["provider"] = provider

        cloud: dict[str, Any] = {"provider": "aliyun"}
        region = get("acsRegion")
        if type(region) is str and region:
            cloud["region"] = region
        if service:
            cloud["service"] = {"name": service}

        identity = get("userIdentity")
        if type(identity) is not dict:
            identity = {}
        id_get = identity.get
        id_type = id_get("type")
        account = get("recipientAccountId")
        if type(account) is not str or not account:
            account = text(account) or text(id_get("accountId"))
        if account:
            cloud["account"] = {"id": account}

        doc: dict[str, Any] = {
            "@timestamp": timestamp,
            "event": event,
            "cloud": cloud,
        }

        derived: dict[str, Any] = {
            "identity_type": _IDENTITY_TYPES.get(id_type, "unknown") if type(id_type) is str else "unknown"
        }
        user: dict[str, Any] = {}
        user_name = _user_name(id_type, identity)
        if user_name:
            user["name"] = user_name
        principal = id_get("principalId")
        if type(principal) is not str:
            principal = text(principal)
        if principal:
            user["id"] = principal
        if user:
            doc["user"] = user

        related: dict[str, Any] = {}
        source_address = get("sourceIpAddress")
        if type(source_address) is str and source_address:
            # AliyunServiceEvent and system identities carry a service name here, not an address.
            source: dict[str, Any] = {"address": source_address}
            ip = normalise_ip(source_address)
            if ip is not None:
                source["ip"] = ip
                related["ip"] = [ip]
            doc["source"] = source

        additional = get("additionalEventData")
        if type(additional) is not dict:
            additional = original.get("additionalEventData" + PARSED_SUFFIX)
        users = [user_name] if user_name else []
        params = get("requestParameters")
        for other in (
            params.get("UserName") if type(params) is dict else None,
            additional.get("loginAccount") if type(additional) is dict else None,
        ):
            if type(other) is str and other and other not in users:
                users.append(other)
        if users:
            related["user"] = users
        if related:
            doc["related"] = related

        agent = get("userAgent")
        if type(agent) is str and agent:
            doc["user_agent"] = {"original": agent}
        if error_code or error_message:
            error: dict[str, Any] = {}
            if error_code:
                error["code"] = error_code
            if error_message:
                error["message"] = error_message
            doc["error"] = error

        key_id = id_get("accessKeyId")
        if type(key_id) is str and key_id:
            derived["access_key_id"] = key_id
        mfa = _mfa(additional, id_get("sessionContext"))
        if mfa is not None:
            derived["mfa"] = mfa
        derived["console"] = event_type in _CONSOLE_EVENT_TYPES or (
            type(agent) is str and agent.startswith("AliyunConsole")
        )
        doc["cloudsoc"] = derived

        doc["aliyun"] = {"actiontrail": original}
        return doc


def _expand(record: dict[str, Any]) -> dict[str, Any]:
    """The record with JSON strings parsed beside themselves and flat dotted parameters nested beside them."""
    out = expand_json_strings(record, _JSON_KEYS)
    params = record.get("requestParameters")
    if type(params) is dict:
        for key in params:
            if "." in key:
                if out is record:
                    out = dict(record)
                out["requestParameters_expanded"] = expand_flat_keys(params)
                break
    return out


def _user_name(id_type: object, identity: dict[str, Any]) -> str | None:
    """The human (or workload) behind the call: RAM user name, assumed-role session name, ``root``."""
    if id_type == "root-account":
        return "root"
    if id_type == "assumed-role":
        name = session_name(identity.get("arn"), identity.get("principalId"))
        if name:
            return name
    name = identity.get("userName")
    return name if type(name) is str and name else None


def _mfa(additional: object, session: object) -> bool | None:
    """Whether MFA was used, from any of the spellings ActionTrail has used; a yes from any of them wins.

    ConsoleSignin writes ``additionalEventData.isMFAChecked`` (documented) or ``mfaChecked`` (what Alibaba's
    own SLS alerts query); API calls carry ``sessionContext.attributes.mfaAuthenticated``.
    """
    seen = False
    if type(additional) is dict:
        for key in ("isMFAChecked", "mfaChecked"):
            flag = to_bool(additional.get(key))
            if flag:
                return True
            seen = seen or flag is not None
    if type(session) is dict:
        attributes = session.get("attributes")
        if type(attributes) is dict:
            flag = to_bool(attributes.get("mfaAuthenticated"))
            if flag:
                return True
            seen = seen or flag is not None
    return False if seen else None
