"""``bastion_high_risk_command``: a command through the bastion that its command filter rejected or sent for
review, or whose risk is high or critical (``event.risk_score`` ≥ 73): a script piped into a shell, an SSH key
added, a reverse shell, history or logs wiped, ``rm -rf`` of system paths.

The bastion already acted (a rejected line never reached the host); the alert is for people to look at the
session. One alert per session an hour, however many such commands it ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin.base import BuiltinRule, Detection
from cloudsoc.detect.rule import Hit

META: Final = Detection(
    name="bastion_high_risk_command",
    title="High-risk command through the bastion",
    title_zh="堡垒机上执行了高危命令",
    severity=Severity.HIGH,
    tags=("attack.execution", "attack.t1059.004", "attack.defense_evasion", "attack.persistence"),
    description=(
        "Someone typed a command through the bastion that the command filter rejected or flagged for review, "
        "or that it rates high or critical risk: downloading and running a script, adding an SSH key, a reverse "
        "shell, clearing the shell history or the logs, destroying system files. Engineers rarely need these; "
        "an intruder with a stolen credential almost always does."
    ),
    response=(
        "Replay the session from the alert (url.full points at the moment) and ask the user whether it was them. "
        "If not: kill their sessions, reset their password and TOTP, remove keys added to authorized_keys on the "
        "host, check the host for what the command fetched or changed, and look for the source address elsewhere."
    ),
    description_zh=(
        "有人通过堡垒机执行了被命令过滤规则拒绝或标记为需复核的命令，或风险等级为高/严重的命令："
        "下载并执行脚本、添加 SSH 公钥、反弹 shell、清除命令历史或日志、删除系统文件等。"
        "工程师日常很少需要这些操作，而拿到被盗凭据的入侵者几乎一定会这么做。"
    ),
    response_zh=(
        "从告警打开会话录像（url.full 指向该命令的时刻），向该用户确认是否本人操作。如果不是：终止其会话，"
        "重置密码和 TOTP，删除主机上被添加到 authorized_keys 的公钥，检查命令下载或修改了什么，"
        "并在其他日志中排查该来源地址。"
    ),
)

REALERT_SECS: Final = 3600.0
HIGH_RISK: Final = 73  # the journal's score for risk "high"
_FLAGGED: Final = frozenset({"reject", "review"})


class BastionHighRiskCommand(BuiltinRule):
    def __init__(self) -> None:
        super().__init__(META, None, actions=frozenset({"bastion-command", "bastion-exec"}), realert_secs=REALERT_SECS)

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        event = doc["event"]
        if event.get("module") != "bastion":
            return None
        bastion = doc.get("cloudsoc")
        bastion = bastion.get("bastion") if type(bastion) is dict else None
        verdict = bastion.get("verdict") if type(bastion) is dict else None
        score = event.get("risk_score")
        risky = type(score) in (int, float) and score >= HIGH_RISK
        if verdict not in _FLAGGED and not risky:
            return None
        process = doc.get("process")
        hits: list[Hit] = [
            ("process.command_line", process.get("command_line") if type(process) is dict else None),
            ("cloudsoc.bastion.verdict", verdict),
        ]
        if type(bastion) is dict and bastion.get("group"):
            hits.append(("cloudsoc.bastion.group", bastion["group"]))
        if risky:
            hits.append(("event.risk_score", score))
        host = doc.get("host")
        if type(host) is dict and host.get("name"):
            hits.append(("host.name", host["name"]))
        return hits

    def group(self, doc: Mapping[str, Any]) -> str:
        session = doc.get("session")
        sid = session.get("id") if type(session) is dict else None
        user = doc.get("user")
        return str(sid or (user.get("name") if type(user) is dict else "") or "")


def rules() -> list[BuiltinRule]:
    return [BastionHighRiskCommand()]
