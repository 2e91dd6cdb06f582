"""KeySet, the matcher's fingerprint index: edge sizes, hashes of any sign, and collisions. (Every value of the real
feeds under ../shared/data/intel is checked in test_intel_matcher.py, beside the fixture that imports them.)"""

from __future__ import annotations

from array import array
from datetime import UTC, datetime, timedelta

import pytest

from cloudsoc.intel.indicator import Indicator, IndicatorType
from cloudsoc.intel.keyset import KeySet
from cloudsoc.intel.matcher import Matcher
from cloudsoc.intel.store import StoredIndicator

NOW = datetime(2026, 11, 26, tzinfo=UTC)


class Hashed(str):
    """A string with a chosen hash: a fingerprint collision (another value's hash) or an extreme one."""

    h: int

    def __new__(cls, value: str, h: int) -> Hashed:
        self = super().__new__(cls, value)
        self.h = h
        return self

    def __hash__(self) -> int:
        return self.h


@pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 100])
def test_small_and_empty_sets(size: int) -> None:
    values = [f"198.51.100.{i}" for i in range(size)]
    keys = KeySet.of(values + values)  # repeats count once
    assert len(keys) == size
    assert all(v in keys for v in values)
    assert "203.0.113.1" not in keys and "" not in keys


def test_the_hashes_of_any_sign_land_in_their_bucket() -> None:
    extremes = [-(2**63), -(2**63) + 1, -2, 0, 1, 2**63 - 1, 2**62, -(2**62)]
    keys = KeySet(array("q", extremes))  # (no hash is -1: Python turns it into -2)
    for h in extremes:
        assert Hashed("v", h) in keys
        assert Hashed("v", h ^ 0x5A5A) not in keys


def test_a_fingerprint_collision_reads_no_row_and_is_a_miss() -> None:
    listed = Indicator(type=IndicatorType.IPV4, value="198.51.100.7", source="feed", confidence=80)
    domain = Indicator(type=IndicatorType.DOMAIN, value="evil.example", source="feed", confidence=80)
    matcher = Matcher.build(
        [StoredIndicator(indicator=i, expires=NOW + timedelta(days=30), updated=NOW) for i in (listed, domain)]
    )
    assert [r.indicator.value for r in matcher.ip("198.51.100.7")] == ["198.51.100.7"]
    # Another address with the listed one's fingerprint passes the index, and the row read by its value is empty.
    assert matcher.ip(Hashed("198.51.100.8", hash("198.51.100.7"))) == []
    assert matcher.domain(Hashed("good.example", hash("evil.example"))) == []
