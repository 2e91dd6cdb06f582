"""Intel, rules, overview and health over a real store: importing a slice of the real IPsum list marks the demo
attackers, rules switched off in the console stop firing in the pipeline, and the dashboard adds up."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cloudsoc.api.permissions import Permission
from tests.console.harness import BASE, Harness
from tests.e2e.cli import SHARED_DATA

IPSUM = SHARED_DATA / "intel" / "ipsum" / "ipsum.txt"
FEODO = SHARED_DATA / "intel" / "abusech-feodo" / "ipblocklist.csv"
ATTACKERS = ("45.148.10.240", "193.47.62.69")  # the demo company's attackers, both on the real IPsum list


def _ipsum_slice() -> bytes:
    """The IPsum header and the first 2,000 addresses, plus the lines of the demo's attackers."""
    lines = IPSUM.read_bytes().splitlines(keepends=True)
    head = [line for line in lines if line.startswith(b"#")]
    body = [line for line in lines if not line.startswith(b"#")]
    wanted = [line for line in body if line.split()[0].decode() in ATTACKERS]
    assert len(wanted) == 2
    return b"".join(head + body[:2000] + wanted)


def test_import_lookup_list_and_false_positive(estate: Harness) -> None:
    viewer, analyst = estate.login("viewer"), estate.login("analyst")
    upload = {"file": ("ipsum.txt", _ipsum_slice(), "text/plain")}
    assert viewer.post("/api/v1/intel/import", files=upload).status_code == 403
    r = analyst.post("/api/v1/intel/import", files=upload, data={"hunt_days": "30"})
    assert r.status_code == 200, r.text
    imported = r.json()
    assert imported["format"] == "ipsum" and imported["indicators"] >= 2000 and imported["errors"] == []
    hunt = imported["retro_hunt"]
    assert {h["value"] for h in hunt["hits"]} == set(ATTACKERS) and hunt["alerts"] >= 2
    feodo = analyst.post("/api/v1/intel/import", files={"file": ("ipblocklist.csv", FEODO.read_bytes())})
    assert feodo.json()["format"] == "feodo" and feodo.json()["indicators"] > 0
    hit = viewer.get("/api/v1/intel/lookup", params={"value": ATTACKERS[0]}).json()
    assert [m["source"] for m in hit["matches"]] == ["ipsum.txt"] and hit["allowed"] is None
    dns = viewer.get("/api/v1/intel/lookup", params={"value": "8.8.8.8"}).json()
    assert dns["matches"] == [] and dns["allowed"]
    name = viewer.get("/api/v1/intel/lookup", params={"value": "login.example-bad.com"}).json()
    assert name["type"] == "domain" and name["whois"] == {"domain": "example-bad.com", "cached": False, "record": None}
    page = viewer.get("/api/v1/intel/indicators", params={"source": "ipsum.txt", "limit": 100, "offset": 100}).json()
    assert page["total"] == imported["indicators"] and len(page["items"]) == 100
    assert viewer.get("/api/v1/intel/indicators", params={"type": "cidr"}).json()["total"] == 0
    # Alerts of the retro-hunt are in the queue, marked retro.
    retro = viewer.get("/api/v1/alerts", params={"rule": "threat_intel_source_ip"}).json()["items"]
    assert retro and all(a["retro"] for a in retro)
    # A false positive: viewers may not; analysts make the value allowed, and look-ups say so at once.
    assert viewer.post("/api/v1/intel/fp", json={"value": ATTACKERS[1]}).status_code == 403
    fp = analyst.post("/api/v1/intel/fp", json={"value": ATTACKERS[1], "reason": "our pen-tester"}).json()
    assert fp == {"value": ATTACKERS[1], "type": "ipv4", "rows_changed": 1, "allowed": True}
    after = viewer.get("/api/v1/intel/lookup", params={"value": ATTACKERS[1]}).json()
    assert after["matches"] == [] and "our pen-tester" in after["allowed"]
    assert analyst.post("/api/v1/intel/fp", json={"value": "not a value"}).status_code == 400
    assert viewer.get("/api/v1/intel/feeds").json()["total"] == 0  # none configured or synced here
    bad = analyst.post("/api/v1/intel/import", files={"file": ("x.bin", b"\x00\x01\x02garbage")})
    assert bad.status_code == 400


def test_overview_adds_up_and_marks_intel_hits(estate: Harness) -> None:
    analyst = estate.login("analyst")
    analyst.post("/api/v1/intel/import", files={"file": ("ipsum.txt", _ipsum_slice())}, data={"hunt_days": "0"})
    viewer = estate.login("viewer")
    total = viewer.get("/api/v1/events?since=7d&limit=1").json()["total"]
    failures = viewer.get("/api/v1/events?since=7d&limit=1&q=event.outcome:failure").json()["total"]
    o = viewer.get("/api/v1/overview", params={"since": "7d", "top": 50, "buckets": 28}).json()
    assert o["events"] == total and o["failures"] == failures and len(o["timeline"]) == 28
    assert sum(p["events"] for p in o["timeline"]) == total
    assert sum(p["alerts"] for p in o["timeline"]) == o["alerts"] > 0
    assert sum(c["count"] for c in o["clouds"]) == total
    # the demo's bastion events (commands, log-ins, sessions) belong to no cloud
    assert {c["value"] for c in o["clouds"]} - {None} == {"aws", "aliyun"}
    counts = [c["count"] for c in o["actions"]]
    assert counts == sorted(counts, reverse=True) and len(counts) <= 50
    assert all(a["failures"] == a["count"] for a in o["failed_actions"])
    assert sum(a["count"] for a in o["failed_actions"]) <= failures
    marked = {s["value"]: s["intel"] for s in o["source_ips"] if s["intel"]}
    assert set(marked) <= set(ATTACKERS) and marked and all(v == ["ipsum.txt"] for v in marked.values())
    one = viewer.get("/api/v1/overview", params={"since": "7d", "q": "cloud.provider:aws"}).json()
    assert [c["value"] for c in one["clouds"]] == ["aws"]
    assert estate.login("auditor").get("/api/v1/overview").status_code == 403


def test_rules_switched_in_the_console_stop_firing(estate: Harness) -> None:
    viewer, analyst = estate.login("viewer"), estate.login("analyst")
    rules = viewer.get("/api/v1/rules?limit=500").json()
    assert rules["total"] >= 30
    mfa = next(r for r in rules["items"] if r["id"] == "console_login_without_mfa.aws")
    assert mfa["enabled"] and mfa["alerts"] > 0 and mfa["title_zh"]
    assert viewer.post("/api/v1/rules/console_login_without_mfa.aws/disable").status_code == 403
    off = analyst.post("/api/v1/rules/console_login_without_mfa.aws/disable").json()
    assert off["enabled"] is False and off["switched_in_console"] is True
    assert [r["id"] for r in viewer.get("/api/v1/rules?enabled=false").json()["items"]] == [
        "console_login_without_mfa.aws"
    ]
    # The pipeline's detection stage of this home honours it: a new one at its start, a running one (the daemon)
    # when it re-reads suppressions.
    stage = estate.app.state.estate.home.detection_stage()
    running = estate.app.state.estate.home.detection_stage()
    try:
        assert not stage.index.by_id["console_login_without_mfa.aws"].enabled
        assert all(r.id != "console_login_without_mfa.aws" for r in stage.index.candidates(_login()))
        analyst.post("/api/v1/rules/console_login_without_mfa.aws/enable")
        running.refresh_suppressions()
        assert any(r.id == "console_login_without_mfa.aws" for r in running.index.candidates(_login()))
        assert running.detector.index is running.index
        analyst.post("/api/v1/rules/console_login_without_mfa.aws/disable")
    finally:
        stage.close()
        running.close()
    # Trying it on stored events still works (a test runs the rule whatever its switch) and stores nothing.
    before = viewer.get("/api/v1/alerts").json()["total"]
    tried = analyst.post("/api/v1/rules/console_login_without_mfa.aws/test", json={"hours": 24 * 7}).json()
    assert tried["scanned"] > 0 and tried["selected"] > 0 and tried["alerts"]
    assert tried["alerts"][0]["rule"]["id"] == "console_login_without_mfa.aws" and tried["alerts"][0]["events"]
    assert viewer.get("/api/v1/alerts").json()["total"] == before
    assert viewer.post("/api/v1/rules/console_login_without_mfa.aws/test").status_code == 403
    on = analyst.post("/api/v1/rules/console_login_without_mfa.aws/enable").json()
    assert on["enabled"] is True
    assert analyst.post("/api/v1/rules/no.such.rule/disable").status_code == 404
    audited = [e.action for e in estate.store.audit_entries(action="rule.*")[0]]
    assert audited == ["rule.enable", "rule.disable", "rule.enable", "rule.disable"]


def _login() -> dict[str, object]:
    return {"event": {"dataset": "aws.cloudtrail", "action": "ConsoleLogin"}}


def test_health_and_liveness(estate: Harness) -> None:
    assert estate.client().get("/healthz").json() == {"status": "ok"}
    assert estate.client().get("/api/v1/health").status_code == 401
    h = estate.login("viewer").get("/api/v1/health").json()
    assert h["store"]["events"] > 18_000 and h["store"]["segments"] >= 1 and h["store"]["lag_seconds"] is not None
    assert h["pipeline"]["running"] is False and h["pipeline"]["counters"]["stored"] > 0
    assert h["alerts"]["new"] > 0 and h["deliveries"] == {"pending": 0, "delivered": 0, "failed": 0}
    secret, _token = estate.store.create_token("viewer", "monitor", [Permission.READ])
    script = TestClient(estate.app, base_url=BASE, headers={"Authorization": f"Bearer {secret}"})
    assert script.get("/api/v1/health").status_code == 200
    assert script.get("/api/v1/deadletters").json()["total"] == 0
