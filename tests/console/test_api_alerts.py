"""The alert API over the demo company's real alerts: the queue, triage by role, CSRF, suppressions, comments that
carry script, and new alerts arriving live over Server-Sent Events (a real uvicorn server)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from cloudsoc.api.permissions import Permission
from cloudsoc.api.server import ConsoleServer
from cloudsoc.config.models import Config
from cloudsoc.detect.alert import Alert, Matched, Severity
from tests.console.harness import Harness

XSS = "<script>alert(document.cookie)</script><img src=x onerror=alert(1)>\"'&"


def _first(h: Harness, **params: str) -> dict[str, object]:
    items = h.login("viewer").get("/api/v1/alerts", params={"limit": "1", **params}).json()["items"]
    assert items, params
    item = items[0]
    assert isinstance(item, dict)
    return item


def test_queue_filters_and_pages(estate: Harness) -> None:
    client = estate.login("viewer")
    everything = client.get("/api/v1/alerts?limit=500").json()
    assert everything["total"] == len(everything["items"]) >= 20
    high = client.get("/api/v1/alerts?severity=high&limit=500").json()
    assert 0 < high["total"] < everything["total"]
    assert all(a["severity"] in ("high", "critical") for a in high["items"])
    rule = client.get("/api/v1/alerts", params={"rule": "console_login_without_mfa.*", "limit": 2}).json()
    assert rule["total"] > 2 and len(rule["items"]) == 2
    assert all(a["rule"]["id"].startswith("console_login_without_mfa.") for a in rule["items"])
    second = client.get("/api/v1/alerts", params={"rule": "console_login_without_mfa.*", "limit": 2, "offset": 2})
    assert not {a["id"] for a in second.json()["items"]} & {a["id"] for a in rule["items"]}
    assert client.get("/api/v1/alerts?status=bogus").status_code == 422


def test_detail_has_matched_fields_events_and_history(estate: Harness) -> None:
    alert = _first(estate, rule="identity_backdoor.*")
    detail = estate.login("viewer").get(f"/api/v1/alerts/{alert['id']}").json()
    assert detail["matched"] and detail["events"]
    assert detail["events"][0]["event"]["id"] in detail["event_ids"]
    assert [h["action"] for h in detail["history"]] == ["raised"]
    assert estate.login("viewer").get("/api/v1/alerts/ffffffffffff").status_code == 404


def test_triage_needs_the_triage_permission_and_follows_the_status_rules(estate: Harness) -> None:
    alert_id = _first(estate)["id"]
    viewer = estate.login("viewer")
    for action in ("ack", "resolve", "false-positive", "reopen"):
        assert viewer.post(f"/api/v1/alerts/{alert_id}/{action}", json={}).status_code == 403
    assert viewer.post(f"/api/v1/alerts/{alert_id}/assign", json={"assignee": "viewer"}).status_code == 403
    assert viewer.post(f"/api/v1/alerts/{alert_id}/comment", json={"text": "hi"}).status_code == 403
    analyst = estate.login("analyst")
    r = analyst.post(f"/api/v1/alerts/{alert_id}/ack", json={"comment": "looking"})
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    assert analyst.post(f"/api/v1/alerts/{alert_id}/resolve").json()["status"] == "resolved"
    refused = analyst.post(f"/api/v1/alerts/{alert_id}/ack")
    assert refused.status_code == 409 and "reopen it first" in refused.json()["error"]["message"]
    assert analyst.post(f"/api/v1/alerts/{alert_id}/reopen").json()["status"] == "new"
    assert analyst.post(f"/api/v1/alerts/{alert_id}/false-positive").json()["status"] == "false_positive"
    assigned = analyst.post(f"/api/v1/alerts/{alert_id}/assign", json={"assignee": "analyst"}).json()
    assert assigned["assignee"] == "analyst"
    assert analyst.post(f"/api/v1/alerts/{alert_id}/assign", json={"assignee": "nobody"}).status_code == 400
    history = viewer.get(f"/api/v1/alerts/{alert_id}/history").json()
    assert [(h["action"], h["actor"]) for h in history][1:] == [("status", "analyst")] * 4 + [("assign", "analyst")]
    assert history[1]["comment"] == "looking"
    assert viewer.get("/api/v1/alerts?status=false_positive").json()["total"] == 1
    audited = [e.action for e in estate.store.audit_entries(user="analyst", action="alert.*")[0]]
    assert sorted(audited) == sorted(
        ["alert.ack", "alert.resolve", "alert.reopen", "alert.false_positive", "alert.assign"]
    )


def test_cookie_changes_need_the_csrf_token(estate: Harness) -> None:
    alert_id = _first(estate)["id"]
    analyst = estate.login("analyst")
    token = analyst.headers.pop("X-CSRF-Token")
    assert analyst.post(f"/api/v1/alerts/{alert_id}/ack").status_code == 403
    analyst.headers["X-CSRF-Token"] = "not-" + token
    assert analyst.post(f"/api/v1/alerts/{alert_id}/comment", json={"text": "x"}).status_code == 403
    assert _first(estate)["status"] == "new"


def test_script_in_a_comment_comes_back_as_data(estate: Harness) -> None:
    alert_id = _first(estate)["id"]
    analyst = estate.login("analyst")
    r = analyst.post(f"/api/v1/alerts/{alert_id}/comment", json={"text": XSS})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    history = estate.login("viewer").get(f"/api/v1/alerts/{alert_id}")
    assert history.headers["content-type"] == "application/json"
    assert history.json()["history"][-1]["comment"] == XSS  # unchanged: escaping is the page's job
    assert history.headers["x-content-type-options"] == "nosniff"
    assert analyst.post(f"/api/v1/alerts/{alert_id}/comment", json={"text": ""}).status_code == 422


def test_suppressions(estate: Harness) -> None:
    viewer, analyst = estate.login("viewer"), estate.login("analyst")
    body = {"rule": "console_login_without_mfa.aws", "conditions": {"source.ip": "115.236.88.0/24"}, "days": 7}
    assert viewer.post("/api/v1/alerts/suppressions", json=body).status_code == 403
    r = analyst.post("/api/v1/alerts/suppressions", json={**body, "reason": "office"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["conditions"] == {"source.ip": "115.236.88.0/24"} and created["created_by"] == "analyst"
    assert created["expires"]
    listed = viewer.get("/api/v1/alerts/suppressions").json()
    assert [s["id"] for s in listed["items"]] == [created["id"]]
    bad = analyst.post("/api/v1/alerts/suppressions", json={"rule": "x", "conditions": {"source.ip": " "}})
    assert bad.status_code == 400 and "conditions" in bad.json()["error"]["message"]
    assert analyst.post("/api/v1/alerts/suppressions", json={"rule": "*"}).status_code == 400
    assert viewer.delete(f"/api/v1/alerts/suppressions/{created['id']}").status_code == 403
    assert analyst.delete(f"/api/v1/alerts/suppressions/{created['id']}").status_code == 204
    assert viewer.get("/api/v1/alerts/suppressions").json()["total"] == 0


@pytest.fixture
def live(estate: Harness) -> Iterator[tuple[Harness, str]]:
    server = ConsoleServer(estate.home, Config(), app=estate.app, host="127.0.0.1", port=0)
    yield estate, server.start().rstrip("/")
    assert server.stop(), "the server did not stop: a stream outlived its client"


def _new_alert() -> Alert:
    return Alert(
        id="feedface0123456789abcdef",
        rule_id="threat_intel_source_ip",
        rule_name="Source address on a threat-intel list",
        rule_kind="builtin",
        severity=Severity.HIGH,
        matched=[Matched("source.ip", "193.47.62.69")],
        event_ids=["e1"],
        group_key="193.47.62.69",
        first_time="2026-11-20T00:00:00+00:00",
        last_time="2026-11-20T00:00:00+00:00",
        text=XSS,
    )


def test_new_alerts_arrive_as_server_sent_events(live: tuple[Harness, str]) -> None:
    h, base = live
    secret, _token = h.store.create_token("viewer", "sse", [Permission.READ])
    headers = {"Authorization": f"Bearer {secret}"}
    with (
        httpx.Client(base_url=base, trust_env=False, timeout=10) as client,
        client.stream("GET", "/api/v1/alerts/stream", headers=headers) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "retry: 3000"
        assert next(lines) == ": stream open"
        store = h.app.state.estate.home.open_alerts()
        with store.transaction() as conn:
            store.add(conn, [_new_alert()])
        store.close()
        started = time.monotonic()
        event: dict[str, str] = {}
        for line in lines:
            if not line:
                if event.get("event") == "alert":
                    break
                continue
            key, _, value = line.partition(": ")
            event[key] = value
        assert time.monotonic() - started < 5
        data = orjson.loads(event["data"])
        assert data["id"] == "feedface0123456789abcdef" and data["text"] == XSS and event["id"].isdigit()
    # A client that lost the connection resumes after the last id it saw, and gets what it missed.
    resume = {**headers, "Last-Event-ID": str(int(event["id"]) - 1)}
    with (
        httpx.Client(base_url=base, trust_env=False, timeout=10) as client,
        client.stream("GET", "/api/v1/alerts/stream", headers=resume) as stream,
    ):
        data_lines = (line for line in stream.iter_lines() if line.startswith("data: "))
        assert orjson.loads(next(data_lines)[6:])["id"] == "feedface0123456789abcdef"
    # The stream's generator ends with the connection; the fixture checks that the server then stops.


def test_stream_needs_a_login(live: tuple[Harness, str]) -> None:
    _h, base = live
    with httpx.Client(base_url=base, trust_env=False, timeout=10) as client:
        r = client.get("/api/v1/alerts/stream", headers={"Authorization": "Bearer cst_nope_nope"})
        assert r.status_code == 401
