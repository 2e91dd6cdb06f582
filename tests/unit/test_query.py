"""The search query language: parsing, canonical text, SQL compilation, and execution against a real DuckDB."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudsoc.errors import QueryError
from cloudsoc.storage.columns import COLUMNS, DOC, INGESTED, SOURCE_IP_HALVES, SOURCE_IP_NUM
from cloudsoc.storage.query import (
    And,
    Cidr,
    Exists,
    Match,
    MatchAll,
    Not,
    Or,
    Query,
    Range,
    Text,
    Value,
    Wildcard,
)

# ---------------------------------------------------------------------------------------------------------------
# Realistic ECS documents: CloudTrail (aws.cloudtrail original record) and ActionTrail (aliyun.actiontrail).


def _ct(eid: str, ts: str, action: str, outcome: str | None, user: str, ip: str | None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@timestamp": ts,
        "event": {
            "id": eid,
            "action": action,
            "provider": "signin.amazonaws.com",
            "dataset": "aws.cloudtrail",
        },
        "cloud": {"provider": "aws", "region": "us-east-1", "account": {"id": "123456789012"}},
        "user": {"name": user},
        "aws": {
            "cloudtrail": {
                "eventVersion": "1.08",
                "eventName": action,
                "userIdentity": {"type": "IAMUser", "userName": user, "accountId": "123456789012"},
            }
        },
    }
    if outcome is not None:
        doc["event"]["outcome"] = outcome
    if ip is not None:
        doc["source"] = {"ip": ip, "address": ip}
        doc["aws"]["cloudtrail"]["sourceIPAddress"] = ip
        doc["related"] = {"ip": [ip]}
    return _merge(doc, extra)


def _at(eid: str, ts: str, action: str, outcome: str | None, user: str, ip: str | None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@timestamp": ts,
        "event": {
            "id": eid,
            "action": action,
            "provider": "ram.aliyuncs.com",
            "dataset": "aliyun.actiontrail",
        },
        "cloud": {"provider": "aliyun", "region": "cn-hangzhou", "account": {"id": "5105431946222327"}},
        "user": {"name": user},
        "aliyun": {
            "actiontrail": {
                "eventName": action,
                "eventType": "ApiCall",
                "acsRegion": "cn-hangzhou",
                "userIdentity": {"type": "ram-user", "userName": user, "principalId": "5105431946222327"},
            }
        },
    }
    if outcome is not None:
        doc["event"]["outcome"] = outcome
    if ip is not None:
        doc["source"] = {"ip": ip}
        doc["aliyun"]["actiontrail"]["sourceIpAddress"] = ip
    return _merge(doc, extra)


def _merge(doc: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Merge ``a__b__c=value`` keyword arguments into the nested document."""
    for key, value in extra.items():
        node = doc
        *parents, leaf = key.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return doc


DOCS: list[dict[str, Any]] = [
    _ct(
        "ct-1",
        "2026-01-05T08:00:00Z",
        "ConsoleLogin",
        "failure",
        "admin",
        "203.0.113.7",
        cloudsoc__mfa=False,
        cloudsoc__risk_score=20,
        event__category=["authentication"],
        aws__cloudtrail__responseElements={"ConsoleLogin": "Failure"},
        aws__cloudtrail__errorMessage="Failed authentication",
    ),
    _ct(
        "ct-2",
        "2026-01-10T23:59:59Z",
        "ConsoleLogin",
        "success",
        "root",
        "198.51.100.23",
        cloudsoc__mfa=False,
        cloudsoc__risk_score=90,
        event__category=["authentication"],
        aws__cloudtrail__userIdentity__type="Root",
        aws__cloudtrail__responseElements={"ConsoleLogin": "Success"},
    ),
    _ct(
        "ct-3",
        "2026-01-31T12:00:00Z",
        "CreateAccessKey",
        "success",
        "admin.ops",
        "2001:db8:85a3::8a2e:370:7334",
        event__category=["iam", "configuration"],
        related__ip=["2001:db8:85a3::8a2e:370:7334", "10.0.0.5"],
        aws__cloudtrail__responseElements={"accessKey": {"accessKeyId": "AKIAIOSFODNN7EXAMPLE"}},
    ),
    _ct(
        "ct-4",
        "2026-02-01T00:00:00Z",
        "GetObject",
        "failure",
        "devXbackup",
        "203.0.113.200",
        error__code="AccessDenied",
        cloudsoc__risk_score=9.5,
        aws__cloudtrail__resources=[
            {"ARN": "arn:aws:s3:::corp-backups/db.sql", "type": "AWS::S3::Object"},
            {"ARN": "arn:aws:s3:::corp-backups", "type": "AWS::S3::Bucket"},
        ],
        threat__enrichments=[
            {"indicator": {"ip": "203.0.113.200", "type": "ipv4-addr"}, "matched": {"field": "source.ip"}},
            {"indicator": {"ip": "198.51.100.99", "type": "ipv4-addr"}, "matched": {"field": "related.ip"}},
        ],
    ),
    _ct(
        "ct-5",
        "2026-01-20T03:14:15Z",
        "StopLogging",
        "success",
        "mallory",
        "::ffff:203.0.113.9",
        user_agent__original="aws-cli/2.15.0 Python/3.11 100%_sure",
        cloudsoc__risk_score=75,
    ),
    _ct(
        "ct-6",
        "2026-01-21T10:00:00Z",
        "PutBucketPolicy",
        "success",
        "Admin",
        "198.51.100.200",
        user_agent__original="Boto3/1.34 100xysure",
        file__path="C:\\Temp\\payload.exe",
        aws__cloudtrail__requestParameters={
            "bucketName": "corp-public",
            "bucketPolicy": '{"Statement":[{"Effect":"Allow","Principal":"*"}]}',
        },
        cloudsoc__risk_score=73,
    ),
    _at(
        "at-1",
        "2026-01-15T09:30:00Z",
        "ConsoleSignin",
        "success",
        "administrator",
        "192.0.2.44",
        cloudsoc__mfa=True,
        related__ip="192.0.2.44",
        aliyun__actiontrail__userIdentity__type="root-account",
    ),
    _at(
        "at-2",
        "2026-01-16T11:00:00Z",
        "CreateAccessKey",
        "failure",
        "dev_user",
        "100.64.1.2",
        error__code="NoPermission",
        event__category=["iam", "configuration"],
        related__ip=["100.64.1.2", "192.0.2.44"],
        aliyun__actiontrail__errorMessage="You are not authorized to do this action.",
    ),
    _at(
        "at-3",
        "2026-01-17T15:45:00Z",
        "AuthorizeSecurityGroup",
        "success",
        "ops",
        "2001:db8:1::10",
        aliyun__actiontrail__requestParameters={"SourceCidrIp": "0.0.0.0/0", "PortRange": "22/22"},
        message="opened ssh to the world after an earlier accessdenied",
    ),
    {
        "@timestamp": "2026-01-18T00:00:00Z",
        "event": {"id": "tc-1", "action": "DescribeInstances", "dataset": "tencent.cloudaudit"},
        "cloud": {"provider": "tencent", "region": "ap-guangzhou"},
        "tencent": {"cloudaudit": {"eventName": "DescribeInstances", "resourceTypes": []}},
        "related": {"ip": None},
    },
]
ALL = sorted(d["event"]["id"] for d in DOCS)


def _get(doc: dict[str, Any], field: str) -> Any:
    node: Any = doc
    for part in field.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _row(doc: dict[str, Any]) -> list[Any]:
    values: list[Any] = []
    for field in COLUMNS:
        value = _get(doc, field)
        if field == "@timestamp" and value is not None:
            value = datetime.fromisoformat(value).astimezone(UTC).replace(tzinfo=None)
        values.append(value)
    ip = _get(doc, "source.ip")
    number = None
    if ip is not None:
        addr = ipaddress.ip_address(ip)
        number = (0xFFFF << 32) + int(addr) if addr.version == 4 else int(addr)
    halves = [None, None] if number is None else [number >> 64, number & ((1 << 64) - 1)]
    return [*values, number, *halves, orjson.dumps(doc).decode(), datetime(2026, 3, 1)]


_COLUMNS = [*COLUMNS.values(), SOURCE_IP_NUM, *((half, "UBIGINT") for half in SOURCE_IP_HALVES), DOC, INGESTED]


def _create(con: duckdb.DuckDBPyConnection, docs: list[dict[str, Any]]) -> None:
    con.execute(f"CREATE TABLE events ({', '.join(f'{name} {kind}' for name, kind in _COLUMNS)})")
    _insert(con, docs)


def _insert(con: duckdb.DuckDBPyConnection, docs: list[dict[str, Any]]) -> None:
    placeholders = ", ".join("?" for _ in _COLUMNS)
    if docs:
        con.executemany(f"INSERT INTO events VALUES ({placeholders})", [_row(d) for d in docs])


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    _create(connection, DOCS)
    yield connection
    connection.close()


def ids(con: duckdb.DuckDBPyConnection, text: str) -> list[str]:
    sql, params = Query.parse(text).to_sql()
    rows = con.execute(f"SELECT event_id FROM events WHERE {sql}", params).fetchall()
    return sorted(r[0] for r in rows)


def parse_error(text: str) -> QueryError:
    with pytest.raises(QueryError) as info:
        Query.parse(text)
    return info.value


# ---------------------------------------------------------------------------------------------------------------
# Compilation


def test_typed_column_compiles_to_plain_comparison() -> None:
    assert Query.parse("event.action:ConsoleLogin").to_sql() == ("event_action = ?", ["ConsoleLogin"])


def test_brief_example_compiles_without_json() -> None:
    sql, params = Query.parse("event.action:ConsoleLogin AND NOT event.outcome:success").to_sql()
    assert sql == "(event_action = ? AND (event_outcome = ?) IS NOT TRUE)"
    assert params == ["ConsoleLogin", "success"]
    assert "json" not in sql


@pytest.mark.parametrize("text", ["", "   ", "*", "*:*", " * "])
def test_match_all(text: str) -> None:
    q = Query.parse(text)
    assert q.root == MatchAll()
    assert q.to_sql() == ("TRUE", [])
    assert str(q) == "*"


def test_wildcard_on_typed_column_is_escaped_ilike() -> None:
    sql, params = Query.parse("user_agent.original:*100%_sure*").to_sql()
    assert sql == "user_agent ILIKE ? ESCAPE '\\'"
    assert params == ["%100\\%\\_sure%"]


def test_cidr_compiles_to_integer_range() -> None:
    sql, params = Query.parse("source.ip:203.0.113.0/24").to_sql()
    assert "source_ip_lo >= CAST(? AS UBIGINT)" in sql and "UHUGEINT" not in sql
    assert params == [0, 0, (0xFFFF << 32) + 0xCB007100, 0, 0, (0xFFFF << 32) + 0xCB0071FF]


def test_doc_field_binds_json_path_as_parameter() -> None:
    sql, params = Query.parse("aws.cloudtrail.userIdentity.type:Root").to_sql()
    # a cheap guard on the document text first (key and value must appear), then the exact comparison
    assert params == ['"type"', "Root", '$."aws"', '$."cloudtrail"', '$."userIdentity"', '$."type"', "Root"]
    assert "userIdentity" not in sql and "Root" not in sql


@pytest.mark.parametrize(
    "text",
    [
        'user.name:"x\' OR 1=1 --"',
        '"\'; DROP TABLE events; --"',
        "aws.cloudtrail.eventName:\"') OR TRUE OR ('\"",
        "user.name >= \"' OR ''='\"",
    ],
)
def test_values_never_reach_sql_text(text: str) -> None:
    sql, params = Query.parse(text).to_sql()
    assert "DROP" not in sql and "1=1" not in sql and "TRUE OR" not in sql and "''" not in sql
    assert any(isinstance(p, str) and "'" in p for p in params)


def test_fields() -> None:
    q = Query.parse("event.action:ConsoleLogin AccessDenied (source.ip:10.0.0.0/8 OR related.ip:*) @timestamp > now-1d")
    assert q.fields() == {"event.action", "source.ip", "related.ip", "@timestamp"}
    assert Query.parse("just free text").fields() == set()


# ---------------------------------------------------------------------------------------------------------------
# AST and canonical text


def test_ast_shapes() -> None:
    assert Query.parse("a OR b AND c").root == Or(
        (Text(Value(("a",))), And((Text(Value(("b",))), Text(Value(("c",))))))
    )
    assert Query.parse("user.name:(alice or bob*)").root == Or(
        (Match("user.name", Value(("alice",))), Match("user.name", Value(("bob", Wildcard.ANY))))
    )
    assert Query.parse("x:a**?b").root == Match("x", Value(("a", Wildcard.ANY, Wildcard.ONE, "b")))
    assert Query.parse("error.code:*").root == Exists("error.code")
    assert Query.parse("x:[* TO *]").root == Exists("x")
    assert Query.parse("-a").root == Not(Text(Value(("a",))))
    assert Query.parse("!a").root == Not(Text(Value(("a",))))
    assert Query.parse("x >= 5").root == Range("x", Value(("5",)), True, None, False)
    assert Query.parse("x:[5 TO *]").root == Query.parse("x >= 5").root
    assert Query.parse("x:>5").root == Query.parse("x > 5").root
    assert Query.parse("x :< 5").root == Range("x", None, False, Value(("5",)), False)
    assert Query.parse("source.ip:10.1.2.3/8").root == Cidr("source.ip", ipaddress.ip_network("10.0.0.0/8"))
    assert Query.parse("url.path:/admin/x").root == Match("url.path", Value(("/admin/x",)))


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (
            "event.action:ConsoleLogin and not event.outcome:success",
            "event.action:ConsoleLogin AND NOT event.outcome:success",
        ),
        ("a b c", "a AND b AND c"),
        ("a AND (b AND c)", "a AND b AND c"),
        ("(a OR b) c", "(a OR b) AND c"),
        ("NOT (a OR b)", "NOT (a OR b)"),
        ("cloud.provider:(aliyun OR aws)", "cloud.provider:aliyun OR cloud.provider:aws"),
        ('user.name:"alice smith"', 'user.name:"alice smith"'),
        ('user.name:"a*b"', 'user.name:"a*b"'),
        ("user.name:a\\*b*", "user.name:a\\*b*"),
        ('"and"', '"and"'),
        ('@timestamp >= "2026-01-01"', "@timestamp >= 2026-01-01"),
        ("@timestamp:[2026-01-01 TO 2026-02-01}", "@timestamp:[2026-01-01 TO 2026-02-01}"),
        ("source.ip:2001:db8::/32", 'source.ip:"2001:db8::/32"'),
        ("x:-5", 'x:"-5"'),
        ("--a", "NOT NOT a"),
        ('x:"say \\"hi\\" C:\\Temp"', 'x:"say \\"hi\\" C:\\\\Temp"'),
    ],
)
def test_canonical_text(text: str, canonical: str) -> None:
    q = Query.parse(text)
    assert str(q) == canonical
    assert Query.parse(str(q)) == q


def test_quoted_backslashes() -> None:
    assert Query.parse('x:"C:\\Temp"').root == Match("x", Value(("C:\\Temp",)))
    assert Query.parse('x:"a\\"b\\\\c"').root == Match("x", Value(('a"b\\c',)))


# ---------------------------------------------------------------------------------------------------------------
# Errors say what was expected and where


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("event.action:(a OR", 18, "expected a value after 'OR'"),
        ("event.action:(a", 15, "expected ')' to close '(' opened at 13"),
        ("(a OR b", 7, "expected ')' to close '(' opened at 0"),
        ("AND foo", 0, "expected a term before 'AND'"),
        ("foo AND", 7, "expected a term after 'AND'"),
        ("foo OR OR bar", 7, "expected a term after 'OR'"),
        ("NOT", 3, "expected a term after 'NOT'"),
        ("field:", 6, "empty value after ':'"),
        ("field: ) ", 7, "empty value after ':'"),
        ("field:AND x", 6, "empty value after ':'"),
        ('"unterminated', 13, "expected '\"' to close the quote opened at 0"),
        ("source.ip:1.2.3.4/99", 10, "prefix length 0-32"),
        ("related.ip:2001:db8::/129", 11, "prefix length 0-128"),
        ("source.ip:nothere/8", 10, "expected an IP address before '/'"),
        ("foo)", 3, "unexpected ')'"),
        ("a == b", 2, "unknown operator '=='"),
        ("a != b", 2, "unknown operator '!='"),
        ("a => b", 2, "unknown operator '=>'"),
        (":x", 0, "expected a field name before ':'"),
        ("[1 TO 2]", 0, "expected a field name"),
        ("us'er:x", 0, "invalid field name"),
        ("a..b:x", 0, "invalid field name"),
        ("x:[1 5]", 5, "expected 'TO'"),
        ("x:[1 TO 5", 9, "expected ']' or '}' to close the range opened at 2"),
        ("x:[1* TO 5]", 3, "wildcards are not allowed"),
        ("x > *", 4, "wildcards are not allowed"),
        ("x >", 3, "empty value after '>'"),
        ("@timestamp:yesterday", 11, "expected a timestamp"),
        ("@timestamp >= 2026-13-01", 14, "expected a timestamp"),
        ("@timestamp:2026*", 11, "wildcards are not allowed on @timestamp"),
        ('@timestamp > "9999-12-31T23:59:59-01:00"', 13, "expected a timestamp"),
        ("@timestamp > now-999999999w", 13, "at most 1000 years"),
        ("abc\\", 3, "expected a character after '\\'"),
        ("(" * 100 + "a" + ")" * 100, 64, "nests too deeply"),
        ("NOT " * 100 + "a", 256, "nests too deeply"),
        ("user.name:a\ud800", 11, "lone UTF-16 surrogate"),
    ],
)
def test_errors(text: str, position: int, fragment: str) -> None:
    error = parse_error(text)
    assert fragment in error.message
    assert error.position == position
    assert len(error.query) == len(text)
    str(error).encode()  # printable


# ---------------------------------------------------------------------------------------------------------------
# Execution against DuckDB


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the brief's examples
        ("event.action:ConsoleLogin AND NOT event.outcome:success", ["ct-1"]),
        ("source.ip:203.0.113.0/24", ["ct-1", "ct-4", "ct-5"]),  # ct-5 is ::ffff:203.0.113.9
        ("user.name:admin*", ["at-1", "ct-1", "ct-3", "ct-6"]),  # wildcards are case-insensitive
        ("user.name:admin", ["ct-1"]),  # plain values are exact
        ("user.name:Admin", ["ct-6"]),
        ("cloud.provider:(aliyun OR aws)", sorted(set(ALL) - {"tc-1"})),
        (
            "cloud.provider:(aliyun or aws) AND NOT user.name:(admin* OR m?llory)",
            ["at-2", "at-3", "ct-2", "ct-4"],
        ),
        # free text: case-insensitive substring of the document
        ("AccessDenied", ["at-3", "ct-4"]),
        ('"not authorized"', ["at-2"]),
        ('"NOT AUTHORIZED"', ["at-2"]),
        ("Stop*ing", ["ct-5"]),
        ('"C:\\Temp\\payload"', ["ct-6"]),  # JSON escaping of the stored document is taken into account
        ('"\\"Effect\\":\\"Allow\\""', ["ct-6"]),
        # nested document fields
        ("aws.cloudtrail.userIdentity.type:Root", ["ct-2"]),
        ("aliyun.actiontrail.userIdentity.type:root-account", ["at-1"]),
        ("aws.cloudtrail.responseElements.ConsoleLogin:Failure", ["ct-1"]),
        ('aliyun.actiontrail.requestParameters.SourceCidrIp:"0.0.0.0/0"', ["at-3"]),
        # arrays (leaf and intermediate) and scalars
        ("related.ip:192.0.2.44", ["at-1", "at-2"]),  # at-1 has a scalar, at-2 an array
        ("related.ip:10.0.0.5", ["ct-3"]),
        ("related.ip:10.0.0.0/8", ["ct-3"]),
        ("related.ip:2001:db8:85a3:0:0:8a2e:370:7334", ["ct-3"]),  # compared as addresses
        ("event.category:iam", ["at-2", "ct-3"]),
        ("event.category:(iam AND configuration)", ["at-2", "ct-3"]),
        ("event.category:auth*", ["ct-1", "ct-2"]),
        ('aws.cloudtrail.resources.type:"AWS::S3::Object"', ["ct-4"]),
        ("aws.cloudtrail.resources.ARN:*corp-backups/*", ["ct-4"]),
        ("threat.enrichments.indicator.ip:198.51.100.99", ["ct-4"]),
        ("threat.enrichments.indicator.ip:198.51.100.0/24", ["ct-4"]),
        ("threat.enrichments.matched.field:related.ip", ["ct-4"]),
        # existence
        ("error.code:*", ["at-2", "ct-4"]),
        ("aws.cloudtrail.resources:*", ["ct-4"]),
        ("related.ip:*", sorted(set(ALL) - {"at-3", "tc-1"})),  # JSON null does not exist
        ("tencent.cloudaudit.resourceTypes:*", []),  # nor does an empty array
        ("NOT source.ip:*", ["tc-1"]),
        # booleans and numbers in the document
        ("cloudsoc.mfa:false", ["ct-1", "ct-2"]),
        ("cloudsoc.mfa:true", ["at-1"]),
        ("NOT cloudsoc.mfa:true", sorted(set(ALL) - {"at-1"})),
        ("cloudsoc.risk_score:20", ["ct-1"]),
        ("cloudsoc.risk_score >= 50", ["ct-2", "ct-5", "ct-6"]),  # numeric, not lexicographic
        ("cloudsoc.risk_score < 10", ["ct-4"]),
        ("cloudsoc.risk_score:[9.5 TO 73]", ["ct-1", "ct-4", "ct-6"]),
        ("cloudsoc.risk_score:{9.5 TO 73}", ["ct-1"]),
        ("aws.cloudtrail.eventVersion >= 1.08", sorted(d for d in ALL if d.startswith("ct-"))),
        # time ranges; a bare day rounds like Elasticsearch
        ('@timestamp >= "2026-01-20"', ["ct-3", "ct-4", "ct-5", "ct-6"]),
        ("@timestamp < 2026-01-10", ["ct-1"]),
        ("@timestamp <= 2026-01-10", ["ct-1", "ct-2"]),
        ("@timestamp > 2026-01-31", ["ct-4"]),
        ("@timestamp:2026-01-10", ["ct-2"]),
        ('@timestamp:"2026-01-10T23:59:59Z"', ["ct-2"]),
        ('@timestamp:"2026-01-11T07:59:59+08:00"', ["ct-2"]),
        (
            "@timestamp:[2026-01-10 TO 2026-01-31]",
            ["at-1", "at-2", "at-3", "ct-2", "ct-3", "ct-5", "ct-6", "tc-1"],
        ),
        ("@timestamp:{2026-01-10 TO 2026-01-31}", ["at-1", "at-2", "at-3", "ct-5", "ct-6", "tc-1"]),
        ('@timestamp:["2026-01-17T15:45:00" TO "2026-01-18T00:00:00"}', ["at-3"]),
        ("@timestamp >= now-36500d", ALL),
        ("@timestamp > now+36500d", []),
        ("@timestamp:[0001-01-01 TO 9999-12-31]", ALL),
        ("@timestamp > 9999-12-31", []),
        # ranges on keyword columns are lexicographic; on IP fields numeric
        ("event.action:[C TO D}", ["at-1", "at-2", "ct-1", "ct-2", "ct-3"]),
        ("source.ip:[203.0.113.0 TO 203.0.113.100]", ["ct-1", "ct-5"]),
        ("source.ip > 203.0.113.7", ["at-3", "ct-3", "ct-4", "ct-5"]),  # IPv6 sorts after IPv4
        # IPv4 and IPv6 addresses and CIDRs
        ("source.ip:203.0.113.7", ["ct-1"]),
        ("source.ip:2001:db8::/32", ["at-3", "ct-3"]),
        ('source.ip:"2001:db8:1::/48"', ["at-3"]),
        ("source.ip:2001:DB8:1:0:0:0:0:10", ["at-3"]),
        ("source.ip:::ffff:0:0/96", ["at-2", "ct-1", "ct-2", "ct-4", "ct-5", "ct-6", "at-1"]),
        ("source.ip:0.0.0.0/0", ["at-1", "at-2", "ct-1", "ct-2", "ct-4", "ct-5", "ct-6"]),
        ("source.ip:::/0", sorted(set(ALL) - {"tc-1"})),
        ("source.ip:203.0.113.*", ["ct-1", "ct-4"]),  # wildcards compare the text
        # precedence: AND binds tighter than OR
        ("user.name:mallory OR cloud.provider:aliyun AND event.outcome:failure", ["at-2", "ct-5"]),
        ("user.name:mallory OR (cloud.provider:aliyun AND event.outcome:failure)", ["at-2", "ct-5"]),
        ("(user.name:mallory OR cloud.provider:aliyun) AND event.outcome:failure", ["at-2"]),
        # implicit AND between adjacent terms
        ("cloud.provider:aws ConsoleLogin", ["ct-1", "ct-2"]),
        ("cloud.provider:aws AND ConsoleLogin", ["ct-1", "ct-2"]),
        # NOT, grouping, missing fields
        ("NOT (cloud.provider:aws OR cloud.provider:aliyun)", ["tc-1"]),
        ("NOT cloud.provider:aws AND NOT cloud.provider:aliyun", ["tc-1"]),
        ("-cloud.provider:aws", ["at-1", "at-2", "at-3", "tc-1"]),
        ("NOT event.outcome:success", ["at-2", "ct-1", "ct-4", "tc-1"]),  # tc-1 has no outcome
        ("NOT NOT event.outcome:success", ["at-1", "at-3", "ct-2", "ct-3", "ct-5", "ct-6"]),
        ("NOT user.name:admin*", ["at-2", "at-3", "ct-2", "ct-4", "ct-5", "tc-1"]),
        # wildcards with literal % and _ in the value
        ("user_agent.original:*100%_sure*", ["ct-5"]),
        ("user.name:dev_*", ["at-2"]),
        ("user.name:dev?*", ["at-2", "ct-4"]),
        ("user.name:m?llory", ["ct-5"]),
        ('"100%_sure"', ["ct-5"]),
        ('user.name:"dev_user"', ["at-2"]),
        # injection attempts are values
        ('user.name:"x\' OR 1=1 --"', []),
        ('"\'; DROP TABLE events; --"', []),
        ("aws.cloudtrail.eventName:\"') OR TRUE OR ('\"", []),
        ("user.name:x\\'\\ OR\\ 1=1", []),
        ('"\\" OR 1=1"', []),
        ("*", ALL),
        ("", ALL),
    ],
)
def test_execution(con: duckdb.DuckDBPyConnection, text: str, expected: list[str]) -> None:
    assert ids(con, text) == sorted(expected)
    # the canonical text is the same query
    assert ids(con, str(Query.parse(text))) == sorted(expected)


def test_injection_leaves_table_intact(con: duckdb.DuckDBPyConnection) -> None:
    ids(con, '"\'; DROP TABLE events; --"')
    assert con.execute("SELECT count(*) FROM events").fetchone() == (len(DOCS),)


def test_relative_time() -> None:
    con = duckdb.connect()
    now = datetime.now(UTC)
    docs = [
        {"@timestamp": (now - timedelta(minutes=30)).isoformat(), "event": {"id": "recent"}},
        {"@timestamp": (now - timedelta(hours=2)).isoformat(), "event": {"id": "older"}},
        {"@timestamp": (now - timedelta(days=8)).isoformat(), "event": {"id": "old"}},
    ]
    _create(con, docs)
    con.execute("SET TimeZone = 'Asia/Shanghai'")  # now is UTC whatever the session time zone
    assert ids(con, "@timestamp >= now-1h") == ["recent"]
    assert ids(con, "@timestamp:[now-3h TO now-1h]") == ["older"]
    assert ids(con, "@timestamp < now-1w") == ["old"]
    assert ids(con, "@timestamp < now") == ["old", "older", "recent"]


# ---------------------------------------------------------------------------------------------------------------
# Properties

_TOKENS = [
    " ",
    " ",
    " AND ",
    " OR ",
    " NOT ",
    "and",
    "or",
    "not",
    "(",
    ")",
    '"',
    ":",
    "*",
    "?",
    "\\",
    "-",
    "!",
    "[",
    "]",
    "{",
    "}",
    " TO ",
    "<",
    ">",
    "=",
    "/",
    ".",
    "@",
    "'",
    "%",
    "_",
    ";",
    "event.action",
    "source.ip",
    "@timestamp",
    "related.ip",
    "aws.cloudtrail.userIdentity.type",
    "user.name",
    "cloudsoc.risk_score",
    "ConsoleLogin",
    "admin",
    "203.0.113.0/24",
    "2001:db8::/32",
    "1.2.3.4",
    "10",
    "2026-01-01",
    "now-1h",
    "now+999w",
    "9999-12-31",
    "0001-01-01",
    "T23:59:59",
    "+01:00",
    "1e999",
    "::1",
    "x",
]
_QUERY_TEXT = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(_TOKENS), max_size=14).map("".join),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_QUERY_TEXT)
def test_any_text_parses_or_raises_query_error(con: duckdb.DuckDBPyConnection, text: str) -> None:
    try:
        q = Query.parse(text)
    except QueryError as exc:
        assert 0 <= exc.position <= len(text)
        return
    sql, params = q.to_sql()
    assert sql.count("?") == len(params)
    con.execute(f"SELECT count(*) FROM events WHERE {sql}", params).fetchall()
    again = Query.parse(str(q))
    assert again == q
    assert str(again) == str(q)


_IPS = st.one_of(
    st.ip_addresses(v=4),
    st.ip_addresses(v=6),
    st.sampled_from([ipaddress.ip_address(a) for a in ("::", "::1", "1::", "fe80::1", "255.255.255.255", "0.0.0.0")]),
)


def _num(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    return (0xFFFF << 32) + int(addr) if addr.version == 4 else int(addr)


def _dotted(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """IPv6 with the last 32 bits as a dotted quad, as some logs write it (IPv4 unchanged)."""
    if addr.version == 4:
        return str(addr)
    head = ":".join(addr.exploded.split(":")[:6])
    return f"{head}:{ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)}"


@pytest.fixture(scope="module")
def scratch() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    _create(connection, [])
    yield connection
    connection.close()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    addr=_IPS,
    other=_IPS,
    prefix=st.integers(0, 128),
    form=st.sampled_from(["short", "long", "upper", "dotted"]),
)
def test_doc_ip_fields_compare_as_addresses(
    scratch: duckdb.DuckDBPyConnection,
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
    other: ipaddress.IPv4Address | ipaddress.IPv6Address,
    prefix: int,
    form: str,
) -> None:
    stored = {"short": str(addr), "long": addr.exploded, "upper": str(addr).upper(), "dotted": _dotted(addr)}[form]
    con = scratch
    con.execute("DELETE FROM events")
    _insert(con, [{"event": {"id": "doc"}, "related": {"ip": ["not-an-ip", stored]}, "host": {"ip": stored}}])
    network = ipaddress.ip_network(f"{other}/{min(prefix, other.max_prefixlen)}", strict=False)
    # IPv4 lives in ::ffff:0:0/96, so 192.0.2.1 is also ::ffff:192.0.2.1 and lies inside ::/0
    inside = _num(network.network_address) <= _num(addr) <= _num(network.broadcast_address)
    assert ids(con, f'related.ip:"{network}"') == (["doc"] if inside else [])
    assert ids(con, f'host.ip:"{addr}"') == ["doc"]
    assert ids(con, f'host.ip:"{other}"') == (["doc"] if _num(other) == _num(addr) else [])
