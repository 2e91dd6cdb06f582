"""Log in, switch the language, log out — in Debian's Chromium, with no console errors (the strict CSP refuses
any inline script or style, so an error here is a broken page)."""

from __future__ import annotations

from tests.browser.conftest import Console, Tab


def test_log_in_switch_language_log_out(console: Console, tab: Tab) -> None:
    page = tab.page
    page.goto(f"{console.url}/")  # type: ignore[attr-defined]
    assert page.url.endswith("/login?next=/")  # type: ignore[attr-defined]
    tab.shot("login")
    page.fill("input[name=username]", "analyst")  # type: ignore[attr-defined]
    page.fill("input[name=password]", "wrong password")  # type: ignore[attr-defined]
    page.click("form[action='/login'] button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("p.error")  # type: ignore[attr-defined]
    # the refused log-in is answered 401, which Chromium logs as a failed load: expected, the only one
    assert [e for e in tab.errors if "401" not in e] == []
    tab.errors.clear()
    page.fill("input[name=username]", "analyst")  # type: ignore[attr-defined]
    page.fill("input[name=password]", console.password)  # type: ignore[attr-defined]
    page.click("form[action='/login'] button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(f"{console.url}/")  # type: ignore[attr-defined]
    assert "analyst" in page.locator(".who").inner_text()  # type: ignore[attr-defined]
    assert page.locator(".zone").inner_text()  # type: ignore[attr-defined]  # times say their zone
    tab.shot("home-en")
    page.click("form.lang button[value=zh]")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    assert page.locator("html").get_attribute("lang") == "zh-CN"  # type: ignore[attr-defined]
    assert "当前用户" in page.locator(".who").inner_text()  # type: ignore[attr-defined]
    tab.shot("home-zh")
    page.click("a.logout")  # type: ignore[attr-defined]
    page.click("form[action='/logout'] button[type=submit]")  # type: ignore[attr-defined]  # a POST, with CSRF
    page.wait_for_url(f"{console.url}/login")  # type: ignore[attr-defined]
    page.goto(f"{console.url}/")  # type: ignore[attr-defined]
    assert "/login" in page.url  # type: ignore[attr-defined]
    assert tab.errors == []


def test_language_switch_keeps_the_page_and_its_query(demo_console: Console, tab: Tab) -> None:
    from tests.browser.login_as import login_as

    page = tab.page
    login_as(tab, demo_console, "viewer")
    page.goto(f"{demo_console.url}/search?q=event.action%3AConsoleLogin")  # type: ignore[attr-defined]
    page.click("form.lang button[value=zh]")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    assert page.url.endswith("/search?q=event.action%3AConsoleLogin")  # type: ignore[attr-defined]
    assert page.locator("html").get_attribute("lang") == "zh-CN"  # type: ignore[attr-defined]
    assert tab.errors == []
