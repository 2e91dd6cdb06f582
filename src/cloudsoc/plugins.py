"""Registry of plugins: a lazy ``name -> "module:Class"`` table for built-ins, plus entry points.

A plugin's ``name`` equals its module name and its config ``type:``. Third parties register under the entry
point groups ``cloudsoc.<kind>`` (e.g. ``cloudsoc.parsers``) and are found the same way.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Final

from cloudsoc.errors import PluginError

BUILTINS: Final[dict[str, dict[str, str]]] = {
    "parsers": {
        "aws_cloudtrail": "cloudsoc.parsers.aws_cloudtrail:AwsCloudtrail",
        "aliyun_actiontrail": "cloudsoc.parsers.aliyun_actiontrail:AliyunActiontrail",
    },
    "inputs": {
        "directory": "cloudsoc.inputs.directory:Directory",
        "files": "cloudsoc.inputs.files:Files",
    },
    "storage": {
        "duckdb": "cloudsoc.storage.duckdb:DuckdbStorage",
    },
    "outputs": {
        "webhook": "cloudsoc.outputs.webhook:Webhook",
        "dingtalk": "cloudsoc.outputs.dingtalk:Dingtalk",
        "wecom": "cloudsoc.outputs.wecom:Wecom",
        "feishu": "cloudsoc.outputs.feishu:Feishu",
        "slack": "cloudsoc.outputs.slack:Slack",
        "email": "cloudsoc.outputs.email:Email",
        "script": "cloudsoc.outputs.script:Script",
    },
    "intel_feeds": {
        "stix": "cloudsoc.intel.feeds.stix:Stix",
        "misp": "cloudsoc.intel.feeds.misp:Misp",
        "misp_feed": "cloudsoc.intel.feeds.misp_feed:MispFeed",
        "csv_map": "cloudsoc.intel.feeds.csv_map:CsvMap",
        "plain": "cloudsoc.intel.feeds.plain:Plain",
        "ipsum": "cloudsoc.intel.feeds.ipsum:Ipsum",
        "maltrail": "cloudsoc.intel.feeds.maltrail:Maltrail",
        "feodo": "cloudsoc.intel.feeds.feodo:Feodo",
    },
    "bus": {
        "memory": "cloudsoc.bus.memory:MemoryBus",
    },
}


class Registry:
    """Resolves plugin names of one kind to classes, importing each module only when first needed."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def names(self) -> list[str]:
        found = set(BUILTINS.get(self.kind, {}))
        found.update(ep.name for ep in entry_points(group=f"cloudsoc.{self.kind}"))
        return sorted(found)

    def load(self, name: str) -> Any:
        target = BUILTINS.get(self.kind, {}).get(name)
        if target is None:
            for ep in entry_points(group=f"cloudsoc.{self.kind}", name=name):
                return ep.load()
            raise PluginError(f"unknown {self.kind[:-1]} {name!r}; known: {', '.join(self.names())}")
        module_name, _, attr = target.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise PluginError(f"cannot load {self.kind[:-1]} {name!r} from {target}: {exc}") from None
