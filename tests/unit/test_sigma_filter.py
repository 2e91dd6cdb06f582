"""The generated filter of each Sigma rule decides exactly as the rule's closures (the reference) do.

On every CloudTrail record of ../shared/data that our parser accepts, on variants of them made to leave the
filter's inline paths (upper case, non-ASCII look-alikes, lists where a value was, a string where an object
was), and for every modifier this compiler supports."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import pytest

from cloudsoc.demo.generator import DemoGenerator, DemoOptions
from cloudsoc.detect.sigma import CompiledRule, SigmaRuleSet, _searchable
from cloudsoc.parsers.aws_cloudtrail import AwsCloudtrail
from tests.differential.test_sigma_sqlite import SIGMA_DIR, cloudtrail_documents
from tests.unit.test_sigma import one_rule, trail


@cache
def sigmahq() -> list[CompiledRule]:
    rules = SigmaRuleSet.from_paths(sorted(SIGMA_DIR.glob("*.yml")))
    assert len(rules) == 57 and not rules.skipped
    return list(rules)


def _strings(node: Any, change: Callable[[str], Any]) -> Any:
    if isinstance(node, dict):
        return {k: _strings(v, change) for k, v in node.items()}
    if isinstance(node, list):
        return [_strings(v, change) for v in node]
    return change(node) if isinstance(node, str) else node


def variants(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The document, and the same record with its values moved off the filter's inline paths."""
    yield doc
    yield {**doc, "aws": "not an object"}
    yield {k: v for k, v in doc.items() if k != "aws"}
    record = doc["aws"]["cloudtrail"]
    if not isinstance(record, dict):
        return
    for change in (str.upper, lambda s: s.replace("k", "\u212a"), lambda s: s.replace("s", "\u017f")):
        yield {**doc, "aws": {"cloudtrail": _strings(record, change)}}
    for key in list(record)[:12]:
        listed = copy.copy(record)
        listed[key] = [record[key], "other"]
        yield {**doc, "aws": {"cloudtrail": listed}}
        flat = copy.copy(record)
        flat[key] = "a string" if isinstance(record[key], dict) else {"nested": record[key]}
        yield {**doc, "aws": {"cloudtrail": flat}}


@cache
def demo_documents() -> tuple[dict[str, Any], ...]:
    """Two days of the demo company's CloudTrail: the SDK, console and service records of a real account."""
    items, _ = DemoGenerator(DemoOptions(seed=5, days=2, min_events=0)).records()
    parser = AwsCloudtrail()
    return tuple(parser.parse(record) for _, _, provider, _, record in items if provider == "aws_cloudtrail")


def test_sigmahq_filters_decide_as_the_closures_on_the_shared_records() -> None:
    docs = cloudtrail_documents() + demo_documents()
    assert len(docs) > 5000
    fired = 0
    for doc in docs:
        for rule in sigmahq():
            verdict = rule.predicate(doc, [])
            assert rule.filter(doc) is verdict, (rule.title, doc["event"].get("id"))
            fired += verdict
    assert fired > 50  # the records do fire rules: both answers are exercised


def test_sigmahq_filters_decide_as_the_closures_off_the_inline_paths() -> None:
    checked = 0
    for doc in cloudtrail_documents()[::7]:
        for variant in variants(doc):
            for rule in sigmahq():
                assert rule.filter(variant) is rule.predicate(variant, []), rule.title
                checked += 1
    assert checked > 50_000


MODIFIERS = [
    "eventName: StopLogging",
    "eventName|cased: StopLogging",
    "eventName:\n            - StopLogging\n            - DeleteTrail",
    "userAgent|contains:\n            - aws-cli\n            - Boto3",
    "userAgent|contains|all:\n            - aws\n            - cli",
    "userAgent|startswith:\n            - aws-cli\n            - Boto",
    "userAgent|endswith:\n            - '.amazonaws.com'\n            - Botocore/1.34.131",
    "eventSource|endswith: amazonaws.com",
    "eventName|startswith: 'Describe'",
    "eventName: 'Describe*s'",
    "eventName: 'Get?ucket*'",
    "userIdentity.arn|re: '.+:assumed-role/.+'",
    "userIdentity.arn|re|i: '^arn:aws:iam::\\d+:ROOT$'",
    "sourceIPAddress|cidr: '10.0.0.0/8'",
    "errorCode|exists: true",
    "errorCode|exists: false",
    "errorCode: null",
    "requestParameters|contains: 'true'",
    "readOnly: true",
    "eventVersion|gt: 1.05",
    "userIdentity.userName|fieldref: userIdentity.principalId",
    "resources.ARN|contains: 'bucket'",
    "- 'AssumeRole'",
]


@pytest.mark.parametrize("selection", MODIFIERS)
@pytest.mark.parametrize("condition", ["sel", "not sel", "sel and not other", "sel or other", "1 of sel*"])
def test_filters_of_every_modifier_decide_as_the_closures(selection: str, condition: str) -> None:
    # A plain list under a search identifier is keywords: free text anywhere in the record.
    body = selection if selection.startswith("- ") else f"    {selection}"
    detection = f"    sel:\n    {body}\n    other:\n        userIdentity.type: Root\n    condition: {condition}"
    rule = one_rule(detection)
    samples = [
        trail(eventName="StopLogging", userAgent="aws-cli/2.15 Python/3.11", eventVersion="1.08"),
        trail(eventName="stoplogging", readOnly=True, errorCode=None, sourceIPAddress="10.1.2.3"),
        trail(eventName="StopLogging", userAgent=["Boto3/1.34", "x"], resources=[{"ARN": "arn:bucket"}]),
        trail(userIdentity={"type": "Root", "userName": "a", "principalId": "A", "arn": "arn:aws:iam::1:root"}),
        trail(userIdentity="root", requestParameters={"enabled": True}, eventVersion=1.1),
        trail(eventName="\u212aillSwitch", userAgent="\u212a aws-cli"),
        trail(eventName="DescribeInstances", eventSource="ec2.amazonaws.com", userAgent="x.amazonaws.com"),
        trail(eventName="GetBucketAcl", userIdentity={"arn": "arn:aws:sts::1:assumed-role/r/s"}),
        trail(eventName="AssumeRole", userIdentity={"type": "Root"}),
        {"event": {}, "aws": {"cloudtrail": None}},
    ]
    fired = 0
    for sample in samples:
        for variant in variants(sample):
            verdict = rule.predicate(variant, [])
            assert rule.filter(variant) is verdict, (detection, variant)
            fired += verdict
    assert fired > 0 or condition == "sel and not other"


@pytest.mark.parametrize(
    ("pattern", "searched_as"),
    [
        (".+:assumed-role/aws:.+", ".:assumed-role/aws:."),
        (".*foo", "foo"),
        ("foo.*", "foo"),
        (".*?a", ".*?a"),
        ("a\\.*", "a\\.*"),
        ("^.*a", "^.*a"),
        ("(?i).*a", "(?i).*a"),
    ],
)
def test_leading_and_trailing_wildcards_of_a_searched_regex_are_dropped(pattern: str, searched_as: str) -> None:
    assert _searchable(pattern) == searched_as
