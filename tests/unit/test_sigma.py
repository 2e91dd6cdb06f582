"""Sigma compiler: real SigmaHQ AWS rules, a differential check against Panther's labelled events, and semantics."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from cloudsoc.detect.sigma import CompiledRule, SigmaRuleSet
from cloudsoc.errors import ParseError
from cloudsoc.parsers.aws_cloudtrail import AwsCloudtrail

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cloudaudit"
SIGMA_DIR = DATA / "sigma-rules-aws" / "cloudtrail"
PANTHER_DIR = DATA / "panther-cloudtrail-rules"
PARSER = AwsCloudtrail()


@cache
def sigmahq() -> SigmaRuleSet:
    return SigmaRuleSet.from_paths(sorted(SIGMA_DIR.glob("*.yml")))


def sigma_rule(file_name: str) -> CompiledRule:
    (rule,) = (r for r in sigmahq() if Path(r.source).name == file_name)
    return rule


def panther_tests(file_name: str) -> dict[str, tuple[bool, dict[str, Any]]]:
    """Panther test name → (ExpectedResult, parsed ECS document).

    Some Panther test logs are trimmed to the fields their rule reads (no eventTime); our parser rejects
    those as it would in production, so they are left out here.
    """
    spec = yaml.safe_load((PANTHER_DIR / file_name).read_text(encoding="utf-8"))
    tests: dict[str, tuple[bool, dict[str, Any]]] = {}
    for test in spec["Tests"]:
        try:
            tests[test["Name"]] = (test["ExpectedResult"], PARSER.parse(test["Log"]))
        except ParseError:
            continue
    return tests


def one_rule(detection: str, logsource: str = "product: aws\n    service: cloudtrail") -> CompiledRule:
    text = f"title: t\nid: 00000000-0000-0000-0000-000000000001\nlogsource:\n    {logsource}\ndetection:\n{detection}"
    rules = SigmaRuleSet.from_yaml(text)
    assert rules.skipped == []
    (rule,) = rules
    return rule


def trail(**record: Any) -> dict[str, Any]:
    return {"event": {"action": record.get("eventName")}, "aws": {"cloudtrail": record}}


# 1. All SigmaHQ AWS CloudTrail rules load and compile.


def test_all_sigmahq_cloudtrail_rules_compile() -> None:
    rules = sigmahq()
    assert len(list(SIGMA_DIR.glob("*.yml"))) == 57
    assert len(rules) == 57
    assert rules.skipped == []
    assert all(rule.id and rule.title and rule.level for rule in rules)
    assert all(rule.logsource.product == "aws" and rule.root == "aws.cloudtrail" for rule in rules)
    disable = sigma_rule("aws_cloudtrail_disable_logging.yml")
    assert disable.event_names == frozenset({"stoplogging", "updatetrail", "deletetrail"})
    assert "attack.t1685.002" in disable.tags


# 2. Differential check against Panther's labelled CloudTrail events, for rules that mean the same thing.


def test_disable_logging_matches_panther_cloudtrail_stopped() -> None:
    rule = sigma_rule("aws_cloudtrail_disable_logging.yml")
    tests = panther_tests("aws_cloudtrail_stopped.yml")
    positives = [doc for expected, doc in tests.values() if expected]
    assert positives
    assert all(rule.matches(doc) for doc in positives)
    assert not rule.matches(tests["CloudTrail Was Started"][1])
    # Not asserted: "Error Stopping CloudTrail" is negative for Panther (errorCode set) but the Sigma rule
    # ignores errorCode, so it fires there by design.
    assert rule.explain(tests["CloudTrail Was Stopped"][1]) == [
        ("aws.cloudtrail.eventSource", "cloudtrail.amazonaws.com"),
        ("aws.cloudtrail.eventName", "StopLogging"),
    ]


def test_console_login_without_mfa_matches_panther() -> None:
    rule = sigma_rule("aws_cloudtrail_console_login_success_without_mfa.yml")
    tests = panther_tests("aws_console_login_without_mfa.yml")
    for name in ("No MFA Login - IAM User", "No MFA Login - IAM User Unknown Account", "No MFA Login - Root User"):
        assert tests[name][0] is True
        assert rule.matches(tests[name][1]), name
    for name in ("MFA Login", "No MFA - Login Failed"):
        assert tests[name][0] is False
        assert not rule.matches(tests[name][1]), name
    # Not asserted: Panther also clears SAML/SSO/external-IdP logins and accounts younger than a day, which
    # need context (account age, IdP lists) a single Sigma rule does not have.


def test_root_account_usage_matches_panther_root_activity() -> None:
    rule = sigma_rule("aws_root_account_usage.yml")
    tests = panther_tests("aws_root_activity.yml")
    for name in ("Root Activity", "Successful Root Login"):
        assert tests[name][0] is True
        assert rule.matches(tests[name][1]), name
    assert not rule.matches(tests["IAMUser Activity"][1])
    # Not asserted: Panther drops failed, read-only and CreateServiceLinkedRole root calls; Sigma flags any
    # root call that is not an AwsServiceEvent.
    login = panther_tests("aws_console_root_login.yml")["Successful Root Login"]
    assert login[0] is True
    assert rule.matches(login[1])


def test_vpc_flow_logs_deleted_matches_panther() -> None:
    rule = sigma_rule("aws_cloudtrail_vpc_flow_logs_deleted.yml")
    expected, doc = panther_tests("aws_vpc_flow_logs_deleted.yml")["Logs Deleted"]
    assert expected is True
    assert rule.matches(doc)
    failed = copy.deepcopy(doc)
    failed["aws"]["cloudtrail"]["errorCode"] = "Client.UnauthorizedOperation"
    assert not rule.matches(failed)


def test_trufflehog_get_caller_identity_matches_panther() -> None:
    rule = sigma_rule("aws_sts_getcalleridentity_trufflehog.yml")
    tests = panther_tests("aws_sts_getcalleridentity_trufflehog.yml")
    assert {name for name, (expected, _) in tests.items() if expected} == {
        name for name, (_, doc) in tests.items() if rule.matches(doc)
    }
    # "trufflehog/3.63.0" fires a rule written as "TruffleHog": Sigma strings are case-insensitive.
    assert rule.explain(tests["TruffleHog User Agent Variant"][1])[-1] == (
        "aws.cloudtrail.userAgent",
        "trufflehog/3.63.0",
    )


def test_candidates_on_panther_events_lose_no_match() -> None:
    rules = sigmahq()
    for file_name in ("aws_cloudtrail_stopped.yml", "aws_console_login_without_mfa.yml", "aws_root_activity.yml"):
        for _, doc in panther_tests(file_name).values():
            offered = rules.candidates(doc)
            assert len(offered) < len(rules)
            assert [r for r in rules if r.matches(doc)] == [r for r in offered if r.matches(doc)]


# 3. Compiler semantics on small hand-written documents.


def test_strings_are_case_insensitive_unless_cased() -> None:
    rule = one_rule("    sel:\n        eventName: stoplogging\n    condition: sel")
    assert rule.matches(trail(eventName="StopLogging"))
    assert not rule.matches(trail(eventName="StopLoggingNow"))
    cased = one_rule("    sel:\n        eventName|cased: stoplogging\n    condition: sel")
    assert not cased.matches(trail(eventName="StopLogging"))
    assert cased.matches(trail(eventName="stoplogging"))


@pytest.mark.parametrize(
    ("modifier", "hit", "miss"),
    [
        ("contains", "xxTruffleHogyy", "Truffle"),
        ("startswith", "aws-cli/2", "boto3 aws-cli"),
        ("endswith", "a/aws-cli", "aws-cli/x"),
    ],
)
def test_contains_startswith_endswith(modifier: str, hit: str, miss: str) -> None:
    value = {"contains": "trufflehog", "startswith": "AWS-CLI", "endswith": "aws-cli"}[modifier]
    rule = one_rule(f"    sel:\n        userAgent|{modifier}: '{value}'\n    condition: sel")
    assert rule.matches(trail(userAgent=hit))
    assert not rule.matches(trail(userAgent=miss))


def test_list_values_in_document_and_all_modifier() -> None:
    rule = one_rule("    sel:\n        resources.ARN|contains: 'prod'\n    condition: sel")
    doc = trail(resources=[{"ARN": "arn:dev"}, {"ARN": "arn:prod"}])
    assert rule.matches(doc)
    assert rule.explain(doc) == [("aws.cloudtrail.resources.ARN", "arn:prod")]
    every = one_rule(
        "    sel:\n        userAgent|contains|all:\n            - aws\n            - cli\n    condition: sel"
    )
    assert every.matches(trail(userAgent="aws-cli/2"))
    assert not every.matches(trail(userAgent="aws-sdk"))
    tags = one_rule("    sel:\n        tags: beta\n    condition: sel")
    assert tags.matches(trail(tags=["alpha", "BETA"]))


def test_regex_cidr_and_numbers() -> None:
    regex = one_rule("    sel:\n        userAgent|re: '^aws-cli/[0-9]+'\n    condition: sel")
    assert regex.matches(trail(userAgent="aws-cli/2.15"))
    assert not regex.matches(trail(userAgent="AWS-CLI/2.15"))  # |re is case-sensitive unless |i
    cidr = one_rule("    sel:\n        sourceIPAddress|cidr: 10.0.0.0/8\n    condition: sel")
    assert cidr.matches(trail(sourceIPAddress="10.1.2.3"))
    assert not cidr.matches(trail(sourceIPAddress="11.1.2.3"))
    assert not cidr.matches(trail(sourceIPAddress="console.amazonaws.com"))
    gte = one_rule("    sel:\n        requestParameters.maxCount|gte: 10\n    condition: sel")
    assert gte.matches(trail(requestParameters={"maxCount": 10}))
    assert gte.matches(trail(requestParameters={"maxCount": "25"}))
    assert not gte.matches(trail(requestParameters={"maxCount": 9}))
    assert not gte.matches(trail(requestParameters={}))
    equal = one_rule("    sel:\n        requestParameters.port: 22\n    condition: sel")
    assert equal.matches(trail(requestParameters={"port": 22}))
    assert not equal.matches(trail(requestParameters={"port": 23}))


def test_null_exists_and_booleans() -> None:
    null = one_rule("    sel:\n        errorCode: null\n    condition: sel")
    assert null.matches(trail(eventName="X"))
    assert null.matches(trail(errorCode=None))
    assert not null.matches(trail(errorCode="AccessDenied"))
    exists = one_rule("    sel:\n        errorCode|exists: true\n    condition: sel")
    assert exists.matches(trail(errorCode="AccessDenied"))
    assert not exists.matches(trail(eventName="X"))
    flag = one_rule("    sel:\n        readOnly: true\n    condition: sel")
    assert flag.matches(trail(readOnly=True))
    assert not flag.matches(trail(readOnly=False))


def test_boolean_conditions() -> None:
    detection = (
        "    sel_a:\n        eventName: A\n    sel_b:\n        eventName: B\n"
        "    filter:\n        userIdentity.type: AWSService\n"
    )
    one_of = one_rule(detection + "    condition: 1 of sel_* and not filter")
    assert one_of.matches(trail(eventName="A", userIdentity={"type": "Root"}))
    assert one_of.matches(trail(eventName="b", userIdentity={"type": "Root"}))
    assert not one_of.matches(trail(eventName="A", userIdentity={"type": "AWSService"}))
    assert not one_of.matches(trail(eventName="C"))
    assert one_of.event_names == frozenset({"a", "b"})
    all_of = one_rule(detection + "    condition: all of sel_*")
    assert not all_of.matches(trail(eventName="A"))
    assert all_of.event_names == frozenset()
    either = one_rule(detection + "    condition: sel_a or filter")
    assert either.matches(trail(eventName="Z", userIdentity={"type": "AWSService"}))
    assert either.event_names is None


def test_keywords_search_the_original_record() -> None:
    rule = one_rule("    keywords:\n        - 'mimikatz'\n    condition: keywords")
    doc = trail(eventName="RunInstances", requestParameters={"userData": "curl x | MIMIKATZ.exe"})
    assert rule.matches(doc)
    assert rule.explain(doc) == [("aws.cloudtrail.requestParameters.userData", "curl x | MIMIKATZ.exe")]
    assert not rule.matches(trail(eventName="RunInstances"))


def test_ecs_fields_and_actiontrail_mapping() -> None:
    ecs = one_rule("    sel:\n        event.action: ConsoleLogin\n    condition: sel")
    assert ecs.matches(trail(eventName="ConsoleLogin"))
    aliyun = one_rule("    sel:\n        eventName: ConsoleSignin\n    condition: sel", "product: alibaba")
    assert aliyun.root == "aliyun.actiontrail"
    assert aliyun.matches({"aliyun": {"actiontrail": {"eventName": "ConsoleSignin"}}})
    assert not aliyun.matches(trail(eventName="ConsoleSignin"))


def test_explain_is_empty_without_a_match_and_skips_negated_branches() -> None:
    rule = one_rule(
        "    sel:\n        eventName: A\n    filter:\n        errorCode: X\n    condition: sel and not filter"
    )
    assert rule.explain(trail(eventName="A")) == [("aws.cloudtrail.eventName", "A")]
    assert rule.explain(trail(eventName="A", errorCode="X")) == []


def test_candidates_are_indexed_by_source_and_event_name() -> None:
    text = "\n---\n".join(
        f"title: {title}\nlogsource:\n    {source}\ndetection:\n    sel:\n        {sel}\n    condition: sel"
        for title, source, sel in [
            ("x", "product: aws\n    service: cloudtrail", "eventName: X"),
            ("y", "product: aws\n    service: cloudtrail", "eventName: Y"),
            ("any-aws", "product: aws\n    service: cloudtrail", "userIdentity.type: Root"),
            ("aliyun-x", "product: alibaba\n    service: actiontrail", "eventName: X"),
            ("generic", "category: cloud", "event.action: X"),
        ]
    )
    rules = SigmaRuleSet.from_yaml(text, source="inline.yml")
    assert len(rules) == 5
    assert [r.title for r in rules.candidates(trail(eventName="x"))] == ["x", "any-aws", "generic"]
    assert [r.title for r in rules.candidates(trail(eventName="Z"))] == ["any-aws", "generic"]
    aliyun = {"aliyun": {"actiontrail": {"eventName": "X"}}}
    assert [r.title for r in rules.candidates(aliyun)] == ["aliyun-x", "generic"]


def test_correlations_and_pipes_are_skipped_with_a_reason() -> None:
    text = (
        "title: base\nname: base\nlogsource:\n    product: aws\n    service: cloudtrail\n"
        "detection:\n    sel:\n        eventName: ConsoleLogin\n    condition: sel\n---\n"
        "title: many logins\ncorrelation:\n    type: event_count\n    rules: base\n    group-by: [sourceIPAddress]\n"
        "    timespan: 5m\n    condition:\n        gte: 10\n---\n"
        "title: piped\nlogsource:\n    product: aws\ndetection:\n    sel:\n        eventName: A\n"
        "    condition: sel | count() > 5\n"
    )
    rules = SigmaRuleSet.from_yaml(text, source="mixed.yml")
    assert [r.title for r in rules] == ["base"]
    assert {s.title for s in rules.skipped} == {"many logins", "piped"}
    assert all(s.reason and s.source == "mixed.yml" for s in rules.skipped)


# 4. Sigma rules in the engine: load_sigma, SigmaDetection, the processing pipeline.


def test_load_sigma_makes_indexed_engine_rules() -> None:
    from cloudsoc.detect.alert import Severity
    from cloudsoc.detect.engine import RuleIndex
    from cloudsoc.detect.sigma import SigmaDetection, is_sigma, load_sigma

    path = SIGMA_DIR / "aws_cloudtrail_disable_logging.yml"
    text = path.read_text(encoding="utf-8")
    assert is_sigma(yaml.safe_load(text))
    assert not is_sigma({"name": "x", "type": "frequency", "filter": [{"term": {"a": 1}}]})
    rules, skipped = load_sigma(text, str(path))
    assert skipped == []
    (rule,) = rules
    assert isinstance(rule, SigmaDetection)
    assert (rule.kind, rule.id, rule.severity, rule.enabled) == (
        "sigma",
        "4db60cc0-36fb-42b7-9b58-a5b53019fb74",
        Severity.MEDIUM,
        True,
    )
    assert rule.title == "AWS CloudTrail Important Change"
    assert rule.datasets == frozenset({"aws.cloudtrail"})
    assert rule.actions == frozenset({"stoplogging", "updatetrail", "deletetrail"})
    assert "attack.t1685.002" in rule.tags
    assert rule.description.startswith("Detects disabling, deleting and updating of a Trail")
    assert rule.response == "Known false positives: Valid change in a Trail."
    stopped = panther_tests("aws_cloudtrail_stopped.yml")
    index = RuleIndex(rules)
    (match,) = index.select([stopped["CloudTrail Was Stopped"][1], stopped["CloudTrail Was Started"][1]])
    assert match.rule_id == rule.id
    assert match.hits == [
        ("aws.cloudtrail.eventSource", "cloudtrail.amazonaws.com"),
        ("aws.cloudtrail.eventName", "StopLogging"),
    ]


def test_every_sigmahq_rule_loads_as_an_engine_rule_and_agrees_with_the_compiled_predicate() -> None:
    from cloudsoc.detect.engine import RuleIndex
    from cloudsoc.detect.sigma import load_sigma

    rules = []
    for path in sorted(SIGMA_DIR.glob("*.yml")):
        loaded, skipped = load_sigma(path.read_text(encoding="utf-8"), str(path))
        assert skipped == []
        rules.extend(loaded)
    assert len(rules) == 57
    index = RuleIndex(rules)
    docs = [
        doc
        for name in ("aws_root_activity.yml", "aws_console_login_without_mfa.yml")
        for _, doc in panther_tests(name).values()
    ]
    by_index = {(m.rule_id, id(m.doc)) for m in index.select(docs)}
    by_predicate = {(r.id, id(d)) for r in sigmahq() for d in docs if r.matches(d)}
    assert by_index == by_predicate
    assert len(by_index) >= 5


def test_pipeline_maps_raw_fields_and_leaves_ecs_and_full_paths_alone() -> None:
    from cloudsoc.detect.sigma import ecs_field

    assert ecs_field("userIdentity.arn", "aws.cloudtrail") == "aws.cloudtrail.userIdentity.arn"
    assert ecs_field("userIdentity.arn", "aliyun.actiontrail") == "aliyun.actiontrail.userIdentity.arn"
    assert ecs_field("source.ip", "aws.cloudtrail") == "source.ip"
    assert ecs_field("aws.cloudtrail.eventName", "aws.cloudtrail") == "aws.cloudtrail.eventName"
    assert ecs_field("userIdentity.arn", None) == "userIdentity.arn"
    full = one_rule("    sel:\n        aws.cloudtrail.eventName: StopLogging\n    condition: sel")
    assert full.event_names == frozenset({"stoplogging"})
    assert full.matches(trail(eventName="StopLogging"))
    ecs = one_rule("    sel:\n        source.ip|cidr: 203.0.113.0/24\n        event.action: X\n    condition: sel")
    assert ecs.event_names == frozenset({"x"})
    assert ecs.matches({"event": {"action": "X"}, "source": {"ip": "203.0.113.9"}, "aws": {"cloudtrail": {}}})
    service_only = one_rule("    sel:\n        eventName: A\n    condition: sel", "service: actiontrail")
    assert service_only.root == "aliyun.actiontrail"


def test_objects_are_matched_as_their_json_text() -> None:
    # SigmaHQ's "bucket versioning disabled" searches the whole requestParameters object for 'Suspended'.
    rule = sigma_rule("aws_disable_bucket_versioning.yml")
    tests = panther_tests("aws_s3_suspend_versioning.yml")
    suspended = tests["Versioning Suspended Successfully"][1]
    assert rule.matches(suspended)
    ((path, value),) = [hit for hit in rule.explain(suspended) if hit[0].endswith("requestParameters")]
    assert path == "aws.cloudtrail.requestParameters" and value["VersioningConfiguration"] == {"Status": "Suspended"}
    assert not rule.matches(tests["Versioning Enabled"][1])
    # Not asserted: Panther also flags a "Disabled" status, which S3 does not have; Sigma looks for Suspended.
    # JSON, not Python's repr: booleans are true/false, strings double-quoted.
    quoted = one_rule("    sel:\n        requestParameters|contains: '\"enable\":false'\n    condition: sel")
    assert quoted.matches(trail(requestParameters={"enable": False}))


def test_field_reference_to_an_absent_field_matches_nothing() -> None:
    rule = one_rule("    sel:\n        userIdentity.arn|fieldref: requestParameters.userName\n    condition: sel")
    assert rule.matches(trail(userIdentity={"arn": "Bob"}, requestParameters={"userName": "bob"}))
    assert not rule.matches(trail(userIdentity={"arn": "bob"}, requestParameters={}))
    assert not rule.matches(trail(eventName="X"))


def test_a_document_pysigma_rejects_costs_only_itself() -> None:
    from cloudsoc.detect.sigma import load_sigma

    text = (
        "title: fine\nlogsource: {product: aws}\ndetection:\n    sel: {eventName: A}\n    condition: sel\n---\n"
        "title: broken\ncorrelation: {type: value_count, rules: x, timespan: 5m, condition: {gte: 2}}\n"
    )
    rules, skipped = load_sigma(text, "two.yml")
    assert [r.title for r in rules] == ["fine"]
    assert [(s.title, s.reason) for s in skipped] == [
        ("broken", "SigmaCorrelationRuleError: Value count correlation rule without field reference")
    ]
    rules, skipped = load_sigma("title: [unclosed", "bad.yml")
    assert rules == [] and skipped[0].reason.startswith("unreadable:")


def test_alternatives_on_one_field_and_the_fast_string_paths_keep_sigma_semantics() -> None:
    names = one_rule("    sel:\n        eventName: [StopLogging, DeleteTrail]\n    condition: sel")
    assert names.event_names == frozenset({"stoplogging", "deletetrail"})
    assert names.explain(trail(eventName="deleteTRAIL")) == [("aws.cloudtrail.eventName", "deleteTRAIL")]
    assert not names.matches(trail(eventName="StartLogging"))
    prefixes = one_rule("    sel:\n        eventName|startswith: [Describe, List]\n    condition: sel")
    assert prefixes.event_names is None
    assert prefixes.explain(trail(eventName="listBuckets")) == [("aws.cloudtrail.eventName", "listBuckets")]
    assert not prefixes.matches(trail(eventName="GetObject"))
    # A list in the document: any element, whatever the case.
    tags = one_rule("    sel:\n        tags: [a, b]\n    condition: sel")
    assert tags.explain(trail(tags=["x", "B"])) == [("aws.cloudtrail.tags", "B")]
    # Non-ASCII values and ? wildcards take the regex, which folds case as Python's re does (Kelvin sign K ~ k).
    assert one_rule("    sel:\n        userAgent|contains: bak\n    condition: sel").matches(
        trail(userAgent="BA\u212a")
    )
    single = one_rule("    sel:\n        eventName: Stop?ogging\n    condition: sel")
    assert single.matches(trail(eventName="stopLogging")) and not single.matches(trail(eventName="StopLoging"))
    # Mixed alternatives: one merged field test, the others as written.
    mixed = one_rule(
        "    sel:\n        - eventName: [A, B]\n        - eventName|endswith: Trail\n        - errorCode: X\n"
        "    condition: sel"
    )
    assert mixed.explain(trail(eventName="StopTrail")) == [("aws.cloudtrail.eventName", "StopTrail")]
    assert mixed.explain(trail(eventName="C", errorCode="x")) == [("aws.cloudtrail.errorCode", "x")]
    assert not mixed.matches(trail(eventName="C"))
    numbers = one_rule("    sel:\n        requestParameters.port: ['22', '3389']\n    condition: sel")
    assert numbers.matches(trail(requestParameters={"port": 3389}))  # a number is matched as its text


def test_actiontrail_rules_read_the_actiontrail_record() -> None:
    from cloudsoc.detect.engine import RuleIndex
    from cloudsoc.detect.sigma import load_sigma
    from cloudsoc.parsers.aliyun_actiontrail import AliyunActiontrail

    cases = orjson.loads((DATA / "streamalert-aliyun-actiontrail" / "aliyun_actiontrail.json").read_bytes())
    parser = AliyunActiontrail()
    docs = [parser.parse(case["data"]) for case in cases]
    text = (
        "title: RAM admin policy attached\nid: 00000000-0000-0000-0000-00000000a11b\n"
        "logsource: {product: alibaba, service: actiontrail}\nlevel: high\ndetection:\n"
        "    selection:\n        eventName: AttachPolicyToUser\n"
        "        requestParameters.PolicyName: AdministratorAccess\n"
        "    root:\n        userIdentity.type: root-account\n    condition: selection and root\n"
    )
    (rule,), skipped = load_sigma(text, "aliyun.yml")
    assert skipped == []
    assert rule.datasets == frozenset({"aliyun.actiontrail"})
    assert rule.actions == frozenset({"attachpolicytouser"})
    (match,) = RuleIndex([rule]).select(docs)
    assert match.doc is docs[0]
    assert match.hits == [
        ("aliyun.actiontrail.eventName", "AttachPolicyToUser"),
        ("aliyun.actiontrail.requestParameters.PolicyName", "AdministratorAccess"),
        ("aliyun.actiontrail.userIdentity.type", "root-account"),
    ]
    # The same rule written for CloudTrail does not see ActionTrail events.
    (aws,), _ = load_sigma(text.replace("product: alibaba, service: actiontrail", "product: aws"), "aws.yml")
    assert RuleIndex([aws]).select(docs) == []
