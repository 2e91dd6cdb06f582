"""KeySet, the matcher's fingerprint index, on the values of the real feeds under ../shared/data/intel."""

from __future__ import annotations

from array import array
from datetime import timedelta

import pytest

from cloudsoc.intel.indicator import Indicator, IndicatorType
from cloudsoc.intel.keyset import KeySet
from cloudsoc.intel.matcher import Matcher
from cloudsoc.intel.store import StoredIndicator

from .test_intel_matcher import DATA, NOW, rows  # noqa: F401  (the module fixture of the shared feeds)

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/intel is not checked out")


class Colliding(str):
    """A string that claims another string's hash: what a fingerprint collision looks like to the matcher."""

    def __new__(cls, value: str, like: str) -> Colliding:
        self = super().__new__(cls, value)
        self.like = like
        return self

    def __hash__(self) -> int:
        return hash(self.like)


def test_every_listed_value_is_a_member_and_nothing_else(rows: list[StoredIndicator]) -> None:  # noqa: F811
    listed = [r.indicator.value for r in rows]
    keys = KeySet.of(listed)
    assert len(keys) == len(set(listed)) > 140_000
    assert all(v in keys for v in listed)
    # The same values changed by one character, and values of other shapes, are all misses.
    assert not any(v + "x" in keys for v in listed)
    known = set(listed)
    private = (f"10.{i >> 8}.{i & 255}.1" for i in range(65_536))
    assert not any(v in keys for v in private if v not in known)
    # ~12–16 bytes a value, where a dict of the strings holds ~110.
    assert keys.nbytes < 20 * len(keys)


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

    class Fixed(str):
        h = 0

        def __hash__(self) -> int:
            return self.h

    for h in extremes:
        probe = Fixed("v")
        probe.h = h
        assert probe in keys
        probe.h = h ^ 0x5A5A
        assert probe not in keys


def test_a_fingerprint_collision_reads_no_row_and_is_a_miss() -> None:
    listed = Indicator(type=IndicatorType.IPV4, value="198.51.100.7", source="feed", confidence=80)
    domain = Indicator(type=IndicatorType.DOMAIN, value="evil.example", source="feed", confidence=80)
    matcher = Matcher.build(
        [StoredIndicator(indicator=i, expires=NOW + timedelta(days=30), updated=NOW) for i in (listed, domain)]
    )
    assert [r.indicator.value for r in matcher.ip("198.51.100.7")] == ["198.51.100.7"]
    # Another address with the listed one's fingerprint passes the index, and the row read by its value is empty.
    assert matcher.ip(Colliding("198.51.100.8", "198.51.100.7")) == []
    assert matcher.domain(Colliding("good.example", "evil.example")) == []
