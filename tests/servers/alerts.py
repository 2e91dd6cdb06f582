"""Real alerts for output tests: real events from ../shared/data, parsed by our parsers, raised by the real
RuleIndex and Detector with small rules (the rule pack is tested elsewhere)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import orjson
import yaml

from cloudsoc.detect.alert import Alert, Severity
from cloudsoc.detect.builtin import builtin_rules
from cloudsoc.detect.engine import Detector, RuleIndex
from cloudsoc.detect.rule import Finding, Hit, Match, Rule
from cloudsoc.parsers.aliyun_actiontrail import AliyunActiontrail
from cloudsoc.parsers.aws_cloudtrail import AwsCloudtrail

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CLOUDAUDIT = SHARED / "cloudaudit"


class _Field(Rule):
    """Fires on events whose (dotted) field equals a value."""

    def __init__(self, path: str, value: object, **meta: Any) -> None:
        super().__init__(**meta)
        self.path, self.value = path.split("."), value

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        node: Any = doc
        for key in self.path:
            node = node.get(key) if isinstance(node, Mapping) else None
        if node != self.value:
            return None
        hits: list[Hit] = [("event.action", doc["event"]["action"])]
        return hits if self.path == ["event", "action"] else [*hits, (".".join(self.path), node)]


class _Burst(Rule):
    """Fires once when one access key made ``threshold`` matching calls (a correlation-style alert)."""

    kind: ClassVar[str] = "burst"

    def __init__(self, threshold: int, **meta: Any) -> None:
        super().__init__(**meta)
        self.threshold = threshold
        self.seen: dict[str, list[Match]] = {}

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        action = str(doc["event"]["action"])
        key = doc.get("cloudsoc", {}).get("access_key_id")
        return (
            [("event.action", action), ("cloudsoc.access_key_id", key)]
            if action.startswith("Describe") and key
            else None
        )

    def observe(self, match: Match) -> list[Finding]:
        key = str(dict(match.hits)["cloudsoc.access_key_id"])
        matches = self.seen.setdefault(key, [])
        matches.append(match)
        if len(matches) != self.threshold:
            return []
        return [
            Finding(matches=list(matches), group_key=key, count=len(matches), text=f"{len(matches)} Describe calls")
        ]


def _raise(rule: Rule, docs: list[dict[str, Any]]) -> Alert:
    index = RuleIndex([rule])
    (alert,) = Detector(index).process(index.select(docs))
    return alert


def root_login() -> Alert:
    """CRITICAL, one event: Panther's "Successful Root Login" CloudTrail sample."""
    spec = yaml.safe_load((CLOUDAUDIT / "panther-cloudtrail-rules" / "aws_console_root_login.yml").read_text())
    docs = [AwsCloudtrail().parse(test["Log"]) for test in spec["Tests"]]
    rule = _Field(
        "aws.cloudtrail.userIdentity.type",
        "Root",
        id="root_account_used.aws",
        title="Root account used",
        severity=Severity.CRITICAL,
        tags=("attack.privilege_escalation", "attack.t1078.004"),
        description="The root user can do anything in the account and cannot be limited by IAM policies.",
        response="Confirm with the account owner; if unexpected, reset the root password and MFA.",
        datasets=frozenset({"aws.cloudtrail"}),
        actions=frozenset({"consolelogin"}),
    )
    return _raise(rule, docs)


def aliyun_admin_granted() -> Alert:
    """HIGH, one event: StreamAlert's ActionTrail AttachPolicyToUser(AdministratorAccess) by the main account,
    with a rule written in Chinese."""
    cases = orjson.loads((CLOUDAUDIT / "streamalert-aliyun-actiontrail" / "aliyun_actiontrail.json").read_bytes())
    docs = [AliyunActiontrail().parse(case["data"]) for case in cases]
    rule = _Field(
        "event.action",
        "AttachPolicyToUser",
        id="admin_privilege_granted.aliyun",
        title="授予了管理员权限",
        severity=Severity.HIGH,
        description="RAM 用户被授予 AdministratorAccess，可完全控制账号内所有资源。",
        response="确认授权是否经过审批；如非预期，立即解除该策略并轮换该用户的 AccessKey。",
        datasets=frozenset({"aliyun.actiontrail"}),
    )
    return _raise(rule, docs)


def discovery_burst(threshold: int = 30) -> Alert:
    """MEDIUM, many events, with a group key: the OTRF EC2-proxy exfiltration scenario's Describe* burst."""
    path = CLOUDAUDIT / "otrf-security-datasets" / "ec2_proxy_s3_exfiltration_2020-09-14011940.json"
    docs = [AwsCloudtrail().parse(orjson.loads(line)) for line in path.read_bytes().splitlines() if line.strip()]
    docs.sort(key=lambda d: d["@timestamp"])
    rule = _Burst(
        threshold,
        id="discovery_burst.aws",
        title="Discovery burst from one access key",
        severity=Severity.MEDIUM,
        datasets=frozenset({"aws.cloudtrail"}),
    )
    return _raise(rule, docs)


def builtin_admin_granted() -> Alert:
    """HIGH, one event: the built-in pack's ``admin_privilege_granted.aliyun`` (English and Chinese texts) on
    StreamAlert's ActionTrail AttachPolicyToUser(AdministratorAccess)."""
    cases = orjson.loads((CLOUDAUDIT / "streamalert-aliyun-actiontrail" / "aliyun_actiontrail.json").read_bytes())
    docs = [AliyunActiontrail().parse(case["data"]) for case in cases]
    (rule,) = [r for r in builtin_rules() if r.id == "admin_privilege_granted.aliyun"]
    return _raise(rule, docs)
