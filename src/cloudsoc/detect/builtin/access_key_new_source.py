"""``access_key_new_source``: a long-term AccessKey used from a network it was never used from before.

The baseline is per key: the source networks (IPv4 /24, IPv6 /48 — office NAT pools and home broadband move
inside such a block) each key was used from. A key stays quiet for a learning period after it first shows up,
and a network not seen for 90 days is forgotten. Temporary STS credentials change every session and are not
keys anyone can leak for long, so only long-term keys are followed; internal (RFC 1918) addresses are the
company's own network and are not learnt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin.base import Detection
from cloudsoc.detect.builtin.network import ip_prefix
from cloudsoc.detect.builtin.trail import CLOUDS, public_ip, source_ip
from cloudsoc.detect.firstseen import FirstSeen
from cloudsoc.detect.rule import Hit, Rule

META: Final = Detection(
    name="access_key_new_source",
    title="AccessKey used from a new network",
    title_zh="AccessKey 从未见过的网络被使用",
    severity=Severity.HIGH,
    tags=("attack.initial_access", "attack.t1078.004", "attack.credential_access", "attack.t1552.001"),
    description=(
        "A long-term AccessKey was used from a network it has never been used from. Keys leak through git "
        "repositories, build logs and laptops, and the first sign of a leak is the key calling the cloud from "
        "somewhere new — often a hosting provider abroad, at night."
    ),
    response=(
        "Ask the key's owner whether they (or their job) moved. If not, disable the key at once, create a new one "
        "for the owner, and review everything the key did from the new address (event ids in the alert)."
    ),
    description_zh=(
        "某个长期 AccessKey 从一个以前从未出现过的网络发起了调用。AccessKey 常通过 Git 仓库、"
        "构建日志和员工电脑泄露，泄露后最早的迹象往往就是它突然从陌生的地方调用云 API——常常是境外的云主机或 I"
        "DC 机房，而且是在深夜。"
    ),
    response_zh=(
        "询问 AccessKey 的所属人（或使用它的程序）是否换了网络环境。如果没有，立即禁用该 AccessKey，"
        "为所属人重新创建一个，并排查该 AccessKey 从新地址执行过的所有操作（事件 ID 见告警）。"
    ),
)

DAY_SECS: Final = 86400.0
FORGET_SECS: Final = 90 * DAY_SECS


class AccessKeyNewSource(FirstSeen):
    def __init__(self, cloud: str, learning_secs: float = 3 * DAY_SECS) -> None:
        trail = CLOUDS[cloud]

        def key(doc: Mapping[str, Any]) -> str | None:
            found = trail.access_key(doc)
            return found if found is not None and trail.long_term_key(found) else None

        def network(doc: Mapping[str, Any]) -> str | None:
            ip = source_ip(doc)
            return ip_prefix(ip) if ip is not None and public_ip(ip) else None

        super().__init__(
            key=("cloudsoc.access_key_id", key),
            value=("source.ip_prefix", network),
            learning_secs=learning_secs,
            forget_secs=FORGET_SECS,
            id=META.rule_id(cloud),
            title=META.title,
            severity=META.severity,
            tags=META.tags,
            description=META.description,
            response=META.response,
            description_zh=META.description_zh,
            response_zh=META.response_zh,
            source=str(META.module),
            datasets=frozenset({trail.dataset}),
            actions=None,
        )
        self.detection = META.name
        self.cloud = cloud
        self.title_zh = META.title_zh
        self.limits = META.limits
        self._temporary = "ASIA" if cloud == "aws" else "STS."
        self._aws = cloud == "aws"

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        # The same as FirstSeen's selector with the extractors above, inlined: every event of the trail
        # comes through here, so it costs a few dict reads, and the address work is cached.
        derived = doc.get("cloudsoc")
        if type(derived) is not dict:
            return None
        key = derived.get("access_key_id")
        if type(key) is not str or not key:
            return None
        if self._aws:
            if not key.startswith("AKIA"):
                return None
        elif key.startswith(self._temporary):
            return None
        source = doc.get("source")
        ip = source.get("ip") if type(source) is dict else None
        if type(ip) is not str or not public_ip(ip):
            return None
        prefix = ip_prefix(ip)
        if self.known(key, prefix, doc):
            return None
        return [(self.key_field, key), (self.value_field, prefix)]


def rules(learning_secs: float = 3 * DAY_SECS) -> list[Rule]:
    return [AccessKeyNewSource("aws", learning_secs), AccessKeyNewSource("aliyun", learning_secs)]
