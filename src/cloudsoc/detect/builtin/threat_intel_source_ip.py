"""``threat_intel_source_ip``: an event's source address is a threat-intelligence indicator with enough
confidence — whatever the log source, so the rule has no cloud suffix.

It reads the ECS enrichments the intel enricher adds in-line (``threat.enrichments[]`` with ``indicator.*`` and
``matched.*``). Confidence is a number 0–100 (or a numeric string), or ECS's words mapped onto the STIX 2.1
scale (None 0, Low 15, Medium 50, High 85); an entry fires at or above the configured minimum (60 by default).
Internal addresses and allow-list entries never fire. One alert per source address per hour.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin.base import BuiltinRule, Detection
from cloudsoc.detect.builtin.trail import public_ip, source_ip
from cloudsoc.detect.rule import Hit

META: Final = Detection(
    name="threat_intel_source_ip",
    title="Activity from an address on a threat-intelligence list",
    title_zh="来自威胁情报恶意 IP 的访问",
    severity=Severity.HIGH,
    tags=("attack.initial_access", "attack.t1078", "attack.command_and_control"),
    description=(
        "A cloud API call (or any other event) came from an address that threat intelligence lists as "
        "malicious — a scanner, botnet, anonymising proxy or known attacker infrastructure. Valid credentials "
        "used from such an address are almost always stolen."
    ),
    response=(
        "Look at what the address did and with which identity. If it used valid credentials, disable them and "
        "review their activity; block the address at the firewall/WAF. Mark the indicator a false positive in "
        "the intel store if it is your own or a partner's address."
    ),
    description_zh=(
        "某次云 API 调用（或其他任何事件）的来源 IP 被威胁情报标记为恶意：扫描器、僵尸网络、"
        "匿名代理或已知的攻击者基础设施。从这类地址使用有效凭证发起的调用，几乎可以肯定是凭证被盗了。"
    ),
    response_zh=(
        "查看该地址做了什么、用的是哪个身份。如果用了有效凭证，立即禁用并排查该凭证的操作记录；"
        "在防火墙 / WAF 上封禁该地址。如果这是你们自己或合作伙伴的地址，在情报库中把该情报标记为误报。"
    ),
)

MIN_CONFIDENCE: Final = 60
REALERT_SECS: Final = 3600.0
# ECS indicator.confidence words on the STIX 2.1 None/Low/Med/High scale.
_WORDS: Final = {"none": 0, "not specified": 0, "low": 15, "medium": 50, "med": 50, "high": 85}
_ALLOW_TYPES: Final = frozenset({"whitelist", "allowlist", "allow-list"})


def confidence(value: object) -> int | None:
    """An indicator confidence as 0–100, or None when it cannot be read."""
    if type(value) is int or type(value) is float:
        return int(value)
    if type(value) is str:
        text = value.strip().lower()
        if text.replace(".", "", 1).isdigit():
            return int(float(text))
        return _WORDS.get(text)
    return None


class ThreatIntelSourceIp(BuiltinRule):
    def __init__(self, min_confidence: int = MIN_CONFIDENCE) -> None:
        super().__init__(META, None, actions=None, realert_secs=REALERT_SECS)
        self.min_confidence = min_confidence

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        threat = doc.get("threat")
        if type(threat) is not dict:
            return None
        enrichments = threat.get("enrichments")
        if type(enrichments) is not list:
            return None
        ip = source_ip(doc)
        if ip is None or not public_ip(ip):
            return None
        for entry in enrichments:
            if type(entry) is not dict:
                continue
            indicator = entry.get("indicator")
            matched = entry.get("matched")
            indicator = indicator if type(indicator) is dict else {}
            matched = matched if type(matched) is dict else {}
            if str(indicator.get("type", "")).lower() in _ALLOW_TYPES:
                continue
            field = matched.get("field")
            on_source = (type(field) is str and field.startswith("source.")) or ip in (
                matched.get("atomic"),
                indicator.get("ip"),
            )
            if not on_source:
                continue
            score = confidence(indicator.get("confidence", entry.get("confidence", matched.get("confidence"))))
            if score is None or score < self.min_confidence:
                continue
            hits: list[Hit] = [("source.ip", ip), ("threat.enrichments.indicator.confidence", score)]
            for key in ("provider", "type", "name", "description"):
                if indicator.get(key):
                    hits.append((f"threat.enrichments.indicator.{key}", indicator[key]))
            return hits
        return None

    def group(self, doc: Mapping[str, Any]) -> str:
        return source_ip(doc) or ""


def rules(min_confidence: int = MIN_CONFIDENCE) -> list[BuiltinRule]:
    return [ThreatIntelSourceIp(min_confidence)]
