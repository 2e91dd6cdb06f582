"""The DuckDB store on a real file: atomic batches, de-duplication, dead letters, checkpoints, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloudsoc.errors import StoreLockedError
from cloudsoc.event import DeadLetter, Event, Origin
from cloudsoc.storage.base import Checkpoint
from cloudsoc.storage.duckdb import DuckdbStorage

ORIGIN = Origin("test", "f.json", 0)


def ev(i: int, provider: str = "aws", ts: str = "2026-11-01T10:00:00.000000Z", **extra: object) -> Event:
    doc = {
        "@timestamp": ts,
        "event": {"id": f"id-{i}", "action": "ConsoleLogin", "outcome": "success"},
        "cloud": {"provider": provider, "account": {"id": "123456789012"}},
        "source": {"ip": "203.0.113.7"},
        "user": {"name": "alice"},
        **extra,
    }
    return Event(doc, ORIGIN)


def test_write_dedupes_within_and_across_batches(tmp_path: Path) -> None:
    s = DuckdbStorage(tmp_path / "e.duckdb")
    r = s.write([ev(1), ev(2), ev(1)], [], [])
    assert (r.stored, r.duplicates) == (2, 1)
    r = s.write([ev(2), ev(3), ev(2, provider="aliyun")], [], [])
    assert (r.stored, r.duplicates) == (2, 1)  # same id on another cloud is another event
    assert s.stats()["events"] == 4
    s.close()


def test_typed_columns_and_document(tmp_path: Path) -> None:
    s = DuckdbStorage(tmp_path / "e.duckdb")
    s.write([ev(1, ts="2026-11-01T10:00:00.123456Z", source={"ip": "2001:db8::1"})], [], [])
    row = s.con.execute(
        f"SELECT ts, event_action, cloud_account_id, source_ip, source_ip_num, doc->>'$.user.name' FROM {s.sql_view()}"
    ).fetchone()
    assert row == (
        datetime(2026, 11, 1, 10, 0, 0, 123456),
        "ConsoleLogin",
        "123456789012",
        "2001:db8::1",
        0x20010DB8000000000000000000000001,
        "alice",
    )
    s.close()


def test_ipv4_number_is_v4_mapped(tmp_path: Path) -> None:
    s = DuckdbStorage(tmp_path / "e.duckdb")
    s.write([ev(1)], [], [])
    (num,) = s.con.execute(f"SELECT source_ip_num FROM {s.sql_view()}").fetchone() or (None,)
    assert num == (0xFFFF << 32) | (203 << 24 | 0 << 16 | 113 << 8 | 7)
    s.close()


def test_oversized_event_becomes_dead_letter(tmp_path: Path) -> None:
    s = DuckdbStorage(tmp_path / "e.duckdb", max_event_bytes=10_000)
    r = s.write([ev(1, big="x" * 20_000), ev(2)], [], [])
    assert (r.stored, r.dead_letters) == (1, 1)
    (d,) = s.dead_letters()
    assert "over storage.max_event_bytes" in d.reason and len(d.raw) > 20_000
    s.close()


def test_dead_letters_and_checkpoints_commit_with_events(tmp_path: Path) -> None:
    s = DuckdbStorage(tmp_path / "e.duckdb")
    dl = DeadLetter(raw=b"{bad", reason="malformed JSON", origin=Origin("t", "a.json", 3, 120))
    cp = Checkpoint("t", "a.json", 10, 99, 4)
    r = s.write([ev(1)], [dl], [cp])
    assert r.dead_letters == 1
    assert s.checkpoints("t") == {"a.json": cp}
    # the same dead letter again (file re-read) is not doubled
    assert s.write([], [dl], []).dead_letters == 0
    (d,) = s.dead_letters()
    assert (d.path, d.index, d.offset, d.raw, d.reason) == ("a.json", 3, 120, b"{bad", "malformed JSON")
    s.mark_replayed([d.id])
    assert s.dead_letters() == [] and len(s.dead_letters(include_replayed=True)) == 1
    s.close()


def test_failed_write_rolls_back_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = DuckdbStorage(tmp_path / "e.duckdb")

    def boom(*_a: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(s, "_upsert_checkpoints", boom)
    with pytest.raises(RuntimeError):
        s.write([ev(1)], [DeadLetter(b"x", "r", ORIGIN)], [Checkpoint("t", "a", 1, 1, 1)])
    monkeypatch.undo()
    assert s.stats()["events"] == 0 and s.dead_letters() == [] and s.checkpoints("t") == {}
    s.close()


def test_persists_across_reopen_and_locks_other_processes(tmp_path: Path) -> None:
    path = tmp_path / "e.duckdb"
    s = DuckdbStorage(path)
    s.write([ev(1), ev(2)], [], [])
    s.close()
    s = DuckdbStorage(path)
    assert s.write([ev(1)], [], []).duplicates == 1
    s.close()
    ro = DuckdbStorage(path, read_only=True)
    assert ro.stats()["events"] == 2
    ro.close()


def test_search_needs_no_lock_and_state_says_what_to_do(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    path = tmp_path / "e.duckdb"
    w = DuckdbStorage(path)
    w.write([ev(1)], [], [])
    w.close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('ok', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ok"
        reader = DuckdbStorage(path, read_only=True)
        assert reader.search("user.name:alice").total == 1  # searches read segments: no lock needed
        with pytest.raises(StoreLockedError, match="in use by another cloudsoc process"):
            reader.dead_letters()
        reader.close()
        with pytest.raises(StoreLockedError, match="in use by another cloudsoc process"):
            DuckdbStorage(path)
    finally:
        holder.kill()
        holder.wait()
        time.sleep(0.1)


def test_retention_drops_old_events(tmp_path: Path) -> None:
    s = DuckdbStorage(tmp_path / "e.duckdb")
    now = datetime.now(UTC)
    old = (now - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    new = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    s.write([ev(1, ts=old), ev(2, ts=new)], [], [])
    assert s.apply_retention(30) == 1
    assert s.stats()["events"] == 1
    s.close()


def test_crashed_batch_leaves_no_trace(tmp_path: Path) -> None:
    path = tmp_path / "e.duckdb"
    s = DuckdbStorage(path)
    s.write([ev(1)], [], [])
    # a segment written but never committed (the process died between the two)
    orphan = s.segments_dir / "deadbeef.parquet"
    orphan.write_bytes((s.segments_dir / next(iter(s.segments_dir.iterdir())).name).read_bytes())
    s.close()
    s = DuckdbStorage(path)
    assert not orphan.exists() and s.stats()["events"] == 1
    s.close()


def test_small_segments_are_merged(tmp_path: Path) -> None:
    s = DuckdbStorage(tmp_path / "e.duckdb")
    for i in range(40):
        s.write([ev(i, ts=f"2026-11-01T10:{i:02d}:00.000000Z")], [], [])
    assert s.stats()["segments"] < 40
    assert s.stats()["events"] == 40
    assert s.write([ev(7, ts="2026-11-01T10:07:00.000000Z")], [], []).duplicates == 1
    assert len(list(s.segments_dir.iterdir())) == s.stats()["segments"]
    s.close()


def test_segment_time_ranges_prune_searches(tmp_path: Path) -> None:
    s = DuckdbStorage(tmp_path / "e.duckdb")
    # one batch with its events out of order, another a day later
    s.write([ev(i, ts=f"2026-11-01T10:00:{59 - i:02d}.000000Z") for i in range(10)], [], [])
    s.write([ev(100 + i, ts=f"2026-11-02T10:00:{i:02d}.000000Z") for i in range(5)], [], [])
    ranges = s.con.execute("SELECT ts_min, ts_max, rows FROM segments ORDER BY ts_min").fetchall()
    assert ranges == [
        (datetime(2026, 11, 1, 10, 0, 50), datetime(2026, 11, 1, 10, 0, 59), 10),
        (datetime(2026, 11, 2, 10, 0, 0), datetime(2026, 11, 2, 10, 0, 4), 5),
    ]
    assert len(s._segment_files(datetime(2026, 11, 2), None)) == 1  # the first day's segment is not even opened
    result = s.search("*", since=datetime(2026, 11, 2, tzinfo=UTC))
    assert result.total == 5 and result.events[0]["event"]["id"] == "id-104"  # newest first
    s.close()


def test_event_without_time_is_a_dead_letter(tmp_path: Path) -> None:
    s = DuckdbStorage(tmp_path / "e.duckdb")
    no_time = ev(1)
    del no_time.fields["@timestamp"]
    r = s.write([no_time, ev(2)], [], [])
    assert (r.stored, r.dead_letters) == (1, 1)
    assert "no @timestamp" in s.dead_letters()[0].reason
    s.close()


def test_retention_never_leaves_a_reader_with_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "e.duckdb"
    s = DuckdbStorage(path)
    now = datetime.now(UTC)
    for day in (50, 40, 1):
        t = (now - timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        s.write([ev(day, ts=t)], [], [])
    assert s.apply_retention(30) == 2
    reader = DuckdbStorage(path, read_only=True)
    assert reader.search("*").total == 1  # every file the published manifest names exists
    reader.close()
    s.close()


def test_a_lost_segment_file_is_forgotten_and_its_sources_read_again(tmp_path: Path) -> None:
    path = tmp_path / "e.duckdb"
    s = DuckdbStorage(path)
    s.write([ev(1)], [], [Checkpoint("t", "a.json", 1, 1, 1)])
    (victim,) = list(s.segments_dir.iterdir())
    s.close()
    victim.unlink()  # as after an OS crash that lost the file but not the manifest row
    s = DuckdbStorage(path)
    assert s.stats()["segments"] == 0 and s.checkpoints("t") == {}
    s.close()


def test_a_newer_version_of_a_file_supersedes_its_old_dead_letters(tmp_path: Path) -> None:
    s = DuckdbStorage(tmp_path / "e.duckdb")
    cut = DeadLetter(b"{...", "truncated gzip stream", Origin("trail", "a.json.gz", -1, -1), "framing")
    s.write([], [cut], [Checkpoint("trail", "a.json.gz", 100, 1, 0)])  # read while still being uploaded
    assert len(s.dead_letters()) == 1
    s.write([ev(1)], [], [Checkpoint("trail", "a.json.gz", 300, 2, 1)])  # the complete object
    assert s.dead_letters() == [] and len(s.dead_letters(include_replayed=True)) == 1
    other = DeadLetter(b"x", "malformed JSON", Origin("trail", "b.json", 0, 0), "framing")
    s.write([], [other], [Checkpoint("trail", "b.json", 1, 1, 1)])
    s.write([ev(2)], [], [Checkpoint("trail", "c.json", 1, 1, 1)])  # another file leaves b's alone
    assert [d.path for d in s.dead_letters()] == ["b.json"]
    s.close()
