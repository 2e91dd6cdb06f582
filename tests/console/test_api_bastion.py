"""/api/v1/bastion over a real recorded bash session (a pty, recorded by the bastion's CastWriter), its SessionLog
rows and its audit documents ingested through the HTTP API: search by command, the command list with offsets,
replay frames that rebuild the recorded screen (whole and in pieces), the asciicast download, the dashboard, and
who may see and kill what."""

from __future__ import annotations

import gzip
import json
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cloudsoc.api.routers.bastion import MAX_WINDOW
from cloudsoc.bastion.asciicast import CastWriter
from cloudsoc.bastion.replay import render
from cloudsoc.bastion.sessions import SessionLog
from tests.console.bastion_data import RISKY, XSS, BastionData, build
from tests.console.harness import Harness


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Harness, BastionData]:
    base = tmp_path_factory.mktemp("bastion")
    h = Harness(base / "home")
    return h, build(h, base / "work")


def screen(frames: list[dict[str, Any]], grid: list[str] | None = None) -> list[str]:
    """Apply frames as the player does: a size resets the grid, each row is the concatenation of its runs."""
    rows = list(grid or [])
    for f in frames:
        if f["size"]:
            rows = [""] * f["size"][1]
        for y, runs in f["rows"]:
            rows[y] = "".join(text for text, _style in runs)
    return [r.rstrip() for r in rows]


def test_sessions_filters_and_search_by_command(made: tuple[Harness, BastionData]) -> None:
    h, data = made
    c = h.login("auditor")
    page = c.get("/api/v1/bastion/sessions").json()
    assert page["total"] == 3
    assert [s["id"] for s in page["items"]] == [data.live, data.other, data.recorded]  # newest first
    assert page["items"][0]["live"] is True and page["items"][2]["recorded"] is True

    def ids(**params: str) -> list[str]:
        r = c.get("/api/v1/bastion/sessions", params=params)
        assert r.status_code == 200, r.text
        return [s["id"] for s in r.json()["items"]]

    assert ids(command="<IMG src") == [data.recorded]  # any case, special characters as text
    assert ids(command="pg_dump") == [data.other]  # exec requests count too
    assert ids(command="no such command anywhere") == []
    assert ids(status="live") == [data.live]
    assert ids(status="ended") == [data.other, data.recorded]
    assert ids(user="bob") == [data.other]
    assert ids(host="WEB") == [data.live, data.recorded]
    assert ids(since="1h", command="echo") == [data.recorded]
    assert ids(until="2020-01-01") == []
    paged = c.get("/api/v1/bastion/sessions", params={"limit": 1, "offset": 1}).json()
    assert paged["total"] == 3 and [s["id"] for s in paged["items"]] == [data.other]
    assert c.get("/api/v1/bastion/sessions", params={"status": "zombie"}).status_code == 422


def test_session_detail_lists_its_commands_with_offsets_and_verdicts(made: tuple[Harness, BastionData]) -> None:
    h, data = made
    c = h.login("auditor")
    r = c.get(f"/api/v1/bastion/sessions/{data.recorded}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["session"]["user"] == "alice" and body["session"]["target"] == "web-01"
    assert [x["command_line"] for x in body["commands"]] == [cmd.text for cmd in data.commands]
    assert [x["offset"] for x in body["commands"]] == [round(cmd.time, 3) for cmd in data.commands]
    risky = [x for x in body["commands"] if x["high_risk"]]
    assert [(x["command_line"], x["verdict"], x["rule"], x["risk_score"]) for x in risky] == [
        (RISKY, "review", "rm-system", 73)
    ]
    assert body["width"] == 80 and body["height"] == 24
    assert body["duration"] == pytest.approx(data.commands[-1].time, abs=1.0)
    assert c.get("/api/v1/bastion/sessions/nope").status_code == 404
    other = c.get(f"/api/v1/bastion/sessions/{data.other}").json()
    assert other["duration"] is None and [x["action"] for x in other["commands"]] == ["bastion-exec"]


def test_frames_rebuild_the_recorded_screen_whole_and_in_pieces(made: tuple[Harness, BastionData]) -> None:
    h, data = made
    c = h.login("auditor")
    url = f"/api/v1/bastion/sessions/{data.recorded}/frames"
    whole = c.get(url, params={"from": 0, "to": 600}).json()
    assert whole["end"] is True and whole["start"] == 0
    final = render(data.recording)
    assert final == data.final  # the recording replays to the shell's own last screen
    assert screen(whole["frames"]) == final
    times = [f["t"] for f in whole["frames"]]
    assert times == sorted(times) and whole["frames"][0]["size"] == [80, 24]
    # changes are grouped: a frame opens at most every 100 ms of session time
    assert len(times) <= whole["duration"] / 0.1 + 2
    # colours travel as classes
    styles = {style for f in whole["frames"] for _y, runs in f["rows"] for text, style in runs if text.strip()}
    assert "f-red" in styles and any("t-b" in s and "b-blue" in s for s in styles)
    # in pieces of one second: each piece starts with the full screen at its start, the last one ends
    grid: list[str] = []
    start, pieces = 0.0, 0
    while True:
        piece = c.get(url, params={"from": start, "to": start + 1.0}).json()
        pieces += 1
        first = piece["frames"][0]
        assert first["t"] == pytest.approx(start, abs=0.001) and len(first["rows"]) == 24
        assert screen([first]) == render(data.recording, until=start)  # a seek shows the moment's screen
        grid = screen(piece["frames"], grid)
        if piece["end"]:
            break
        assert piece["until"] == pytest.approx(start + 1.0)
        start = piece["until"]
    assert pieces >= 5 and grid == final
    # a window is capped
    capped = c.get(url, params={"from": 0, "to": 10_000}).json()
    assert capped["until"] <= MAX_WINDOW
    assert c.get(url, params={"from": 5, "to": 1}).status_code == 400
    assert c.get(f"/api/v1/bastion/sessions/{data.other}/frames").status_code == 404  # no recording


def test_cast_download_is_the_plain_asciicast(made: tuple[Harness, BastionData]) -> None:
    h, data = made
    r = h.login("auditor").get(f"/api/v1/bastion/sessions/{data.recorded}/cast")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert f'filename="{data.recorded}.cast"' in r.headers["content-disposition"]
    assert r.content == gzip.decompress(data.recording.read_bytes())
    lines = r.text.splitlines()
    assert json.loads(lines[0])["version"] == 2 and json.loads(lines[0])["width"] == 80
    assert any(json.loads(line)[1] == "o" and "<img src=x" in json.loads(line)[2] for line in lines[1:])


def test_activity_dashboard(made: tuple[Harness, BastionData]) -> None:
    h, data = made
    r = h.login("auditor").get("/api/v1/bastion/activity", params={"since": "24h"})
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["commands"] == len(data.commands) + 2  # alice's, bob's exec, carol's
    assert a["high_risk"] == 1 and sum(p["commands"] for p in a["timeline"]) == a["commands"]
    assert {u["value"]: u["count"] for u in a["users"]} == {"alice": len(data.commands), "bob": 1, "carol": 1}
    programs = {p["value"]: p["count"] for p in a["top_programs"]}
    assert programs["echo"] == 3 and programs["rm"] == 1 and programs["pg_dump"] == 1
    assert XSS in {x["value"] for x in a["top_commands"]}
    assert [x["command_line"] for x in a["risky"]] == [RISKY]
    assert a["risky"][0]["url"].startswith(f"/bastion/sessions/{data.recorded}?t=")
    latest = [x["command_line"] for x in a["latest"]]
    assert latest[0] == "echo done" and len(latest) == a["commands"]
    assert a["logins"] == {"success": 1, "failure": 1}
    assert [(x["user"], x["reason"]) for x in a["refusals"]] == [("mallory", "wrong TOTP code")]
    assert a["live_sessions"] == 1
    old = h.login("admin").get("/api/v1/bastion/activity", params={"since": "2020-01-01", "until": "2020-01-02"})
    assert old.json()["commands"] == 0 and old.json()["latest"] == []


def test_who_may_see_and_kill(made: tuple[Harness, BastionData]) -> None:
    h, data = made
    paths = [
        "/api/v1/bastion/sessions",
        f"/api/v1/bastion/sessions/{data.recorded}",
        f"/api/v1/bastion/sessions/{data.recorded}/frames",
        f"/api/v1/bastion/sessions/{data.recorded}/cast",
        "/api/v1/bastion/activity",
    ]
    anonymous = h.client()
    for role in ("viewer", "analyst"):
        c = h.login(role)
        for path in paths:
            assert c.get(path).status_code == 403, (role, path)
        assert c.get("/bastion").status_code == 403
    for path in paths:
        assert anonymous.get(path).status_code == 401
        assert h.login("admin").get(path).status_code == 200
    kill = f"/api/v1/bastion/sessions/{data.live}/kill"
    assert h.login("auditor").post(kill).status_code == 403  # reads, never acts
    admin = h.login("admin")
    token = admin.headers.pop("X-CSRF-Token")
    assert admin.post(kill).status_code == 403  # no CSRF token
    admin.headers["X-CSRF-Token"] = token
    r = admin.post(kill)
    assert r.status_code == 200, r.text
    log = SessionLog(h.home)
    try:
        flagged = log.conn.execute("SELECT kill_requested FROM bastion_sessions WHERE id = ?", (data.live,)).fetchone()
    finally:
        log.close()
    assert flagged == (1,)
    assert admin.post(f"/api/v1/bastion/sessions/{data.recorded}/kill").status_code == 409  # already ended
    assert admin.post("/api/v1/bastion/sessions/nope/kill").status_code == 404
    audit = admin.get("/api/v1/audit", params={"action": "bastion.kill"}).json()["items"]
    assert [(e["user"], e["target"]) for e in audit] == [("admin", data.live)]


def test_a_recording_path_outside_the_recordings_folder_is_not_served(
    made: tuple[Harness, BastionData], tmp_path: Path
) -> None:
    h, _data = made
    outside = tmp_path / "x.cast"
    outside.write_text('{"version": 2, "width": 80, "height": 24}\n[0.1, "o", "secret"]\n')
    log = SessionLog(h.home)
    try:
        log.start("s-evil", user="eve", source_ip="10.0.0.1", target="t", system_user="u", kind="shell",
                  recording=outside)  # fmt: skip
        log.finish("s-evil", status="closed", bytes_in=0, bytes_out=0, commands=0)
    finally:
        log.close()
    c = h.login("auditor")
    assert c.get("/api/v1/bastion/sessions/s-evil/cast").status_code == 404
    assert c.get("/api/v1/bastion/sessions/s-evil/frames").status_code == 404
    assert c.get("/api/v1/bastion/sessions/s-evil").json()["duration"] is None


def test_an_hour_long_recording_replays_in_pieces_from_its_keyframes(made: tuple[Harness, BastionData]) -> None:
    """The bastion's writer fed a real colour listing every two seconds for an hour (session time): a window deep
    in it starts from the nearest keyframe and shows that moment's screen."""
    h, _data = made
    listing = subprocess.run(
        ["ls", "-la", "--color=always", "/usr/bin"], capture_output=True, check=True, env={"LC_ALL": "C"}
    ).stdout.replace(b"\n", b"\r\n")
    lines = listing.split(b"\r\n")
    path = h.home / "bastion" / "recordings" / "2026" / "01" / "02" / "s-long.cast.gz"
    writer = CastWriter(path, width=100, height=30, timestamp=1767312000)
    for i in range(1800):
        writer.output(i * 2.0 + 0.5, b"\r\n".join(lines[(i * 7) % len(lines) : (i * 7) % len(lines) + 6]) + b"\r\n")
    writer.close()
    log = SessionLog(h.home)
    try:
        log.start("s-long", user="dave", source_ip="10.8.0.11", target="batch-01", system_user="etl", kind="shell",
                  recording=path)  # fmt: skip
        log.finish("s-long", status="closed", bytes_in=0, bytes_out=len(listing), commands=0)
    finally:
        log.close()
    c = h.login("auditor")
    detail = c.get("/api/v1/bastion/sessions/s-long").json()
    assert detail["duration"] == pytest.approx(3598.5) and detail["width"] == 100
    url = "/api/v1/bastion/sessions/s-long/frames"
    started = time.perf_counter()
    deep = c.get(url, params={"from": 3000.25, "to": 3060.25})
    elapsed = time.perf_counter() - started
    assert deep.status_code == 200
    body = deep.json()
    assert body["end"] is False and body["until"] == pytest.approx(3060.25)
    assert screen(body["frames"][:1]) == render(path, until=3000.25)
    assert len(body["frames"]) == 31  # the full screen, then one frame per output event
    assert elapsed < 2.0, elapsed  # one chunk of the hour is read, not the hour
    last = c.get(url, params={"from": 3590, "to": 3700}).json()
    assert last["end"] is True and screen(last["frames"]) == render(path)
    assert c.get(url, params={"from": 0, "to": 3600}).json()["until"] == MAX_WINDOW


def test_review_requests_are_listed_and_decided_by_an_admin(made: tuple[Harness, BastionData]) -> None:
    from cloudsoc.bastion.reviews import ReviewQueue

    h, _data = made
    queue = ReviewQueue(h.home)  # as a holding bastion session writes them
    try:
        ask = dict(session_id="s1", source_ip="198.51.100.7", target="web-01", system_user="root", kind="shell")
        first = queue.request(user="alice", command="history -c", rule="builtin-high-risk", group="history-clear",
                              reason="clears the shell history", risk="high", timeout_secs=600, **ask)  # fmt: skip
        second = queue.request(user="admin", command="iptables -F", rule="builtin-high-risk", group="defense-impair",
                               reason="flushes the firewall", risk="high", timeout_secs=600, **ask)  # fmt: skip
    finally:
        queue.close()
    auditor = h.login("auditor")
    listed = auditor.get("/api/v1/bastion/reviews", params={"pending": "true"}).json()
    assert [(r["id"], r["status"], r["command_group"]) for r in listed] == [
        (second, "pending", "defense-impair"),
        (first, "pending", "history-clear"),
    ]
    assert datetime.fromisoformat(listed[0]["requested"]).tzinfo is not None  # times carry their zone
    approve = f"/api/v1/bastion/reviews/{first}/approve"
    assert auditor.post(approve, json={}).status_code == 403  # reads, never acts
    admin = h.login("admin")
    r = admin.post(approve, json={"note": "change CHG-42"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["decided_by"], r.json()["note"]) == ("approved", "admin", "change CHG-42")
    assert admin.post(f"/api/v1/bastion/reviews/{first}/reject", json={}).status_code == 409  # decided already
    own = admin.post(f"/api/v1/bastion/reviews/{second}/approve", json={})
    assert own.status_code == 409 and "own command" in own.text
    assert admin.post("/api/v1/bastion/reviews/nope/approve").status_code == 404  # a body is optional
    assert [r["id"] for r in auditor.get("/api/v1/bastion/reviews", params={"pending": "true"}).json()] == [second]
    audit = admin.get("/api/v1/audit", params={"action": "bastion.review.approve"}).json()["items"]
    assert [(e["user"], e["target"]) for e in audit] == [("admin", first)]
