"""Browser tests: Playwright driving Debian's Chromium (/usr/bin/chromium, headless) against the console served
by uvicorn on 127.0.0.1. Screenshots go to test-artifacts/browser/ (kept by CI as artifacts).

Chromium's console errors (CSP refusals, failed requests, script errors) are collected per page and every test
asserts there are none: a page that renders but logs a refused script is broken for its user."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cloudsoc.api.server import ConsoleServer
from cloudsoc.config.models import Config
from tests.console.harness import PASSWORD, Harness
from tests.e2e.cli import SHARED_DATA, cloudsoc

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
# Flags that keep Chromium from reaching out (updates, sync, QUIC) on a machine with no Internet.
_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")


@dataclass
class Console:
    harness: Harness
    url: str
    password: str = PASSWORD


def _serve(h: Harness) -> Iterator[Console]:
    server = ConsoleServer(h.home, Config(), app=h.app, host="127.0.0.1", port=0)
    yield Console(h, server.start().rstrip("/"))
    server.stop()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    """The console over an empty home, users of every role (named like their role)."""
    yield from _serve(Harness(tmp_path / "home"))


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home holding `cloudsoc demo`'s company (a small one: 2 days, ~3,000 events, its attack story and alerts),
    made once per test session through the real pipeline, with the IPsum list imported (intel hits)."""
    home = tmp_path_factory.mktemp("demo") / "home"
    cloudsoc(home, "intel", "import", "--hunt-days", "0", str(SHARED_DATA / "intel" / "ipsum" / "ipsum.txt"))
    cloudsoc(home, "demo", "--events", "3000", "--days", "2", "--seed", "11", "--json")
    return home


@pytest.fixture
def demo_console(demo_home: Path) -> Iterator[Console]:
    """The console over the demo company (pages that change state must not break others' expectations: tests
    that triage alerts pick their own alert)."""
    yield from _serve(Harness(demo_home))


@dataclass
class Tab:
    """A page with the console messages it logged."""

    page: object
    errors: list[str] = field(default_factory=list)

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        return path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # Per module, not per session: Playwright's sync API keeps an event loop running in the main thread while
    # it is open, and every later test calling asyncio.run() would fail.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def tab(browser: object) -> Iterator[Tab]:
    context = browser.new_context(locale="en-US", timezone_id="Asia/Shanghai")  # type: ignore[attr-defined]
    page = context.new_page()
    found = Tab(page)
    page.on("console", lambda msg: found.errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: found.errors.append(str(exc)))
    yield found
    context.close()


def pytest_sessionstart(session: pytest.Session) -> None:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
