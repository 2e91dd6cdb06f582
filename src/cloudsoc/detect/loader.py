"""Loads the rules to run: the built-in pack, then Sigma and ElastAlert files, told apart by their content."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cloudsoc.config.models import DetectionConfig
from cloudsoc.detect.engine import RuleIndex
from cloudsoc.detect.rule import Rule, SkippedRule
from cloudsoc.errors import ConfigError

# LibYAML's parser where PyYAML was built with it (the wheels are): a rule directory loads 4x faster.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

RULE_SUFFIXES = (".yml", ".yaml")
TESTS_SUFFIX = ".tests.yml"


@dataclass(slots=True)
class LoadedRules:
    rules: list[Rule] = field(default_factory=list)
    skipped: list[SkippedRule] = field(default_factory=list)
    # Outputs that rules bring themselves (ElastAlert alerters), by name: plain dicts of output config.
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def index(self) -> RuleIndex:
        return RuleIndex(self.rules)


def yaml_documents(text: str) -> list[Any]:
    """The documents of a YAML text (safe types only), empty ones left out."""
    return [d for d in yaml.load_all(text, Loader=_YAML_LOADER) if d is not None]


def rule_files(paths: Iterable[Path]) -> list[Path]:
    """Rule files under ``paths`` (files as given, directories recursively), without rule-test files."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix in RULE_SUFFIXES and not p.name.endswith(TESTS_SUFFIX)
            )
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError(f"{path}: no such rule file or directory")
    return found


def load_file(path: Path) -> LoadedRules:
    from cloudsoc.detect import sigma
    from cloudsoc.detect.elastalert import is_elastalert, load_elastalert

    loaded = LoadedRules()
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        docs = yaml_documents(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        loaded.skipped.append(SkippedRule(source, "", f"unreadable: {exc}"))
        return loaded
    first = docs[0] if docs else None
    if not isinstance(first, dict):
        loaded.skipped.append(SkippedRule(source, "", "not a rule: expected a YAML mapping"))
    elif sigma.is_sigma(first):
        rules, skipped = sigma.load_sigma(text, source, docs)
        loaded.rules.extend(rules)
        loaded.skipped.extend(skipped)
    elif is_elastalert(first):
        try:
            rule = load_elastalert(text, source)
        except ConfigError as exc:
            loaded.skipped.append(SkippedRule(source, str(first.get("name", "")), str(exc)))
        else:
            loaded.rules.append(rule)
            loaded.outputs.update(getattr(rule, "output_configs", {}) or {})
    else:
        loaded.skipped.append(
            SkippedRule(source, "", "neither a Sigma rule (no `detection:`) nor an ElastAlert rule (no `type:`)")
        )
    return loaded


def load_rules(
    config: DetectionConfig, paths: Sequence[Path] | None = None, *, builtin: bool | None = None
) -> LoadedRules:
    """The built-in pack (unless disabled) and every rule file; ``paths`` replaces the configured rule paths."""
    loaded = LoadedRules()
    if config.builtin if builtin is None else builtin:
        from cloudsoc.detect.builtin import builtin_rules

        loaded.rules.extend(builtin_rules(config))
    for path in rule_files(config.rules if paths is None else paths):
        part = load_file(path)
        loaded.rules.extend(part.rules)
        loaded.skipped.extend(part.skipped)
        loaded.outputs.update(part.outputs)
    for rule in loaded.rules:
        if any(fnmatch.fnmatchcase(rule.id, pattern) for pattern in config.disabled):
            rule.enabled = False
    return loaded
