"""Signing a browser tab in as one of the harness users (the form, like a person)."""

from __future__ import annotations

from tests.browser.conftest import Console, Tab


def login_as(tab: Tab, console: Console, user: str, path: str = "/") -> None:
    page = tab.page
    page.goto(f"{console.url}/login?next={path}")  # type: ignore[attr-defined]
    page.fill("input[name=username]", user)  # type: ignore[attr-defined]
    page.fill("input[name=password]", console.password)  # type: ignore[attr-defined]
    page.click("form[action='/login'] button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(f"{console.url}{path}")  # type: ignore[attr-defined]
