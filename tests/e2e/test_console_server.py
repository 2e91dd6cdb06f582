"""The console over real HTTP: uvicorn on 127.0.0.1, httpx as the client, cookies and headers as a browser sees
them; and the real ``cloudsoc serve`` / ``users`` / ``tokens`` commands."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest

from cloudsoc.api.server import ConsoleServer
from cloudsoc.config.models import Config
from tests.console.harness import PASSWORD, Harness, form_csrf
from tests.e2e.cli import cloudsoc


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Harness, str]]:
    h = Harness(tmp_path)
    web = ConsoleServer(h.home, Config(), app=h.app, host="127.0.0.1", port=0)
    yield h, web.start().rstrip("/")
    web.stop()


def _cookies(response: httpx.Response) -> dict[str, tuple[str, str]]:
    """Set-Cookie headers as name → (value, the raw header)."""
    out = {}
    for raw in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(raw)
        for name, morsel in jar.items():
            out[name] = (morsel.value, raw)
    return out


def test_browser_login_flow_over_http(server: tuple[Harness, str]) -> None:
    h, base = server
    # A browser keeps Secure cookies on http://127.0.0.1 (a secure context); httpx's jar does not, so this test
    # carries the cookies itself, exactly as received.
    with httpx.Client(base_url=base, trust_env=False, follow_redirects=False) as c:
        r = c.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/"
        page = c.get("/login")
        assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
        assert (
            page.headers["x-frame-options"] == "DENY"
            and "frame-ancestors 'none'" in page.headers["content-security-policy"]
        )
        pre_value, pre_raw = _cookies(page)["cloudsoc_login_csrf"]
        assert "HttpOnly" in pre_raw and "Secure" in pre_raw and "SameSite=strict" in pre_raw
        token = form_csrf(page.text)
        assert re.search(r'<meta name="csrf-token" content="[^"]+">', page.text)
        r = c.post(
            "/login",
            data={"username": "analyst", "password": PASSWORD, "csrf_token": token, "next": "/"},
            headers={"Cookie": f"cloudsoc_login_csrf={pre_value}", "Origin": base, "Sec-Fetch-Site": "same-origin"},
        )
        assert r.status_code == 303 and r.headers["location"] == "/"
        session, raw = _cookies(r)["cloudsoc_session"]
        for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
            assert flag in raw
        cookie = {"Cookie": f"cloudsoc_session={session}"}
        home = c.get("/", headers=cookie)
        assert home.status_code == 200 and "Signed in as analyst (analyst)" in home.text
        assert home.headers["cache-control"] == "no-store"
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', home.text)
        assert csrf
        assert c.get("/api/v1/me", headers=cookie).json()["name"] == "analyst"
        # A cross-site form post with the cookie is refused even with the token.
        evil = {**cookie, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
        assert c.post("/logout", data={"csrf_token": csrf.group(1)}, headers=evil).status_code == 403
        r = c.post("/logout", data={"csrf_token": csrf.group(1)}, headers={**cookie, "Origin": base})
        assert r.status_code == 303 and "cloudsoc_session=" in r.headers["set-cookie"]
        assert c.get("/api/v1/me", headers=cookie).status_code == 401
    trail = [(e.user, e.action, e.ip) for e in h.store.audit_entries()[0]]
    assert trail[:3] == [
        ("analyst", "logout", "127.0.0.1"),
        ("analyst", "csrf.refused", "127.0.0.1"),
        ("analyst", "login", "127.0.0.1"),
    ]


def test_raw_traversal_requests(server: tuple[Harness, str]) -> None:
    _, base = server
    host, port = base.removeprefix("http://").split(":")
    for target in ("/static/../../api/app.py", "/static/..%2f..%2fapi/app.py", "/static/vendor/../../web/i18n.py"):
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        status = answer.split(b"\r\n", 1)[0]
        assert b" 404 " in status, (target, status)
        assert b"import" not in answer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(home: Path, port: int) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloudsoc", "--home", str(home), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if "Uvicorn running" in line:
            return proc, lines
    proc.kill()
    raise AssertionError("cloudsoc serve did not start:\n" + "".join(lines))


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    _, rest = proc.communicate(timeout=10)
    return rest


def test_serve_first_start_prints_admin_password_once(tmp_path: Path) -> None:
    port = _free_port()
    proc, lines = _serve(tmp_path, port)
    try:
        found = re.search(r"created console user admin with password (\S+)", "".join(lines))
        assert found, lines
        password = found.group(1)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as c:
            r = c.post("/api/v1/auth/login", json={"username": "admin", "password": password})
            assert r.status_code == 200 and r.json()["user"]["role"] == "admin"
            assert c.get("/static/css/console.css").status_code == 200
    finally:
        rest = _stop(proc)
    assert password not in rest  # shown once, not repeated in the log
    assert not (tmp_path / "console.db").read_bytes().count(password.encode())
    proc, lines = _serve(tmp_path, port)
    _stop(proc)
    assert "password" not in "".join(lines)


def test_users_and_tokens_commands(tmp_path: Path) -> None:
    add = subprocess.run(
        [sys.executable, "-m", "cloudsoc", "--home", str(tmp_path), "users", "add", "carol", "--role", "viewer",
         "--password-stdin"],
        input=PASSWORD + "\n", capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "added carol (viewer)" in add.stdout and PASSWORD not in add.stdout + add.stderr
    users = cloudsoc(tmp_path, "users", "list", "--json").stdout
    assert '"name":"carol"' in users and '"role":"viewer"' in users and "hash" not in users
    bad = cloudsoc(tmp_path, "users", "add", "dave", "--role", "boss", "--password-stdin", check=False)
    assert bad.returncode == 2 and "unknown role 'boss'" in bad.stderr
    made = cloudsoc(tmp_path, "tokens", "create", "--user", "carol", "--scope", "read", "--name", "report")
    secret = made.stdout.strip()
    assert secret.startswith("cst_") and "not shown again" in made.stderr
    over = cloudsoc(tmp_path, "tokens", "create", "--user", "carol", "--scope", "triage", "--name", "x", check=False)
    assert over.returncode == 2 and "exceed" in over.stderr
    listed = cloudsoc(tmp_path, "tokens", "list", "--json").stdout
    # cst_<id>_<secret>: the secret is URL-safe base64, so it may itself hold "_"
    _prefix, token_id, hidden = secret.split("_", 2)
    assert secret not in listed and hidden not in listed
    assert "revoked" in cloudsoc(tmp_path, "tokens", "revoke", token_id).stdout
    assert "disabled" in cloudsoc(tmp_path, "users", "disable", "carol").stdout
    assert "unlocked" in cloudsoc(tmp_path, "users", "unlock", "carol").stdout
    missing = cloudsoc(tmp_path, "users", "unlock", "nobody", check=False)
    assert missing.returncode == 2 and "no user 'nobody'" in missing.stderr
