"""A console over a real store: the demo company's activity plus real public CloudTrail and ActionTrail samples,
ingested by the real `cloudsoc` commands once per session and copied for each test (tests change it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.console.harness import Harness
from tests.e2e.cli import SHARED_DATA, cloudsoc, cloudsoc_json

CLOUDAUDIT = SHARED_DATA / "cloudaudit"
OTRF = CLOUDAUDIT / "otrf-security-datasets" / "ec2_proxy_s3_exfiltration_2020-09-14011940.json"
ACTIONTRAIL = CLOUDAUDIT / "streamalert-aliyun-actiontrail" / "aliyun_actiontrail.json"


@pytest.fixture(scope="session")
def template_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not OTRF.is_file():
        pytest.skip(f"real sample data not found at {CLOUDAUDIT}")
    home = tmp_path_factory.mktemp("estate") / "home"
    # The smallest demo (two days, ~19k events, its attack chain raises alerts) and the real samples.
    cloudsoc_json(home, "demo", "--seed", "3", "--days", "2", "--events", "1000")
    cloudsoc(home, "ingest", "--no-progress", str(OTRF), str(ACTIONTRAIL))
    return home


@pytest.fixture
def estate(template_home: Path, tmp_path: Path) -> Harness:
    """A console over a fresh copy of the filled home."""
    home = tmp_path / "home"
    shutil.copytree(template_home, home, ignore=shutil.ignore_patterns("demo-logs"))
    return Harness(home)
