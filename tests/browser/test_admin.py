"""The account pages in Chromium over the demo company: an admin adds a user who then logs in and is disabled; an
analyst makes an API token whose secret works against /api/v1/events until revoked; an auditor reads those
actions in the audit log (hostile text shown as text); a viewer is refused the admin pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx

from cloudsoc.api.permissions import Permission, Role
from tests.browser.conftest import Console, Tab
from tests.browser.login_as import login_as

XSS = '<img src=x onerror="window.pwned=1">'


def _zone(page: object) -> str:
    """The console's time zone as the header shows it: every time in the tables carries it."""
    zone = page.locator(".zone").inner_text()  # type: ignore[attr-defined]
    assert zone
    return str(zone)


def _log_in(page: object, console: Console, user: str, password: str) -> None:
    page.goto(f"{console.url}/login")  # type: ignore[attr-defined]
    page.fill("input[name=username]", user)  # type: ignore[attr-defined]
    page.fill("input[name=password]", password)  # type: ignore[attr-defined]
    page.click("form[action='/login'] button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]


def test_admin_adds_a_user_who_logs_in_then_is_disabled(demo_console: Console, tab: Tab, browser: object) -> None:
    page = tab.page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))  # type: ignore[attr-defined]
    login_as(tab, demo_console, "admin", "/admin/users")
    assert page.locator("tr.user-row").count() >= 4  # type: ignore[attr-defined]
    # The admin's own row: no way to disable or demote themselves (the API and the store refuse anyway).
    me = page.locator("tr.user-row[data-name='admin']")  # type: ignore[attr-defined]
    assert me.locator("button.disable").count() == 0 and me.locator("select.role").is_disabled()
    assert me.locator("td.last-login").inner_text().endswith(_zone(page))
    # A name with markup is refused by the name rule and the refusal is shown as text.
    form = page.locator("#add-user")  # type: ignore[attr-defined]
    form.locator("input[name=name]").fill(XSS)
    form.locator("button.generate").click()
    form.locator("button.create").click()
    error = page.locator("#admin-error")  # type: ignore[attr-defined]
    error.wait_for()
    assert "user name" in error.inner_text() and "<img" in error.inner_text()
    assert page.locator("#admin-error img").count() == 0  # type: ignore[attr-defined]
    assert page.evaluate("window.pwned") is None  # type: ignore[attr-defined]
    assert [e for e in tab.errors if "400" not in e] == []
    tab.errors.clear()
    # A real user with a generated password, shown once.
    form.locator("input[name=name]").fill("newbie")
    form.locator("select[name=role]").select_option("analyst")
    form.locator("button.generate").click()
    generated = form.locator("input[name=password]").input_value()
    assert len(generated) == 20
    form.locator("button.create").click()
    page.locator("#reveal:not([hidden])").wait_for()  # type: ignore[attr-defined]
    assert page.locator("#reveal-secret").inner_text() == generated  # type: ignore[attr-defined]
    assert "newbie" in page.locator("#reveal-text").inner_text()  # type: ignore[attr-defined]
    tab.shot("admin-users-created")
    with page.expect_navigation():  # type: ignore[attr-defined]
        page.click("#reveal-done")  # type: ignore[attr-defined]
    row = page.locator("tr.user-row[data-name='newbie']")  # type: ignore[attr-defined]
    assert row.locator("select.role").input_value() == "analyst"
    tab.shot("admin-users-en")
    # The new user logs in with that password, in a browser of their own.
    other = browser.new_context(locale="en-US", timezone_id="Asia/Shanghai")  # type: ignore[attr-defined]
    try:
        theirs = other.new_page()
        _log_in(theirs, demo_console, "newbie", generated)
        assert "/login" not in theirs.url and "newbie" in theirs.locator(".who").inner_text()
        page.reload()  # type: ignore[attr-defined]
        assert row.locator("td.last-login").inner_text().endswith(_zone(page))
        # Disabled: their session ends and the next log-in fails.
        with page.expect_navigation():  # type: ignore[attr-defined]
            row.locator("button.disable").click()
        assert dialogs and "newbie" in dialogs[-1]
        assert row.locator(".pill.off").count() == 1 and row.locator("button.enable").count() == 1
        theirs.goto(f"{demo_console.url}/")
        assert "/login" in theirs.url
        _log_in(theirs, demo_console, "newbie", generated)
        assert theirs.locator("p.error").inner_text() == "Invalid user name or password."
    finally:
        other.close()
    store = demo_console.harness.store
    assert store.user("newbie").disabled
    # Reset the password (typed), then enable again: both through the page.
    row.locator("button.reset").click()
    page.fill("#reset-form input[name=password]", "another long password")  # type: ignore[attr-defined]
    page.click("#reset-form button.save")  # type: ignore[attr-defined]
    page.locator("#reveal:not([hidden])").wait_for()  # type: ignore[attr-defined]
    assert page.locator("#reveal-secret-row").is_hidden()  # type: ignore[attr-defined]  # typed: nothing to show
    assert store.check_password("newbie", "another long password") is not None
    with page.expect_navigation():  # type: ignore[attr-defined]
        page.click("#reveal-done")  # type: ignore[attr-defined]
    with page.expect_navigation():  # type: ignore[attr-defined]
        row.locator("button.enable").click()
    assert not store.user("newbie").disabled
    actions = [e.action for e in store.audit_entries(user="admin", action="user.*", limit=10)[0]]
    assert {"user.create", "user.disable", "user.passwd", "user.enable"} <= set(actions)
    assert tab.errors == []


def test_analyst_token_works_until_revoked(demo_console: Console, tab: Tab) -> None:
    page = tab.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])  # type: ignore[attr-defined]
    login_as(tab, demo_console, "analyst", "/tokens")
    boxes = page.locator("#create-token input[name=scope]")  # type: ignore[attr-defined]
    # Only the analyst's own permissions are offered (no audit, no admin).
    assert sorted(b.get_attribute("value") for b in boxes.all()) == [
        "ingest", "intel_write", "read", "rules_write", "triage",
    ]  # fmt: skip
    page.fill("#create-token input[name=name]", "events script")  # type: ignore[attr-defined]
    page.check("#create-token input[value=read]")  # type: ignore[attr-defined]
    page.click("#create-token button.create")  # type: ignore[attr-defined]
    page.locator("#reveal:not([hidden])").wait_for()  # type: ignore[attr-defined]
    secret = page.locator("#reveal-secret").inner_text()  # type: ignore[attr-defined]
    assert secret.startswith("cst_")
    page.click("#reveal-copy")  # type: ignore[attr-defined]
    page.locator("#reveal-copied:text('Copied')").wait_for()  # type: ignore[attr-defined]
    assert page.evaluate("navigator.clipboard.readText()") == secret  # type: ignore[attr-defined]
    tab.shot("tokens-created")
    bearer = {"Authorization": f"Bearer {secret}"}
    r = httpx.get(f"{demo_console.url}/api/v1/events", params={"limit": 3}, headers=bearer)
    assert r.status_code == 200 and len(r.json()["items"]) == 3
    with page.expect_navigation():  # type: ignore[attr-defined]
        page.click("#reveal-done")  # type: ignore[attr-defined]
    # Shown once: the page never has the secret again.
    assert secret not in page.content()  # type: ignore[attr-defined]
    row = page.locator("tr.token-row", has_text="events script")  # type: ignore[attr-defined]
    assert row.locator("code.scope").all_inner_texts() == ["read"]
    assert row.locator("td.time").first.inner_text().endswith(_zone(page))
    tab.shot("tokens-en")
    page.once("dialog", lambda d: d.accept())  # type: ignore[attr-defined]
    with page.expect_navigation():  # type: ignore[attr-defined]
        row.locator("button.revoke").click()
    assert row.locator("td.revoked").inner_text() != "-" and row.locator("button.revoke").count() == 0
    r = httpx.get(f"{demo_console.url}/api/v1/events", headers=bearer)
    assert r.status_code == 401 and r.json()["error"]["message"] == "invalid or revoked API token"
    assert tab.errors == []


def test_admin_sees_everyones_tokens_and_revokes_any(demo_console: Console, tab: Tab) -> None:
    page = tab.page
    _, theirs = demo_console.harness.store.create_token("viewer", "viewer's dashboard", [Permission.READ])
    login_as(tab, demo_console, "admin", "/tokens")
    row = page.locator(f"tr.token-row[data-id='{theirs.id}']")  # type: ignore[attr-defined]
    assert row.locator("td.owner").inner_text() == "viewer"
    page.once("dialog", lambda d: d.dismiss())  # type: ignore[attr-defined]  # "Cancel" keeps it
    row.locator("button.revoke").click()
    assert demo_console.harness.store.get_token(theirs.id).revoked is None  # type: ignore[union-attr]
    page.once("dialog", lambda d: d.accept())  # type: ignore[attr-defined]
    with page.expect_navigation():  # type: ignore[attr-defined]
        row.locator("button.revoke").click()
    assert demo_console.harness.store.get_token(theirs.id).revoked is not None  # type: ignore[union-attr]
    assert tab.errors == []


def test_auditor_reads_the_audit_log(demo_console: Console, tab: Tab) -> None:
    h = demo_console.harness
    # Actions to find, made through the API: a token with markup in its name, a log-in under a hostile name.
    analyst = h.login("analyst")
    for i in range(30):  # enough entries for more than one page
        made = analyst.post("/api/v1/tokens", json={"name": f"batch {i}", "scopes": ["read"]}).json()
        assert analyst.delete(f"/api/v1/tokens/{made['token']['id']}").status_code == 200
    made = analyst.post("/api/v1/tokens", json={"name": XSS, "scopes": ["read"]}).json()
    analyst.delete(f"/api/v1/tokens/{made['token']['id']}")
    h.client().post("/api/v1/auth/login", json={"username": XSS, "password": "wrong password"})
    page = tab.page
    page.goto(f"{demo_console.url}/login")  # type: ignore[attr-defined]
    page.fill("input[name=username]", "auditor")  # type: ignore[attr-defined]
    page.fill("input[name=password]", demo_console.password)  # type: ignore[attr-defined]
    page.click("form[action='/login'] button[type=submit]")  # type: ignore[attr-defined]
    # The auditor lands on a page they may see, and the nav offers only those.
    page.wait_for_url(f"{demo_console.url}/admin/audit")  # type: ignore[attr-defined]
    nav = sorted(page.locator("nav.nav a").evaluate_all("as => as.map(a => a.getAttribute('href'))"))  # type: ignore[attr-defined]
    assert nav == ["/admin/audit", "/api/docs", "/bastion", "/tokens"]
    rows = page.locator("tr.audit-row")  # type: ignore[attr-defined]
    assert rows.count() == 50 and page.locator("nav.pager a.prev").count() == 0  # type: ignore[attr-defined]
    first_page = rows.locator("td.time").all_inner_texts()
    page.click("nav.pager a.next")  # type: ignore[attr-defined]
    page.wait_for_url("**offset=50")  # type: ignore[attr-defined]
    assert rows.count() >= 1 and "51-" in page.locator("p.summary").inner_text()  # type: ignore[attr-defined]
    assert rows.first.locator("td.time").inner_text() <= first_page[-1]
    page.click("nav.pager a.prev")  # type: ignore[attr-defined]
    page.wait_for_url("**offset=0")  # type: ignore[attr-defined]
    assert rows.first.locator("td.time").inner_text().endswith(_zone(page))
    assert rows.first.locator("td.action").inner_text() == "login"  # the auditor's own, newest first
    # The hostile name is text in the user column, and in the token's detail.
    assert page.locator("td.user", has_text="<img src=x").count() >= 1  # type: ignore[attr-defined]
    page.fill("#audit-filters input[name=action]", "token.*")  # type: ignore[attr-defined]
    page.fill("#audit-filters input[name=user]", "analyst")  # type: ignore[attr-defined]
    page.fill("#audit-filters input[name=since]", "1h")  # type: ignore[attr-defined]
    page.click("#audit-filters button.apply")  # type: ignore[attr-defined]
    page.wait_for_url("**action=token.*")  # type: ignore[attr-defined]
    actions = rows.locator("td.action").all_inner_texts()
    assert actions[:2] == ["token.revoke", "token.create"] and set(actions) <= {"token.create", "token.revoke"}
    assert json.dumps(XSS) in rows.nth(1).locator("td.detail").inner_text()  # the JSON detail, as text
    assert page.locator("td.detail img, td.user img").count() == 0  # type: ignore[attr-defined]
    page.select_option("#audit-filters select[name=outcome]", "failure")  # type: ignore[attr-defined]
    page.fill("#audit-filters input[name=action]", "login")  # type: ignore[attr-defined]
    page.fill("#audit-filters input[name=user]", "")  # type: ignore[attr-defined]
    page.click("#audit-filters button.apply")  # type: ignore[attr-defined]
    page.wait_for_url("**outcome=failure**")  # type: ignore[attr-defined]
    assert set(rows.locator("td.outcome").all_inner_texts()) == {"failure"}
    assert page.evaluate("window.pwned") is None  # type: ignore[attr-defined]
    tab.shot("audit-en")
    page.click("form.lang button[value=zh]")  # type: ignore[attr-defined]
    page.wait_for_selector("html[lang=zh-CN]")  # type: ignore[attr-defined]
    assert page.locator("h1").inner_text() == "审计日志"  # type: ignore[attr-defined]
    assert set(rows.locator("td.outcome").all_inner_texts()) == {"失败"}  # the filters survived the switch
    tab.shot("audit-zh")
    assert tab.errors == []


def test_viewer_is_refused_the_admin_pages(demo_console: Console, tab: Tab) -> None:
    page = tab.page
    login_as(tab, demo_console, "viewer", "/tokens")
    nav = page.locator("nav.nav a").evaluate_all("as => as.map(a => a.getAttribute('href'))")  # type: ignore[attr-defined]
    assert "/admin/users" not in nav and "/admin/audit" not in nav and "/tokens" in nav
    # Only read is offered for the viewer's own tokens.
    assert page.locator("#create-token input[name=scope]").count() == 1  # type: ignore[attr-defined]
    for path in ("/admin/users", "/admin/audit"):
        response = page.goto(f"{demo_console.url}{path}")  # type: ignore[attr-defined]
        assert response.status == 403, path
    # Chromium logs each refused page load as a failed resource: those and nothing else.
    assert [e for e in tab.errors if "403" not in e] == []


def test_admin_unlocks_and_changes_a_role(demo_console: Console, tab: Tab) -> None:
    store = demo_console.harness.store
    store.add_user("lockme", "a long enough password", Role.VIEWER)
    for _ in range(5):  # the console's default lock-out: as many failed log-ins
        store.record_failure("lockme", max_failures=5, lockout=timedelta(minutes=15))
    page = tab.page
    login_as(tab, demo_console, "admin", "/admin/users")
    row = page.locator("tr.user-row[data-name='lockme']")  # type: ignore[attr-defined]
    assert row.locator("td.locked").inner_text().endswith(_zone(page))
    with page.expect_navigation():  # type: ignore[attr-defined]
        row.locator("button.unlock").click()
    assert row.locator("td.locked").inner_text() == "-" and row.locator("button.unlock").count() == 0
    assert not store.user("lockme").locked(datetime.now(UTC))
    with page.expect_navigation():  # type: ignore[attr-defined]
        row.locator("select.role").select_option("analyst")
    assert store.user("lockme").role is Role.ANALYST
    assert row.locator("select.role").input_value() == "analyst"
    assert tab.errors == []
