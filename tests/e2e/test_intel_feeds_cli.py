"""`cloudsoc intel feeds add|remove`: feeds added from the command line sync at once and with the config file's
feeds afterwards, from a real HTTP server on 127.0.0.1 serving ../shared/data/intel; keys given as ${ENV_NAME}
never land in intel.db."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.e2e.cli import SHARED_DATA, cloudsoc, cloudsoc_json, jsonl

INTEL = SHARED_DATA / "intel"
SECRET = "feed-key-7f3a9c2e51"


class _Handler(SimpleHTTPRequestHandler):
    seen_keys: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        _Handler.seen_keys.append(self.headers.get("X-Api-Key"))
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def intel_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(INTEL)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _with_env(**env: str) -> dict[str, str]:
    return {**os.environ, **env}


def test_added_feeds_sync_now_and_later(tmp_path: Path, intel_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    config = tmp_path / "cloudsoc.yaml"
    config.write_text(f'feeds:\n  ipsum: {{type: http, url: "{intel_server}/ipsum/ipsum.txt"}}\n')
    monkeypatch.setenv("FEED_KEY", SECRET)
    feodo = jsonl(
        cloudsoc(
            home,
            "intel",
            "feeds",
            "add",
            "feodo",
            f"{intel_server}/abusech-feodo/ipblocklist.csv",
            "-H",
            "X-Api-Key: ${FEED_KEY}",
            "--json",
            "-c",
            str(config),
        ).stdout
    )
    assert feodo[0]["outcome"] == "updated" and feodo[0]["by_type"] == {"ipv4": 28} and feodo[0]["type"] == "http"
    assert _Handler.seen_keys[-1] == SECRET  # the variable was read at sync time …
    assert SECRET.encode() not in (home / "intel.db").read_bytes()  # … and only its name was stored
    folder = f"{intel_server}/misp-feed-crowdsec/misp-feed/"
    crowdsec = jsonl(cloudsoc(home, "intel", "feeds", "add", "crowdsec", folder, "--json").stdout)
    assert crowdsec[0]["type"] == "misp_feed" and crowdsec[0]["outcome"] == "updated"

    refused = cloudsoc(home, "intel", "feeds", "add", "ipsum", f"{intel_server}/x.txt", "-c", str(config), check=False)
    assert refused.returncode != 0 and "config file" in refused.stderr

    # `feeds sync` syncs the config file's feed and the added ones; unchanged files cost one round trip
    synced = {s["name"]: s for s in jsonl(cloudsoc(home, "intel", "feeds", "sync", "--json", "-c", str(config)).stdout)}
    assert set(synced) == {"ipsum", "feodo", "crowdsec"}
    assert synced["ipsum"]["outcome"] == "updated" and synced["feodo"]["outcome"] == "unchanged"

    # without the variable the added feed fails with a reason that names it, and the others still sync
    monkeypatch.delenv("FEED_KEY")
    proc = cloudsoc(home, "intel", "feeds", "sync", "--json", "-c", str(config), check=False)
    statuses = {s["name"]: s for s in jsonl(proc.stdout)}
    assert "feodo" not in statuses and statuses["ipsum"]["outcome"] != "failed"
    listed = {s["name"]: s for s in jsonl(cloudsoc(home, "intel", "feeds", "list", "--json").stdout)}
    assert listed["feodo"]["outcome"] == "failed" and "FEED_KEY is not set" in listed["feodo"]["last_error"]

    cloudsoc(home, "intel", "feeds", "remove", "feodo")
    assert "feodo" not in {s["name"] for s in jsonl(cloudsoc(home, "intel", "feeds", "list", "--json").stdout)}
    assert cloudsoc_json(home, "intel", "stats")["indicators"]["ipv4"] >= 28  # type: ignore[index]  # indicators stay
    missing = cloudsoc(home, "intel", "feeds", "remove", "feodo", check=False)
    assert missing.returncode != 0 and "no added feed" in missing.stderr


def test_lists_say_what_their_values_are(tmp_path: Path, intel_server: str) -> None:
    """A CSV file with a column mapping, and the confidence and intel type a list does not state, from the command
    line and as a feed."""
    home = tmp_path / "home"
    feodo = INTEL / "abusech-feodo" / "ipblocklist.csv"
    mapping = "{values: {dst_ip: ip}, first_seen: first_seen_utc, description: malware}"
    imported = cloudsoc_json(
        home,
        "intel",
        "import",
        str(feodo),
        "--format",
        "csv_map",
        "--columns",
        mapping,
        "--confidence",
        "75",
        "--intel-type",
        "c2",
    )
    assert imported["by_type"] == {"ipv4": 28} and imported["errors"] == []
    (found,) = jsonl(cloudsoc(home, "intel", "lookup", "192.9.135.73", "--json").stdout)
    (match,) = found["matches"]  # type: ignore[misc]
    assert match["confidence"] == 75 and match["intel_types"] == ["c2"] and match["description"] == "Pikabot"
    assert match["first_seen"].startswith("2023-05-23T17:51:44")
    bad = cloudsoc(home, "intel", "import", str(feodo), "-f", "csv_map", "--columns", "{values: 3}", check=False)
    assert bad.returncode != 0 and "column mapping" in bad.stderr

    url = f"{intel_server}/abusech-feodo/ipblocklist.csv"
    cloudsoc(
        home,
        "intel",
        "feeds",
        "add",
        "feodo-csv",
        url,
        "-f",
        "csv_map",
        "--columns",
        mapping,
        "--confidence",
        "90",
        "--source",
        "feodo-feed",
    )
    (again,) = jsonl(cloudsoc(home, "intel", "lookup", "192.9.135.73", "--json").stdout)
    assert {m["source"]: m["confidence"] for m in again["matches"]} == {  # type: ignore[union-attr]
        "ipblocklist.csv": 75,
        "feodo-feed": 90,
    }
