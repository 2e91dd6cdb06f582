"""``unusual_compute_launch``: instances launched (or attempted) that a small company does not normally run —
the signature of cryptomining and of attackers building infrastructure on someone else's bill.

Unusual means, precisely, any of:

1. a GPU / accelerator family — AWS ``p*``, ``g*``, ``gr*``, ``inf*``, ``trn*``, ``dl*``, ``f*``, ``vt*``;
   Alibaba Cloud ``ecs.gn*``, ``ecs.vgn*``, ``ecs.sgn*``, ``ecs.ebmgn*``, ``ecs.gi*``, ``ecs.f*``;
2. a very large size: ``16xlarge`` (64 vCPU) or bigger, or bare metal (``metal``, ``ecs.ebm*``);
3. ten or more instances in one call;
4. a region where the account has never launched an instance before — once the account has been watched for
   the learning period (launches by cloud services, e.g. auto scaling, teach the regions but never fire).

Criteria 1–3 count denied attempts too (someone tried); 4 needs a launch that happened.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin.base import BuiltinRule, Detection
from cloudsoc.detect.builtin.trail import Trail, items, source_ip
from cloudsoc.detect.rule import Finding, Hit, Match

META: Final = Detection(
    name="unusual_compute_launch",
    title="Unusual compute launched (GPU, very large, many, or new region)",
    title_zh="异常计算资源创建（GPU/超大规格/批量/新地域）",
    severity=Severity.HIGH,
    tags=("attack.impact", "attack.t1496.001", "attack.t1578.002", "attack.t1535"),
    description=(
        "Instances of a GPU or very large type, many at once, or in a region the account never used were "
        "launched. Leaked cloud keys are turned into cryptominers within hours, usually on the biggest GPU "
        "instances, many at a time, in regions nobody looks at; the first sign is often the bill."
    ),
    response=(
        "Check with the caller. If unexpected, stop and terminate the instances (keep a snapshot for forensics), "
        "disable the caller's keys, and look for other resources created in the same regions."
    ),
    description_zh=(
        "有人创建了 GPU 规格或超大规格的实例、一次性创建了大量实例，或在账号从未用过的地域创建了实例。"
        "泄露的 AccessKey 往往几小时内就会被拿去挖矿：通常是最大的 GPU 实例、批量创建、放在没人关注的地域；"
        "最先暴露问题的，常常是账单。"
    ),
    response_zh=(
        "与调用者确认。如果不符合预期，停止并释放这些实例（AWS 上为终止；先保留快照用于取证），"
        "禁用调用者的 AccessKey，并排查同一地域中是否还创建了其他资源。"
    ),
)

LARGE_MULTIPLIER: Final = 16
MANY_INSTANCES: Final = 10
DAY_SECS: Final = 86400.0
_AWS_GPU: Final = re.compile(r"^(?:p\d|g\d|gr\d|inf\d|trn\d|dl\d|f\d|vt\d)")
_ALIYUN_GPU: Final = re.compile(r"^ecs\.(?:gn|vgn|sgn|ebmgn|gi|f\d)")
_ALIYUN_METAL: Final = re.compile(r"^ecs\.ebm")
_SIZE: Final = re.compile(r"\.(\d+)xlarge$")
_LAUNCHES: Final = {"aws": frozenset({"RunInstances"}), "aliyun": frozenset({"RunInstances", "CreateInstance"})}


def unusual_type(cloud: str, instance_type: str) -> str | None:
    """Why an instance type is unusual (``gpu``, ``large``), or None."""
    itype = instance_type.strip().lower()
    if (_AWS_GPU if cloud == "aws" else _ALIYUN_GPU).match(itype):
        return "gpu"
    if itype.endswith(".metal") or (cloud == "aliyun" and _ALIYUN_METAL.match(itype)):
        return "large"
    size = _SIZE.search(itype)
    if size and int(size.group(1)) >= LARGE_MULTIPLIER:
        return "large"
    return None


def _count(value: object) -> int:
    if type(value) is int:
        return value
    if type(value) is str and value.strip().isdigit():
        return int(value)
    return 1


class UnusualComputeLaunch(BuiltinRule):
    def __init__(self, cloud: str, learning_secs: float = 3 * DAY_SECS) -> None:
        super().__init__(META, cloud, actions=frozenset(a.lower() for a in _LAUNCHES[cloud]))
        self.learning_secs = learning_secs
        # account → [first launch seen (epoch s), regions launched in]
        self._regions: dict[str, list[Any]] = {}

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        trail = self.trail
        assert trail is not None
        params = trail.params(doc)
        itype, count = _launch(trail, params)
        cloud = doc.get("cloud")
        region = cloud.get("region") if type(cloud) is dict else None
        return [
            ("event.action", doc["event"].get("action")),
            ("instance_type", itype),
            ("instance_count", count),
            ("cloud.region", region),
            ("user.name", trail.caller(doc)),
            ("source.ip", source_ip(doc)),
            ("service", trail.service_actor(doc)),
            ("event.outcome", doc["event"].get("outcome")),
        ]

    def observe(self, match: Match) -> list[Finding]:
        hits = dict(match.hits)
        assert self.trail is not None
        why: list[str] = []
        succeeded = hits.get("event.outcome") == "success"
        by_service = hits.get("service") is True
        region = hits.get("cloud.region")
        account = self.trail.account(match.doc)
        fresh = succeeded and type(region) is str and self._new_region(account, region, match.time.timestamp())
        if fresh and not by_service:
            why.append(f"first launch in region {region}")
        if not by_service:
            itype = hits.get("instance_type")
            kind = unusual_type(self.trail.cloud, itype) if type(itype) is str else None
            if kind is not None:
                why.append(f"{kind} instance type {itype}")
            count = hits.get("instance_count")
            if type(count) is int and count >= MANY_INSTANCES:
                why.append(f"{count} instances in one call")
        if not why:
            return []
        finding = self.finding(match, text=f"{hits.get('user.name')} launched compute: {'; '.join(why)}")
        finding.matched = [m for m in finding.matched if m.field != "service"]
        return [finding]

    def _new_region(self, account: str, region: str, at: float) -> bool:
        entry = self._regions.get(account)
        if entry is None:
            self._regions[account] = [at, [region]]
            return False
        first, regions = entry
        if region in regions:
            return False
        regions.append(region)
        return bool(at - first >= self.learning_secs)

    def snapshot(self) -> bytes | None:
        return orjson.dumps(self._regions)

    def restore(self, state: bytes) -> None:
        self._regions = orjson.loads(state)

    def reset(self) -> None:
        self._regions.clear()


def _launch(trail: Trail, params: Mapping[str, Any]) -> tuple[str | None, int]:
    if trail.cloud == "aws":
        itype = params.get("instanceType")
        if type(itype) is dict:
            itype = itype.get("value")
        count = max(
            (_count(i.get("maxCount")) for i in items(params.get("instancesSet")) if type(i) is dict), default=1
        )
        return (itype if type(itype) is str else None), count
    itype = params.get("InstanceType")
    count = _count(params.get("Amount", params.get("MinAmount", 1)))
    return (itype if type(itype) is str else None), count


def rules(learning_secs: float = 3 * DAY_SECS) -> list[BuiltinRule]:
    return [UnusualComputeLaunch("aws", learning_secs), UnusualComputeLaunch("aliyun", learning_secs)]
