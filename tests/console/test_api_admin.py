"""The account API as the admin pages use it: users' own API tokens without admin, the last admin kept, and the
audit log's filters (outcome, time range)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloudsoc.api.permissions import Permission, Role
from cloudsoc.errors import ConsoleError
from tests.console.harness import BASE, PASSWORD, Harness


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path / "home")


def test_a_user_manages_their_own_tokens_without_admin(h: Harness) -> None:
    analyst = h.login("analyst")
    made = analyst.post("/api/v1/tokens", json={"name": "ingest script", "scopes": ["read", "ingest"]})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["token"]["user"] == "analyst" and body["token"]["scopes"] == ["ingest", "read"]
    bot = TestClient(h.app, base_url=BASE, headers={"Authorization": f"Bearer {body['secret']}"})
    assert bot.get("/api/v1/me").json()["permissions"] == ["ingest", "read"]
    # Only the analyst's own tokens are listed to them, whatever they ask for.
    h.store.create_token("viewer", "viewer's", [Permission.READ])
    mine = analyst.get("/api/v1/tokens").json()
    assert [t["name"] for t in mine["items"]] == ["ingest script"] and mine["total"] == 1
    assert analyst.get("/api/v1/tokens?user=viewer").status_code == 403
    # Scopes beyond the analyst's own role (admin, audit) are refused.
    r = analyst.post("/api/v1/tokens", json={"name": "x", "scopes": ["audit"]})
    assert r.status_code == 403 and "exceed" in r.json()["error"]["message"]
    assert analyst.post("/api/v1/tokens", json={"name": "x", "scopes": ["admin"]}).status_code == 400
    # A viewer and an auditor get tokens within their roles too.
    assert h.login("viewer").post("/api/v1/tokens", json={"name": "r", "scopes": ["read"]}).status_code == 201
    assert h.login("auditor").post("/api/v1/tokens", json={"name": "a", "scopes": ["audit"]}).status_code == 201
    # A token cannot mint tokens (a leaked secret must not renew itself), but it can list and revoke its own.
    r = bot.post("/api/v1/tokens", json={"name": "child", "scopes": ["read"]})
    assert r.status_code == 403 and "session" in r.json()["error"]["message"]
    assert bot.get("/api/v1/tokens").json()["total"] == 1
    # Someone else's token, or one that does not exist, is refused alike; the analyst revokes their own.
    others = h.store.tokens(user="viewer")[0]
    for token_id in (others[0].id, "doesnotexist"):
        r = analyst.delete(f"/api/v1/tokens/{token_id}")
        assert r.status_code == 403, r.text
    kept = h.store.get_token(others[0].id)
    assert kept is not None and kept.revoked is None
    assert analyst.delete(f"/api/v1/tokens/{body['token']['id']}").status_code == 200
    assert bot.get("/api/v1/me").status_code == 401
    actions = [(e.user, e.action) for e in h.store.audit_entries(action="token.*", limit=20)[0]]
    assert ("analyst", "token.create") in actions and ("analyst", "token.revoke") in actions


def test_an_admin_sees_and_revokes_everyones_tokens(h: Harness) -> None:
    _, token = h.store.create_token("analyst", "theirs", [Permission.TRIAGE])
    admin = h.login("admin")
    admin.post("/api/v1/tokens", json={"name": "mine", "scopes": ["read"]})
    everyone = admin.get("/api/v1/tokens").json()
    assert {t["user"] for t in everyone["items"]} == {"admin", "analyst"}
    assert [t["name"] for t in admin.get("/api/v1/tokens?mine=true").json()["items"]] == ["mine"]
    made = admin.post("/api/v1/tokens", json={"user": "viewer", "name": "for viewer", "scopes": ["read"]})
    assert made.status_code == 201 and made.json()["token"]["user"] == "viewer"
    assert admin.delete(f"/api/v1/tokens/{token.id}").json()["revoked"] is not None
    assert admin.delete(f"/api/v1/tokens/{token.id}").status_code == 409


def test_the_last_admin_stays(h: Harness) -> None:
    admin = h.login("admin")
    # Themselves: refused through the API.
    assert admin.patch("/api/v1/users/admin", json={"disabled": True}).status_code == 409
    assert admin.patch("/api/v1/users/admin", json={"role": "viewer"}).status_code == 409
    # A second admin may be demoted while the first remains...
    assert admin.post("/api/v1/users", json={"name": "root2", "role": "admin", "password": PASSWORD}).status_code == 201
    assert admin.patch("/api/v1/users/root2", json={"role": "analyst"}).json()["role"] == "analyst"
    # ...and the store (the `cloudsoc users` commands) never leaves no enabled admin either.
    with pytest.raises(ConsoleError, match="last enabled admin"):
        h.store.set_role("admin", Role.VIEWER)
    with pytest.raises(ConsoleError, match="last enabled admin"):
        h.store.set_disabled("admin", True)
    assert h.store.user("admin").role is Role.ADMIN and not h.store.user("admin").disabled
    # With another enabled admin, the old one may go (by the other admin).
    h.store.set_role("root2", Role.ADMIN)
    h.store.set_disabled("admin", True)
    assert h.store.user("admin").disabled


def test_audit_filters_outcome_and_time(h: Harness) -> None:
    client = h.client()
    client.post("/api/v1/auth/login", json={"username": "viewer", "password": "wrong password"})
    auditor = h.login("auditor")
    failures = auditor.get("/api/v1/audit?outcome=failure").json()
    assert failures["total"] == 1 and failures["items"][0]["user"] == "viewer"
    assert failures["items"][0]["detail"] == {"reason": "bad_password"}
    logins = auditor.get("/api/v1/audit?action=login&since=1h").json()
    assert logins["total"] == 2 and {e["outcome"] for e in logins["items"]} == {"success", "failure"}
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert auditor.get("/api/v1/audit", params={"since": future}).json()["total"] == 0
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert auditor.get("/api/v1/audit", params={"until": past}).json()["total"] == 0
    assert auditor.get("/api/v1/audit", params={"since": "1h", "until": "2h"}).status_code == 400
    r = auditor.get("/api/v1/audit?outcome=maybe")
    assert r.status_code == 422 and "outcome" in r.json()["error"]["message"]


XSS = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def test_pages_by_role_nav_and_escaping(h: Harness) -> None:
    # Hostile text where it can really arrive: a log-in name (audit user and the failed-login detail) and a
    # token name (token.create detail, the tokens table).
    h.client().post("/api/v1/auth/login", json={"username": XSS, "password": "x"})
    h.login("analyst").post("/api/v1/tokens", json={"name": XSS, "scopes": ["read"]})
    expect = {
        "admin": {"/admin/users": 200, "/tokens": 200, "/admin/audit": 200},
        "analyst": {"/admin/users": 403, "/tokens": 200, "/admin/audit": 403},
        "viewer": {"/admin/users": 403, "/tokens": 200, "/admin/audit": 403},
        "auditor": {"/admin/users": 403, "/tokens": 200, "/admin/audit": 200},
    }
    for role, pages in expect.items():
        client = h.client()
        h.form_login(client, role)
        for path, status in pages.items():
            r = client.get(path)
            assert r.status_code == status, (role, path, r.status_code)
            if status == 200:
                assert "<script>alert(1)" not in r.text and "<img src=x" not in r.text
                assert not re.search(r"<script(?![^>]*\bsrc=)", r.text), path
                assert "<style" not in r.text and " style=" not in r.text
        links = set(
            re.findall(r'<nav class="nav">(.*?)</nav>', client.get("/tokens").text, re.S)[0].split('href="')[1:]
        )
        shown = {link.split('"')[0] for link in links}
        assert ("/admin/users" in shown) == (role == "admin"), (role, shown)
        assert ("/admin/audit" in shown) == (role in ("admin", "auditor")), (role, shown)
        assert ("/" in shown) == (role != "auditor") and ("/search" in shown) == (role != "auditor"), (role, shown)
    # The auditor, who may not read events, lands on the audit log instead of an empty overview.
    auditor = h.client()
    assert h.form_login(auditor, "auditor") == "/"
    r = auditor.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/admin/audit"
    page = auditor.get("/admin/audit").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # Filters narrow the table; a bad time is said on the page, not a crash.
    failures = auditor.get("/admin/audit?outcome=failure").text
    assert failures.count('class="audit-row"') == 1 and "bad_password" not in failures and "unknown_user" in failures
    bad = auditor.get("/admin/audit?since=yesterday-ish")
    assert bad.status_code == 200 and "since: cannot read time" in bad.text
