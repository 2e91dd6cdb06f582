"""Load a YAML config file into :class:`Config`, with ``file:line`` in every error.

Duplicate keys are rejected (YAML silently keeps the last one, which hides mistakes), and ``${NAME}`` is
replaced from the environment so secrets stay out of the file. Error messages name settings, never values.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cloudsoc.config.models import Config
from cloudsoc.errors import ConfigError

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
Loc = tuple[str | int, ...]


_UNION_TAGS = frozenset(
    {"directory", "webhook", "dingtalk", "wecom", "feishu", "slack", "email", "script", "http", "misp_feed", "taxii"}
)


class ConfigLoader:
    """Parses YAML keeping the line of every key, then validates with pydantic."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: dict[Loc, int] = {}

    def load(self) -> Config:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read config file: {exc.strerror}") from None
        return self.loads(text)

    def loads(self, text: str) -> Config:
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 0
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(f"{self.path}:{line}: invalid YAML: {problem}") from None
        data = self._build(node, ()) if node is not None else {}
        if not isinstance(data, dict):
            raise ConfigError(f"{self.path}:1: the config must be a mapping of settings")
        try:
            return Config.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(self._explain(exc)) from None

    def _build(self, node: yaml.Node, loc: Loc) -> Any:
        self.lines[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in out:
                    raise ConfigError(
                        f"{self.path}:{key_node.start_mark.line + 1}: duplicate key {'.'.join(map(str, (*loc, key)))!r}"
                        f" (first at line {self.lines[(*loc, key)]})"
                    )
                self.lines[(*loc, key)] = key_node.start_mark.line + 1
                out[key] = self._build(value_node, (*loc, key))
                self.lines[(*loc, key)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._build(item, (*loc, i)) for i, item in enumerate(node.value)]
        value = yaml.SafeLoader(" ").construct_object(node)
        if isinstance(value, str):
            value = self._interpolate(value, loc)
        return value

    def _interpolate(self, value: str, loc: Loc) -> str:
        return expand_env(value, f"{self.path}:{self.lines.get(loc, 0)}: {'.'.join(map(str, loc))}")

    def _explain(self, exc: ValidationError) -> str:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            loc = tuple(err["loc"])
            # pydantic names the union member it tried (`inputs.trail.directory.path`); users wrote no such key.
            if len(loc) > 2 and loc[0] in ("inputs", "outputs", "feeds") and loc[2] in _UNION_TAGS:
                loc = loc[:2] + loc[3:]
            line = self._line(loc)
            where = ".".join(map(str, loc)) or "(top level)"
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown setting (check the spelling; `cloudsoc config example` lists them all)"
            problems.append(f"{self.path}:{line}: {where}: {msg}")
        return "\n".join(problems)

    def _line(self, loc: Loc) -> int:
        while loc and loc not in self.lines:
            loc = loc[:-1]
        return self.lines.get(loc, 1)


def expand_env(value: str, where: str) -> str:
    """``${NAME}`` replaced from the environment; ``where`` (a setting's name, never its value) starts the error
    that names a variable which is not set."""

    def env(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return os.environ[name]

    return _ENV.sub(env, value)


def load_config(path: Path) -> Config:
    """Load and validate ``path``."""
    return ConfigLoader(path).load()
