"""The Intel page in Chromium over the demo company: a demo attacker's address looked up shows its IPsum match,
indicators and feeds list, and an analyst imports a file whose source name carries script (shown as text)."""

from __future__ import annotations

from pathlib import Path

from tests.browser.conftest import Console, Tab
from tests.browser.login_as import login_as

XSS = '<img src=x onerror="window.__xss=1">'


def _attacker_ip(console: Console) -> str:
    with console.harness.app.state.estate.alerts() as store:
        rows = store.query(rule="threat_intel*", limit=20)
    for row in rows:
        for m in row.alert.matched:
            if m.field == "source.ip":
                return str(m.value)
    raise AssertionError("the demo raised no threat-intel alert")


def test_lookup_shows_the_ipsum_match(demo_console: Console, tab: Tab) -> None:
    page = tab.page
    ip = _attacker_ip(demo_console)
    login_as(tab, demo_console, "viewer", "/intel")
    assert page.locator("#indicators tr.indicator").count() > 10  # type: ignore[attr-defined]
    assert page.locator("#import-form").count() == 0  # type: ignore[attr-defined]  # a viewer may not import
    page.fill("#lookup-form input[name=value]", ip)  # type: ignore[attr-defined]
    page.click("#lookup-form button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("#lookup-result")  # type: ignore[attr-defined]
    sources = page.locator("#lookup-result tr.match td.source").all_inner_texts()  # type: ignore[attr-defined]
    assert any("ipsum" in s.lower() for s in sources), sources
    tab.shot("intel-en")
    page.click("form.lang button[value=zh]")  # type: ignore[attr-defined]
    page.wait_for_selector("html[lang=zh-CN]")  # type: ignore[attr-defined]
    page.goto(f"{demo_console.url}/intel?value={ip}")  # type: ignore[attr-defined]  # the switch keeps only the path
    assert "收录" in page.locator("#lookup-result").inner_text()  # type: ignore[attr-defined]
    tab.shot("intel-zh")
    assert tab.errors == []


def test_analyst_imports_a_file(demo_console: Console, tab: Tab, tmp_path: Path) -> None:
    page = tab.page
    feed = tmp_path / "mine.txt"
    feed.write_text("5.188.250.77\n")
    login_as(tab, demo_console, "analyst", "/intel")
    page.set_input_files("#import-form input[name=file]", str(feed))  # type: ignore[attr-defined]
    page.fill("#import-form input[name=source]", XSS)  # type: ignore[attr-defined]
    page.select_option("#import-form select[name=format]", "plain")  # type: ignore[attr-defined]
    page.fill("#import-form input[name=hunt_days]", "0")  # type: ignore[attr-defined]
    page.click("#import-form button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("#import-status.ok")  # type: ignore[attr-defined]
    assert "1" in page.locator("#import-status").inner_text()  # type: ignore[attr-defined]
    page.goto(f"{demo_console.url}/intel?value=5.188.250.77")  # type: ignore[attr-defined]
    assert XSS in page.locator("#lookup-result tr.match td.source").all_inner_texts()  # type: ignore[attr-defined]
    assert page.locator("img[src=x]").count() == 0  # type: ignore[attr-defined]
    assert page.evaluate("window.__xss === undefined")  # type: ignore[attr-defined]
    assert page.locator("#lookup-result .allowed").count() == 0  # type: ignore[attr-defined]
    page.fill("#fp-form input[name=reason]", "our scanner")  # type: ignore[attr-defined]
    page.click("#fp-form button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("#lookup-result .allowed")  # type: ignore[attr-defined]
    page.click("#fp-undo")  # type: ignore[attr-defined]
    page.wait_for_selector("#lookup-result .listed")  # type: ignore[attr-defined]
    assert page.locator("#lookup-result .allowed").count() == 0  # type: ignore[attr-defined]
    assert tab.errors == []
