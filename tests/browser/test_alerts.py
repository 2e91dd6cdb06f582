"""The Alerts pages in Chromium over the demo company: the queue (with the attack story's alerts), one alert
explained, triage by an analyst (a comment carrying script renders as text), no triage for a viewer, and an alert
stored while the queue is open appearing without a reload (SSE)."""

from __future__ import annotations

import uuid

import pytest

from cloudsoc.detect.alert import Alert, Matched, Severity, Status
from tests.browser.conftest import Console, Tab
from tests.browser.login_as import login_as

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>"\'&'


def _no_xss(tab: Tab) -> None:
    assert tab.page.evaluate("window.__xss === undefined")  # type: ignore[attr-defined]
    assert tab.page.locator("img[src=x]").count() == 0  # type: ignore[attr-defined]


def _alert_id(console: Console, rule: str, status: Status = Status.NEW) -> str:
    with console.harness.app.state.estate.alerts() as store:
        rows = store.query(status=(status,), rule=rule, limit=50)
    assert rows, rule
    return str(rows[-1].alert.id)


def test_queue_shows_the_demo_alerts_and_explains_one(demo_console: Console, tab: Tab) -> None:
    page = tab.page
    login_as(tab, demo_console, "viewer", "/alerts")
    rows = page.locator("tr.alert-row")  # type: ignore[attr-defined]
    assert rows.count() > 10
    rules = {rows.nth(i).get_attribute("data-rule") for i in range(rows.count())}
    assert any(r and r.startswith("identity_backdoor") for r in rules), rules  # the attack story
    zone = page.locator(".zone").inner_text()  # type: ignore[attr-defined]  # the console's zone, not the browser's
    assert page.locator("td.time").first.inner_text().endswith(zone)  # type: ignore[attr-defined]
    tab.shot("alerts-en")
    page.select_option("select[name=severity]", "high")  # type: ignore[attr-defined]
    page.click("form.filters button.apply")  # type: ignore[attr-defined]
    page.wait_for_url("**severity=high**")  # type: ignore[attr-defined]
    severities = page.locator("tr.alert-row .sev").all_inner_texts()  # type: ignore[attr-defined]
    assert severities and set(severities) <= {"High", "Critical"}
    page.goto(f"{demo_console.url}/alerts?rule=identity_backdoor.*")  # type: ignore[attr-defined]
    page.click("tr.alert-row td.rule a")  # type: ignore[attr-defined]
    page.wait_for_selector("table.matched")  # type: ignore[attr-defined]
    assert page.locator("table.matched tbody tr").count() >= 1  # type: ignore[attr-defined]
    assert page.locator(".tags .tag").count() >= 1  # type: ignore[attr-defined]  # ATT&CK tags
    assert page.locator("details.event").count() >= 1  # type: ignore[attr-defined]
    assert page.locator("#triage").count() == 0  # type: ignore[attr-defined]  # a viewer gets no triage buttons
    assert page.locator("button.act").count() == 0  # type: ignore[attr-defined]
    assert "Raised: New" in page.locator("#history").inner_text()  # type: ignore[attr-defined]
    english = page.locator("h1.alert-title").inner_text()  # type: ignore[attr-defined]
    tab.shot("alert-en")
    page.click("form.lang button[value=zh]")  # type: ignore[attr-defined]
    page.wait_for_selector("html[lang=zh-CN]")  # type: ignore[attr-defined]
    chinese = page.locator("h1.alert-title").inner_text()  # type: ignore[attr-defined]
    assert chinese != english and "触发原因" in page.content()  # type: ignore[attr-defined]
    tab.shot("alert-zh")
    page.goto(f"{demo_console.url}/alerts")  # type: ignore[attr-defined]
    assert "告警" in page.locator("h1").inner_text()  # type: ignore[attr-defined]
    assert page.locator("button.unsuppress").count() == 0  # type: ignore[attr-defined]
    tab.shot("alerts-zh")
    # the server refuses a viewer's triage anyway (Chromium logs the 403 it answered: expected)
    answer = page.evaluate(  # type: ignore[attr-defined]
        "id => cloudsoc.api('POST', '/api/v1/alerts/' + id + '/ack', {}).then(() => 'done', e => e.message)",
        _alert_id(demo_console, "identity_backdoor.*"),
    )
    assert answer != "done"
    assert [e for e in tab.errors if "403" not in e] == []


def test_analyst_acknowledges_assigns_and_comments(demo_console: Console, tab: Tab) -> None:
    page = tab.page
    alert_id = _alert_id(demo_console, "console_login_without_mfa.*")
    login_as(tab, demo_console, "analyst", f"/alerts/{alert_id}")
    page.fill("#status-comment", "looking")  # type: ignore[attr-defined]
    page.click("button.act[data-action=ack]")  # type: ignore[attr-defined]
    page.wait_for_selector("#alert-status.status-acknowledged")  # type: ignore[attr-defined]
    page.select_option("#assign-form select[name=assignee]", "analyst")  # type: ignore[attr-defined]
    page.click("#assign-form button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("#alert-assignee:text-is('analyst')")  # type: ignore[attr-defined]
    page.fill("#comment-form textarea[name=text]", XSS)  # type: ignore[attr-defined]
    page.click("#comment-form button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("blockquote.comment >> nth=1")  # type: ignore[attr-defined]
    comments = page.locator("blockquote.comment").all_inner_texts()  # type: ignore[attr-defined]
    assert XSS in comments and "looking" in comments
    _no_xss(tab)
    tab.shot("alert-triaged")
    page.click("button.act[data-action=resolve]")  # type: ignore[attr-defined]
    page.wait_for_selector("#alert-status.status-resolved")  # type: ignore[attr-defined]
    # a resolved alert cannot be acknowledged: the page offers only reopen
    assert page.locator("button.act[data-action=ack]").count() == 0  # type: ignore[attr-defined]
    page.click("button.act[data-action=reopen]")  # type: ignore[attr-defined]
    page.wait_for_selector("#alert-status.status-new")  # type: ignore[attr-defined]
    # suppress alerts like it (the conditions come filled in from the matched fields), then remove it again
    page.click("details.suppress summary")  # type: ignore[attr-defined]
    assert "source.ip=" in page.input_value("#suppress-form textarea[name=conditions]")  # type: ignore[attr-defined]
    page.fill("#suppress-form input[name=reason]", XSS)  # type: ignore[attr-defined]
    page.click("#suppress-form button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("#suppress-done:not([hidden])")  # type: ignore[attr-defined]
    page.goto(f"{demo_console.url}/alerts")  # type: ignore[attr-defined]
    row = page.locator("tr.suppression", has_text="console_login_without_mfa")  # type: ignore[attr-defined]
    assert XSS in row.inner_text()
    _no_xss(tab)
    row.locator("button.unsuppress").click()
    row.wait_for(state="detached")
    with demo_console.harness.app.state.estate.alerts() as store:
        assert not [s for s in store.suppressions() if s.reason == XSS]
    assert tab.errors == []


def test_an_alert_stored_while_the_queue_is_open_appears(demo_console: Console, tab: Tab) -> None:
    page = tab.page
    login_as(tab, demo_console, "viewer", "/alerts")
    page.wait_for_selector("#live-state:not([hidden])")  # type: ignore[attr-defined]
    before = page.locator("tr.alert-row").count()  # type: ignore[attr-defined]
    alert_id = uuid.uuid4().hex[:24]
    alert = Alert(
        id=alert_id,
        rule_id="threat_intel_source_ip",
        rule_name=XSS,
        rule_kind="builtin",
        severity=Severity.HIGH,
        matched=[Matched("source.ip", "193.47.62.69")],
        event_ids=["e1"],
        group_key=XSS,
        first_time="2026-11-20T00:00:00+00:00",
        last_time="2026-11-20T00:00:00+00:00",
        text=XSS,
    )
    store = demo_console.harness.app.state.estate.home.open_alerts()
    try:
        with store.transaction() as conn:
            store.add(conn, [alert])
    finally:
        store.close()
    row = page.locator(f"tr.alert-row[data-id='{alert_id}']")  # type: ignore[attr-defined]
    row.wait_for(timeout=10_000)
    assert page.locator("tr.alert-row").count() == before + 1  # type: ignore[attr-defined]
    assert row.locator("td.rule a").inner_text() == XSS
    assert row.locator("td.key").inner_text() == XSS
    assert row.locator("td.time").inner_text() == "2026-11-20 00:00:00 UTC"  # the console's zone (UTC here)
    _no_xss(tab)
    tab.shot("alerts-live")
    assert tab.errors == []


@pytest.mark.parametrize("path", ["/alerts?status=bogus", "/alerts/ffffffffffff"])
def test_bad_requests_get_an_error_page(demo_console: Console, tab: Tab, path: str) -> None:
    login_as(tab, demo_console, "viewer", "/alerts")
    response = tab.page.goto(f"{demo_console.url}{path}")  # type: ignore[attr-defined]
    assert response.status in (404, 422)
