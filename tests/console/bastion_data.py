"""Bastion test data for the console: a real bash session on a pty recorded with the bastion's CastWriter into a
home's recordings folder, its SessionLog rows, and the matching audit documents (AuditJournal.document) ingested
through the HTTP API, as the daemon would store them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cloudsoc.bastion.audit import AuditJournal
from cloudsoc.bastion.sessions import SessionLog
from cloudsoc.bastion.terminal import Command
from tests.console.harness import Harness
from tests.servers.pty_shell import PtyShell

XSS: Final = "echo '<img src=x onerror=alert(1)>'"
# What is typed in the recorded session, in order; the last one pauses for the idle-gap compression.
TYPED: Final = (
    "echo one",
    "printf '\\033[31mred\\033[0m \\033[1;44mbold on blue\\033[0m\\n'",
    XSS,
    "rm -rf /var/lib/important",
    "sleep 3",
    "echo done",
)
RISKY: Final = "rm -rf /var/lib/important"


@dataclass
class BastionData:
    recorded: str  # the recorded session's id
    other: str  # an ended session without a recording, of another user
    live: str  # an active session
    recording: Path
    commands: list[Command] = field(default_factory=list)
    final: list[str] = field(default_factory=list)  # the recorded shell's last screen


def _doc(action: str, outcome: str, when: float, **kw: Any) -> dict[str, Any]:
    return AuditJournal.document(action, outcome, now=when, **kw)  # type: ignore[arg-type]


def _record(path: Path, work: Path) -> tuple[list[Command], list[str]]:
    work.mkdir(parents=True, exist_ok=True)
    (work / "rc").write_text("PS1='alice@web-01:\\w$ '\nHISTFILE=/dev/null\nset +H\n")
    shell = PtyShell(["bash", "--noprofile", "--rcfile", str(work / "rc"), "-i"], work, record=path, chunk_secs=0.5)
    try:
        shell.wait_for(b"$ ")
        shell.pump()
        for line in TYPED:
            shell.type(line + "\r", delay=0.005, settle=0.2)
            if line.startswith("sleep"):
                shell.wait_for(b"$ ", limit=6.0)
                shell.pump()
    finally:
        shell.close()
    return shell.commands, shell.extractor.screen.rows()


def build(h: Harness, work: Path) -> BastionData:
    """Record a session, log three sessions, and ingest their audit documents; returns what was made."""
    home = h.home
    day = datetime.now(UTC)
    recorded, other, live = "s-rec-0001", "s-old-0002", "s-live-0003"
    path = home / "bastion" / "recordings" / day.strftime("%Y/%m/%d") / f"{recorded}.cast.gz"
    log = SessionLog(home)
    try:
        log.start(recorded, user="alice", source_ip="10.8.0.5", target="web-01", system_user="deploy",
                  kind="shell", recording=path)  # fmt: skip
    finally:
        log.close()
    began = time.time()
    commands, final = _record(path, work)
    log = SessionLog(home)
    try:
        log.finish(recorded, status="closed", bytes_in=400, bytes_out=4000, commands=len(commands))
        log.start(other, user="bob", source_ip="10.8.0.9", target="db-01", system_user="postgres", kind="exec",
                  recording=None)  # fmt: skip
        log.finish(other, status="closed", bytes_in=10, bytes_out=20, commands=1)
        log.start(live, user="carol", source_ip="10.8.0.7", target="web-02", system_user="deploy", kind="shell",
                  recording=None)  # fmt: skip
    finally:
        log.close()
    docs: list[dict[str, Any]] = [
        _doc("bastion-login", "success", began - 1, user="alice", source_ip="10.8.0.5", session_id=recorded),
        _doc(
            "bastion-login", "failure", began - 30, user="mallory", source_ip="198.51.100.7", reason="wrong TOTP code"
        ),
        _doc(
            "bastion-exec",
            "success",
            began - 60,
            user="bob",
            source_ip="10.8.0.9",
            session_id=other,
            host="db-01",
            system_user="postgres",
            command_line="pg_dump sales",
            offset=0.2,
            risk="low",
        ),
        _doc(
            "bastion-command",
            "success",
            began - 5,
            user="carol",
            source_ip="10.8.0.7",
            session_id=live,
            host="web-02",
            system_user="deploy",
            command_line="tail -f /var/log/syslog",
            offset=1.0,
        ),
    ]
    for c in commands:
        risky = c.text == RISKY
        docs.append(
            _doc(
                "bastion-command",
                "success",
                began + c.time,
                user="alice",
                source_ip="10.8.0.5",
                session_id=recorded,
                host="web-01",
                system_user="deploy",
                command_line=c.text,
                cwd=c.cwd,
                offset=c.time,
                verdict="review" if risky else "accept",
                rule="rm-system" if risky else None,
                risk="high" if risky else "low",
            )
        )
    client = h.login("admin")
    r = client.post("/api/v1/ingest", json=docs)
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == len(docs), r.json()
    return BastionData(recorded, other, live, path, commands, final)
