"""``audit_logging_tampered``: the audit trail stopped, deleted or narrowed, or another audit log source
switched off (VPC flow logs, DNS query logs, bucket access logs, database SQL audit / activity streams, the
cloud firewall's log delivery).

Starting or creating logging, and trail updates that keep everything recorded, stay quiet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin.base import ActionRule, BuiltinRule, Check, Detection, always
from cloudsoc.detect.builtin.trail import ALIYUN, AWS, flag, items
from cloudsoc.detect.rule import Hit

META: Final = Detection(
    name="audit_logging_tampered",
    title="Audit logging stopped or narrowed",
    title_zh="审计日志被停止或削弱",
    severity=Severity.HIGH,
    tags=("attack.defense_evasion", "attack.t1562.008", "attack.t1562.001"),
    description=(
        "The audit trail (CloudTrail, ActionTrail) or another audit log source was stopped, deleted or "
        "narrowed. Attackers do this right before the actions they want unseen; everything after it is "
        "missing from this system too."
    ),
    response=(
        "Turn logging back on at once (the alert names the trail or source), then find out who did it and what "
        "happened during the gap — the cloud's own event history (LookupEvents) keeps 90 days of management "
        "events even when the trail is off."
    ),
    description_zh=(
        "审计跟踪（操作审计 ActionTrail、AWS CloudTrail）或其他审计日志源被停止、删除或缩小了记录范围。"
        "攻击者通常在执行不想被人看到的操作之前这样做；此后发生的事情，本系统同样看不到。"
    ),
    response_zh=(
        "立即重新开启日志（告警中写明了是哪个跟踪或日志源），然后查清是谁关的、日志中断期间发生了什么。"
        "即使跟踪被关闭，云平台自身的事件历史（操作审计的事件查询、CloudTrail 的 LookupEvents）"
        "仍保留最近 90 天的管控事件。"
    ),
)


# --- AWS ----------------------------------------------------------------------------------------------------


def _aws_update_trail(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = AWS.params(doc)
    off = [
        (key, False)
        for key in ("isMultiRegionTrail", "includeGlobalServiceEvents", "enableLogFileValidation")
        if flag(params.get(key)) is False
    ]
    return [("name", params.get("name")), *off] if off else None


def _aws_event_selectors(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = AWS.params(doc)
    hits: list[Hit] = []
    for selector in items(params.get("eventSelectors")):
        if type(selector) is not dict:
            continue
        if flag(selector.get("includeManagementEvents")) is False:
            hits.append(("includeManagementEvents", False))
        kind = selector.get("readWriteType")
        if type(kind) is str and kind != "All":
            hits.append(("readWriteType", kind))
        if selector.get("excludeManagementEventSources"):
            hits.append(("excludeManagementEventSources", selector["excludeManagementEventSources"]))
    advanced = items(params.get("advancedEventSelectors"))
    if advanced and not any(_selects_management(s) for s in advanced):
        hits.append(("advancedEventSelectors", "no management events"))
    return [("trailName", params.get("trailName")), *hits] if hits else None


def _selects_management(selector: object) -> bool:
    if type(selector) is not dict:
        return False
    for field in items(selector.get("fieldSelectors")):
        if type(field) is dict and field.get("field") == "eventCategory":
            return "Management" in (field.get("equals") or [])
    return False


def _aws_bucket_logging(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = AWS.params(doc)
    status = params.get("BucketLoggingStatus")
    if type(status) is not dict or status.get("LoggingEnabled"):
        return None
    return [("bucketName", params.get("bucketName")), ("LoggingEnabled", False)]


def _aws_lb_access_logs(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = AWS.params(doc)
    for attribute in items(params.get("attributes")):
        if (
            type(attribute) is dict
            and attribute.get("key") == "access_logs.s3.enabled"
            and flag(attribute.get("value")) is False
        ):
            return [("loadBalancerArn", params.get("loadBalancerArn")), ("access_logs.s3.enabled", False)]
    return None


_AWS_CHECKS: Final[dict[str, Check]] = {
    "StopLogging": always(AWS, "name"),
    "DeleteTrail": always(AWS, "name"),
    "UpdateTrail": _aws_update_trail,
    "PutEventSelectors": _aws_event_selectors,
    "DeleteEventDataStore": always(AWS, "eventDataStore"),
    "StopEventDataStoreIngestion": always(AWS, "eventDataStore"),
    "DeleteFlowLogs": always(AWS, "DeleteFlowLogsRequest", "flowLogIds"),
    "DeleteResolverQueryLogConfig": always(AWS, "resolverQueryLogConfigId"),
    "DisassociateResolverQueryLogConfig": always(AWS, "resolverQueryLogConfigId"),
    "PutBucketLogging": _aws_bucket_logging,
    "StopActivityStream": always(AWS, "resourceArn"),
    "DeleteModelInvocationLoggingConfiguration": always(AWS),
    "DeleteLoggingConfiguration": always(AWS, "resourceArn"),
    "ModifyLoadBalancerAttributes": _aws_lb_access_logs,
}


# --- Alibaba Cloud ------------------------------------------------------------------------------------------


def _aliyun_update_trail(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = ALIYUN.params(doc)
    hits: list[Hit] = []
    if flag(params.get("StartLogging")) is False:
        hits.append(("StartLogging", False))
    rw = params.get("EventRW")
    if type(rw) is str and rw and rw != "All":
        hits.append(("EventRW", rw))
    targets = ("OssBucketName", "SlsProjectArn")
    if all(key in params for key in targets) and not any(params.get(key) for key in targets):
        hits.append(("delivery", "removed"))
    return [("Name", params.get("Name")), *hits] if hits else None


def _aliyun_sql_audit(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = ALIYUN.params(doc)
    status = params.get("SQLCollectorStatus")
    if type(status) is str and status.lower() == "disabled":
        return [("DBInstanceId", params.get("DBInstanceId")), ("SQLCollectorStatus", status)]
    return None


def _aliyun_firewall_logs(doc: Mapping[str, Any]) -> list[Hit] | None:
    if flag(ALIYUN.params(doc).get("EnableStatus")) is False:
        return [("EnableStatus", False)]
    return None


def _aliyun_trail_logstore(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = ALIYUN.params(doc)
    name = params.get("LogstoreName") or params.get("logstoreName") or params.get("ProjectName")
    if type(name) is str and "actiontrail" in name.lower():
        return [("logstore", name)]
    return None


_ALIYUN_CHECKS: Final[dict[str, Check]] = {
    "StopLogging": always(ALIYUN, "Name"),
    "DeleteTrail": always(ALIYUN, "Name"),
    "UpdateTrail": _aliyun_update_trail,
    "DeactiveFlowLog": always(ALIYUN, "FlowLogId"),
    "DeleteFlowLog": always(ALIYUN, "FlowLogId"),
    "ModifySQLCollectorPolicy": _aliyun_sql_audit,
    "ModifySlsDispatchStatus": _aliyun_firewall_logs,
    "DeleteLogStore": _aliyun_trail_logstore,
    "DeleteBucketLogging": always(ALIYUN, "BucketName"),
}


def rules() -> list[BuiltinRule]:
    return [ActionRule(META, "aws", _AWS_CHECKS), ActionRule(META, "aliyun", _ALIYUN_CHECKS)]
