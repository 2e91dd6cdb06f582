"""Documentation generated from the config models: the commented example and the reference table.

Both come from the pydantic field descriptions, so they cannot drift from what the loader accepts.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from cloudsoc.config.bastion import (
    BastionConfig,
    CommandGroupConfig,
    CommandRuleConfig,
    GrantConfig,
    HostConfig,
    LdapConfig,
)
from cloudsoc.config.feeds import FeedConfig
from cloudsoc.config.models import (
    Config,
    ConsoleConfig,
    DetectionConfig,
    DirectoryInputConfig,
    PipelineConfig,
    StorageConfig,
    WhoisConfig,
)
from cloudsoc.config.outputs import OutputConfig

_EXAMPLE_INPUT = {"type": "directory", "path": "/mnt/log-bucket", "format": "auto"}


def _tag(model: type[BaseModel]) -> str:
    return str(get_args(model.model_fields["type"].annotation)[0])


_OUTPUT_MODELS: tuple[type[BaseModel], ...] = tuple(get_args(get_args(OutputConfig)[0]))
_FEED_MODELS: tuple[type[BaseModel], ...] = tuple(get_args(get_args(FeedConfig)[0]))


def _default(model: type[BaseModel], name: str) -> Any:
    field = model.model_fields[name]
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return None if field.default is PydanticUndefined else field.default


def _yaml(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return str(value)


def _section(model: type[BaseModel], indent: str, overrides: dict[str, Any] | None = None) -> list[str]:
    lines = []
    for name, field in model.model_fields.items():
        lines.append(f"{indent}# {field.description or ''}".rstrip())
        value = (overrides or {}).get(name, _default(model, name))
        commented = overrides is None or name not in overrides
        prefix = "# " if commented and value is None else ""
        lines.append(f"{indent}{prefix}{name}: {_yaml(value)}")
    return lines


def example_yaml() -> str:
    """A complete, documented config: every setting with its default and meaning."""
    lines = [
        "# cloudsoc configuration. Check it with `cloudsoc validate -c cloudsoc.yaml`.",
        "# Secrets never go in this file: write ${ENV_NAME} and set the variable.",
        "",
        "# " + (Config.model_fields["home"].description or ""),
        "# home: ./cloudsoc-data",
        "",
        "storage:",
        *_section(StorageConfig, "  "),
        "",
        "pipeline:",
        *_section(PipelineConfig, "  "),
        "",
        "detection:",
        *_section(DetectionConfig, "  "),
        "",
        "intel:",
        "  whois:",
        *_section(WhoisConfig, "    "),
        "",
        "console:",
        *_section(ConsoleConfig, "  "),
        "",
        "# " + (Config.model_fields["outputs"].description or "") + " Every option: docs/specs/outputs.md.",
        "outputs: {}",
        "#  soc-webhook:",
        "#    type: webhook",
        "#    url: https://soc.example.com/hooks/cloudsoc",
        "#    secret: ${CLOUDSOC_WEBHOOK_SECRET}",
        "#    min_severity: medium",
        "#  oncall-dingtalk:",
        "#    type: dingtalk",
        "#    url: ${DINGTALK_ROBOT_URL}",
        "#    secret: ${DINGTALK_ROBOT_SECRET}",
        "#    language: zh",
        "#    timezone: Asia/Shanghai",
        "#    min_severity: high",
        "",
        "# " + (Config.model_fields["feeds"].description or ""),
        "feeds: {}",
        "#  ipsum:",
        "#    type: http",
        "#    url: https://raw.githubusercontent.com/stamparm/ipsum/master/ipsum.txt",
        "#    interval_secs: 86400",
        "#  partner-taxii:",
        "#    type: taxii",
        "#    url: https://taxii.example.com/taxii2/",
        "#    collection: indicators",
        "#    user: cloudsoc",
        "#    password: ${TAXII_PASSWORD}",
        "",
        "# " + (Config.model_fields["inputs"].description or ""),
        "inputs:",
        "  # A bucket mounted with ossfs / s3fs (or any directory CloudTrail/ActionTrail files land in).",
        "  trail:",
        *_section(DirectoryInputConfig, "    ", {**_EXAMPLE_INPUT}),
        "",
    ]
    return "\n".join(lines)


def reference_markdown() -> str:
    """The config reference (docs/specs/config.md)."""
    out = [
        "# Configuration reference",
        "",
        "Generated from `src/cloudsoc/config/models.py` by `cloudsoc config reference`; do not edit by hand.",
        "Unknown keys are errors; `${NAME}` is replaced from the environment; errors name `file:line`.",
        "",
    ]
    sections: list[tuple[str, type[BaseModel]]] = [
        ("`storage`", StorageConfig),
        ("`pipeline`", PipelineConfig),
        ("`inputs.<name>` with `type: directory`", DirectoryInputConfig),
        ("`detection`", DetectionConfig),
        ("`intel.whois`", WhoisConfig),
        ("`console`", ConsoleConfig),
        ("`bastion`", BastionConfig),
        ("`bastion.ldap`", LdapConfig),
        ("`bastion.hosts.<name>`", HostConfig),
        ("`bastion.grants[]`", GrantConfig),
        ("`bastion.command_groups.<name>`", CommandGroupConfig),
        ("`bastion.command_rules[]`", CommandRuleConfig),
        *((f"`outputs.<name>` with `type: {_tag(m)}`", m) for m in _OUTPUT_MODELS),
        *((f"`feeds.<name>` with `type: {_tag(m)}`", m) for m in _FEED_MODELS),
    ]
    for title, model in sections:
        out += [f"## {title}", "", "| setting | default | meaning |", "| --- | --- | --- |"]
        for name, field in model.model_fields.items():
            default = _default(model, name)
            shown = "required" if field.is_required() else f"`{_yaml(default)}`"
            out.append(f"| `{name}` | {shown} | {field.description or ''} |")
        out.append("")
    out += ["## Example", "", "```yaml", example_yaml().rstrip(), "```", ""]
    return "\n".join(out)
