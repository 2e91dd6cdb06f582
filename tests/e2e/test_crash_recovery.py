"""SIGKILL in the middle of ingest (and of the daemon), restart: every valid record stored exactly once."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from cloudsoc.storage.duckdb import DuckdbStorage
from tests.e2e.cli import SHARED_DATA, cloudsoc_json

OTRF = SHARED_DATA / "cloudaudit" / "otrf-security-datasets" / "ec2_proxy_s3_exfiltration_2020-09-14011940.json"
FILES = 240
PER_FILE = 400


def build_corpus(root: Path) -> set[str]:
    """~96k real CloudTrail records (OTRF, re-identified) in the S3 layout, with bad records sprinkled in."""
    base = [orjson.loads(line) for line in OTRF.read_bytes().splitlines() if line.strip()]
    expected: set[str] = set()
    n = 0
    for f in range(FILES):
        day = 1 + f // 24
        d = root / "AWSLogs" / "123456789123" / "CloudTrail" / "us-east-1" / "2020" / "09" / f"{day:02d}"
        d.mkdir(parents=True, exist_ok=True)
        records: list[Any] = []
        for _ in range(PER_FILE):
            rec = base[n % len(base)]
            eid = f"{n:08d}-0000-4000-8000-000000000000"
            records.append({**rec, "eventID": eid, "eventTime": f"2020-09-{day:02d}T{f % 24:02d}:00:00Z"})
            expected.add(eid)
            n += 1
        records.append(records[0])  # CloudTrail's at-least-once delivery: a duplicate inside the file
        if f % 40 == 0:
            records.append("not an object")
        name = f"123456789123_CloudTrail_us-east-1_202009{day:02d}T{f % 24:02d}00Z_{f:016d}.json.gz"
        (d / name).write_bytes(gzip.compress(orjson.dumps({"Records": records}), compresslevel=1))
    return expected


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    root = tmp_path_factory.mktemp("corpus")
    return root, build_corpus(root)


def stored(home: Path) -> tuple[list[str], int]:
    store = DuckdbStorage(home / "events.duckdb")  # opening as the writer also removes uncommitted segments
    ids = [r[0] for r in store.con.execute(f"SELECT event_id FROM {store.sql_view()}").fetchall()]
    dead = len(store.dead_letters(limit=1_000_000))
    store.close()
    return ids, dead


def wait_for_commits(home: Path, proc: subprocess.Popen[bytes], min_stored: int = 10_000) -> None:
    """Wait until status.json reports committed batches, so the kill lands mid-way."""
    status = home / "status.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("the process ended before it could be killed; make the corpus larger")
        try:
            if orjson.loads(status.read_bytes())["counters"]["stored"] >= min_stored:
                return
        except (OSError, orjson.JSONDecodeError, KeyError):
            pass
        time.sleep(0.01)
    raise AssertionError("no commit seen in time")


@pytest.mark.parametrize("cores", ["all", "one"])
def test_ingest_killed_and_restarted(corpus: tuple[Path, set[str]], tmp_path: Path, cores: str) -> None:
    """On one core (taskset) batches are written on the event loop's thread instead of a writer thread."""
    root, expected = corpus
    home = tmp_path / "home"
    pin = ["taskset", "-c", str(min(os.sched_getaffinity(0)))] if cores == "one" else []
    proc = subprocess.Popen(
        [*pin, sys.executable, "-m", "cloudsoc", "--home", str(home), "ingest", "--json", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for_commits(home, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial, _ = stored(home)
    assert 0 < len(partial) < len(expected), "the kill should land mid-way"
    summary = cloudsoc_json(home, "ingest", str(root))
    skipped = summary["skipped_files"]
    assert isinstance(skipped, int) and skipped > 0  # committed files were not read again
    ids, dead = stored(home)
    assert len(ids) == len(set(ids)), "no duplicates"
    assert set(ids) == expected, "no loss"
    assert dead == FILES // 40  # each bad record dead-lettered once, across the crash


def test_daemon_killed_and_restarted(corpus: tuple[Path, set[str]], tmp_path: Path) -> None:
    root, expected = corpus
    home = tmp_path / "home"
    cfg = tmp_path / "cloudsoc.yaml"
    cfg.write_text(
        f"inputs:\n  trail:\n    type: directory\n    path: {root}\n    poll_secs: 0.2\n    stable_secs: 0\n"
        "pipeline:\n  batch_max_events: 2000\n"
    )

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "cloudsoc", "--home", str(home), "run", "--no-console", "-c", str(cfg)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    proc = start()
    wait_for_commits(home, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial, _ = stored(home)
    assert 0 < len(partial) < len(expected)
    proc = start()
    status_path = home / "status.json"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if status_path.exists():
            try:
                status = orjson.loads(status_path.read_bytes())
            except orjson.JSONDecodeError:
                status = {}
            trail = status.get("inputs", {}).get("trail", {})
            if trail.get("idle_polls", 0) >= 2 and status.get("queued") == 0 and status.get("pid") == proc.pid:
                break
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.2)
    else:
        raise AssertionError("the daemon did not catch up in time")
    proc.send_signal(signal.SIGTERM)  # graceful: flush, checkpoint, exit 0
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert b"checkpoints saved" in err
    ids, dead = stored(home)
    assert len(ids) == len(set(ids))
    assert set(ids) == expected
    assert dead == FILES // 40
    assert os.path.exists(status_path)
