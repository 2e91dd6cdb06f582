"""The overview page in Chromium over the demo company: charts drawn with data, the range picker reloads, the
numbers link to searches, and the page is translated."""

from __future__ import annotations

from tests.browser.conftest import Console, Tab


def log_in(console: Console, tab: Tab, user: str = "viewer", path: str = "/") -> None:
    page = tab.page
    page.goto(f"{console.url}/login?next={path}")  # type: ignore[attr-defined]
    page.fill("input[name=username]", user)  # type: ignore[attr-defined]
    page.fill("input[name=password]", console.password)  # type: ignore[attr-defined]
    page.click("form[action='/login'] button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]


def test_overview_draws_the_demo_company_and_the_range_picker_reloads(demo_console: Console, tab: Tab) -> None:
    page = tab.page
    log_in(demo_console, tab)
    page.wait_for_selector("#overview[data-loaded='24h|']")  # type: ignore[attr-defined]
    for chart in ("chart-timeline", "chart-failures", "chart-clouds"):
        assert page.locator(f"#{chart} canvas").count() == 1  # type: ignore[attr-defined]
    day = int(page.locator("#overview").get_attribute("data-events"))  # type: ignore[attr-defined]
    assert day > 0
    assert page.locator("#tbl-actions tr").count() >= 5  # type: ignore[attr-defined]
    assert page.locator("#tbl-identities tr").count() >= 5  # type: ignore[attr-defined]
    tab.shot("overview-en")
    page.click(".ov-preset[data-since='7d']")  # type: ignore[attr-defined]
    page.wait_for_selector("#overview[data-loaded='7d|']")  # type: ignore[attr-defined]
    week = int(page.locator("#overview").get_attribute("data-events"))  # type: ignore[attr-defined]
    assert week > day  # the demo's two days are all in the week
    assert "since=7d" in page.url  # type: ignore[attr-defined]
    # the attacker's addresses are on IPsum: marked in the top source IPs
    assert page.locator("#tbl-ips .ov-intel").count() >= 1  # type: ignore[attr-defined]
    # a number is a search
    href = page.locator("#kpi-failures").get_attribute("href")  # type: ignore[attr-defined]
    assert href.startswith("/search?q=event.outcome%3Afailure") and "since=7d" in href
    page.locator("#tbl-actions a").first.click()  # type: ignore[attr-defined]
    page.wait_for_url("**/search?q=event.action*")  # type: ignore[attr-defined]
    assert tab.errors == []


def test_overview_custom_range_and_chinese(demo_console: Console, tab: Tab) -> None:
    page = tab.page
    log_in(demo_console, tab, "analyst")
    page.wait_for_selector("#overview[data-loaded='24h|']")  # type: ignore[attr-defined]
    # a window long before the demo: nothing in it
    page.fill("#ov-since", "2020-01-01T00:00")  # type: ignore[attr-defined]
    page.fill("#ov-until", "2020-01-02T00:00")  # type: ignore[attr-defined]
    page.click("#ov-apply")  # type: ignore[attr-defined]
    page.wait_for_selector("#overview[data-loaded^='2019-12-31']")  # type: ignore[attr-defined]
    assert page.locator("#overview").get_attribute("data-events") == "0"  # type: ignore[attr-defined]
    page.click("form.lang button[value=zh]")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    page.wait_for_selector("#overview[data-loaded]")  # type: ignore[attr-defined]
    assert "来源 IP 排行" in page.locator("main").inner_text()  # type: ignore[attr-defined]
    page.click(".ov-preset[data-since='30d']")  # type: ignore[attr-defined]
    page.wait_for_selector("#overview[data-loaded='30d|']")  # type: ignore[attr-defined]
    tab.shot("overview-zh")
    assert tab.errors == []


def test_auditor_lands_on_the_audit_log_not_the_dashboard(demo_console: Console, tab: Tab) -> None:
    page = tab.page
    log_in(demo_console, tab, "auditor")
    assert page.url == f"{demo_console.url}/admin/audit"  # type: ignore[attr-defined]
    assert page.locator("#overview").count() == 0  # type: ignore[attr-defined]
    assert page.locator("nav a[href='/']").count() == 0  # type: ignore[attr-defined]
    assert page.locator("nav a[href='/search']").count() == 0  # type: ignore[attr-defined]
    assert tab.errors == []
