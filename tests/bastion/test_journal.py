"""The audit journal: segments sealed by time and at close, crash leftovers sealed at the next start."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from cloudsoc.bastion.audit import AuditJournal
from cloudsoc.pipeline.processor import Processor


def _doc(user: str) -> dict[str, object]:
    return AuditJournal.document("bastion-command", "success", user=user, source_ip="10.0.0.9", command_line="ls")


def test_segments_are_sealed_within_about_a_second_and_parse_as_ecs(tmp_path: Path) -> None:
    journal = AuditJournal(tmp_path, seal_secs=0.3)
    try:
        journal.write(_doc("alice"))
        journal.write(_doc("bob"))
        deadline = time.monotonic() + 5
        while not any(p.suffix == ".ndjson" for p in journal.segments()) and time.monotonic() < deadline:
            time.sleep(0.05)
        sealed = journal.segments()
        assert len(sealed) == 1 and sealed[0].suffix == ".ndjson"
        # Under a YYYY/MM/DD folder, so the directory input lists only new date folders.
        assert sealed[0].relative_to(journal.dir).parts[0].isdigit()
        events, dead, seen = Processor("ecs").process(sealed[0].read_bytes(), "bastion", str(sealed[0]))
        assert seen == 2 and not dead
        assert [e.fields["user"]["name"] for e in events] == ["alice", "bob"]
        assert len({e.id for e in events}) == 2
    finally:
        journal.close()


def test_a_crashed_bastions_open_segment_is_sealed_at_the_next_start(tmp_path: Path) -> None:
    journal_dir = tmp_path / "bastion" / "journal"
    journal_dir.mkdir(parents=True)
    # What a bastion killed mid-session leaves: its open segment, flushed line by line (and an empty one).
    (journal_dir / ".4242-000003.part").write_bytes(orjson.dumps(_doc("alice")) + b"\n")
    (journal_dir / ".4242-000004.part").write_bytes(b"")
    journal = AuditJournal(tmp_path, seal_secs=3600)
    try:
        sealed = journal.segments()
        assert [p.suffix for p in sealed] == [".ndjson"]
        assert sealed[0].name.endswith("-4242-000003.ndjson")
        assert orjson.loads(sealed[0].read_bytes().splitlines()[0])["user"]["name"] == "alice"
        assert not list(journal_dir.glob(".*.part"))
    finally:
        journal.close()


_SIBLING = """
import sys
from pathlib import Path
from cloudsoc.bastion.audit import AuditJournal
journal = AuditJournal(Path(sys.argv[1]), seal_secs=3600)
def doc(user):
    return AuditJournal.document("bastion-command", "success", user=user, source_ip="10.0.0.9", command_line="ls")
journal.write(doc("carol"))
print("open", flush=True)
sys.stdin.readline()  # the other worker starts meanwhile
journal.write(doc("dave"))
journal.close()
"""


def test_a_starting_worker_leaves_a_live_siblings_open_segment_alone(tmp_path: Path) -> None:
    """Two bastion workers share the journal: the one that starts later must not seal the other's open segment
    (the pipeline reads a sealed segment once; lines written to it afterwards would never be read)."""
    import subprocess
    import sys

    sibling = subprocess.Popen(
        [sys.executable, "-c", _SIBLING, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert sibling.stdout is not None and sibling.stdin is not None
        assert sibling.stdout.readline().strip() == "open"
        journal = AuditJournal(tmp_path, seal_secs=3600)
        try:
            assert [p.suffix for p in journal.segments()] == [".part"]  # still the sibling's, still open
        finally:
            journal.close()
        sibling.stdin.write("\n")
        sibling.stdin.flush()
        assert sibling.wait(30) == 0
    finally:
        sibling.kill()
    after = AuditJournal(tmp_path, seal_secs=3600)
    sealed = after.segments()
    after.close()
    assert len(sealed) == 1 and sealed[0].suffix == ".ndjson"
    assert [orjson.loads(line)["user"]["name"] for line in sealed[0].read_bytes().splitlines()] == ["carol", "dave"]
