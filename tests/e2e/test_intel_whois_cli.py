"""`cloudsoc intel lookup` shows whois for names: asked from a real whois server on 127.0.0.1 (configured as
`intel.whois.server`), cached for the next look-up, and "unknown" (quickly, exit 0) when no server answers."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.e2e.cli import cloudsoc, jsonl
from tests.servers.whois import WhoisServer


def _config(tmp_path: Path, server: str) -> Path:
    config = tmp_path / "cloudsoc.yaml"
    config.write_text(f"intel:\n  whois:\n    server: '{server}'\n    timeout_secs: 2\n")
    return config


def test_lookup_shows_whois_and_caches_it(tmp_path: Path, whois_server: WhoisServer) -> None:
    home, config = tmp_path / "home", _config(tmp_path, whois_server.address)
    args = ("intel", "lookup", "https://www.imdb.com/title/x", "ops@google.de", "8.8.8.8", "-c", str(config))
    url, mail, ip = jsonl(cloudsoc(home, *args, "--json").stdout)
    assert url["whois"]["domain"] == "imdb.com" and url["whois"]["state"] == "known"  # type: ignore[index]
    assert url["whois"]["created"].startswith("1996-01-05")  # type: ignore[index]
    assert mail["whois"]["domain"] == "google.de"  # type: ignore[index]
    assert "whois" not in ip  # an address has no whois here
    assert whois_server.queries == ["imdb.com", "google.de"]
    text = cloudsoc(home, "intel", "lookup", "imdb.com", "-c", str(config)).stdout
    assert "whois imdb.com: registrar=" in text and "created=1996-01-05" in text
    assert whois_server.queries == ["imdb.com", "google.de"]  # the second look-up came from the cache
    quiet = jsonl(cloudsoc(home, "intel", "lookup", "google.fr", "--no-whois", "--json", "-c", str(config)).stdout)
    assert "whois" not in quiet[0] and whois_server.queries == ["imdb.com", "google.de"]


def test_lookup_offline_says_unknown(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home, config = tmp_path / "home", _config(tmp_path, f"127.0.0.1:{port}")
    started = time.monotonic()
    proc = cloudsoc(home, "intel", "lookup", "example.org", "-c", str(config))
    assert time.monotonic() - started < 15
    assert "whois example.org: unknown" in proc.stdout and "no answer from the whois server" in proc.stdout
