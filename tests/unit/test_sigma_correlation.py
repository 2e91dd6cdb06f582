"""Sigma correlation rules in the engine, on real CloudTrail records (Panther's rule tests, OTRF's breach export).

Records are parsed by our parser; where a scenario needs a sequence the data does not have (Panther's IAM records
all carry the same second), real records are re-timed and re-targeted, and nothing else about them changes.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.correlation import MEMBER_HIT, SigmaCorrelation
from cloudsoc.detect.engine import Detector, RuleIndex, event_time
from cloudsoc.detect.rule import Finding, Rule
from cloudsoc.detect.sigma import SigmaDetection, load_sigma
from cloudsoc.parsers.aws_cloudtrail import AwsCloudtrail

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cloudaudit"
PANTHER = DATA / "panther-cloudtrail-rules"
OTRF = DATA / "otrf-security-datasets" / "ec2_proxy_s3_exfiltration_2020-09-14011940.json"
PARSER = AwsCloudtrail()
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

BASE = """
title: IAM user created
name: create_user
logsource: {product: aws, service: cloudtrail}
detection:
    selection: {eventSource: iam.amazonaws.com, eventName: CreateUser}
    condition: selection
---
title: Access key created
name: create_key
logsource: {product: aws, service: cloudtrail}
detection:
    selection: {eventSource: iam.amazonaws.com, eventName: CreateAccessKey}
    condition: selection
---
title: Policy attached to a user
name: attach_policy
logsource: {product: aws, service: cloudtrail}
detection:
    selection: {eventSource: iam.amazonaws.com, eventName: AttachUserPolicy}
    condition: selection
"""


def correlation(body: str, *, base: str = BASE, title: str = "c") -> str:
    return f"{base}\n---\ntitle: {title}\nid: 00000000-0000-0000-0000-0000000000cc\nlevel: high\ncorrelation:\n{body}"


def load(text: str) -> list[Rule]:
    rules, skipped = load_sigma(text, "inline.yml")
    assert skipped == []
    return rules


def the_correlation(rules: list[Rule]) -> SigmaCorrelation:
    (found,) = (r for r in rules if isinstance(r, SigmaCorrelation))
    return found


@cache
def panther_records() -> dict[str, dict[str, Any]]:
    """``<file>#<test name>`` → Panther's raw test record."""
    records: dict[str, dict[str, Any]] = {}
    for path in sorted(PANTHER.glob("aws_iam_*.yml")) + sorted(PANTHER.glob("aws_*denied*.yml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")).get("Tests") or []:
            if isinstance(case.get("Log"), dict):
                records[f"{path.name}#{case['Name']}"] = case["Log"]
    return records


def iam_event(kind: str, target: str, at: datetime) -> dict[str, Any]:
    """A real Panther IAM record of ``kind``, about user ``target``, at ``at``."""
    name = {
        "create_user": "aws_iam_create_user.yml#IAM User Created",
        "create_key": "aws_iam_user_key_created.yml#user1 create keys for user2",
        "attach_policy": "aws_iam_attach_admin_user_policy.yml#IAM User Policy Attached with Administrator Access",
    }[kind]
    record = copy.deepcopy(panther_records()[name])
    record["requestParameters"]["userName"] = target
    record["eventTime"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    record["eventID"] = f"{kind}-{target}-{at.timestamp():.0f}"
    return PARSER.parse(record)


@cache
def otrf_documents() -> tuple[dict[str, Any], ...]:
    lines = [line for line in OTRF.read_bytes().splitlines() if line.strip()]
    return tuple(PARSER.parse(orjson.loads(line)) for line in lines)


def run(rules: list[Rule], docs: list[dict[str, Any]], batches: int = 1) -> list[Any]:
    """Alerts of a Detector fed ``docs`` in the order given, split into ``batches`` batches."""
    index = RuleIndex(rules)
    detector = Detector(index)
    alerts = []
    size = max(1, -(-len(docs) // batches))
    for start in range(0, len(docs), size):
        alerts.extend(detector.process(index.select(docs[start : start + size])))
    return alerts


def findings(rule: SigmaCorrelation, docs: list[dict[str, Any]]) -> list[Finding]:
    index = RuleIndex([rule])
    return [f for m in index.select(docs) for f in rule.observe(m)]


IAM_SEQUENCE = "    type: temporal_ordered\n    rules: [create_user, create_key, attach_policy]\n"
IAM_SEQUENCE += "    group-by: [requestParameters.userName]\n    timespan: 1h\n"


# 1. Loading: metadata, index keys, generate.


def test_load_sigma_makes_engine_rules_with_metadata() -> None:
    text = correlation(IAM_SEQUENCE).replace(
        "level: high\n", "level: high\ntags: [attack.persistence]\nfalsepositives: [Onboarding scripts]\n"
    )
    rules = load(text)
    assert [type(r).__name__ for r in rules] == ["SigmaDetection"] * 3 + ["SigmaCorrelation"]
    seq = the_correlation(rules)
    assert seq.kind == "sigma_correlation"
    assert (seq.id, seq.title, seq.severity, seq.tags) == (
        "00000000-0000-0000-0000-0000000000cc",
        "c",
        Severity.HIGH,
        ("attack.persistence",),
    )
    assert seq.response == "Known false positives: Onboarding scripts."
    assert seq.group_by == ("requestParameters.userName",)
    # It meets only the events its rules can match.
    assert seq.datasets == frozenset({"aws.cloudtrail"})
    assert seq.actions == frozenset({"createuser", "createaccesskey", "attachuserpolicy"})
    # Rules a correlation refers to feed it but raise no alerts of their own (no `generate: true`).
    assert [r.enabled for r in rules] == [False, False, False, True]
    assert {r.id for r in rules if isinstance(r, SigmaDetection)} == {"create_user", "create_key", "attach_policy"}


def test_generate_true_keeps_the_rules_alerting() -> None:
    rules = load(correlation(IAM_SEQUENCE + "    generate: true\n"))
    assert all(r.enabled for r in rules)
    doc = iam_event("create_user", "mallory", T0)
    assert {a.rule_id for a in run(rules, [doc])} == {"create_user"}


def test_unusable_correlations_are_skipped_with_the_reason() -> None:
    bad = {
        "unknown rule": "    type: event_count\n    rules: nope\n    timespan: 5m\n    condition: {gte: 2}\n",
        "extended": "    type: temporal\n    rules: [create_user, create_key]\n    timespan: 5m\n"
        "    condition: create_user and not create_key\n",
        "no field": "    type: value_count\n    rules: create_user\n    timespan: 5m\n    condition: {gte: 2}\n",
        "no percentile": "    type: value_percentile\n    rules: create_user\n    timespan: 5m\n"
        "    condition: {gte: 2, field: eventVersion}\n",
    }
    reasons = {}
    for label, body in bad.items():
        rules, skipped = load_sigma(correlation(body), "bad.yml")
        assert not any(isinstance(r, SigmaCorrelation) for r in rules), label
        (skip,) = skipped
        assert skip.source == "bad.yml" and skip.title == "c"
        reasons[label] = skip.reason
    assert "nope" in reasons["unknown rule"]
    assert "extended" in reasons["extended"]
    assert "without field reference" in reasons["no field"]
    assert "percentile" in reasons["no percentile"]
    chained = correlation(IAM_SEQUENCE) + (
        "\n---\ntitle: chained\ncorrelation:\n    type: event_count\n"
        "    rules: 00000000-0000-0000-0000-0000000000cc\n    timespan: 1d\n    condition: {gte: 2}\n"
    )
    rules, skipped = load_sigma(chained, "chained.yml")
    assert [s.reason for s in skipped] == [
        "refers to correlation '00000000-0000-0000-0000-0000000000cc': correlations of correlations are not supported"
    ]
    assert sum(isinstance(r, SigmaCorrelation) for r in rules) == 1


# 2. temporal_ordered: CreateUser → CreateAccessKey → AttachUserPolicy for one user.


def test_user_key_policy_sequence_fires_once_with_its_events() -> None:
    rules = load(correlation(IAM_SEQUENCE))
    docs = [
        iam_event("create_user", "mallory", T0),
        iam_event("create_key", "alice", T0 + timedelta(minutes=1)),  # another user: not part of it
        iam_event("create_key", "mallory", T0 + timedelta(minutes=5)),
        iam_event("attach_policy", "mallory", T0 + timedelta(minutes=20)),
    ]
    (alert,) = run(rules, docs)
    assert alert.rule_id == "00000000-0000-0000-0000-0000000000cc"
    assert alert.rule_kind == "sigma_correlation"
    assert alert.group_key == "mallory"
    assert alert.count == 3
    assert alert.event_ids == [
        "create_user-mallory-1709294400",
        "create_key-mallory-1709294700",
        docs[3]["event"]["id"],
    ]
    assert [(m.field, m.value) for m in alert.matched] == [
        ("requestParameters.userName", "mallory"),
        ("temporal_ordered", 3),
    ]
    assert alert.first_time == "2024-03-01T12:00:00+00:00"
    assert alert.last_time == "2024-03-01T12:20:00+00:00"
    assert alert.text == "temporal_ordered = 3 (gte 3) within 1h for requestParameters.userName=mallory"


@pytest.mark.parametrize(
    ("label", "steps"),
    [
        ("wrong order", [("create_key", 0), ("create_user", 5), ("attach_policy", 10)]),
        ("too slow", [("create_user", 0), ("create_key", 30), ("attach_policy", 61)]),
        ("a step missing", [("create_user", 0), ("attach_policy", 10)]),
        ("same second", [("create_user", 0), ("create_key", 0), ("attach_policy", 0)]),
    ],
)
def test_user_key_policy_sequence_does_not_fire(label: str, steps: list[tuple[str, int]]) -> None:
    rules = load(correlation(IAM_SEQUENCE))
    docs = [iam_event(kind, "mallory", T0 + timedelta(minutes=minutes)) for kind, minutes in steps]
    assert run(rules, docs) == [], label


def test_sequence_found_when_events_arrive_out_of_order() -> None:
    docs = [
        iam_event("attach_policy", "mallory", T0 + timedelta(minutes=20)),
        iam_event("create_user", "mallory", T0),
        iam_event("create_key", "mallory", T0 + timedelta(minutes=5)),
    ]
    for batches in (1, 3):  # late within one batch, and across batches
        (alert,) = run(load(correlation(IAM_SEQUENCE)), docs, batches=batches)
        assert alert.count == 3
        assert alert.first_time == "2024-03-01T12:00:00+00:00"


def test_state_survives_a_restart_and_reset_forgets() -> None:
    first = the_correlation(load(correlation(IAM_SEQUENCE)))
    head = [iam_event("create_user", "mallory", T0), iam_event("create_key", "mallory", T0 + timedelta(minutes=5))]
    tail = [iam_event("attach_policy", "mallory", T0 + timedelta(minutes=20))]
    assert findings(first, head) == []
    state = first.snapshot()
    assert state is not None
    second = the_correlation(load(correlation(IAM_SEQUENCE)))
    second.restore(state)
    (finding,) = findings(second, tail)
    assert [m.event_id for m in finding.matches] == [d["event"]["id"] for d in head + tail]
    assert finding.matches[0].doc["aws"]["cloudtrail"]["eventName"] == "CreateUser"
    second.restore(state)
    second.reset()
    assert second.snapshot() is None
    assert findings(second, tail) == []


# 3. event_count, value_count, temporal and aliases on real events.


DENIED = """
title: denied
name: denied
logsource: {product: aws, service: cloudtrail}
detection:
    selection: {errorCode: AccessDenied}
    condition: selection
"""


def denied_burst(condition: str, timespan: str = "5m") -> SigmaCorrelation:
    body = f"    type: event_count\n    rules: denied\n    group-by: [userIdentity.arn]\n    timespan: {timespan}\n"
    return the_correlation(load(correlation(body + f"    condition: {condition}\n", base=DENIED)))


def denied_events() -> list[dict[str, Any]]:
    """Panther's AccessDenied records, in time order (testuser: 7 in one second; developer: 10 over days)."""
    return list(_denied_events())


@cache
def _denied_events() -> tuple[dict[str, Any], ...]:
    docs = []
    for path in sorted(PANTHER.glob("aws_*.yml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")).get("Tests") or []:
            log = case.get("Log")
            if isinstance(log, dict) and log.get("errorCode") == "AccessDenied" and "eventTime" in log:
                docs.append(PARSER.parse(log))
    return tuple(sorted(docs, key=event_time))


def test_denied_burst_fires_per_identity_and_uses_up_its_window() -> None:
    rule = denied_burst("{gte: 5}")
    got = findings(rule, denied_events())
    assert [(f.group_key, f.count, len(f.matches)) for f in got] == [
        ("arn:aws:iam::123456789012:user/tester", 5, 5),
        ("arn:aws:iam::111111111111:user/testuser", 5, 5),  # 7 events: 5 fire, the other 2 start a new window
    ]
    # The developer's ten denials are spread over four days: five within a day twice, the second time at the
    # fifth denial after the first five were used up.
    developer = [
        f.matches[-1].time.isoformat()
        for f in findings(denied_burst("{gte: 5}", "1d"), denied_events())
        if f.group_key.endswith("user/developer")
    ]
    assert developer == ["2024-01-16T10:00:00+00:00", "2024-01-18T06:15:00+00:00"]


@pytest.mark.parametrize(
    ("condition", "fires_at"),
    [
        ("{gt: 2}", [3]),
        ("{gte: 2}", [2, 4]),
        ("{eq: 3}", [3]),
        ("{lt: 2}", [1, 2, 3, 4]),  # evaluated at each event, as the SQL backend does: every event fires
        ("{lte: 0}", []),
        ("{neq: 1}", [2, 4]),
    ],
)
def test_condition_operators(condition: str, fires_at: list[int]) -> None:
    rule = denied_burst(condition, "1h")
    record = panther_records()["aws_iam_user_recon_denied.yml#Unauthorized API Call"]
    docs = []
    for n in range(1, 5):
        event = copy.deepcopy(record)
        event["eventTime"] = (T0 + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
        event["eventID"] = str(n)
        docs.append(PARSER.parse(event))
    assert [int(f.matches[-1].event_id) for f in findings(rule, docs)] == fires_at


def test_distinct_discovery_calls_per_identity() -> None:
    body = (
        "    type: value_count\n    rules: recon\n    group-by: [userIdentity.arn]\n    timespan: 1m\n"
        "    condition: {gte: 10, field: eventName}\n"
    )
    base = (
        "title: recon\nname: recon\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n"
        "    selection:\n        eventName|startswith: [Describe, List, Get]\n    condition: selection\n"
    )
    rule = the_correlation(load(correlation(body, base=base)))
    assert rule.actions is None  # a prefix does not pin eventName
    got = findings(rule, sorted(otrf_documents(), key=event_time))
    assert {f.group_key for f in got} == {"arn:aws:iam::123456789123:user/pedro"}
    first = got[0]
    assert first.count == 10
    assert len({m.doc["event"]["action"] for m in first.matches}) == 10
    assert first.matched[-1].field == "value_count(eventName)"


def test_aliases_join_a_role_assumption_to_the_role_session_using_it() -> None:
    base = """
title: assumed
name: assumed
logsource: {product: aws, service: cloudtrail}
detection:
    selection: {eventName: AssumeRole, userIdentity.type: AWSService}
    condition: selection
---
title: used
name: used
logsource: {product: aws, service: cloudtrail}
detection:
    selection: {eventSource: s3.amazonaws.com, userIdentity.type: AssumedRole}
    condition: selection
"""
    body = (
        "    type: temporal\n    rules: [assumed, used]\n    group-by: [role]\n    timespan: 15m\n"
        "    aliases:\n        role:\n            assumed: requestParameters.roleArn\n"
        "            used: userIdentity.sessionContext.sessionIssuer.arn\n"
    )
    rule = the_correlation(load(correlation(body, base=base)))
    docs = list(otrf_documents())
    (finding,) = findings(rule, sorted(docs, key=event_time))
    assert finding.group_key == "arn:aws:iam::123456789123:role/mordornginxstack-bankingwafrole-9s3e0uae1mm0"
    assert finding.matched[0].field == "role"
    # Assumed at 00:48:30, first used for S3 at 01:00:04: both within the window ending at the first use.
    assert [m.time.strftime("%H:%M:%S") for m in finding.matches][:3] == ["00:48:30"] * 3
    assert finding.matches[-1].time.strftime("%H:%M:%S") == "01:00:04"
    # The selector marks which rule accepted the event, then that rule's own explanation.
    hits = rule.select(finding.matches[-1].doc)
    assert hits is not None and hits[0] == (MEMBER_HIT, "used")


def test_events_without_a_group_value_are_left_out() -> None:
    rule = denied_burst("{gte: 1}")
    doc = denied_events()[0]
    anonymous = copy.deepcopy(doc)
    del anonymous["aws"]["cloudtrail"]["userIdentity"]["arn"]
    assert rule.select(anonymous) is not None
    assert findings(rule, [anonymous]) == []
    assert len(findings(rule, [doc])) == 1


def test_numeric_metrics() -> None:
    base = (
        "title: sized\nname: sized\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n"
        "    selection: {eventName: PutObject}\n    condition: selection\n"
    )
    record = panther_records()["aws_iam_user_recon_denied.yml#Unauthorized API Call"]
    docs = []
    for n, size in enumerate([10, "30", 20, "n/a", 1000], 1):
        event = copy.deepcopy(record)
        event.update(eventName="PutObject", eventID=str(n), additionalEventData={"bytesTransferredIn": size})
        event["eventTime"] = (T0 + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
        docs.append(PARSER.parse(event))
    # Sizes 10, "30", 20, "n/a", 1000: a JSON-number string counts, other text does not (as in SQL).
    # Each firing uses up the window, so the next one only sees later events.
    expected = {
        "value_sum": ("{gte: 60}", [("3", 60.0), ("5", 1000.0)]),
        "value_avg": ("{gt: 100}", [("5", 265.0)]),
        "value_median": ("{gte: 20}", [("2", 20.0), ("3", 20.0), ("5", 1000.0)]),
        "value_percentile": ("{gte: 500, percentile: 90}", [("5", 709.0)]),  # 30 x 0.3 + 1000 x 0.7
    }
    for kind, (condition, fired) in expected.items():
        condition = condition.replace("}", ", field: additionalEventData.bytesTransferredIn}")
        body = f"    type: {kind}\n    rules: sized\n    timespan: 1h\n    condition: {condition}\n"
        rule = the_correlation(load(correlation(body, base=base)))
        got = findings(rule, docs)
        assert [f.matches[-1].event_id for f in got] == [at for at, _ in fired], kind
        assert [f.matched[-1].value for f in got] == pytest.approx([metric for _, metric in fired]), kind
        assert {f.group_key for f in got} == {""}
        assert got[0].matched[-1].field == f"{kind}(additionalEventData.bytesTransferredIn)"


def test_quiet_groups_are_forgotten() -> None:
    rule = denied_burst("{gte: 50}")
    docs = denied_events()
    findings(rule, docs)
    assert rule.snapshot() is not None
    rule.tick(event_time(docs[-1]) + timedelta(days=1))
    assert rule.snapshot() is None


def test_a_correlation_across_clouds_reads_each_rule_in_its_own_record() -> None:
    from cloudsoc.parsers.aliyun_actiontrail import AliyunActiontrail

    cases = orjson.loads((DATA / "streamalert-aliyun-actiontrail" / "aliyun_actiontrail.json").read_bytes())
    aliyun = AliyunActiontrail().parse(cases[0]["data"])  # root-account attaches AdministratorAccess
    ip = aliyun["aliyun"]["actiontrail"]["sourceIpAddress"]
    record = copy.deepcopy(panther_records()["aws_iam_create_user.yml#IAM User Created"])
    record.update(sourceIPAddress=ip, eventTime="2018-07-19T16:20:00Z", userIdentity={"type": "Root"})
    aws = PARSER.parse(record)
    base = """
title: AWS call by a person (not by an AWS service)
name: aws_person
logsource: {product: aws, service: cloudtrail}
detection:
    service: {userIdentity.type: AWSService}
    condition: not service
---
title: Alibaba root account
name: aliyun_root
logsource: {product: alibaba, service: actiontrail}
detection:
    selection: {userIdentity.type: root-account}
    condition: selection
"""
    body = (
        "    type: temporal\n    rules: [aws_person, aliyun_root]\n    group-by: [ip]\n    timespan: 1h\n"
        "    aliases:\n        ip:\n            aws_person: sourceIPAddress\n            aliyun_root: sourceIpAddress\n"
    )
    rule = the_correlation(load(correlation(body, base=base)))
    assert rule.datasets == frozenset({"aws.cloudtrail", "aliyun.actiontrail"})
    # The AWS rule's `not service` would hold on any ActionTrail event (it has no aws.cloudtrail at all): each
    # rule only sees events of its own source.
    hits = rule.select(aliyun)
    assert hits is not None and [v for f, v in hits if f == MEMBER_HIT] == ["aliyun_root"]
    (finding,) = findings(rule, [aws, aliyun])
    assert finding.group_key == "65.205.72.122"
    assert [m.doc["event"]["dataset"] for m in finding.matches] == ["aws.cloudtrail", "aliyun.actiontrail"]
    late = copy.deepcopy(aws)
    late["@timestamp"] = "2018-07-19T18:00:00.000000Z"
    assert findings(the_correlation(load(correlation(body, base=base))), [aliyun, late]) == []
