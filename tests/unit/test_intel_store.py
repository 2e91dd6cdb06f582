"""The indicator store: upsert semantics, expiry, revocation, and a second process writing at the same time."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cloudsoc.intel.indicator import TLP, Indicator, IndicatorType
from cloudsoc.intel.store import INTEL_FILE, IndicatorStore

T = IndicatorType
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def _ip(value: str = "192.0.2.1", source: str = "feed-a", **kw: object) -> Indicator:
    return Indicator(type=T.IPV4, value=value, source=source, **kw)  # type: ignore[arg-type]


def test_upsert_keeps_first_seen_refreshes_last_seen_and_sightings(tmp_path: Path) -> None:
    store = IndicatorStore(tmp_path / INTEL_FILE)
    assert store.upsert([_ip(confidence=40, tags=["a"], sightings=2, description="first")], now=T0) == 1
    (row,) = store.get(T.IPV4, "192.0.2.1")
    assert row.indicator.first_seen == row.indicator.last_seen == T0  # a feed without dates means "listed now"
    assert row.expires == T0 + timedelta(days=30)

    later = T0 + timedelta(days=10)
    store.upsert([_ip(confidence=70, tags=["b"], sightings=1, tlp=TLP.AMBER)], now=later)
    (row,) = store.get(T.IPV4, "192.0.2.1")
    ind = row.indicator
    assert (ind.first_seen, ind.last_seen) == (T0, later)
    assert (ind.confidence, ind.tags, ind.tlp) == (70, ["b"], TLP.AMBER)  # the source's current word
    assert ind.sightings == 2  # the larger reported count: a re-import does not double it
    assert ind.description == "first"  # kept when the new record has none
    assert row.expires == later + timedelta(days=30)

    # An older record arriving late does not move dates backwards (except first_seen, which takes the earliest).
    store.upsert([_ip(first_seen=T0 - timedelta(days=5), last_seen=T0 - timedelta(days=5))], now=later)
    (row,) = store.get(T.IPV4, "192.0.2.1")
    assert (row.indicator.first_seen, row.indicator.last_seen) == (T0 - timedelta(days=5), later)
    assert row.expires == later + timedelta(days=30)


def test_one_row_per_source_and_counts(tmp_path: Path) -> None:
    store = IndicatorStore(tmp_path / INTEL_FILE)
    store.upsert(
        [
            _ip(),
            _ip(source="feed-b"),
            Indicator(type=T.DOMAIN, value="evil.example", source="feed-a"),
            Indicator(type=T.SHA256, value="e" * 64, source="feed-a"),
        ],
        now=T0,
    )
    assert [r.indicator.source for r in store.get(T.IPV4, "192.0.2.1")] == ["feed-a", "feed-b"]
    assert store.counts() == {"ipv4": 2, "domain": 1, "sha256": 1}
    assert [r.indicator.value for r in store.query(types=[T.DOMAIN])] == ["evil.example"]
    assert len(store.query(source="feed-b")) == 1


def test_expired_and_revoked_stay_queryable_but_stop_being_active(tmp_path: Path) -> None:
    store = IndicatorStore(tmp_path / INTEL_FILE)
    store.upsert(
        [
            _ip("192.0.2.1"),
            _ip("192.0.2.2", valid_until=T0 + timedelta(days=2)),  # the feed's own end wins when earlier
            Indicator(type=T.SHA256, value="e" * 64, source="feed-a"),
        ],
        now=T0,
    )
    assert store.revoke(T.IPV4, "192.0.2.1") == 1
    day3, day40 = T0 + timedelta(days=3), T0 + timedelta(days=40)
    assert [r.indicator.value for r in store.active(day3)] == ["e" * 64]
    assert [r.indicator.value for r in store.active(day40)] == ["e" * 64]  # the IPs expired, the hash did not
    assert store.counts(active_at=day3) == {"sha256": 1}
    assert store.counts() == {"ipv4": 2, "sha256": 1}  # never deleted
    (revoked,) = store.get(T.IPV4, "192.0.2.1")
    assert revoked.indicator.revoked and not revoked.active(T0)
    (short,) = store.get(T.IPV4, "192.0.2.2")
    assert short.expires == T0 + timedelta(days=2) and short.active(T0) and not short.active(day3)

    # A feed that lists the revoked indicator again revives it.
    store.upsert([_ip("192.0.2.1")], now=T0)
    assert store.get(T.IPV4, "192.0.2.1")[0].active(T0)


def test_local_sighting_refreshes_expiry(tmp_path: Path) -> None:
    store = IndicatorStore(tmp_path / INTEL_FILE)
    store.upsert([_ip(sightings=3)], now=T0)
    seen = T0 + timedelta(days=20)
    assert store.record_sighting(T.IPV4, "192.0.2.1", at=seen) == 1
    (row,) = store.get(T.IPV4, "192.0.2.1")
    assert row.indicator.sightings == 4 and row.indicator.last_seen == seen
    assert row.expires == seen + timedelta(days=30)


def _write_many(path: Path, source: str, n: int) -> None:
    store = IndicatorStore(path)
    for start in range(0, n, 500):
        store.upsert([_ip(f"10.0.{i // 250}.{i % 250}", source=source) for i in range(start, start + 500)], now=T0)
    store.close()


def test_a_second_process_writes_while_this_one_does(tmp_path: Path) -> None:
    path = tmp_path / INTEL_FILE
    store = IndicatorStore(path)
    proc = multiprocessing.get_context("spawn").Process(target=_write_many, args=(path, "other", 20_000))
    proc.start()
    _write_many(path, "mine", 20_000)
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert store.counts() == {"ipv4": 40_000}
    assert len(store.query(source="other")) == 20_000
    store.close()


def test_keys_and_matching_read_rows_of_older_versions_too(tmp_path: Path) -> None:
    # Earlier versions wrote the JSON lists as blobs; this one writes text. Both decode, and both are seen as
    # whitelist indicators by the matcher's key scan.
    store = IndicatorStore(tmp_path / INTEL_FILE)
    store.upsert([_ip("192.0.2.1", intel_types=["whitelist"]), _ip("192.0.2.2", description="")], now=T0)
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO indicators VALUES ('ipv4','192.0.2.3','old',?,50,NULL,?,NULL,?,?,NULL,?,0,1,0,0,?)",
            (
                b'["whitelist","c2"]',
                b'["t"]',
                "2026-11-01T08:00:00Z",
                "2026-11-01T08:00:00Z",
                "2026-12-01T08:00:00Z",
                "2026-11-01T08:00:00Z",
            ),
        )
    keys = sorted(store.keys(T0))
    assert keys == [
        ("ipv4", "192.0.2.1", "feed-a", True),
        ("ipv4", "192.0.2.2", "feed-a", False),
        ("ipv4", "192.0.2.3", "old", True),
    ]
    (old,) = store.matching(T.IPV4, "192.0.2.3", T0)
    assert (old.indicator.intel_types, old.indicator.tags, old.indicator.tlp) == (["whitelist", "c2"], ["t"], None)
    (new,) = store.matching(T.IPV4, "192.0.2.2", T0)
    assert new.indicator.description is None and new.indicator.valid_until is None  # '' is stored as NULL
    assert store.matching(T.IPV4, "192.0.2.3", T0 + timedelta(days=31)) == []  # expired by then
    store.close()
