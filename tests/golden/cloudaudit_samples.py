"""Loaders for the real cloud-audit samples in ../shared/data/cloudaudit, in a stable order.

Each loader yields ``(source, record)``: ``source`` is ``<file>#<test name or index>`` and names the record in
golden files and failure messages; ``record`` is the decoded record exactly as a parser would receive it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import yaml

PANTHER_DIR = Path("cloudaudit/panther-cloudtrail-rules")
OTRF_FILE = Path("cloudaudit/otrf-security-datasets/ec2_proxy_s3_exfiltration_2020-09-14011940.json")
STREAMALERT_FILE = Path("cloudaudit/streamalert-aliyun-actiontrail/aliyun_actiontrail.json")


def panther_cloudtrail(shared: Path) -> Iterator[tuple[str, Any]]:
    """The ``Log`` of every ``Tests:`` case of Panther's CloudTrail rules (some are not records at all)."""
    for path in sorted((shared / PANTHER_DIR).glob("*.yml")):
        rule = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in rule.get("Tests") or []:
            yield f"{path.name}#{case['Name']}", case.get("Log")


def otrf_cloudtrail(shared: Path) -> Iterator[tuple[str, Any]]:
    """OTRF's Logstash NDJSON export of a CloudTrail breach scenario, one record per line."""
    path = shared / OTRF_FILE
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    for index, line in enumerate(lines):
        yield f"{path.name}#{index}", orjson.loads(line)


def streamalert_actiontrail(shared: Path) -> Iterator[tuple[str, Any]]:
    """StreamAlert's ActionTrail classifier samples: the event is each test's ``data``."""
    path = shared / STREAMALERT_FILE
    for index, case in enumerate(orjson.loads(path.read_bytes())):
        yield f"{path.name}#{index}", case["data"]
