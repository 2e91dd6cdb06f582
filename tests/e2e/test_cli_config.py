"""``cloudsoc validate`` / ``config example`` / ``--home`` and ``CLOUDSOC_HOME`` as a user meets them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from cloudsoc.bastion.audit import AuditJournal
from tests.e2e.cli import cloudsoc


def test_config_example_validates(tmp_path: Path) -> None:
    example = cloudsoc(tmp_path, "config", "example").stdout
    cfg = tmp_path / "cloudsoc.yaml"
    cfg.write_text(example)
    proc = cloudsoc(tmp_path, "validate", "-c", str(cfg))
    assert "OK (1 input(s)" in proc.stdout
    assert "does not exist" in proc.stderr  # the example's bucket mount is not here: a warning, not an error


def test_validate_reports_file_line_and_exit_code(tmp_path: Path) -> None:
    cfg = tmp_path / "cloudsoc.yaml"
    cfg.write_text("inputs:\n  trail:\n    type: directory\n    path: /tmp\n    poll_secs: soon\n")
    proc = cloudsoc(tmp_path, "validate", "-c", str(cfg), check=False)
    assert proc.returncode == 2
    assert f"{cfg}:5: inputs.trail.poll_secs:" in proc.stderr.replace("\n", "")


def test_home_from_environment(tmp_path: Path) -> None:
    data = tmp_path / "one.json"
    data.write_text(
        '{"Records":[{"eventVersion":"1.08","eventTime":"2026-11-01T00:00:00Z","eventName":"ListBuckets",'
        '"eventSource":"s3.amazonaws.com","eventID":"e-1","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7",'
        '"userIdentity":{"type":"IAMUser","userName":"alice"}}]}'
    )
    env = {**os.environ, "CLOUDSOC_HOME": str(tmp_path / "envhome")}
    subprocess.run([sys.executable, "-m", "cloudsoc", "ingest", str(data)], env=env, check=True, capture_output=True)
    assert (tmp_path / "envhome" / "events.duckdb").exists()
    out = subprocess.run(
        [sys.executable, "-m", "cloudsoc", "search", "--json", "user.name:alice"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert '"e-1"' in out


def test_help_is_helpful(tmp_path: Path) -> None:
    top = cloudsoc(tmp_path, "--help").stdout
    for command in ("ingest", "search", "run", "validate", "config", "deadletters", "demo"):
        assert command in top
    assert "--since" in cloudsoc(tmp_path, "search", "--help").stdout


def test_run_once_stores_what_is_ready(tmp_path: Path) -> None:
    logs = tmp_path / "bucket" / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / "2026" / "11" / "01"
    logs.mkdir(parents=True)
    (logs / "a.json").write_text(
        '{"Records":[{"eventVersion":"1.08","eventTime":"2026-11-01T00:00:00Z","eventName":"ListBuckets",'
        '"eventSource":"s3.amazonaws.com","eventID":"once-1","awsRegion":"us-east-1"}]}'
    )
    cfg = tmp_path / "cloudsoc.yaml"
    cfg.write_text(f"inputs:\n  trail:\n    type: directory\n    path: {tmp_path / 'bucket'}\n    stable_secs: 0\n")
    proc = cloudsoc(tmp_path / "home", "run", "--once", "-c", str(cfg))
    assert "1 events stored" in proc.stderr and "checkpoints saved" in proc.stderr
    again = cloudsoc(tmp_path / "home", "run", "--once", "-c", str(cfg))
    assert "0 files" in again.stderr  # finished files are not read again


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    proc = cloudsoc(tmp_path, "ingest", str(tmp_path / "nope"), check=False)
    assert proc.returncode == 2
    assert "nope: no such file or directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_status_reports_the_last_run_and_the_store(tmp_path: Path) -> None:
    data = tmp_path / "one.json"
    data.write_text(
        '{"Records":[{"eventVersion":"1.08","eventTime":"2026-11-01T00:00:00Z","eventName":"ListBuckets",'
        '"eventSource":"s3.amazonaws.com","eventID":"s-1","awsRegion":"us-east-1"}]}'
    )
    home = tmp_path / "home"
    cloudsoc(home, "ingest", str(data))
    import orjson

    status = orjson.loads(cloudsoc(home, "status", "--json").stdout)
    assert status["running"] is False
    assert status["store"]["events"] == 1 and status["run"]["counters"]["stored"] == 1
    assert "1 events in 1 segments" in cloudsoc(home, "status").stdout


def test_log_content_is_never_taken_as_terminal_markup(tmp_path: Path) -> None:
    data = tmp_path / "x.json"
    data.write_text(
        '{"Records":[{"eventVersion":"1.08","eventTime":"2026-11-01T00:00:00Z","eventName":"ListBuckets",'
        '"eventSource":"s3.amazonaws.com","eventID":"m-1","awsRegion":"us-east-1",'
        '"userIdentity":{"type":"IAMUser","userName":"eve[/][red]x"}},'
        '{"eventVersion":"1.08","eventTime":"[/]","eventName":"X","eventSource":"s3.amazonaws.com","eventID":"m-2"}]}'
    )
    home = tmp_path / "home"
    cloudsoc(home, "ingest", str(data))
    out = cloudsoc(home, "search", "--limit", "5", "*").stdout
    assert "eve[/][red]x" in out
    listed = cloudsoc(home, "deadletters", "list")
    assert "[/]" in listed.stdout and "Traceback" not in listed.stderr
    bad = cloudsoc(home, "search", "user.name:[/]", check=False)
    assert "Traceback" not in bad.stderr


def test_run_reads_the_bastion_journal(tmp_path: Path) -> None:
    """The bastion (its own process) seals audit events into <home>/bastion/journal; the daemon stores them once."""
    home = tmp_path / "home"
    journal = AuditJournal(home, seal_secs=3600)  # sealed by hand here; tests/bastion/test_journal.py: by time
    doc = AuditJournal.document(
        "bastion-command",
        "failure",
        user="alice",
        source_ip="10.1.2.3",
        command_line="systemctl stop auditd",
        verdict="reject",
        risk="high",
    )
    journal.write(doc, sync=True)
    journal.seal()
    journal.write(AuditJournal.document("bastion-command", "success", user="bob", source_ip="10.1.2.4"))
    sealed = [p for p in journal.segments() if p.suffix == ".ndjson"]
    assert len(sealed) == 1 and sealed[0].parent.parent.parent.parent == home / "bastion" / "journal"
    cfg = tmp_path / "cloudsoc.yaml"
    cfg.write_text("pipeline:\n  batch_max_events: 100\n")
    proc = cloudsoc(home, "run", "--once", "-c", str(cfg))
    assert "1 events stored" in proc.stderr, proc.stderr  # the open segment waits for its seal
    journal.close()
    again = cloudsoc(home, "run", "--once", "-c", str(cfg))
    assert "1 events stored" in again.stderr, again.stderr  # now bob's, and alice's not twice
    found = cloudsoc(home, "search", "--json", "--since", "1d", "event.action:bastion-command")
    docs = [orjson.loads(line) for line in found.stdout.splitlines()]
    assert sorted(d["user"]["name"] for d in docs) == ["alice", "bob"]
    alice = next(d for d in docs if d["user"]["name"] == "alice")
    assert alice["process"]["command_line"] == "systemctl stop auditd"
    assert alice["cloudsoc"]["bastion"]["verdict"] == "reject" and alice["event"]["risk_score"] == 73
