"""Alibaba Cloud ActionTrail parser: odd-but-real values, derived facts, errors and format detection."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from cloudsoc.errors import ParseError
from cloudsoc.parsers.aliyun_actiontrail import AliyunActiontrail
from cloudsoc.parsers.aws_cloudtrail import AwsCloudtrail
from cloudsoc.parsers.cloud_audit import expand_flat_keys

PARSER = AliyunActiontrail()


def event(**changes: Any) -> dict[str, Any]:
    """A real-shaped ActionTrail ApiCall (StreamAlert's AttachPolicyToUser sample) with ``changes`` applied."""
    base: dict[str, Any] = {
        "eventId": "3AD717A2-DC29-4C03-9F0E-2E9C8271D477",
        "eventVersion": "1",
        "acsRegion": "cn-hangzhou",
        "requestParameters": {
            "UserName": "tob_actiontrail",
            "PolicyName": "AdministratorAccess",
            "PolicyType": "System",
        },
        "eventType": "ApiCall",
        "eventTime": "2018-07-19T16:47:23Z",
        "apiVersion": "2015-05-01",
        "eventName": "AttachPolicyToUser",
        "userIdentity": {
            "userName": "root",
            "sessionContext": {"attributes": {"creationDate": "2018-07-19T16:47:23Z", "mfaAuthenticated": "false"}},
            "type": "root-account",
            "principalId": "5105431946222327",
            "accountId": "5105431946222327",
        },
        "eventSource": "ram-share.aliyuncs.com",
        "requestId": "3AD717A2-DC29-4C03-9F0E-2E9C8271D477",
        "serviceName": "Ram",
        "sourceIpAddress": "65.205.72.122",
    }
    base.update(changes)
    return base


def console_signin(**changes: Any) -> dict[str, Any]:
    """A ConsoleSignin as Alibaba documents it (``additionalEventData.loginAccount`` / ``isMFAChecked``)."""
    base: dict[str, Any] = {
        "eventId": "7F3C4E8D-0C31-4E1F-9C70-9C4D6B0B5A11",
        "eventVersion": 1,
        "eventSource": "signin.aliyun.com",
        "sourceIpAddress": "42.120.75.1",
        "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        "eventType": "ConsoleSignin",
        "userIdentity": {
            "type": "ram-user",
            "principalId": "288153348682784898",
            "accountId": "1234567890123456",
            "userName": "alice",
        },
        "serviceName": "AasSub",
        "additionalEventData": {
            "loginAccount": "alice@1234567890123456.onaliyun.com",
            "isMFAChecked": "false",
            "callbackUrl": "https://home.console.aliyun.com/",
        },
        "requestId": "7F3C4E8D-0C31-4E1F-9C70-9C4D6B0B5A11",
        "eventTime": "2021-03-01T08:00:00Z",
        "isGlobal": True,
        "acsRegion": "cn-hangzhou",
        "eventName": "ConsoleSignin",
    }
    base.update(changes)
    return base


def test_typical_event_fills_the_typed_columns() -> None:
    rec = event()
    doc = PARSER.parse(rec)
    assert doc["@timestamp"] == "2018-07-19T16:47:23.000000Z"
    assert doc["event"] == {
        "id": "3AD717A2-DC29-4C03-9F0E-2E9C8271D477",
        "action": "AttachPolicyToUser",
        "provider": "ram-share.aliyuncs.com",
        "kind": "event",
        "category": ["iam"],
        "type": ["change", "user"],
        "outcome": "success",
        "dataset": "aliyun.actiontrail",
    }
    assert doc["cloud"] == {
        "provider": "aliyun",
        "region": "cn-hangzhou",
        "account": {"id": "5105431946222327"},
        "service": {"name": "Ram"},
    }
    assert doc["source"] == {"address": "65.205.72.122", "ip": "65.205.72.122"}
    assert doc["user"] == {"name": "root", "id": "5105431946222327"}
    assert doc["related"] == {"ip": ["65.205.72.122"], "user": ["root", "tob_actiontrail"]}
    assert doc["cloudsoc"] == {"identity_type": "root", "mfa": False, "console": False}
    assert doc["aliyun"]["actiontrail"] is rec


def test_console_signin_without_mfa() -> None:
    doc = PARSER.parse(console_signin())
    assert doc["event"]["category"] == ["authentication"]
    assert doc["event"]["type"] == ["start"]
    assert doc["event"]["outcome"] == "success"
    assert doc["cloudsoc"] == {"identity_type": "user", "mfa": False, "console": True}
    assert doc["related"]["user"] == ["alice", "alice@1234567890123456.onaliyun.com"]


@pytest.mark.parametrize(
    ("additional", "mfa"),
    [
        ({"isMFAChecked": "true"}, True),
        ({"isMFAChecked": "false"}, False),
        ({"mfaChecked": "true"}, True),  # the spelling Alibaba's own SLS alert queries use
        ({"mfaChecked": False}, False),
        ({"mfaChecked": True}, True),
        ({"isMFAChecked": "false", "mfaChecked": "true"}, True),
        ({"loginAccount": "a@b"}, None),
        ('{"mfaChecked": "true"}', True),  # additionalEventData delivered as a JSON string
    ],
)
def test_mfa_spellings(additional: Any, mfa: bool | None) -> None:
    doc = PARSER.parse(console_signin(additionalEventData=additional))
    assert doc["cloudsoc"].get("mfa") == mfa


def test_session_mfa_of_api_calls() -> None:
    rec = event()
    rec["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"] = "true"
    assert PARSER.parse(rec)["cloudsoc"]["mfa"] is True
    del rec["userIdentity"]["sessionContext"]
    assert "mfa" not in PARSER.parse(rec)["cloudsoc"]


def test_console_signin_error_message_success_is_not_an_error() -> None:
    doc = PARSER.parse(console_signin(errorMessage="success"))
    assert doc["event"]["outcome"] == "success"
    assert "error" not in doc
    doc = PARSER.parse(console_signin(errorMessage="Password is invalid"))
    assert doc["event"]["outcome"] == "failure"
    assert doc["error"] == {"message": "Password is invalid"}


def test_error_code_means_failure() -> None:
    doc = PARSER.parse(event(errorCode="NoPermission", errorMessage="You are not authorized"))
    assert doc["event"]["outcome"] == "failure"
    assert doc["error"] == {"code": "NoPermission", "message": "You are not authorized"}
    for absent in ("", "null", None):
        assert PARSER.parse(event(errorCode=absent))["event"]["outcome"] == "success"


def test_flat_permission_keys_are_kept_and_expanded() -> None:
    params = {
        "RegionId": "cn-hangzhou",
        "SecurityGroupId": "sg-bp67acfmxazb4p",
        "Permissions.1.SourceCidrIp": "0.0.0.0/0",
        "Permissions.1.PortRange": "22/22",
        "Permissions.1.IpProtocol": "tcp",
        "Permissions.2.SourceCidrIp": "10.0.0.0/8",
        "Permissions.10.PortRange": "3389/3389",
    }
    rec = event(serviceName="Ecs", eventName="AuthorizeSecurityGroup", requestParameters=dict(params))
    pristine = copy.deepcopy(rec)
    trail = PARSER.parse(rec)["aliyun"]["actiontrail"]
    assert trail["requestParameters"] == params
    assert trail["requestParameters_expanded"] == {
        "RegionId": "cn-hangzhou",
        "SecurityGroupId": "sg-bp67acfmxazb4p",
        "Permissions": [
            {"SourceCidrIp": "0.0.0.0/0", "PortRange": "22/22", "IpProtocol": "tcp"},
            {"SourceCidrIp": "10.0.0.0/8"},
            {"PortRange": "3389/3389"},
        ],
    }
    assert rec == pristine


def test_flat_keys_clashing_with_values_stay_flat() -> None:
    nested = {"keep": "me"}
    params = {"A": "scalar", "A.1": "x", "B.1": "y", "B.1.C": "z", "N": nested, "N.x": 1}
    assert expand_flat_keys(params) == {
        "A": "scalar",
        "A.1": "x",
        "B": ["y"],
        "B.1.C": "z",
        "N": {"keep": "me"},
        "N.x": 1,
    }
    assert nested == {"keep": "me"}, "values of the caller are never changed"


def test_request_parameter_json_is_parsed_beside_the_original() -> None:
    rules = {"AiRules": 0, "RunMode": 1}
    rec = event(
        serviceName="Cloudfw", eventName="ModifyDefaultIPSConfig", requestParameterJson=orjson.dumps(rules).decode()
    )
    trail = PARSER.parse(rec)["aliyun"]["actiontrail"]
    assert trail["requestParameterJson_parsed"] == rules
    assert trail["requestParameterJson"] == rec["requestParameterJson"]
    assert "requestParameterJson_parsed" not in rec


def test_policy_document_string_in_request_parameters() -> None:
    policy = '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
    rec = event(eventName="CreatePolicy", requestParameters={"PolicyName": "all", "PolicyDocument": policy})
    params = PARSER.parse(rec)["aliyun"]["actiontrail"]["requestParameters"]
    assert params["PolicyDocument_parsed"]["Statement"][0]["Action"] == "*"
    assert params["PolicyDocument"] == policy


def test_null_parameters_placeholders_and_unknown_region() -> None:
    rec = event(requestParameters=None, acsRegion="xx-unknown-9", sourceIpAddress="...", userAgent="...")
    doc = PARSER.parse(rec)
    assert doc["cloud"]["region"] == "xx-unknown-9"
    assert doc["source"] == {"address": "..."}
    assert "ip" not in doc["related"]
    assert doc["related"]["user"] == ["root"]
    doc = PARSER.parse(event(requestParameters={"...": "..."}))
    assert doc["aliyun"]["actiontrail"]["requestParameters"] == {"...": "..."}


def test_service_event_by_a_system_identity() -> None:
    rec = event(
        eventType="AliyunServiceEvent",
        eventName="Instance:SystemFailure.Reboot",
        serviceName="Ecs",
        eventSource="ecs.aliyuncs.com",
        sourceIpAddress="ecs.aliyuncs.com",
        userIdentity={"type": "system", "accountId": "1234567890123456"},
        requestParameters=None,
    )
    doc = PARSER.parse(rec)
    assert doc["source"] == {"address": "ecs.aliyuncs.com"}
    assert doc["cloudsoc"]["identity_type"] == "system"
    assert "user" not in doc


def test_assumed_role_user_is_the_session_name() -> None:
    identity = {
        "type": "assumed-role",
        "principalId": "333693541612345678:alice-session",
        "accountId": "1234567890123456",
        "accessKeyId": "STS.NUgYrLnoC37mZZCNnAbez",
        "sessionContext": {"sessionIssuer": {"type": "role", "userName": "ecs-admin"}},
    }
    doc = PARSER.parse(event(userIdentity=identity))
    assert doc["user"]["name"] == "alice-session"
    assert doc["cloudsoc"]["identity_type"] == "assumed_role"
    assert doc["cloudsoc"]["access_key_id"] == "STS.NUgYrLnoC37mZZCNnAbez"


def test_leading_zero_ip() -> None:
    doc = PARSER.parse(event(sourceIpAddress="042.120.074.096"))
    assert doc["source"] == {"address": "042.120.074.096", "ip": "42.120.74.96"}


def test_recipient_account_wins_and_numbers_become_text() -> None:
    doc = PARSER.parse(event(recipientAccountId=43274))
    assert doc["cloud"]["account"] == {"id": "43274"}


def test_missing_event_id_gets_a_stable_sha1_id() -> None:
    rec = event()
    del rec["eventId"]
    first = PARSER.parse(rec)["event"]["id"]
    assert first.startswith("sha1:")
    assert PARSER.parse(dict(sorted(rec.items())))["event"]["id"] == first


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("not json object", "record is not a JSON object (got str)"),
        ({k: v for k, v in event().items() if k != "eventTime"}, "missing eventTime"),
        ({"eventId": "x"}, "missing eventName and eventTime"),
        (event(eventTime="..."), "unparseable eventTime: '...'"),
    ],
)
def test_records_that_are_not_events_raise_parse_error(bad: Any, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        PARSER.parse(bad)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("service", "action", "rw", "category", "types"),
    [
        ("Ram", "CreateAccessKey", None, "iam", ["creation", "user"]),
        ("Ims", "SetPasswordPolicy", None, "iam", ["change"]),
        ("Sts", "AssumeRole", None, "authentication", ["start"]),
        ("Actiontrail", "StopLogging", None, "configuration", ["change"]),
        ("Ecs", "DeleteInstance", None, "configuration", ["deletion"]),
        ("Ecs", "DescribeInstances", None, "configuration", ["access"]),
        ("Ecs", "DescribeInstances", "Write", "configuration", ["change"]),  # eventRW wins over the verb
        ("Oss", "AcceptBucketWorm", "Read", "configuration", ["access"]),
    ],
)
def test_category_and_type(service: str, action: str, rw: str | None, category: str, types: list[str]) -> None:
    ecs = PARSER.parse(event(serviceName=service, eventName=action, eventRW=rw))["event"]
    assert (ecs["category"], ecs["type"]) == ([category], types)


def test_matches_actiontrail_not_cloudtrail() -> None:
    assert PARSER.matches(event())
    assert PARSER.matches(console_signin())
    assert PARSER.matches({"eventId": "x", "serviceName": "Ecs", "eventName": "StopInstance"})
    assert PARSER.matches({"eventName": "x", "userIdentity": {"type": "ram-user"}})
    assert not PARSER.matches({"eventName": "x", "userIdentity": {"type": ["odd"]}})
    assert not PARSER.matches({"eventSource": "s3.amazonaws.com", "eventVersion": "1.08", "eventID": "x"})
    assert not AwsCloudtrail().matches(event())
    assert not AwsCloudtrail().matches(console_signin())
