"""The built-in rules' Chinese explanations over a real store: the rules and alerts APIs carry them beside the
English ones, and the console shows them (rules page "about", alert detail) when the language is zh."""

from __future__ import annotations

import re

from markupsafe import escape

from cloudsoc.detect.alert import Alert, Severity
from cloudsoc.detect.builtin import DETECTIONS
from tests.console.harness import Harness

RULE = "console_login_without_mfa.aws"  # the demo company's users sign in without MFA: it has alerts
META = next(m for m in DETECTIONS if m.name == RULE.split(".")[0])
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_api_returns_the_chinese_texts_beside_the_english(estate: Harness) -> None:
    viewer = estate.login("viewer")
    names = {m.name for m in DETECTIONS}
    rules = viewer.get("/api/v1/rules", params={"limit": 500}).json()["items"]
    pack = [r for r in rules if r["id"].split(".")[0] in names]
    assert len(pack) == 38  # the 20 detections, most on both clouds
    for r in pack:
        assert r["description"] and CJK.search(r["description_zh"]), r["id"]
    detail = viewer.get(f"/api/v1/rules/{RULE}").json()
    assert detail["description_zh"] == META.description_zh and detail["response_zh"] == META.response_zh
    assert detail["response"] == META.response
    alerts = viewer.get("/api/v1/alerts", params={"rule": RULE, "limit": 5}).json()["items"]
    assert alerts
    for a in alerts:
        assert (a["description"], a["response"]) == (META.description, META.response)
        assert (a["description_zh"], a["response_zh"]) == (META.description_zh, META.response_zh)


def test_console_shows_the_chinese_texts_when_the_language_is_zh(estate: Harness) -> None:
    viewer = estate.login("viewer")
    english = viewer.get("/rules", params={"rule": RULE}).text
    assert str(escape(META.description)) in english and META.description_zh not in english
    r = viewer.post("/lang", data={"lang": "zh", "next": "/rules"})
    assert r.status_code == 303
    page = viewer.get("/rules", params={"rule": RULE}).text
    assert META.title_zh in page and str(escape(META.description_zh)) in page
    assert str(escape(META.description)) not in page
    # The alert detail explains the rule in Chinese too, under the page's Chinese headings.
    alert_id = viewer.get("/api/v1/alerts", params={"rule": RULE, "limit": 1}).json()["items"][0]["id"]
    detail = viewer.get(f"/alerts/{alert_id}").text
    assert "<h3>说明</h3>" in detail and "<h3>处置建议</h3>" in detail
    assert str(escape(META.description_zh)) in detail and str(escape(META.response_zh)) in detail
    assert str(escape(META.response)) not in detail
    # An alert without Chinese texts (a user's Sigma rule, or stored before they existed) keeps its English ones.
    sigma = Alert(
        id="sigma-without-zh",
        rule_id="user_rule",
        rule_name="A user's rule",
        rule_kind="sigma",
        severity=Severity.LOW,
        description="Only in English.",
        response="Ask the owner.",
        created="2026-11-01T00:00:00+00:00",
    )
    with estate.app.state.estate.alerts() as store, store.transaction() as conn:
        store.add(conn, [sigma])
    plain = viewer.get("/alerts/sigma-without-zh").text
    assert "<h3>说明</h3>" in plain and "Only in English." in plain and "Ask the owner." in plain
