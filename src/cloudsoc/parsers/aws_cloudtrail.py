"""AWS CloudTrail: one record of a trail file's ``Records`` list → one ECS document.

The original record is kept whole under ``aws.cloudtrail`` (detections and searches use its raw paths, as
Sigma and Panther rules do); the ECS fields around it are what the typed columns, the dashboards and the
generic rules read.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from cloudsoc.parsers.base import Parser
from cloudsoc.parsers.cloud_audit import (
    action_classifier,
    bad_time_error,
    error_fields,
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

_SUFFIX: Final = ".amazonaws.com"
# Keys whose values may hold JSON documents as strings (policies, manifests, additionalEventData of some
# services); only these are searched, two levels deep, to keep the hot path short.
_JSON_KEYS: Final = ("requestParameters", "responseElements", "additionalEventData", "serviceEventDetails")

_IDENTITY_TYPES: Final = {
    "Root": "root",
    "IAMUser": "user",
    "AssumedRole": "assumed_role",
    "FederatedUser": "federated",
    "SAMLUser": "federated",
    "WebIdentityUser": "federated",
    "IdentityCenterUser": "federated",
    "Directory": "user",
    "AWSService": "service",
    "AWSAccount": "account",
    "Unknown": "unknown",
}
_classify: Final = action_classifier(
    sign_in_actions=frozenset(
        {
            "ConsoleLogin",
            "AssumeRole",
            "AssumeRoleWithSAML",
            "AssumeRoleWithWebIdentity",
            "AssumeRoot",
            "GetSessionToken",
            "GetFederationToken",
            "GetRoleCredentials",
            "ExternalIdPDirectoryLogin",
            "CredentialVerification",
            "CredentialChallenge",
            "UserAuthentication",
            "Authenticate",
            "CheckMfa",
            "SwitchRole",
        }
    ),
    sign_out_actions=frozenset({"ConsoleLogout", "Logout", "SignOut"}),
    sign_in_event_type="AwsConsoleSignIn",
    iam_services=frozenset({"iam", "identitystore", "sso", "sso-directory"}),
)
# ConsoleLogin's own MFA flag; the session's ``mfaAuthenticated`` is read beside it.
_MFA_KEYS: Final = ("MFAUsed",)


class AwsCloudtrail(Parser):
    """One CloudTrail record (of ``{"Records": [...]}``, EventBridge ``detail``, CloudTrail Lake) → ECS."""

    name: ClassVar[str] = "aws_cloudtrail"

    def matches(self, record: dict[str, Any]) -> bool:
        if type(record) is not dict:
            return False
        source = record.get("eventSource")
        if type(source) is str:
            return source.endswith(_SUFFIX)
        # Without eventSource: CloudTrail's own spellings (ActionTrail writes eventId/requestId, acsRegion).
        return "eventName" in record and ("awsRegion" in record or "eventID" in record or "requestID" in record)

    def parse(self, record: dict[str, Any]) -> dict[str, Any]:
        # Hot path (tens of thousands of records a second): plain dict gets and type checks, helpers only for
        # the uncommon shapes, and the ECS document built in place.
        if type(record) is not dict:
            raise missing_fields_error(record, "eventTime", "eventName")
        get = record.get
        action = get("eventName")
        time_key = "eventTime"
        raw_time = get(time_key)
        if raw_time is None and "@timestamp" in record:
            # Logstash's cloudtrail codec moves eventTime into @timestamp (OTRF datasets were exported so).
            time_key = "@timestamp"
            raw_time = record[time_key]
        if type(action) is not str or not action or raw_time is None:
            raise missing_fields_error(record, "eventTime", "eventName")
        try:
            timestamp = utc_timestamp(raw_time)
        except (ValueError, OverflowError):
            raise bad_time_error(raw_time, time_key) from None

        event_id = get("eventID")
        if type(event_id) is not str or not event_id:
            event_id = text(event_id) or stable_id(record)
        event_type = get("eventType")
        if type(event_type) is not str:
            event_type = ""
        error_code = get("errorCode")
        if error_code is not None:
            error_code = text(error_code)
        error_message = get("errorMessage")
        if error_message is not None:
            error_message = text(error_message)
        if error_code or error_message:
            failed = True
        else:
            # Sign-in events (ConsoleLogin …) may report failure only here: {"ConsoleLogin": "Failure"}.
            response = get("responseElements")
            failed = type(response) is dict and response.get(action) == "Failure"

        cloud: dict[str, Any] = {"provider": "aws"}
        event: dict[str, Any] = {
            "id": event_id,
            "action": action,
            "kind": "event",
            "category": None,
            "type": None,
            "outcome": "failure" if failed else "success",
            "dataset": "aws.cloudtrail",
        }
        provider = get("eventSource")
        if type(provider) is str and provider:
            event["provider"] = provider
            service = provider[: -len(_SUFFIX)] if provider.endswith(_SUFFIX) else provider
            cloud["service"] = {"name": service}
        else:
            service = ""
        read_only = get("readOnly")
        if read_only is not None and read_only is not True and read_only is not False:
            read_only = to_bool(read_only)
        category, types = _classify(service, action, read_only, event_type)
        event["category"] = [category]
        event["type"] = list(types)

        region = get("awsRegion")
        if type(region) is str and region:
            cloud["region"] = region

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

        doc: dict[str, Any] = {"@timestamp": timestamp, "event": event, "cloud": cloud}
        derived: dict[str, Any] = {"identity_type": _identity_type(id_type, identity)}

        user_name = _user_name(id_type, identity)
        principal = id_get("principalId")
        if type(principal) is not str:
            principal = text(principal)
        if user_name:
            doc["user"] = {"name": user_name, "id": principal} if principal else {"name": user_name}
        elif principal:
            doc["user"] = {"id": principal}

        related: dict[str, Any] = {}
        source_address = get("sourceIPAddress")
        if type(source_address) is str and source_address:
            ip = normalise_ip(source_address)
            if ip is None:  # a service name (ec2.amazonaws.com), "AWS Internal", a redaction
                doc["source"] = {"address": source_address}
            else:
                doc["source"] = {"address": source_address, "ip": ip}
                related["ip"] = [ip]

        params = get("requestParameters")
        target = params.get("userName") if type(params) is dict else None
        if type(target) is not str or target == user_name:
            target = None
        if user_name:
            related["user"] = [user_name, target] if target else [user_name]
        elif target:
            related["user"] = [target]
        if related:
            doc["related"] = related

        agent = get("userAgent")
        if type(agent) is str and agent:
            doc["user_agent"] = {"original": agent}
        if failed and (error_code or error_message):
            doc["error"] = error_fields(error_code, error_message)

        key_id = id_get("accessKeyId")
        if type(key_id) is str and key_id:
            derived["access_key_id"] = key_id
        mfa = mfa_used(get("additionalEventData"), id_get("sessionContext"), _MFA_KEYS)
        if mfa is not None:
            derived["mfa"] = mfa
        derived["console"] = _console(get("sessionCredentialFromConsole"), event_type, agent)
        doc["cloudsoc"] = derived

        doc["aws"] = {"cloudtrail": expand_json_strings(record, _JSON_KEYS)}
        return doc


def _identity_type(id_type: object, identity: dict[str, Any]) -> str:
    if id_type == "AWSAccount" and identity.get("accountId") == "ANONYMOUS_PRINCIPAL":
        return "anonymous"  # unauthenticated S3 data-event requests
    if type(id_type) is str:
        return _IDENTITY_TYPES.get(id_type, "unknown")
    return "unknown"


def _user_name(id_type: object, identity: dict[str, Any]) -> str | None:
    """The human (or workload) behind the call: IAM user name, assumed-role session name, ``root``."""
    if id_type == "Root":
        return "root"
    if id_type == "AssumedRole" or id_type == "FederatedUser":
        arn = identity.get("arn")
        if id_type == "FederatedUser" and type(arn) is str and "federated-user/" in arn:
            return arn.rsplit("/", 1)[1] or None
        name = session_name(arn, identity.get("principalId"))
        if name:
            return name
    name = identity.get("userName")
    if type(name) is str and name:
        return name
    arn = identity.get("arn")
    if type(arn) is str and ":user/" in arn:
        return arn.rsplit("/", 1)[1] or None
    return None


def _console(from_console: object, event_type: object, agent: object) -> bool:
    """Whether the call came through the AWS web console (sign-in, or a console session's API calls)."""
    if event_type == "AwsConsoleSignIn" or event_type == "AwsConsoleAction":
        return True
    if from_console is not None:  # sessionCredentialFromConsole, in newer trails
        flag = to_bool(from_console)
        if flag is not None:
            return flag
    return type(agent) is str and (agent.startswith("console.") or agent == "signin.amazonaws.com")
