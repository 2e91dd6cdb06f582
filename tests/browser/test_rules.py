"""The Rules page in Chromium over the demo company: every rule with its alert counts, a rule switched off and on
by an analyst, a rule tested on the stored events, and a viewer who may look but not switch or test."""

from __future__ import annotations

from tests.browser.conftest import Console, Tab
from tests.browser.login_as import login_as

RULE = "console_login_without_mfa.aws"


def test_rules_list_switch_and_test(demo_console: Console, tab: Tab) -> None:
    page = tab.page
    login_as(tab, demo_console, "analyst", "/rules")
    assert page.locator("tr.rule-row").count() > 20  # type: ignore[attr-defined]
    row = page.locator(f"tr.rule-row[data-id='{RULE}']")  # type: ignore[attr-defined]
    assert int(row.locator("td.hits a").inner_text()) > 0
    tab.shot("rules-en")
    toggle = row.locator("input.toggle")
    assert toggle.is_checked()
    toggle.uncheck()
    row.locator(".state:text-is('Off')").wait_for()
    with demo_console.harness.app.state.estate.alerts() as store:
        assert store.rule_settings()[RULE] is False
    toggle.check()
    row.locator(".state:text-is('On')").wait_for()
    row.locator("button.test").click()
    page.wait_for_selector("#test-results tr.test-alert")  # type: ignore[attr-defined]
    assert "events read" in page.locator("#test-summary").inner_text()  # type: ignore[attr-defined]
    tab.shot("rules-test")
    page.fill("form.filters input[name=rule]", "identity_backdoor*")  # type: ignore[attr-defined]
    page.click("form.filters button.apply")  # type: ignore[attr-defined]
    page.wait_for_url("**rule=identity_backdoor**")  # type: ignore[attr-defined]
    ids = [r.get_attribute("data-id") for r in page.locator("tr.rule-row").all()]  # type: ignore[attr-defined]
    assert ids and all(i and i.startswith("identity_backdoor") for i in ids)
    page.click("form.lang button[value=zh]")  # type: ignore[attr-defined]
    page.wait_for_selector("html[lang=zh-CN]")  # type: ignore[attr-defined]
    assert "检测规则" in page.locator("h1").inner_text()  # type: ignore[attr-defined]
    tab.shot("rules-zh")
    assert tab.errors == []


def test_a_viewer_cannot_switch_or_test(demo_console: Console, tab: Tab) -> None:
    page = tab.page
    login_as(tab, demo_console, "viewer", "/rules")
    assert page.locator("tr.rule-row").count() > 20  # type: ignore[attr-defined]
    assert page.locator("input.toggle:not([disabled])").count() == 0  # type: ignore[attr-defined]
    assert page.locator("button.test").count() == 0  # type: ignore[attr-defined]
    assert tab.errors == []
