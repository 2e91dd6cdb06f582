"""AWS CloudTrail parser: odd-but-real values, derived facts, errors and format detection."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from cloudsoc.errors import ParseError
from cloudsoc.parsers.aliyun_actiontrail import AliyunActiontrail
from cloudsoc.parsers.aws_cloudtrail import AwsCloudtrail
from cloudsoc.parsers.cloud_audit import normalise_ip, utc_timestamp

PARSER = AwsCloudtrail()
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def record(**changes: Any) -> dict[str, Any]:
    """A real-shaped CloudTrail record (IAM user, console session with MFA) with ``changes`` applied."""
    base: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAICAK2CN5MGHIIDIHA",
            "arn": "arn:aws:iam::123456789123:user/pedro",
            "accountId": "123456789123",
            "accessKeyId": "ASIA5FLZVX4OI4ZDQJOL",
            "userName": "pedro",
            "sessionContext": {"attributes": {"mfaAuthenticated": "true", "creationDate": "2020-09-13T17:16:47Z"}},
        },
        "eventTime": "2020-09-14T00:44:23Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "DescribeInstances",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "1.2.3.4",
        "userAgent": "console.ec2.amazonaws.com",
        "requestParameters": {"instancesSet": {"items": [{"instanceId": "i-044b1baf4c96e1b62"}]}},
        "responseElements": None,
        "requestID": "2b757038-7f45-4e5b-b38d-b83a3acb7eab",
        "eventID": "a3d34faf-076e-44ff-b2f7-605d76705a81",
        "eventType": "AwsApiCall",
        "recipientAccountId": "123456789123",
    }
    base.update(changes)
    return base


def test_typical_record_fills_the_typed_columns() -> None:
    rec = record()
    doc = PARSER.parse(rec)
    assert doc["@timestamp"] == "2020-09-14T00:44:23.000000Z"
    assert doc["event"] == {
        "id": "a3d34faf-076e-44ff-b2f7-605d76705a81",
        "action": "DescribeInstances",
        "provider": "ec2.amazonaws.com",
        "kind": "event",
        "category": ["configuration"],
        "type": ["access"],
        "outcome": "success",
        "dataset": "aws.cloudtrail",
    }
    assert doc["cloud"] == {
        "provider": "aws",
        "region": "us-east-1",
        "account": {"id": "123456789123"},
        "service": {"name": "ec2"},
    }
    assert doc["source"] == {"address": "1.2.3.4", "ip": "1.2.3.4"}
    assert doc["user"] == {"name": "pedro", "id": "AIDAICAK2CN5MGHIIDIHA"}
    assert doc["user_agent"] == {"original": "console.ec2.amazonaws.com"}
    assert doc["related"] == {"ip": ["1.2.3.4"], "user": ["pedro"]}
    assert doc["cloudsoc"] == {
        "identity_type": "user",
        "access_key_id": "ASIA5FLZVX4OI4ZDQJOL",
        "mfa": True,
        "console": True,
    }
    assert "error" not in doc
    # Nothing to expand: the caller's record itself is embedded, not a copy.
    assert doc["aws"]["cloudtrail"] is rec


def test_leading_zero_ip_is_normalised_and_the_original_kept() -> None:
    doc = PARSER.parse(record(sourceIPAddress="010.001.002.003"))
    assert doc["source"] == {"address": "010.001.002.003", "ip": "10.1.2.3"}
    assert doc["related"]["ip"] == ["10.1.2.3"]


@pytest.mark.parametrize(
    ("raw", "ip"),
    [
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("255.255.255.255", "255.255.255.255"),
        ("256.1.1.1", None),
        ("1.2.3", None),
        ("1.2.3.4.5", None),
        ("1.2.3.\N{SUPERSCRIPT TWO}", None),
        ("fe80::1::2", None),
        ("AWS Internal", None),
        ("...", None),
        ("", None),
    ],
)
def test_normalise_ip(raw: str, ip: str | None) -> None:
    assert normalise_ip(raw) == ip


@pytest.mark.parametrize("address", ["ec2.amazonaws.com", "AWS Internal", "<Attacker source IP>", "..."])
def test_service_names_and_placeholders_are_addresses_not_ips(address: str) -> None:
    doc = PARSER.parse(record(sourceIPAddress=address))
    assert doc["source"] == {"address": address}
    assert "ip" not in doc.get("related", {})


def test_placeholders_null_parameters_and_unknown_region_are_kept() -> None:
    doc = PARSER.parse(record(awsRegion="ca-south-3r", requestParameters=None, userAgent="..."))
    assert doc["cloud"]["region"] == "ca-south-3r"
    assert doc["user_agent"] == {"original": "..."}
    assert doc["aws"]["cloudtrail"]["requestParameters"] is None


def test_policy_document_json_string_is_parsed_beside_the_original() -> None:
    text = orjson.dumps(POLICY).decode()
    rec = record(eventSource="iam.amazonaws.com", eventName="PutUserPolicy")
    rec["requestParameters"] = {"userName": "bob", "policyName": "all", "policyDocument": text}
    pristine = copy.deepcopy(rec)
    doc = PARSER.parse(rec)
    params = doc["aws"]["cloudtrail"]["requestParameters"]
    assert params["policyDocument"] == text
    assert params["policyDocument_parsed"] == POLICY
    assert rec == pristine, "the caller's record must not be changed"
    assert doc["event"]["category"] == ["iam"]
    assert doc["event"]["type"] == ["change", "user"]
    assert doc["related"]["user"] == ["pedro", "bob"]


def test_url_encoded_policy_document_is_decoded_and_parsed() -> None:
    encoded = quote(orjson.dumps(POLICY).decode(), safe="")
    assert encoded.startswith("%7B")
    rec = record(eventSource="iam.amazonaws.com", eventName="CreatePolicy")
    rec["requestParameters"] = {"policyName": "all", "policyDocument": encoded}
    params = PARSER.parse(rec)["aws"]["cloudtrail"]["requestParameters"]
    assert params["policyDocument"] == encoded
    assert params["policyDocument_parsed"] == POLICY


def test_nested_json_strings_and_string_additional_event_data() -> None:
    rec = record(
        responseElements={"image": {"imageManifest": '{"schemaVersion": 2}'}},
        additionalEventData='{"MFAUsed": "Yes"}',
        requestParameters={"notJson": "{'python': 'repr'}", "list": '["a", "b"]', "text": "[REPORT] x"},
    )
    trail = PARSER.parse(rec)["aws"]["cloudtrail"]
    assert trail["responseElements"]["image"]["imageManifest_parsed"] == {"schemaVersion": 2}
    assert trail["additionalEventData_parsed"] == {"MFAUsed": "Yes"}
    assert trail["requestParameters"]["list_parsed"] == ["a", "b"]
    assert "notJson_parsed" not in trail["requestParameters"]
    assert "text_parsed" not in trail["requestParameters"]
    assert rec["responseElements"] == {"image": {"imageManifest": '{"schemaVersion": 2}'}}


def console_login(outcome: str, **changes: Any) -> dict[str, Any]:
    rec = record(
        eventSource="signin.amazonaws.com",
        eventName="ConsoleLogin",
        eventType="AwsConsoleSignIn",
        userAgent="Mozilla/5.0",
        requestParameters=None,
        responseElements={"ConsoleLogin": outcome},
        additionalEventData={"LoginTo": "https://console.aws.amazon.com/", "MobileVersion": "No", "MFAUsed": "No"},
    )
    rec["userIdentity"] = {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "accountId": "123", "userName": "ana"}
    rec.update(changes)
    return rec


def test_console_login_failure_is_read_from_response_elements() -> None:
    doc = PARSER.parse(console_login("Failure", errorMessage="Failed authentication"))
    assert doc["event"]["outcome"] == "failure"
    assert doc["event"]["category"] == ["authentication"]
    assert doc["event"]["type"] == ["start"]
    assert doc["error"] == {"message": "Failed authentication"}
    assert doc["cloudsoc"]["console"] is True
    assert doc["cloudsoc"]["mfa"] is False

    doc = PARSER.parse(console_login("Failure"))  # no errorMessage at all
    assert doc["event"]["outcome"] == "failure"
    assert "error" not in doc
    assert PARSER.parse(console_login("Success"))["event"]["outcome"] == "success"


def test_error_code_means_failure() -> None:
    doc = PARSER.parse(record(errorCode="AccessDenied", errorMessage="User is not authorized"))
    assert doc["event"]["outcome"] == "failure"
    assert doc["error"] == {"code": "AccessDenied", "message": "User is not authorized"}
    assert PARSER.parse(record(errorCode=""))["event"]["outcome"] == "success"


@pytest.mark.parametrize(
    ("additional", "attributes", "mfa"),
    [
        ({"MFAUsed": "Yes"}, None, True),
        ({"MFAUsed": "No"}, None, False),
        ({"MFAUsed": "No"}, {"mfaAuthenticated": "true"}, True),  # SSO: MFA done at the identity provider
        (None, {"mfaAuthenticated": "false"}, False),
        (None, {"mfaAuthenticated": True}, True),
        (None, {}, None),
    ],
)
def test_mfa_flags(additional: dict[str, Any] | None, attributes: dict[str, Any] | None, mfa: bool | None) -> None:
    rec = record(additionalEventData=additional)
    if attributes is None:
        del rec["userIdentity"]["sessionContext"]
    else:
        rec["userIdentity"]["sessionContext"] = {"attributes": attributes}
    assert PARSER.parse(rec)["cloudsoc"].get("mfa") == mfa


def test_assumed_role_user_is_the_session_name() -> None:
    rec = record()
    rec["userIdentity"] = {
        "type": "AssumedRole",
        "principalId": "AROAXXXXXXXXXXXXXXXXX:tester@example.com",
        "arn": "arn:aws:sts::123456789012:assumed-role/testrole_34c15ddd84cb4648/tester@example.com",
        "accountId": "123456789012",
        "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "testrole_34c15ddd84cb4648"}},
    }
    doc = PARSER.parse(rec)
    assert doc["user"] == {"name": "tester@example.com", "id": "AROAXXXXXXXXXXXXXXXXX:tester@example.com"}
    assert doc["cloudsoc"]["identity_type"] == "assumed_role"

    del rec["userIdentity"]["arn"]  # no ARN: the session name is also after the colon of principalId
    assert PARSER.parse(rec)["user"]["name"] == "tester@example.com"


@pytest.mark.parametrize(
    ("identity", "kind", "name"),
    [
        ({"type": "Root", "arn": "arn:aws:iam::123:root", "principalId": "123"}, "root", "root"),
        ({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}, "service", None),
        ({"type": "AWSAccount", "principalId": "", "accountId": "ANONYMOUS_PRINCIPAL"}, "anonymous", None),
        ({"type": "AWSAccount", "principalId": "AIDA", "accountId": "999"}, "account", None),
        ({"type": "FederatedUser", "arn": "arn:aws:sts::123:federated-user/Bob"}, "federated", "Bob"),
        ({"type": "SomethingNew", "userName": "x"}, "unknown", "x"),
    ],
)
def test_identity_types(identity: dict[str, Any], kind: str, name: str | None) -> None:
    doc = PARSER.parse(record(userIdentity=identity, recipientAccountId=None))
    assert doc["cloudsoc"]["identity_type"] == kind
    assert doc.get("user", {}).get("name") == name


def test_account_falls_back_to_the_identity_account() -> None:
    doc = PARSER.parse(record(recipientAccountId=None))
    assert doc["cloud"]["account"] == {"id": "123456789123"}


def test_missing_event_id_gets_a_stable_sha1_id() -> None:
    rec = record()
    del rec["eventID"]
    reordered = dict(reversed(list(rec.items())))
    first = PARSER.parse(rec)["event"]["id"]
    assert first.startswith("sha1:") and len(first) == len("sha1:") + 40
    assert PARSER.parse(reordered)["event"]["id"] == first
    assert PARSER.parse({**rec, "eventName": "RunInstances"})["event"]["id"] != first


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2020-09-14T00:44:23Z", "2020-09-14T00:44:23.000000Z"),
        ("2020-09-14T00:44:23.5Z", "2020-09-14T00:44:23.500000Z"),
        ("2020-09-14T00:44:23.000Z", "2020-09-14T00:44:23.000000Z"),
        ("2023-01-10 21:04:02", "2023-01-10T21:04:02.000000Z"),  # Panther/data-lake exports: UTC, no zone
        ("2024-01-01 12:00:00.123456789", "2024-01-01T12:00:00.123456Z"),
        ("2020-09-14T08:44:23+08:00", "2020-09-14T00:44:23.000000Z"),
    ],
)
def test_timestamps(raw: str, expected: str) -> None:
    assert utc_timestamp(raw) == expected
    assert PARSER.parse(record(eventTime=raw))["@timestamp"] == expected


def test_logstash_export_without_event_time_uses_its_timestamp() -> None:
    rec = record(**{"@timestamp": "2020-09-14T00:44:24.000Z", "@version": "1"})
    del rec["eventTime"]
    assert PARSER.parse(rec)["@timestamp"] == "2020-09-14T00:44:24.000000Z"
    # When eventTime is present it is the event time, whatever the exporter wrote.
    assert PARSER.parse(record(**{"@timestamp": "2030-01-01T00:00:00.000Z"}))["@timestamp"].startswith("2020")


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (None, "record is not a JSON object (got NoneType)"),
        ([record()], "record is not a JSON object (got list)"),
        ({k: v for k, v in record().items() if k != "eventTime"}, "missing eventTime"),
        ({k: v for k, v in record().items() if k != "eventName"}, "missing eventName"),
        (record(eventTime="..."), "unparseable eventTime: '...'"),
        (record(eventTime="redacted"), "unparseable eventTime: 'redacted'"),
        (record(eventTime="2020-13-14T00:44:23Z"), "unparseable eventTime: '2020-13-14T00:44:23Z'"),
        (record(eventTime="2020-09-14T00:44:23.12+08Z"), "unparseable eventTime: '2020-09-14T00:44:23.12+08Z'"),
        (record(eventTime=1600044263), "unparseable eventTime: 1600044263"),
        (record(eventName=["x"]), "eventName is not a string"),
    ],
)
def test_records_that_are_not_events_raise_parse_error(bad: Any, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        PARSER.parse(bad)
    assert caught.value.reason == reason


def test_lower_cased_export_is_rejected_with_a_reason() -> None:
    lowered = {"eventname": "CreateIPSet", "eventtime": "2022-07-17 04:50:23", "eventsource": "x"}
    with pytest.raises(ParseError, match="lower-case 'eventname'"):
        PARSER.parse(lowered)


@pytest.mark.parametrize(
    ("source", "action", "category", "types"),
    [
        ("iam.amazonaws.com", "CreateUser", "iam", ["creation", "user"]),
        ("iam.amazonaws.com", "AddUserToGroup", "iam", ["change", "user", "group"]),
        ("iam.amazonaws.com", "DeleteRole", "iam", ["deletion"]),
        ("iam.amazonaws.com", "ListUsers", "iam", ["info", "user"]),
        ("sts.amazonaws.com", "AssumeRole", "authentication", ["start"]),
        ("s3.amazonaws.com", "PutBucketPolicy", "configuration", ["change"]),
        ("s3.amazonaws.com", "DeleteBucket", "configuration", ["deletion"]),
        ("ec2.amazonaws.com", "RunInstances", "configuration", ["creation"]),
        ("cloudtrail.amazonaws.com", "StopLogging", "configuration", ["change"]),
        ("s3.amazonaws.com", "GetObject", "configuration", ["access"]),
    ],
)
def test_category_and_type(source: str, action: str, category: str, types: list[str]) -> None:
    event = PARSER.parse(record(eventSource=source, eventName=action))["event"]
    assert (event["category"], event["type"]) == ([category], types)


def test_read_only_flag_wins_over_the_verb() -> None:
    event = PARSER.parse(record(eventName="DescribeInstances", readOnly="false"))["event"]
    assert event["type"] == ["change"]
    event = PARSER.parse(record(eventName="AcceptHandshake", readOnly=True))["event"]
    assert event["type"] == ["access"]


def test_console_flag() -> None:
    assert PARSER.parse(record(userAgent="aws-cli/2.13.0"))["cloudsoc"]["console"] is False
    rec = record(userAgent="aws-cli/2.13.0", sessionCredentialFromConsole="true")
    assert PARSER.parse(rec)["cloudsoc"]["console"] is True


def test_matches_cloudtrail_not_actiontrail() -> None:
    assert PARSER.matches(record())
    assert PARSER.matches({"eventName": "GetObject", "eventID": "x"})  # no eventSource, CloudTrail spellings
    assert not PARSER.matches({"eventName": "x", "eventId": "x", "serviceName": "Ecs", "acsRegion": "cn"})
    assert not PARSER.matches({"eventSource": "ecs.aliyuncs.com", "eventVersion": "1"})
    assert not PARSER.matches(None)  # type: ignore[arg-type]
    assert not AliyunActiontrail().matches(record())
