"""Alibaba Cloud ActionTrail: one event (already unwrapped from SLS ``event``, EventBridge ``detail`` or an
OSS delivery file) → one ECS document.

The original event is kept whole under ``aliyun.actiontrail``, so rules can use the same field paths as
Alibaba's own SLS alert queries (``event.additionalEventData.mfaChecked``, ``event.requestParameterJson`` …).
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from cloudsoc.parsers.base import Parser
from cloudsoc.parsers.cloud_audit import (
    PARSED_SUFFIX,
    action_classifier,
    bad_time_error,
    error_fields,
    expand_flat_keys,
    expand_json_strings,
    mfa_used,
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
_classify: Final = action_classifier(
    sign_in_actions=frozenset(
        {"ConsoleSignin", "AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithOIDC", "GetFederationToken"}
    ),
    sign_out_actions=frozenset({"ConsoleSignout", "ConsoleLogout", "Logout"}),
    sign_in_event_type="ConsoleSignin",
    iam_services=frozenset({"ram", "ims", "sts"}),
    fold_service_case=True,  # serviceName is written "Ram", "Ims"
)
_CONSOLE_EVENT_TYPES: Final = frozenset({"ConsoleSignin", "ConsoleSignout", "ConsoleOperation"})
# ``errorCode``/``errorMessage`` values that mean "no error": ConsoleSignin writes errorMessage "success", and
# exports through SLS turn a JSON null into the text "null".
_NO_ERROR: Final = frozenset({"success", "null"})

# The spellings of ConsoleSignin's MFA flag: ``isMFAChecked`` (documented) and ``mfaChecked`` (what Alibaba's
# own SLS alerts query); API calls carry ``sessionContext.attributes.mfaAuthenticated`` instead.
_MFA_KEYS: Final = ("isMFAChecked", "mfaChecked")


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
            error_code = _error_text(error_code)
        error_message = get("errorMessage")
        if error_message is not None:
            error_message = _error_text(error_message)
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
            doc["error"] = error_fields(error_code, error_message)

        key_id = id_get("accessKeyId")
        if type(key_id) is str and key_id:
            derived["access_key_id"] = key_id
        mfa = mfa_used(additional, id_get("sessionContext"), _MFA_KEYS)
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


def _error_text(value: object) -> str | None:
    """``errorCode``/``errorMessage`` as text, or None where it is one of the spellings of "no error"."""
    reported = text(value)
    return None if reported is None or reported.lower() in _NO_ERROR else reported
