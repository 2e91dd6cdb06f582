"""The overview and search pages on the server side: who may open them, no inline script or style, and the
request's values rendered as inert text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.console.harness import Harness


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path / "home")


XSS = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def test_pages_by_role(h: Harness) -> None:
    viewer = h.client()
    h.form_login(viewer, "viewer")
    home = viewer.get("/")
    assert home.status_code == 200 and 'id="overview"' in home.text
    assert 'href="/search"' in home.text  # the nav link
    assert viewer.get("/search").status_code == 200
    auditor = h.client()
    h.form_login(auditor, "auditor")
    home = auditor.get("/")
    assert home.status_code == 303 and home.headers["location"] == "/admin/audit"  # a page the auditor may see
    assert 'href="/search"' not in auditor.get("/admin/audit").text
    assert auditor.get("/search").status_code == 403
    assert h.client().get("/search").status_code == 303  # to the log-in


def test_no_inline_code_and_the_query_is_text(h: Harness) -> None:
    viewer = h.client()
    h.form_login(viewer, "viewer")
    for path in ("/", "/?since=7d", "/search", "/search?q=event.action:X&since=1h"):
        html = viewer.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert "<style" not in html and " style=" not in html and "onerror=" not in html and "onclick=" not in html
    html = viewer.get("/search", params={"q": XSS, "since": XSS[:60], "until": "1h"}).text
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # the translated strings reach the script as an escaped JSON attribute
    strings = re.search(r'data-strings="([^"]*)"', html)
    assert strings and "&#34;summary&#34;" in strings.group(1)
