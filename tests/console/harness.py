"""A console app over a temporary home, with users of every role and log-in helpers (cheap argon2 for speed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloudsoc.api.accounts import ConsoleStore
from cloudsoc.api.app import create_app
from cloudsoc.api.console import Console
from cloudsoc.api.permissions import Role
from cloudsoc.config.models import Config, ConsoleConfig

# Product default is argon2-cffi's (~230 ms a hash); these cost well under a millisecond.
CHEAP: Final = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
PASSWORD: Final = "correct horse battery staple"
ROLES: Final = ("admin", "analyst", "viewer", "auditor")
# https: the session cookie is Secure, and a cookie jar only sends Secure cookies over https (browsers also
# accept them on http://localhost; the real-server tests send the header themselves).
BASE: Final = "https://testserver"


class Harness:
    """One app; ``login(role)`` returns a client signed in as the user named like the role."""

    def __init__(self, home: Path, console: ConsoleConfig | None = None) -> None:
        self.home = home
        self.app: FastAPI = create_app(home, Config(console=console or ConsoleConfig()), hasher=CHEAP)
        for role in ROLES:
            if self.store.get_user(role) is None:  # a home served again (the browser tests' demo) keeps its users
                self.store.add_user(role, PASSWORD, Role(role))

    @property
    def console(self) -> Console:
        console = self.app.state.console
        assert isinstance(console, Console)
        return console

    @property
    def store(self) -> ConsoleStore:
        return self.console.store

    def client(self) -> TestClient:
        return TestClient(self.app, base_url=BASE, follow_redirects=False)

    def login(self, user: str, password: str = PASSWORD) -> TestClient:
        client = self.client()
        r = client.post("/api/v1/auth/login", json={"username": user, "password": password})
        assert r.status_code == 200, r.text
        client.headers["X-CSRF-Token"] = r.json()["user"]["csrf_token"]
        return client

    def form_login(self, client: TestClient, user: str, password: str = PASSWORD, next_path: str = "/") -> str:
        """Log in through the HTML form as a browser does; returns the response's Location."""
        page = client.get("/login")
        token = form_csrf(page.text)
        r = client.post("/login", data={"username": user, "password": password, "csrf_token": token, "next": next_path})
        assert r.status_code == 303, r.text
        return r.headers["location"]


def form_csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no csrf_token field in the page"
    return found.group(1)
