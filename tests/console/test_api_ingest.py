"""``POST /api/v1/ingest`` with API tokens: real CloudTrail and ActionTrail records, ECS documents, malformed
lines (dead letters with their bytes), duplicates, the size limit, revoked tokens and a daemon holding the store."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from cloudsoc.api.permissions import Permission
from cloudsoc.api.routers import ingest as ingest_router
from tests.console.conftest import CLOUDAUDIT
from tests.console.harness import BASE, Harness

PANTHER = CLOUDAUDIT / "panther-cloudtrail-rules" / "aws_console_root_login.yml"


def _bearer(h: Harness, user: str, *scopes: Permission) -> TestClient:
    secret, _token = h.store.create_token(user, "script", scopes)
    client = TestClient(h.app, base_url=BASE)
    client.headers["Authorization"] = f"Bearer {secret}"
    return client


def _records() -> list[dict[str, object]]:
    """Real CloudTrail records: the Panther unit-test events of the root-account rules."""
    import yaml

    records = []
    for path in sorted((CLOUDAUDIT / "panther-cloudtrail-rules").glob("aws_root*.yml")):
        records += [t["Log"] for t in yaml.safe_load(path.read_text())["Tests"] if isinstance(t.get("Log"), dict)]
    assert len(records) >= 5
    return records


def _ecs(event_id: str) -> dict[str, object]:
    return {
        "@timestamp": "2026-11-20T08:00:00+08:00",
        "event": {"id": event_id, "action": "CustomLogin", "outcome": "failure", "dataset": "custom.audit"},
        "cloud": {"provider": "custom"},
        "user": {"name": "<b>mallory</b>"},
        "source": {"ip": "198.51.100.7"},
    }


def test_mixed_ndjson_counts_dead_letters(estate: Harness) -> None:
    client = _bearer(estate, "analyst", Permission.INGEST, Permission.READ)
    good = _records()
    lines = [orjson.dumps(r) for r in good] + [
        b'{"eventVersion": "1.08", "truncated',  # broken JSON
        b"[1, 2, 3]",  # JSON, not an object
        b'{"hello": "world"}',  # an object of no known shape
        orjson.dumps(_ecs("ecs-1")),
    ]
    body = b"\n".join(lines) + b"\n"
    alone = client.post("/api/v1/ingest", content=b"\n".join(lines[: len(good)]))
    assert alone.status_code == 200, alone.text
    first = alone.json()
    assert first["accepted"] == len(good) and first["stored"] > 0
    assert first["stored"] + first["duplicates"] + first["dead_letters"] == len(good)
    r = client.post("/api/v1/ingest", content=body, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["accepted"] == len(good) + 4 and out["stored"] == 1  # the ECS document
    assert out["duplicates"] == first["stored"] + first["duplicates"]
    assert out["dead_letters"] == first["dead_letters"] + 3
    # The ECS document is searchable with its time normalised, its markup kept as data.
    found = client.get("/api/v1/events", params={"q": "event.id:ecs-1", "since": "3650d"}).json()["items"]
    assert len(found) == 1
    assert found[0]["@timestamp"] == "2026-11-20T00:00:00.000000Z" and found[0]["user"]["name"] == "<b>mallory</b>"
    dead = client.get("/api/v1/deadletters").json()
    assert dead["total"] == 2 * first["dead_letters"] + 3
    mine = [d for d in dead["items"] if d["path"] == f"api/analyst/{out['batch']}"]
    raws = [d["raw_text"] for d in mine]
    # Broken JSON keeps its bytes; a decoded record that is no event is kept as its JSON.
    assert len(mine) == out["dead_letters"]
    assert {'{"eventVersion": "1.08", "truncated', "[1,2,3]", '{"hello":"world"}'} <= set(raws)
    audit = estate.store.audit_entries(action="ingest")[0]
    assert audit[0].user == "analyst" and audit[0].detail["dead_letters"] == out["dead_letters"]


def test_json_array_and_cloudtrail_body(estate: Harness) -> None:
    client = _bearer(estate, "admin", Permission.INGEST)
    r = client.post("/api/v1/ingest", json=[_ecs("ecs-a"), _ecs("ecs-b")])
    assert r.json() == {**r.json(), "accepted": 2, "stored": 2, "dead_letters": 0}
    # A CloudTrail delivery file body, from a Panther test record of a root console login.
    import yaml

    tests = yaml.safe_load(PANTHER.read_text())["Tests"]
    record = next(t["Log"] for t in tests if t["ExpectedResult"])
    r = client.post("/api/v1/ingest", json={"Records": [record]})
    assert r.status_code == 200 and r.json()["stored"] == 1, r.text
    assert r.json()["alerts"] >= 1  # the built-in root-account rule fired on it


def test_permissions_tokens_and_limits(estate: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    reader = _bearer(estate, "analyst", Permission.READ)
    assert reader.post("/api/v1/ingest", json=[_ecs("x")]).status_code == 403
    viewer_cookie = estate.login("viewer")
    assert viewer_cookie.post("/api/v1/ingest", json=[_ecs("x")]).status_code == 403
    secret, token = estate.store.create_token("analyst", "revoked", [Permission.INGEST])
    revoked = TestClient(estate.app, base_url=BASE, headers={"Authorization": f"Bearer {secret}"})
    assert revoked.post("/api/v1/ingest", json=[_ecs("x")]).status_code == 200
    estate.store.revoke_token(token.id)
    r = revoked.post("/api/v1/ingest", json=[_ecs("y")])
    assert r.status_code == 401 and r.json()["error"]["message"] == "invalid or revoked API token"
    writer = _bearer(estate, "analyst", Permission.INGEST)
    monkeypatch.setattr(ingest_router, "MAX_BODY", 1000)
    r = writer.post("/api/v1/ingest", content=b"{}\n" * 400)
    assert r.status_code == 413 and "at most" in r.json()["error"]["message"]
    assert writer.post("/api/v1/ingest", content=b"  \n").status_code == 400


def test_a_daemon_holding_the_store_gets_a_clear_503(estate: Harness, tmp_path: Path) -> None:
    home = estate.home
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from cloudsoc.home import Home; "
            "s = Home(Path(sys.argv[1])).open_storage(); print('open', flush=True); time.sleep(30)",
            str(home),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        client = _bearer(estate, "analyst", Permission.INGEST, Permission.READ)
        r = client.post("/api/v1/ingest", json=[_ecs("z")])
        assert r.status_code == 503 and "cloudsoc run" in r.json()["error"]["message"]
        assert client.get("/api/v1/deadletters").status_code == 503
        # Searches read the segment files and need no lock.
        assert client.get("/api/v1/events?limit=1").status_code == 200
    finally:
        holder.kill()
        holder.wait(10)
    started = time.monotonic()
    r = client.post("/api/v1/ingest", json=[_ecs("z")])
    assert r.status_code == 200 and time.monotonic() - started < 10
