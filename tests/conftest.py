"""Shared pytest options and fixtures (keep this small: fixtures of one test area live beside its tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers.vendors import VendorServer
from tests.servers.whois import WhoisServer

# Real public samples live beside the repository (../shared/data) and are never copied into it.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/*.jsonl from the current parsers instead of comparing (review the diff)",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """Whether golden tests should rewrite their expected files (``pytest --update-golden``)."""
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def shared_data() -> Path:
    """The ../shared/data directory of real samples; tests needing it are skipped where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def vendor() -> Iterator[VendorServer]:
    """A local HTTP server that checks each chat/webhook vendor's signature scheme as documented."""
    server = VendorServer().start()
    yield server
    server.stop()


@pytest.fixture
def whois_server() -> Iterator[WhoisServer]:
    """A whois server on 127.0.0.1 answering from the raw registry answers in ../shared/data/intel/whois-samples."""
    server = WhoisServer().start()
    yield server
    server.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as shared:
        yield shared
