"""Command filters checked at every Enter, like JumpServer's: command groups, and rules that act on them.

A group names commands by word patterns (matched on the parsed command, see :mod:`cloudsoc.bastion.patterns`) and
regular expressions (on the line and on every string a shell would parse again). A rule applies its action
(reject / review / warn / accept) to users/groups and host groups; rules are tried by priority (lower first, the
configuration's before the built-ins' at equal priority) and the first whose groups match decides. No match is
accept with risk "low". The built-in high-risk set is `highrisk.yml` beside this module.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any, Literal

import msgspec
import yaml
from pydantic import ValidationError

from cloudsoc.bastion.patterns import REDIRECTS, WordPattern
from cloudsoc.bastion.shell import ParsedLine, ShellParser
from cloudsoc.config.bastion import BastionConfig, CommandGroupConfig, CommandRuleConfig
from cloudsoc.errors import BastionError

Action = Literal["accept", "warn", "review", "reject"]


class Verdict(msgspec.Struct, frozen=True):
    action: Action
    rule: str
    group: str
    risk: str
    reason: str


_ACCEPT = Verdict(action="accept", rule="", group="", risk="low", reason="no rule matched")


class _Group:
    def __init__(self, name: str, cfg: CommandGroupConfig, paths: Mapping[str, list[str]], aliases: Any) -> None:
        self.name = name
        self.cfg = cfg
        try:
            self.words = [WordPattern(w, paths, aliases) for w in cfg.words]
            self.regex = [re.compile(r) for r in cfg.regex]
        except (BastionError, re.error) as exc:
            raise BastionError(f"command group {name!r}: {exc}") from exc
        # Indexed by the command names a pattern starts with, so a line only tries the patterns of its commands.
        self.by_name: dict[str, list[WordPattern]] = {}
        self.unindexed: list[WordPattern] = []
        for pattern in self.words:
            first = pattern.stages[0].names
            if first is None:
                self.unindexed.append(pattern)
            else:
                for cmd in first:
                    self.by_name.setdefault(cmd, []).append(pattern)

    def match(self, parsed: ParsedLine, names: frozenset[str]) -> str | None:
        """What matched, for the verdict's reason, or None."""
        candidates = [p for n in names for p in self.by_name.get(n, ())] + self.unindexed
        for pattern in candidates:
            cmd = pattern.match(parsed.pipelines)
            if cmd is not None:
                shown = " ".join(cmd.argv) or " ".join(f"{op} {t}" for op, t in cmd.redirects)
                return f"`{shown}` is `{pattern.text}`"
        for rx in self.regex:
            for text in parsed.texts:
                found = rx.search(text)
                if found:
                    return f"`{found.group(0).strip()}` matches /{rx.pattern}/"
        return None


class _Rule:
    def __init__(self, name: str, cfg: CommandRuleConfig, groups: Mapping[str, _Group]) -> None:
        missing = [g for g in cfg.groups if g not in groups]
        if missing:
            raise BastionError(f"command rule {name!r} names unknown command groups {missing}")
        self.name = name
        self.cfg = cfg
        self.groups = [groups[g] for g in cfg.groups]
        self.users = frozenset(cfg.users)
        self.host_groups = frozenset(cfg.host_groups)

    def applies(self, user: str, groups: frozenset[str], host_groups: frozenset[str]) -> bool:
        if self.users and user not in self.users and not (self.users & groups):
            return False
        return not self.host_groups or bool(self.host_groups & host_groups)


class CommandFilter:
    """Decides what happens to a command line before it reaches the host."""

    def __init__(
        self,
        groups: Mapping[str, CommandGroupConfig],
        rules: Iterable[tuple[str, CommandRuleConfig]],
        *,
        paths: Mapping[str, list[str]] | None = None,
        aliases: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        compiled = {name: _Group(name, cfg, paths or {}, aliases or {}) for name, cfg in groups.items()}
        ordered = [(cfg.priority, i, _Rule(name, cfg, compiled)) for i, (name, cfg) in enumerate(rules)]
        self.rules = [rule for _, _, rule in sorted(ordered, key=lambda t: (t[0], t[1]))]
        # A line is checked at Enter and often again (history recall, a retry): parsing dominates, so keep it.
        self._parse = functools.lru_cache(maxsize=2048)(ShellParser().parse)

    @classmethod
    def from_config(cls, cfg: BastionConfig) -> CommandFilter:
        builtin = load_builtin()
        groups: dict[str, CommandGroupConfig] = dict(builtin["groups"])
        groups.update(cfg.command_groups)  # a configured group of the same name replaces the built-in one
        rules: list[tuple[str, CommandRuleConfig]] = [
            (rule.name or f"config#{i + 1}", rule) for i, rule in enumerate(cfg.command_rules)
        ]
        if cfg.builtin_rules:
            rules.extend(builtin["rules"])
        return cls(groups, rules, paths=builtin["paths"], aliases=builtin["aliases"])

    def parse(self, line: str) -> ParsedLine:
        return self._parse(line)

    def check(self, line: str, *, user: str, groups: Iterable[str] = (), host_groups: Iterable[str] = ()) -> Verdict:
        if not line.strip():
            return _ACCEPT
        parsed = self._parse(line)
        user_groups = frozenset(groups)
        hosts = frozenset(host_groups)
        seen: dict[str, str | None] = {}
        names = frozenset(cmd.name for pipeline in parsed.pipelines for cmd in pipeline)
        if any(cmd.redirects for pipeline in parsed.pipelines for cmd in pipeline):
            names |= {REDIRECTS}
        for rule in self.rules:
            if not rule.applies(user, user_groups, hosts):
                continue
            for group in rule.groups:
                if group.name not in seen:
                    seen[group.name] = group.match(parsed, names)
                why = seen[group.name]
                if why is not None:
                    about = group.cfg.description or group.name
                    attack = f" [{', '.join(group.cfg.attack)}]" if group.cfg.attack else ""
                    return Verdict(
                        action=rule.cfg.action,
                        rule=rule.name,
                        group=group.name,
                        risk=group.cfg.risk,
                        reason=f"{about}{attack}: {why}",
                    )
        return _ACCEPT


@functools.cache
def load_builtin() -> dict[str, Any]:
    """The built-in set (`highrisk.yml`): path sets, option aliases, groups and rules, validated."""
    text = resources.files("cloudsoc.bastion").joinpath("highrisk.yml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    try:
        groups = {name: CommandGroupConfig(**body) for name, body in raw["groups"].items()}
        rules = [
            (body.get("name") or f"builtin#{i + 1}", CommandRuleConfig(**body)) for i, body in enumerate(raw["rules"])
        ]
    except (ValidationError, KeyError, TypeError) as exc:
        raise BastionError(f"highrisk.yml is invalid: {exc}") from exc
    paths = {name: [str(g) for g in globs] for name, globs in raw.get("paths", {}).items()}
    aliases = {cmd: {str(k): str(v) for k, v in table.items()} for cmd, table in raw.get("aliases", {}).items()}
    return {"groups": groups, "rules": rules, "paths": paths, "aliases": aliases}
