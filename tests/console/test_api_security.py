"""The attacks on the console's API and pages: no access without a login, roles, CSRF, brute force, tokens,
path traversal, XSS, security headers, error bodies, cookie flags and secrets kept out of logs."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from fastapi import APIRouter
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from cloudsoc.api.middleware import CSP
from cloudsoc.api.permissions import Permission, Role
from cloudsoc.api.static import StaticAssets
from cloudsoc.config.models import ConsoleConfig
from tests.console.harness import BASE, PASSWORD, ROLES, Harness, form_csrf

PUBLIC = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/lang"),
    ("GET", "/api/docs"),
    ("GET", "/api/openapi.json"),
    ("GET", "/healthz"),
}
PUBLIC_LOGIN = ("POST", "/api/v1/auth/login")


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path, ConsoleConfig(login_max_failures=3, ip_max_failures=50))


def _routes(h: Harness) -> list[tuple[str, str]]:
    out = []
    for ctx in iter_route_contexts(h.app.routes):
        path = ctx.path
        assert path is not None
        for method in sorted(ctx.methods or ()):
            if method != "HEAD":
                out.append((method, re.sub(r"\{(\w+)(:path)?\}", "x", path)))
    return out


def test_every_route_needs_a_login(h: Harness) -> None:
    client = h.client()
    routes = _routes(h)
    assert len(routes) >= 15
    for method, path in routes:
        if (method, path) in PUBLIC or path.startswith("/static/") or (method, path) == PUBLIC_LOGIN:
            continue
        r = client.request(method, path, json={})
        if path.startswith("/api/"):
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.json()["error"]["status"] == 401
            assert r.headers["www-authenticate"] == "Bearer"
        else:
            assert r.status_code == 303, (method, path, r.status_code)
            assert r.headers["location"].startswith("/login?next=")


def test_page_redirect_keeps_where_the_user_was_going(h: Harness) -> None:
    client = h.client()
    r = client.get("/logout")
    assert r.headers["location"] == "/login?next=/logout"
    assert h.form_login(client, "viewer", next_path="/logout") == "/logout"
    # An open redirect through next= is not possible.
    for evil in ("//evil.example", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        assert h.form_login(h.client(), "viewer", next_path=evil) == "/"


@pytest.mark.parametrize(
    ("role", "method", "path", "body"),
    [
        ("viewer", "POST", "/api/v1/users", {"name": "mallory", "role": "admin", "password": PASSWORD}),
        ("analyst", "POST", "/api/v1/users", {"name": "mallory", "role": "admin", "password": PASSWORD}),
        ("auditor", "PATCH", "/api/v1/users/viewer", {"role": "admin"}),
        ("viewer", "POST", "/api/v1/tokens", {"user": "analyst", "name": "x", "scopes": ["read"]}),
        ("viewer", "GET", "/api/v1/audit", None),
        ("analyst", "GET", "/api/v1/audit", None),
        ("viewer", "DELETE", "/api/v1/tokens/abc", None),
    ],
)
def test_roles_are_enforced(h: Harness, role: str, method: str, path: str, body: object) -> None:
    client = h.login(role)
    r = client.request(method, path, json=body)
    assert r.status_code == 403, r.text
    assert "needs permission" in r.json()["error"]["message"]
    assert h.store.get_user("mallory") is None
    denied, _ = h.store.audit_entries(action="access.denied")
    assert denied[0].user == role and denied[0].outcome == "denied"


def test_role_matrix_for_reads(h: Harness) -> None:
    expect = {"admin": (200, 200), "analyst": (403, 403), "viewer": (403, 403), "auditor": (403, 200)}
    for role in ROLES:
        client = h.login(role)
        me = client.get("/api/v1/me").json()
        assert set(me["permissions"]) == {p.value for p in Role(role).permissions}
        users, audit = client.get("/api/v1/users").status_code, client.get("/api/v1/audit").status_code
        assert (users, audit) == expect[role], role


def test_csrf_required_for_cookie_state_changes(h: Harness) -> None:
    client = h.login("admin")
    good = client.headers.pop("X-CSRF-Token")
    body = {"name": "newbie", "role": "viewer", "password": PASSWORD}
    assert client.post("/api/v1/users", json=body).status_code == 403
    assert client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": "wrong"}).status_code == 403
    # A token from another session is no good either.
    other = h.login("admin").headers["X-CSRF-Token"]
    assert client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": other}).status_code == 403
    # The right token but a request a browser marks as coming from another site.
    for headers in (
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://testserver:1"},
    ):
        r = client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": good, **headers})
        assert r.status_code == 403, headers
    assert h.store.get_user("newbie") is None
    # Chromium's own form posts say "Origin: null" under Referrer-Policy: no-referrer; the token decides then.
    assert client.post("/api/v1/users", json=body, headers={"Origin": "null"}).status_code == 403
    r = client.post(
        "/api/v1/users", json=body, headers={"X-CSRF-Token": good, "Origin": "null", "Sec-Fetch-Site": "same-origin"}
    )
    assert r.status_code == 201, r.text
    body["name"] = "newbie2"
    r = client.post(
        "/api/v1/users", json=body, headers={"X-CSRF-Token": good, "Origin": BASE, "Sec-Fetch-Site": "same-origin"}
    )
    assert r.status_code == 201, r.text
    # Form posts carry it as a field: log-out without it fails, with it works.
    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/api/v1/me").status_code == 200
    assert client.post("/logout", data={"csrf_token": good}).status_code == 303
    assert client.get("/api/v1/me").status_code == 401


def test_login_form_has_csrf_protection(h: Harness) -> None:
    client = h.client()
    client.get("/login")
    r = client.post("/login", data={"username": "viewer", "password": PASSWORD, "csrf_token": "forged"})
    assert r.status_code == 403 and "cloudsoc_session" not in r.headers.get("set-cookie", "")
    fresh = h.client()  # no pre-session cookie at all
    token = form_csrf(h.client().get("/login").text)
    r = fresh.post("/login", data={"username": "viewer", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 403
    r = h.client().post(
        "/api/v1/auth/login",
        json={"username": "viewer", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403


def test_brute_force_locks_the_account_without_telling_who_exists(h: Harness) -> None:
    client = h.client()

    def attempt(user: str, password: str) -> tuple[int, str]:
        r = client.post("/api/v1/auth/login", json={"username": user, "password": password})
        return r.status_code, r.json()["error"]["message"] if r.status_code != 200 else ""

    real = [attempt("viewer", f"guess-{i}") for i in range(4)]
    ghost = [attempt("ghost", f"guess-{i}") for i in range(4)]
    assert real == ghost  # same answers for a real user and a name that does not exist
    assert real[0] == (401, "invalid user name or password")
    assert real[3][0] == 429 and "try again in 15 minutes" in real[3][1]
    # The right password does not get in while locked …
    assert attempt("viewer", PASSWORD)[0] == 429
    assert h.store.user("viewer").locked_until is not None
    # … until an admin unlocks the account.
    admin = h.login("admin")
    assert admin.post("/api/v1/users/viewer/unlock").status_code == 200
    assert attempt("viewer", PASSWORD) == (200, "")
    actions = [(e.action, e.outcome) for e in h.store.audit_entries(user="viewer", limit=100)[0]]
    assert ("user.lock", "success") in actions and ("login", "locked") in actions


def test_per_address_throttle(tmp_path: Path) -> None:
    h = Harness(tmp_path, ConsoleConfig(login_max_failures=100, ip_max_failures=5))
    client = h.client()
    codes = [
        client.post("/api/v1/auth/login", json={"username": f"user{i}", "password": "x"}).status_code for i in range(7)
    ]
    assert codes == [401] * 5 + [429] * 2
    assert client.post("/api/v1/auth/login", json={"username": "viewer", "password": PASSWORD}).status_code == 429


def test_tokens_revoked_scoped_and_bounded_by_role(h: Harness) -> None:
    admin = h.login("admin")
    made = admin.post("/api/v1/tokens", json={"user": "analyst", "name": "reader", "scopes": ["read"]})
    assert made.status_code == 201
    secret, token_id = made.json()["secret"], made.json()["token"]["id"]
    bot = TestClient(h.app, base_url=BASE, headers={"Authorization": f"Bearer {secret}"})
    me = bot.get("/api/v1/me").json()
    assert me["via"] == "token" and me["permissions"] == ["read"] and me["csrf_token"] is None
    # Scope enforced: the analyst may triage, the read-only token may not reach beyond read.
    assert bot.get("/api/v1/audit").status_code == 403
    # Bearer requests need no CSRF token (no ambient authority) but log-out is for sessions only.
    assert bot.post("/api/v1/auth/logout").status_code == 400
    # A role shrinking shrinks its tokens.
    h.store.set_role("analyst", Role.AUDITOR)
    assert bot.get("/api/v1/me").json()["permissions"] == []
    h.store.set_role("analyst", Role.ANALYST)
    assert admin.delete(f"/api/v1/tokens/{token_id}").status_code == 200
    r = bot.get("/api/v1/me")
    assert r.status_code == 401 and r.json()["error"]["message"] == "invalid or revoked API token"
    assert (
        TestClient(h.app, base_url=BASE, headers={"Authorization": "Bearer nonsense"}).get("/api/v1/me").status_code
        == 401
    )
    # More than the owner's role, or admin: refused.
    r = admin.post("/api/v1/tokens", json={"user": "viewer", "name": "x", "scopes": ["triage"]})
    assert r.status_code == 403 and "exceed" in r.json()["error"]["message"]
    r = admin.post("/api/v1/tokens", json={"user": "admin", "name": "x", "scopes": ["admin"]})
    assert r.status_code == 400


def test_disabled_user_loses_session_and_tokens(h: Harness) -> None:
    viewer = h.login("viewer")
    secret, _ = h.store.create_token("viewer", "t", [Permission.READ])
    admin = h.login("admin")
    assert admin.patch("/api/v1/users/viewer", json={"disabled": True}).status_code == 200
    assert viewer.get("/api/v1/me").status_code == 401
    bot = TestClient(h.app, base_url=BASE, headers={"Authorization": f"Bearer {secret}"})
    assert bot.get("/api/v1/me").status_code == 401
    r = h.client().post("/api/v1/auth/login", json={"username": "viewer", "password": PASSWORD})
    assert r.status_code == 401
    # An admin cannot lock themselves out.
    assert admin.patch("/api/v1/users/admin", json={"disabled": True}).status_code == 409


def test_session_rotated_at_login_and_ended_at_logout(h: Harness) -> None:
    client = h.login("viewer")
    first = client.cookies["cloudsoc_session"]
    client.post("/api/v1/auth/login", json={"username": "viewer", "password": PASSWORD})
    second = client.cookies["cloudsoc_session"]
    assert first != second
    stale = TestClient(h.app, base_url=BASE, cookies={"cloudsoc_session": first})
    assert stale.get("/api/v1/me").status_code == 401
    me = client.get("/api/v1/me").json()
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": me["csrf_token"]}).status_code == 204
    kept = TestClient(h.app, base_url=BASE, cookies={"cloudsoc_session": second})
    assert kept.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/static/../api/app.py",
        "/static/%2e%2e/api/app.py",
        "/static/%2e%2e%2fapi%2fapp.py",
        "/static/css/%2e%2e/%2e%2e/%2e%2e/api/app.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/vendor/..%2f..%2fpackage.json",
        "/static/vendor/echarts/package.json",
        "/static/..%5c..%5capi%5capp.py",
        "/static/css/console.css%00.js",
    ],
)
def test_static_path_traversal_refused(h: Harness, path: str) -> None:
    r = h.client().get(path)
    assert r.status_code == 404, path
    assert "import" not in r.text and "root:" not in r.text


def test_static_resolver(tmp_path: Path) -> None:
    root = tmp_path / "static"
    (root / "css").mkdir(parents=True)
    (root / "css" / "a.css").write_text("a{}")
    (tmp_path / "secret.txt").write_text("secret")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    assets = StaticAssets(root, tmp_path / "node_modules")
    assert assets.resolve("css/a.css") == (root / "css" / "a.css").resolve()
    for bad in ("../secret.txt", "css/../../secret.txt", "/etc/passwd", "link.txt", "css", "", "css//a.css",
                "css\\a.css", "./css/a.css", "vendor/echarts.min.js"):  # fmt: skip
        assert assets.resolve(bad) is None, bad


def test_static_files_and_vendor_libraries(h: Harness) -> None:
    client = h.client()
    r = client.get("/static/css/console.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    if StaticAssets().missing_vendor():
        pytest.skip("front-end libraries not installed (make setup)")
    for name in ("echarts.min.js", "cytoscape.min.js"):
        r = client.get(f"/static/vendor/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
        assert len(r.content) > 100_000


XSS = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def test_xss_payloads_are_escaped(h: Harness) -> None:
    client = h.client()
    page = client.get("/login")
    r = client.post("/login", data={"username": XSS, "password": "x", "csrf_token": form_csrf(page.text)})
    assert r.status_code == 401
    assert "<script>alert(1)" not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    r = client.get("/no-such-page/<script>alert(1)</script>")
    assert r.status_code == 404 and "<script>alert(1)" not in r.text
    # A hostile value in the audit trail comes back as inert JSON data.
    r = h.client().post("/api/v1/auth/login", json={"username": XSS, "password": "x"})
    assert r.headers["content-type"] == "application/json"
    # No inline script or style in any page (the CSP would block it anyway).
    viewer = h.client()
    h.form_login(viewer, "viewer")
    for path in ("/", "/logout", "/login", "/api/docs"):
        html = viewer.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert "<style" not in html and " style=" not in html and "onerror=" not in html and "onclick=" not in html


def test_security_headers_on_every_kind_of_response(h: Harness) -> None:
    router = APIRouter()

    @router.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret internals /etc/cloudsoc password=hunter2")

    h.app.include_router(router)
    client = h.client()
    viewer = h.login("viewer")
    responses = [
        client.get("/login"),
        client.get("/"),  # redirect
        client.get("/api/v1/me"),  # 401
        viewer.get("/api/v1/users"),  # 403
        client.get("/nope"),  # 404 page
        client.get("/api/v1/nope"),  # 404 JSON
        client.post("/api/v1/auth/login", json={"username": "x"}),  # 422
        client.get("/static/css/console.css"),
        client.get("/api/openapi.json"),
        viewer.get("/api/v1/boom"),  # 500
    ]
    for r in responses:
        assert r.headers["content-security-policy"] == CSP, r.url
        assert "frame-ancestors 'none'" in CSP and "script-src 'self';" in CSP
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "camera=()" in r.headers["permissions-policy"]
        expected = "no-cache" if r.url.path.startswith("/static/") else "no-store"
        assert r.headers["cache-control"] == expected, r.url
        assert re.fullmatch(r"app;dur=\d+\.\d", r.headers["server-timing"]), r.url


def test_errors_are_json_without_stack_traces(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    router = APIRouter()

    @router.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret internals password=hunter2")

    @router.get("/boom")
    def boom_page() -> None:
        raise RuntimeError("secret internals password=hunter2")

    h.app.include_router(router)
    client = h.login("viewer")
    with caplog.at_level(logging.ERROR, logger="cloudsoc.console"):
        r = client.get("/api/v1/boom")
        page = client.get("/boom")
    assert r.status_code == 500 and page.status_code == 500
    message = r.json()["error"]["message"]
    error_id = re.search(r"id ([0-9a-f]{12})", message)
    assert error_id and error_id.group(1) in caplog.text and "RuntimeError" in caplog.text
    for body in (r.text, page.text):
        assert "Traceback" not in body and "hunter2" not in body and "RuntimeError" not in body
    assert "<h1>Error 500</h1>" in page.text
    r = client.post("/api/v1/auth/login", json={"username": "viewer"})
    assert r.status_code == 422 and r.json()["error"]["message"] == "password: Field required"
    r = client.get("/api/v1/audit?limit=0")
    assert r.status_code in (403, 422)
    admin = h.login("admin")
    r = admin.get("/api/v1/audit?limit=100000")
    assert r.status_code == 422 and "limit" in r.json()["error"]["message"]


def test_cookie_flags(h: Harness) -> None:
    client = h.client()
    r = client.post("/api/v1/auth/login", json={"username": "viewer", "password": PASSWORD})
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("cloudsoc_session=")
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/", "Max-Age=43200"):
        assert flag in cookie, flag
    login_page = h.client().get("/login").headers["set-cookie"]
    for flag in ("cloudsoc_login_csrf=", "HttpOnly", "Secure", "SameSite=strict", "Path=/login"):
        assert flag in login_page, flag


def test_secrets_never_logged_or_echoed(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    wrong = "wrong-password-1234567"
    with caplog.at_level(logging.DEBUG):
        client = h.client()
        r = client.post("/api/v1/auth/login", json={"username": "viewer", "password": wrong})
        assert wrong not in r.text
        admin = h.login("admin")
        session = admin.cookies["cloudsoc_session"]
        made = admin.post("/api/v1/tokens", json={"user": "viewer", "name": "t", "scopes": ["read"]}).json()
        bot = TestClient(h.app, base_url=BASE, headers={"Authorization": f"Bearer {made['secret']}"})
        bot.get("/api/v1/me")
        r = admin.post("/api/v1/users", json={"name": "newbie", "role": "viewer", "password": "short"})
        assert r.status_code == 400 and "short" not in r.json()["error"]["message"]
    secrets = (PASSWORD, wrong, session, made["secret"], made["secret"].rsplit("_", 1)[1], "short")
    audit = str([e.export() for e in h.store.audit_entries(limit=500)[0]])
    listing = admin.get("/api/v1/tokens").text + admin.get("/api/v1/users").text
    for secret in secrets:
        assert secret not in caplog.text and secret not in audit and secret not in listing


def test_language_switch_and_time_zone(tmp_path: Path) -> None:
    h = Harness(tmp_path, ConsoleConfig(timezone="Asia/Shanghai"))
    client = h.client()
    h.form_login(client, "viewer")
    assert "Overview" in client.get("/").text
    r = client.post("/lang", data={"lang": "zh", "next": "/"})
    assert r.status_code == 303 and "cloudsoc_lang=zh" in r.headers["set-cookie"]
    page = client.get("/").text
    assert "概览" in page and 'lang="zh-CN"' in page and "Asia/Shanghai" in page
    assert client.post("/lang", data={"lang": "xx"}).status_code == 400
    assert client.post("/lang", data={"lang": "en"}, headers={"Origin": "https://evil.example"}).status_code == 403
    assert h.console.local_time("2026-11-01T00:00:00+00:00") == "2026-11-01 08:00:00 CST"


def test_pagination_shape(h: Harness) -> None:
    admin = h.login("admin")
    page = admin.get("/api/v1/users?limit=2&offset=1").json()
    assert page == {"items": page["items"], "total": 4, "limit": 2, "offset": 1}
    assert [u["name"] for u in page["items"]] == ["analyst", "auditor"]
    assert set(page["items"][0]) == {"name", "role", "disabled", "failures", "locked_until", "created", "last_login"}


def test_starts_without_the_npm_libraries(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from cloudsoc.api.app import create_app
    from cloudsoc.api.static import STATIC
    from tests.console.harness import CHEAP

    assets = StaticAssets(STATIC, tmp_path / "no-node-modules")
    with caplog.at_level(logging.WARNING, logger="cloudsoc.console"):
        app = create_app(tmp_path, hasher=CHEAP, assets=assets)
    assert "front-end libraries missing" in caplog.text and "npm ci" in caplog.text
    client = TestClient(app, base_url=BASE)
    assert client.get("/static/vendor/echarts.min.js").status_code == 404
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and "make setup" in docs.text and "swagger-ui-bundle" not in docs.text
