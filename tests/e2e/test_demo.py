"""``cloudsoc demo``: the simulated company goes through the real pipeline and the attack story is all there."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.cli import cloudsoc, cloudsoc_json, jsonl


def test_demo_stores_everything_it_generated(tmp_path: Path) -> None:
    home = tmp_path / "home"
    summary = cloudsoc_json(home, "demo", "--seed", "11")
    ingest = summary["ingest"]
    assert isinstance(ingest, dict) and isinstance(summary["attack"], list)
    assert summary["people"] >= 30 and summary["generated"] >= 50_000
    assert ingest["stored"] == summary["generated"] and ingest["dead_letters"] == 0
    steps = summary["attack"]
    assert {s["name"] for s in steps} >= {
        "leaked_key_first_use",
        "recon_access_denied",
        "create_access_key",
        "attach_admin_policy",
        "open_security_group",
        "make_bucket_public",
        "stop_logging",
    }
    assert {s["cloud"] for s in steps} == {"aliyun", "aws", "bastion"}
    assert all(s["stored"] == s["events"] > 0 for s in steps)
    # detection ran in the pipeline: every step of the story raised an alert, from the rule meant for it
    expected = {
        "leaked_key_first_use": "access_key_new_source",
        "recon_access_denied": "access_denied_burst",
        "create_access_key": "access_key_created",
        "attach_admin_policy": "admin_privilege_granted",
        "open_security_group": "network_exposed_to_internet",
        "make_bucket_public": "storage_made_public",
        "stop_logging": "audit_logging_tampered",
    }
    for s in steps:
        if s["name"] in expected:
            assert f"{expected[s['name']]}.{s['cloud']}" in s["alerts"], s
    # the attacker's bastion session: its flagged commands are stored and raised one alert (one per session)
    (session,) = [s for s in steps if s["cloud"] == "bastion"]
    assert session["alerts"] == ["bastion_high_risk_command"] and session["events"] >= 5
    assert summary["alerts"]["bastion_high_risk_command"] == 1  # type: ignore[index]
    bastion = summary["bastion"]
    assert isinstance(bastion, dict) and bastion["recordings"] == 12 and bastion["sessions"] > 50
    assert all(s["alerts"] for s in steps)
    # the story is searchable: the trail was stopped on both clouds, from the attacker's new key's IP
    stops = jsonl(cloudsoc(home, "search", "--json", "--since", "8d", "event.action:StopLogging").stdout)
    attacker = {s["source_ip"] for s in steps if s["name"] == "stop_logging"}
    assert {d["cloud"]["provider"] for d in stops} == {"aliyun", "aws"}  # type: ignore[index]
    assert {d["source"]["ip"] for d in stops} >= attacker  # type: ignore[index]
    # the bastion's commands went through the same pipeline: searchable, with the filter's reject among them
    rejected = jsonl(
        cloudsoc(
            home,
            "search",
            "--json",
            "--since",
            "8d",
            "event.action:bastion-command AND cloudsoc.bastion.verdict:reject",
        ).stdout
    )
    assert rejected and all(d["event"]["outcome"] == "failure" for d in rejected)  # type: ignore[index]
    assert {d["source"]["ip"] for d in rejected} == {session["source_ip"]}  # type: ignore[index]
    query = "event.action:bastion-command"
    commands = jsonl(cloudsoc(home, "search", "--json", "--since", "8d", "--limit", "5000", query).stdout)
    assert len(commands) > 300 and len({d["user"]["name"] for d in commands}) >= 10  # type: ignore[index]
    # and the console has sessions to replay: rows in bastion.db, the recordings readable
    from cloudsoc.bastion.asciicast import CastReader
    from cloudsoc.bastion.sessions import SessionLog

    log = SessionLog(home)
    try:
        rows = log.list(limit=1000)
    finally:
        log.close()
    recorded = [r for r in rows if r["recording"]]
    assert len(rows) == bastion["sessions"] and len(recorded) == 12
    assert all(sum(1 for e in CastReader(Path(r["recording"])) if e.code == "i") > 10 for r in recorded)
    # running it again starts fresh: nothing is counted twice
    again = cloudsoc_json(home, "demo", "--seed", "11")
    assert again["ingest"]["stored"] == again["generated"] and again["ingest"]["duplicates"] == 0  # type: ignore[index]
