"""``remote_command_execution``: commands or an interactive shell pushed to servers through the cloud's own
agent — AWS Systems Manager (SendCommand, StartSession), EC2 Instance Connect (a pushed SSH key), Alibaba Cloud
Assistant (RunCommand, InvokeCommand, SendFile, Session Manager).

These bypass the bastion host, SSH keys and security groups, so they are reported per person once an hour;
calls a cloud service makes on its own (patch baselines, associations run by SSM) are not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin.base import ActionRule, BuiltinRule, Check, Detection
from cloudsoc.detect.builtin.trail import ALIYUN, AWS, Trail, items, strings
from cloudsoc.detect.rule import Hit

META: Final = Detection(
    name="remote_command_execution",
    title="Command run on servers through the cloud agent",
    title_zh="通过云助手/SSM 在服务器上执行命令",
    severity=Severity.MEDIUM,
    tags=("attack.execution", "attack.t1651", "attack.lateral_movement", "attack.t1021.004"),
    description=(
        "Commands, files or a shell session were sent to servers through the cloud provider's agent (or an SSH "
        "key pushed with EC2 Instance Connect). Whoever holds the cloud permission runs code as root on the "
        "servers without passing the bastion host; attackers with a leaked admin key do exactly this."
    ),
    response=(
        "Confirm with the caller what was run and why (the command content is in the event; Cloud Assistant "
        "keeps the output). If unexpected, isolate the instances, review the command, and revoke the caller's keys."
    ),
    description_zh=(
        "有人通过云厂商的代理程序（阿里云云助手、AWS Systems Manager）向服务器下发了命令、文件或会话，"
        "或者通过 EC2 Instance Connect 推送了 SSH 公钥。只要有相应的云权限，就能绕过堡垒机、"
        "以 root 身份在服务器上执行代码；拿到泄露的管理员 AccessKey 的攻击者正是这么做的。"
    ),
    response_zh=(
        "向调用者确认执行了什么、为什么执行（命令内容在事件里，云助手还保留了执行输出）。如果不符合预期，"
        "隔离相关实例，审查命令内容，并吊销调用者的 AccessKey。"
    ),
)

REALERT_SECS: Final = 3600.0


def _targets(trail: Trail, *keys: str) -> Check:
    def check(doc: Mapping[str, Any]) -> list[Hit] | None:
        params = trail.params(doc)
        hits: list[Hit] = []
        for key in keys:
            value = params.get(key)
            if value in (None, "", []):
                continue
            if type(value) is str and value.startswith("["):
                value = strings(value.strip("[]").replace('"', ""))
            hits.append((key, value))
        return hits or [("target", None)]

    return check


def _aws_targets(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = AWS.params(doc)
    hits: list[Hit] = [("documentName", params.get("documentName"))]
    instances = params.get("instanceIds")
    if instances:
        hits.append(("instanceIds", instances))
    for target in items(params.get("targets")):
        if type(target) is dict:
            hits.append(("targets", f"{target.get('key')}={target.get('values')}"))
    return hits


_AWS_CHECKS: Final[dict[str, Check]] = {
    "SendCommand": _aws_targets,
    "StartSession": _targets(AWS, "target", "documentName"),
    "SendSSHPublicKey": _targets(AWS, "instanceId", "instanceOSUser"),
    "SendSerialConsoleSSHPublicKey": _targets(AWS, "instanceId"),
}
_ALIYUN_CHECKS: Final[dict[str, Check]] = {
    "RunCommand": _targets(ALIYUN, "InstanceId", "Type", "CommandContent"),
    "InvokeCommand": _targets(ALIYUN, "InstanceId", "CommandId"),
    "SendFile": _targets(ALIYUN, "InstanceId", "TargetDir", "Name"),
    "StartTerminalSession": _targets(ALIYUN, "InstanceId"),
}


def rules() -> list[BuiltinRule]:
    return [
        ActionRule(META, "aws", _AWS_CHECKS, realert_secs=REALERT_SECS),
        ActionRule(META, "aliyun", _ALIYUN_CHECKS, realert_secs=REALERT_SECS),
    ]
