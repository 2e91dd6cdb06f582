"""Feed sync against real servers on 127.0.0.1: a medallion TAXII 2.1 server, and an http.server serving real feed
files (with ETag / Last-Modified), a MISP feed folder, a failing and a garbage feed."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from cloudsoc.config.feeds import FeedConfig
from cloudsoc.intel.feeds.taxii import Taxii
from cloudsoc.intel.store import IndicatorStore
from cloudsoc.intel.sync import FeedSync, redact_url

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "intel"
MEDALLION = Path(__file__).resolve().parents[2] / ".venv-tools" / "bin" / "medallion"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/intel is not checked out")

FEED = TypeAdapter(FeedConfig)
MISP_DIR = DATA / "misp-feed-crowdsec" / "misp-feed"
COLLECTION = "9c6e3f8a-4f2c-4f4e-9a57-0c2b1d6e7a10"
STIX_FILES = (
    "stix2/oasis-cti-stix2-json-schemas/examples/threat-reports/apt1.json",
    "stix2/oasis-cti-stix2-json-schemas/examples/indicator-for-c2-ip-address.json",
    "stix2/oasis-cti-stix2-json-schemas/examples/indicators-for-C2-with-COA.json",
    "stix2/oasis-cti-stix2-json-schemas/examples/infrastructure.json",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def feed(**fields: Any) -> FeedConfig:
    return FEED.validate_python(fields)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IndicatorStore]:
    s = IndicatorStore(tmp_path / "intel.db")
    yield s
    s.close()


# -- a plain HTTP server with validators ----------------------------------------------------------------------


class Files:
    """What the test server serves (path → bytes) and which paths were asked for, with their status."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.log: list[tuple[str, int]] = []


def _handler(files: Files) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if path == "/broken":
                # echoes the query, as some servers do: a token there must not reach the status
                self._reply(500, b"internal error for " + query.encode())
                return
            body = files.files.get(path)
            if body is None:
                self._reply(404, b"not found")
                return
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                files.log.append((path, 304))
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            files.log.append((path, 200))
            self.send_response(200)
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", formatdate(1_700_000_000, usegmt=True))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _reply(self, code: int, body: bytes) -> None:
            files.log.append((self.path.partition("?")[0], code))
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def web() -> Iterator[tuple[str, Files]]:
    files = Files()
    files.files["/ipsum.txt"] = (DATA / "ipsum/ipsum.txt").read_bytes()
    files.files["/feodo/ipblocklist.csv"] = (DATA / "abusech-feodo/ipblocklist.csv").read_bytes()
    files.files["/garbage.bin"] = bytes(range(256)) * 8
    for path in MISP_DIR.iterdir():
        files.files[f"/misp/{path.name}"] = path.read_bytes()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(files))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files
    server.shutdown()
    server.server_close()
    thread.join()


def test_http_feeds_conditional_get_and_bad_feeds_do_not_break_good_ones(
    store: IndicatorStore, web: tuple[str, Files], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    base, files = web
    sync = FeedSync(store)
    configs = {
        "ipsum": feed(type="http", url=f"{base}/ipsum.txt"),
        "broken": feed(type="http", url=f"{base}/broken?apikey=S3cretToken42"),
        "feodo": feed(type="http", url=f"{base}/feodo/ipblocklist.csv", format="feodo"),
        "garbage": feed(type="http", url=f"{base}/garbage.bin"),
        "absent": feed(type="http", url=f"{base}/nothing-here.txt"),
        "refused": feed(type="http", url=f"http://127.0.0.1:{_free_port()}/x.txt", timeout_secs=5),
    }
    first = sync.sync_all(configs)
    assert {n: s.outcome for n, s in first.items()} == {
        "ipsum": "updated",
        "broken": "failed",
        "feodo": "updated",
        "garbage": "failed",
        "absent": "failed",
        "refused": "failed",
    }
    assert first["ipsum"].by_type == {"ipv4": 120_430} and first["ipsum"].written == 120_430
    assert first["feodo"].by_type == {"ipv4": 28} and first["feodo"].errors == []
    assert store.conn.execute("SELECT count(*) FROM indicators WHERE source = 'ipsum'").fetchone() == (120_430,)
    assert store.conn.execute("SELECT count(*) FROM indicators WHERE source = 'feodo'").fetchone() == (28,)

    broken = first["broken"].last_error or ""
    assert broken.startswith(f"HTTP 500 Internal Server Error from {base}/broken?apikey=***")
    assert "S3cretToken42" not in broken and "S3cretToken42" not in first["broken"].url
    assert "cannot tell the feed format" in (first["garbage"].last_error or "")
    assert (first["absent"].last_error or "").startswith("HTTP 404")
    assert (first["refused"].last_error or "").startswith("cannot fetch: ConnectError")
    # httpx logs each request's URL; the API key in the query is masked there too
    assert f"{base}/broken?apikey=***" in caplog.text and "S3cretToken42" not in caplog.text

    # second round: the good feeds answer 304, nothing is re-imported, the status keeps the last counts
    files.log.clear()
    second = sync.sync_all({n: configs[n] for n in ("ipsum", "feodo")})
    assert {n: s.outcome for n, s in second.items()} == {"ipsum": "unchanged", "feodo": "unchanged"}
    assert files.log == [("/ipsum.txt", 304), ("/feodo/ipblocklist.csv", 304)]
    assert second["ipsum"].by_type == {"ipv4": 120_430} and second["ipsum"].last_success is not None

    # the status survives the process: a new FeedSync on the same file reads it back
    again = FeedSync(store).statuses()
    assert set(again) == set(configs)
    assert again["broken"].outcome == "failed" and again["broken"].last_success is None
    assert "S3cretToken42" not in json.dumps([s.last_error for s in again.values()])
    stored = store.conn.execute("SELECT url, etag FROM feed_state WHERE name = 'broken'").fetchone()
    assert stored == (f"{base}/broken?apikey=***", None)

    # a changed file is fetched in full again
    files.files["/feodo/ipblocklist.csv"] += b"\n"
    assert sync.sync("feodo", configs["feodo"]).outcome == "updated"


def test_due_follows_interval(store: IndicatorStore, web: tuple[str, Files]) -> None:
    base, _ = web
    sync = FeedSync(store)
    configs = {"feodo": feed(type="http", url=f"{base}/feodo/ipblocklist.csv", interval_secs=60)}
    assert sync.due(configs) == ["feodo"]
    sync.sync_due(configs)
    assert sync.due(configs) == []
    status = sync.status("feodo")
    assert status is not None and status.last_attempt is not None
    assert sync.due(configs, now=status.last_attempt + timedelta(seconds=61)) == ["feodo"]


def test_misp_feed_over_http_reads_only_changed_events(store: IndicatorStore, web: tuple[str, Files]) -> None:
    base, files = web
    sync = FeedSync(store)
    config = feed(type="misp_feed", url=f"{base}/misp", source="crowdsec")
    events = sorted(p.name for p in MISP_DIR.glob("*-*.json"))
    first = sync.sync("crowdsec", config)
    # 864 ip-src attributes in 3 events; the events overlap, 508 distinct addresses
    assert (first.outcome, first.by_type, first.errors) == ("updated", {"ipv4": 508}, [])
    assert sorted(p for p, _ in files.log) == sorted(["/misp/manifest.json", *(f"/misp/{e}" for e in events)])
    assert store.conn.execute("SELECT count(*) FROM indicators WHERE source = 'crowdsec'").fetchone() == (508,)

    files.log.clear()
    assert sync.sync("crowdsec", config).outcome == "unchanged"
    assert files.log == [("/misp/manifest.json", 304)]

    # one event's timestamp moves: only that event file is fetched
    manifest = json.loads(files.files["/misp/manifest.json"])
    moved = events[1].removesuffix(".json")
    manifest[moved]["timestamp"] = str(int(manifest[moved]["timestamp"]) + 60)
    files.files["/misp/manifest.json"] = json.dumps(manifest).encode()
    files.log.clear()
    third = sync.sync("crowdsec", config)
    assert third.outcome == "updated" and third.errors == []
    assert files.log == [("/misp/manifest.json", 200), (f"/misp/{moved}.json", 200)]

    # a missing event file is an error of that event; the others import and the next sync retries it
    manifest[moved]["timestamp"] = str(int(manifest[moved]["timestamp"]) + 60)
    files.files["/misp/manifest.json"] = json.dumps(manifest).encode()
    saved = files.files.pop(f"/misp/{moved}.json")
    fourth = sync.sync("crowdsec", config)
    assert fourth.outcome == "failed" and "nothing imported" in (fourth.last_error or "")
    files.files[f"/misp/{moved}.json"] = saved
    files.log.clear()
    assert sync.sync("crowdsec", config).outcome == "updated"
    assert files.log == [("/misp/manifest.json", 200), (f"/misp/{moved}.json", 200)]


def test_redact_url_masks_credentials_and_query_values() -> None:
    assert (
        redact_url("https://u:pw@feeds.example/a/b.txt?key=abc&x=1#f") == "https://feeds.example/a/b.txt?key=***&x=***"
    )
    assert redact_url(httpx.URL("http://127.0.0.1:8000/")) == "http://127.0.0.1:8000/"


# -- TAXII 2.1 against medallion -------------------------------------------------------------------------------


def _stix_objects() -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for rel in STIX_FILES:
        doc = json.loads((DATA / rel).read_text())
        for obj in doc["objects"] if isinstance(doc, dict) and doc.get("type") == "bundle" else doc:
            seen.setdefault(obj["id"], obj)
    return list(seen.values())


@pytest.fixture
def taxii(tmp_path: Path) -> Iterator[str]:
    if not MEDALLION.exists():
        pytest.skip(f"{MEDALLION} is missing: run `make tools` to build the tools venv with medallion")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    objects = _stix_objects()
    manifest = []
    for n, obj in enumerate(objects):
        added = f"2024-01-02T00:{n // 60:02d}:{n % 60:02d}.000000Z"
        if "modified" not in obj and "created" not in obj:
            obj["_date_added"] = added
        version = obj.get("modified") or obj.get("created") or added
        manifest.append(
            {
                "id": obj["id"],
                "date_added": added,
                "version": version,
                "media_type": "application/stix+json;version=2.1",
            }
        )
    data = {
        "/discovery": {"title": "test", "default": f"{base}/api1/", "api_roots": [f"{base}/api1/"]},
        "api1": {
            "information": {
                "title": "root",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 10485760,
            },
            "status": [],
            "collections": [
                {
                    "id": COLLECTION,
                    "title": "Indicators",
                    "can_read": True,
                    "can_write": True,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": objects,
                    "manifest": manifest,
                }
            ],
        },
    }
    (tmp_path / "data.json").write_text(json.dumps(data))
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "backend": {
                    "module": "medallion.backends.memory_backend",
                    "module_class": "MemoryBackend",
                    "filename": "data.json",
                },
                "users": {"admin": "Password0"},
                "taxii": {"max_page_size": 5},
            }
        )
    )
    proc = subprocess.Popen(
        [str(MEDALLION), "--host", "127.0.0.1", "--port", str(port), "config.json"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{base}/taxii2/", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"medallion did not start: {err[-2000:]}")
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_taxii_collection_sync_is_incremental(store: IndicatorStore, taxii: str) -> None:
    from taxii2client.v21 import Collection

    sync = FeedSync(store)
    config = feed(type="taxii", url=f"{taxii}/taxii2/", collection="Indicators", user="admin", password="Password0")
    first = sync.sync("medallion", config)
    # 95 objects read in pages of 5 (the server's cap): apt1 (4 /15 networks, 3 domains, 3 MD5s, 2 x509 patterns
    # skipped), two C2 bundles (both name 10.0.0.0; one a SHA-256) and an infrastructure bundle (an IP, a domain)
    assert first.outcome == "updated", first.last_error
    assert first.by_type == {"cidr": 4, "domain": 4, "md5": 3, "ipv4": 2, "sha256": 1}
    assert (first.skipped, first.errors) == (2, [])
    cursor = store.conn.execute("SELECT added_after FROM feed_state WHERE name = 'medallion'").fetchone()[0]
    assert (
        cursor == f"2024-01-02T00:{(len(_stix_objects()) - 1) // 60:02d}:{(len(_stix_objects()) - 1) % 60:02d}.000000Z"
    )

    second = sync.sync("medallion", config)
    assert second.outcome == "unchanged" and second.by_type == first.by_type

    # one more indicator is posted to the collection: only it arrives at the next sync
    col = Collection(f"{taxii}/api1/collections/{COLLECTION}/", user="admin", password="Password0")
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": now,
        "modified": now,
        "pattern": "[ipv4-addr:value = '203.0.113.77']",
        "pattern_type": "stix",
        "valid_from": now,
    }
    col.add_objects({"objects": [indicator]}, poll_interval=0.1)
    third = sync.sync("medallion", config)
    assert (third.outcome, third.by_type, third.written) == ("updated", {"ipv4": 1}, 1)
    assert [s.indicator.value for s in store.get(*_ipv4("203.0.113.77"))] == ["203.0.113.77"]
    assert sync.sync("medallion", config).outcome == "unchanged"

    # a server that sends no X-TAXII-Date-Added-Last: the cursor comes from the manifest instead
    reader = Taxii(f"{taxii}/taxii2/", collection="Indicators", user="admin", password="Password0")
    newest = store.conn.execute("SELECT added_after FROM feed_state WHERE name = 'medallion'").fetchone()[0]
    assert reader._manifest_last(reader.collection(), cursor) == newest != cursor
    reader.close()

    # by API root and collection id works too; a wrong password or collection fails with a reason, no secret
    by_id = feed(type="taxii", url=f"{taxii}/api1/", collection=COLLECTION, user="admin", password="Password0")
    assert sync.sync("by-id", by_id).by_type == {"cidr": 4, "domain": 4, "md5": 3, "ipv4": 3, "sha256": 1}
    bad = sync.sync(
        "bad", feed(type="taxii", url=f"{taxii}/taxii2/", collection="x", user="admin", password="WrongPw9")
    )
    assert bad.outcome == "failed" and (bad.last_error or "").startswith("HTTP 401"), bad.last_error
    assert "WrongPw9" not in (bad.last_error or "")
    missing = sync.sync(
        "missing", feed(type="taxii", url=f"{taxii}/taxii2/", collection="nope", user="admin", password="Password0")
    )
    assert "no collection 'nope'" in (missing.last_error or "") and "Indicators" in (missing.last_error or "")


def _ipv4(value: str) -> tuple[Any, str]:
    from cloudsoc.intel.indicator import IndicatorType

    return IndicatorType.IPV4, value
