"""``access_key_created``: a new long-term AccessKey exists — for a RAM/IAM user, or for root.

Every new key is a new way in that lives until someone deletes it, so each one is reported — except the first
keys of a user created in the last day (on-boarding: create the user, then their key). An attacker with a
leaked key making a second one for persistence, root keys, and keys for long-standing users all fire.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin.base import BuiltinRule, Detection
from cloudsoc.detect.builtin.provisioning import Provisioning
from cloudsoc.detect.builtin.trail import source_ip
from cloudsoc.detect.rule import Finding, Hit, Match

META: Final = Detection(
    name="access_key_created",
    title="AccessKey created",
    title_zh="创建了 AccessKey",
    severity=Severity.MEDIUM,
    tags=("attack.persistence", "attack.t1098.001"),
    description=(
        "A long-term AccessKey was created. Keys do not expire, work from anywhere and are what leaks into git "
        "repositories and build logs; an attacker holding one key typically makes a second one so that "
        "revoking the first does not lock them out. A root key can do everything and should never exist."
    ),
    response=(
        "Confirm with the key's owner that they asked for it and where it will be used. If not, disable the "
        "new key (and the key that created it), then review what both did. Delete any root AccessKey."
    ),
    description_zh=(
        "有人创建了长期有效的 AccessKey。AccessKey 不会过期、在任何地方都能用，"
        "也是最常被泄露到 Git 仓库和构建日志里的凭证；攻击者拿到一个 AccessKey 后，通常会再创建一个，"
        "这样即使第一个被吊销也不会丢掉访问权限。主账号（根用户）的 AccessKey 拥有全部权限，根本不应该存在。"
    ),
    response_zh=(
        "与 AccessKey 的所属人确认是否本人申请、准备用在哪里。如果不是，"
        "禁用新建的 AccessKey（以及用来创建它的那个 AccessKey），再核查两者做过的操作。主账号（根用户）"
        "的 AccessKey 一律删除。"
    ),
)

_NEW_KEY_PATHS: Final = {"aws": ("accessKey", "accessKeyId"), "aliyun": ("AccessKey", "AccessKeyId")}


class AccessKeyCreated(BuiltinRule):
    def __init__(self, cloud: str) -> None:
        super().__init__(META, cloud, actions=frozenset({"createaccesskey", "createuser"}))
        self._users = Provisioning()

    def select(self, doc: Mapping[str, Any]) -> list[Hit] | None:
        trail = self.successful_call(doc)
        if trail is None:
            return None
        action = doc["event"].get("action")
        if action == "CreateUser":
            return [("event.action", action), ("user.target.name", trail.target_user(doc))]
        caller = trail.caller(doc)
        target = trail.target_user(doc) or caller
        box, field = _NEW_KEY_PATHS[trail.cloud]
        new = trail.response(doc).get(box)
        key = new.get(field) if type(new) is dict else None
        return [
            ("event.action", action),
            ("user.target.name", target),
            ("new_access_key_id", key),
            ("user.name", caller),
            ("source.ip", source_ip(doc)),
        ]

    def observe(self, match: Match) -> list[Finding]:
        doc = match.doc
        assert self.trail is not None
        account = self.trail.account(doc)
        target = str(dict(match.hits).get("user.target.name") or "")
        at = match.time.timestamp()
        if doc["event"].get("action") == "CreateUser":
            if target:
                self._users.created(account, target, at)
            return []
        if self._users.recent(account, target, at):
            return []
        caller = self.trail.caller(doc)
        whose = "its own" if target == caller else f"{target}'s"
        return [
            self.finding(match, text=f"{caller} created {whose} AccessKey {dict(match.hits).get('new_access_key_id')}")
        ]

    def snapshot(self) -> bytes | None:
        return orjson.dumps(self._users.state())

    def restore(self, state: bytes) -> None:
        self._users.load(orjson.loads(state))

    def reset(self) -> None:
        self._users.clear()


def rules() -> list[BuiltinRule]:
    return [AccessKeyCreated("aws"), AccessKeyCreated("aliyun")]
