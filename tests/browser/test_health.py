"""The Health page in Chromium over the demo company: the last run's counters, the store and its lag, alert and
delivery counts; a dead letter sent through the API (its bytes carrying script) listed as text."""

from __future__ import annotations

from tests.browser.conftest import Console, Tab
from tests.browser.login_as import login_as

# an ECS document with a time that is no time: a dead letter, kept with its bytes
XSS = b'{"@timestamp": "<img src=x onerror=window.__xss=1>", "event": {"id": "xss-dead-letter"}}'


def test_health_shows_counters_and_dead_letters(demo_console: Console, tab: Tab) -> None:
    page = tab.page
    analyst = demo_console.harness.login("analyst")
    token = analyst.get("/api/v1/me").json()["csrf_token"]
    sent = analyst.post("/api/v1/ingest", content=XSS + b"\n", headers={"X-CSRF-Token": token})
    assert sent.status_code == 200, sent.text
    login_as(tab, demo_console, "viewer", "/health")
    counters = dict(
        zip(
            page.locator("#counters th").all_inner_texts(),  # type: ignore[attr-defined]
            page.locator("#counters td").all_inner_texts(),  # type: ignore[attr-defined]
            strict=True,
        )
    )
    assert int(counters["stored"]) > 1000 and int(counters["alerts"]) > 0
    assert page.locator("#tile-rate .big").inner_text() != "-"  # type: ignore[attr-defined]
    assert page.locator("#tile-lag .big").inner_text() != "-"  # type: ignore[attr-defined]
    assert int(page.locator("#store td.num").first.inner_text()) > 1000  # type: ignore[attr-defined]
    letters = page.locator("details.letter")  # type: ignore[attr-defined]
    raws = [letters.nth(i).locator("pre").text_content() for i in range(letters.count())]
    assert any("<img src=x onerror=window.__xss=1>" in (raw or "") for raw in raws), raws
    letters.last.locator("summary").click()
    assert page.locator("img[src=x]").count() == 0  # type: ignore[attr-defined]
    assert page.evaluate("window.__xss === undefined")  # type: ignore[attr-defined]
    tab.shot("health-en")
    page.click("form.lang button[value=zh]")  # type: ignore[attr-defined]
    page.wait_for_selector("html[lang=zh-CN]")  # type: ignore[attr-defined]
    assert "流水线" in page.locator("h1").inner_text()  # type: ignore[attr-defined]
    tab.shot("health-zh")
    assert tab.errors == []
