"""``security_service_disabled``: a threat-detection or protection service switched off, deleted or told to
look away — GuardDuty, Security Hub, Config, Macie, Access Analyzer, Inspector, Detective, WAF on AWS; Security
Center (SAS/Aegis), Cloud Firewall, WAF and Config on Alibaba Cloud (the switches Alibaba's landing-zone alerts
watch: Cloud Firewall engine rules, threat intelligence, virtual patches, observation/loose mode, asset
protection; Security Center web tamper-proofing).

Enabling a service, turning a protection on, and configuration reads stay quiet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin.base import ActionRule, BuiltinRule, Check, Detection, always
from cloudsoc.detect.builtin.trail import ALIYUN, AWS, Trail, flag
from cloudsoc.detect.rule import Hit

META: Final = Detection(
    name="security_service_disabled",
    title="Security service disabled",
    title_zh="安全服务被关闭",
    severity=Severity.HIGH,
    tags=("attack.defense_evasion", "attack.t1562.001"),
    description=(
        "A cloud security service (threat detection, posture, firewall, WAF, host protection) was disabled, "
        "deleted or weakened. Attackers blind the defences before acting; the change also silently removes "
        "protection the company pays for."
    ),
    response=(
        "Re-enable the service or setting, then find out who changed it and what they did afterwards. Restrict "
        "these APIs to the security team (SCP / RAM deny policies)."
    ),
    description_zh=(
        "某项云安全服务（威胁检测、云安全态势管理、云防火墙、WAF、主机防护，例如云安全中心、GuardDuty、"
        "Security Hub）被关闭、删除或削弱。攻击者动手之前会先让防御“失明”；"
        "这类变更也会悄无声息地让企业付费购买的防护失效。"
    ),
    response_zh=(
        "重新开启该服务或设置，然后查清是谁改的、之后又做了什么。把这些 API 的调用权限只留给安全团队（AWS SCP"
        " / 阿里云管控策略或 RAM 中的 Deny 策略）。"
    ),
)


def _when_false(trail: Trail, key: str) -> Check:
    """Fires when the parameter ``key`` is explicitly switched off."""

    def check(doc: Mapping[str, Any]) -> list[Hit] | None:
        value = trail.params(doc).get(key)
        return [(key, value)] if flag(value) is False else None

    return check


def _on(service: str, check: Check) -> Check:
    """``check``, for the one service (``guardduty``, ``waf``) whose API has this action name."""

    def on_service(doc: Mapping[str, Any]) -> list[Hit] | None:
        cloud = doc.get("cloud")
        named = cloud.get("service") if type(cloud) is dict else None
        name = named.get("name") if type(named) is dict else None
        if type(name) is not str or not name.lower().startswith(service):
            return None
        return check(doc)

    return on_service


def _when_value(trail: Trail, key: str, *values: str) -> Check:
    """Fires when the parameter ``key`` is set to one of ``values`` (case-insensitive)."""
    wanted = frozenset(v.lower() for v in values)

    def check(doc: Mapping[str, Any]) -> list[Hit] | None:
        value = trail.params(doc).get(key)
        return [(key, value)] if value is not None and str(value).lower() in wanted else None

    return check


# --- AWS ----------------------------------------------------------------------------------------------------


def _aws_guardduty_filter(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = AWS.params(doc)
    if str(params.get("action", "")).upper() == "ARCHIVE":
        return [("filter", params.get("name")), ("action", "ARCHIVE")]
    return None


def _aws_standards_control(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = AWS.params(doc)
    if str(params.get("controlStatus", "")).upper() == "DISABLED":
        return [("standardsControlArn", params.get("standardsControlArn")), ("controlStatus", "DISABLED")]
    return None


def _aws_ipset(doc: Mapping[str, Any]) -> list[Hit] | None:
    # A GuardDuty trusted-IP list: findings from those addresses are no longer raised.
    params = AWS.params(doc)
    return [("detectorId", params.get("detectorId")), ("trusted_ip_list", params.get("name") or params.get("ipSetId"))]


def _aws_security_hub_products(doc: Mapping[str, Any]) -> list[Hit] | None:
    return [("productSubscriptionArn", AWS.params(doc).get("productSubscriptionArn"))]


def _aws_standards(doc: Mapping[str, Any]) -> list[Hit] | None:
    arns = AWS.params(doc).get("standardsSubscriptionArns")
    return [("standardsSubscriptionArns", arns)]


def _aws_macie_session(doc: Mapping[str, Any]) -> list[Hit] | None:
    status = AWS.params(doc).get("status")
    return [("status", status)] if type(status) is str and status.upper() == "PAUSED" else None


def _aws_inspector(doc: Mapping[str, Any]) -> list[Hit] | None:
    return [("resourceTypes", AWS.params(doc).get("resourceTypes"))]


_AWS_CHECKS: Final[dict[str, Check]] = {
    "DeleteDetector": _on("guardduty", always(AWS, "detectorId")),
    "UpdateDetector": _on("guardduty", _when_false(AWS, "enable")),
    "DisassociateFromMasterAccount": _on("guardduty", always(AWS, "detectorId")),
    "DisassociateFromAdministratorAccount": _on("guardduty", always(AWS, "detectorId")),
    "StopMonitoringMembers": _on("guardduty", always(AWS, "detectorId")),
    "CreateFilter": _on("guardduty", _aws_guardduty_filter),
    "UpdateFilter": _on("guardduty", _aws_guardduty_filter),
    "CreateIPSet": _on("guardduty", _aws_ipset),
    "UpdateIPSet": _on("guardduty", _aws_ipset),
    "DisableSecurityHub": always(AWS),
    "BatchDisableStandards": _aws_standards,
    "DisableImportFindingsForProduct": _aws_security_hub_products,
    "UpdateStandardsControl": _aws_standards_control,
    "StopConfigurationRecorder": always(AWS, "configurationRecorderName"),
    "DeleteConfigurationRecorder": always(AWS, "configurationRecorderName"),
    "DeleteDeliveryChannel": always(AWS, "deliveryChannelName", "configurationRecorderName"),
    "DisableMacie": always(AWS),
    "UpdateMacieSession": _aws_macie_session,
    "DeleteAnalyzer": always(AWS, "analyzerName"),
    "Disable": _on("inspector2", _aws_inspector),
    "DeleteGraph": _on("detective", always(AWS, "graphArn")),
    "DisassociateWebACL": _on("waf", always(AWS, "resourceArn")),
    "DeleteWebACL": _on("waf", always(AWS, "name", "webACLId")),
}


# --- Alibaba Cloud ------------------------------------------------------------------------------------------


def _aliyun_ips_config(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = ALIYUN.params(doc)
    hits: list[Hit] = []
    for key in ("AiRules", "BasicRules", "CtiRules", "PatchRules"):
        if str(params.get(key, "")) == "0":
            hits.append((key, "0 (off)"))
    if str(params.get("RunMode", "")) == "0":
        hits.append(("RunMode", "0 (observe only)"))
    # Alibaba's landing-zone alert calls RuleClass 2 loose; the API reference calls 1 loose: both count.
    rule_class = str(params.get("RuleClass", ""))
    if rule_class in ("1", "2"):
        hits.append(("RuleClass", f"{rule_class} (loose)"))
    return hits or None


def _aliyun_firewall_switch(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = ALIYUN.params(doc)
    assets = params.get("IpaddrList") or params.get("ResourceTypeList") or params.get("InstanceId")
    return [("assets", assets)]


def _aliyun_vpc_firewall(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = ALIYUN.params(doc)
    status = str(params.get("FirewallSwitch", params.get("FirewallSwitchStatus", ""))).lower()
    return [("FirewallSwitch", status)] if status in ("close", "closed", "off") else None


def _aliyun_waf_module(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = ALIYUN.params(doc)
    if str(params.get("ModuleStatus", "")) == "0":
        return [("Domain", params.get("Domain")), ("DefenseType", params.get("DefenseType")), ("ModuleStatus", 0)]
    return None


_ALIYUN_CHECKS: Final[dict[str, Check]] = {
    # Security Center (SAS / Aegis)
    "ModifyWebLockStatus": _when_value(ALIYUN, "Status", "off"),
    "ModifyWebLockUnbind": always(ALIYUN, "Uuid"),
    "PauseClient": _when_value(ALIYUN, "Value", "1"),
    "UnbindAegis": always(ALIYUN, "Uuids"),
    # Cloud Firewall (landing-zone alerts: engine rules off, observe/loose mode, asset protection off)
    "ModifyDefaultIPSConfig": _aliyun_ips_config,
    "SetAutoProtectNewAssets": _when_false(ALIYUN, "AutoProtect"),
    "PutDisableFwSwitch": _aliyun_firewall_switch,
    "PutDisableAllFwSwitch": always(ALIYUN, "InstanceId"),
    "ModifyVpcFirewallSwitchStatus": _aliyun_vpc_firewall,
    "ModifyVpcFirewallCenSwitchStatus": _aliyun_vpc_firewall,
    # WAF
    "ModifyProtectionModuleStatus": _on("waf", _aliyun_waf_module),
    "DeleteDomain": _on("waf", always(ALIYUN, "Domain")),
    # Cloud Config
    "StopConfigurationRecorder": always(ALIYUN),
}


def rules() -> list[BuiltinRule]:
    return [ActionRule(META, "aws", _AWS_CHECKS), ActionRule(META, "aliyun", _ALIYUN_CHECKS)]
