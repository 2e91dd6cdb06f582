"""Golden tests: every real CloudTrail/ActionTrail sample → the committed ECS documents (or expected errors).

``pytest tests/golden --update-golden`` rewrites the JSONL files from the current parsers; review the diff.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cloudsoc.errors import ParseError
from cloudsoc.parsers.aliyun_actiontrail import AliyunActiontrail
from cloudsoc.parsers.aws_cloudtrail import AwsCloudtrail
from cloudsoc.parsers.base import Parser
from tests.golden import cloudaudit_samples as samples

GOLDEN = Path(__file__).resolve().parent

Loader = Callable[[Path], Iterator[tuple[str, Any]]]

# golden file stem -> (loader, parser, records expected, errors expected).
# Panther's 28 errors are test fixtures that are not CloudTrail records: 3 `Log: null`, 15 hand-trimmed logs
# without eventTime, 8 data-lake exports with lower-cased keys (`eventname`, `eventtime`), and eventTime
# "redacted" / "..." placeholders. The golden file names each one with its reason.
SETS: dict[str, tuple[Loader, Parser, int, int]] = {
    "panther_cloudtrail": (samples.panther_cloudtrail, AwsCloudtrail(), 464, 28),
    "otrf_cloudtrail": (samples.otrf_cloudtrail, AwsCloudtrail(), 103, 0),
    "streamalert_actiontrail": (samples.streamalert_actiontrail, AliyunActiontrail(), 4, 0),
}


def _entry(parser: Parser, source: str, record: Any) -> dict[str, Any]:
    try:
        return {"source": source, "ecs": parser.parse(record)}
    except ParseError as exc:
        return {"source": source, "error": exc.reason}


def _dump(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@pytest.mark.parametrize("name", SETS)
def test_golden(name: str, shared_data: Path, update_golden: bool) -> None:
    loader, parser, expected_records, expected_errors = SETS[name]
    lines: list[bytes] = []
    errors = 0
    for source, record in loader(shared_data):
        before = _dump(record)
        entry = _entry(parser, source, record)
        # Pure: the caller's record is untouched (expansions go to copies) and a second parse is identical.
        assert _dump(record) == before, f"{source}: parse() changed its input"
        line = _dump(entry)
        assert _dump(_entry(parser, source, record)) == line, f"{source}: parse() is not deterministic"
        errors += "error" in entry
        lines.append(line)
    assert len(lines) == expected_records
    assert errors == expected_errors

    path = GOLDEN / f"{name}.jsonl"
    if update_golden:
        path.write_bytes(b"\n".join(lines) + b"\n")
        return
    assert path.exists(), f"{path.name} missing: run pytest --update-golden and review it"
    expected = path.read_bytes().splitlines()
    for got, want in zip(lines, expected, strict=False):
        if got != want:
            source = orjson.loads(got)["source"]
            assert orjson.loads(got) == orjson.loads(want), f"{name}: {source} differs from {path.name}"
    assert len(lines) == len(expected), f"{path.name} has {len(expected)} lines, the data {len(lines)}"


def test_matches_is_exclusive_on_real_data(shared_data: Path) -> None:
    """Auto-detection picks exactly the right parser for every real record that parses."""
    aws, aliyun = AwsCloudtrail(), AliyunActiontrail()
    for name, (loader, parser, _, _) in SETS.items():
        for source, record in loader(shared_data):
            if not isinstance(record, dict):
                continue
            both = aws.matches(record), aliyun.matches(record)
            assert both != (True, True), f"{name}: {source} matches both parsers"
            if "error" not in _entry(parser, source, record):
                wanted = isinstance(parser, AwsCloudtrail), isinstance(parser, AliyunActiontrail)
                assert both == wanted, f"{name}: {source} detected as (aws, aliyun) = {both}"
