"""The graph API over a real store (the demo company and real CloudTrail/ActionTrail samples): permissions, the
attack story's identity with its access keys and addresses (intel marked after a one-line import), counts that
agree with the search API, the cap with its truncation flag, and a bad query's position."""

from __future__ import annotations

from typing import Any

from tests.console.harness import Harness

SINCE = "3650d"  # the OTRF sample is from 2020
ATTACKER = "45.148.10.240"  # the demo's attacker (its leaked keys' first use)


def _graph(client: Any, q: str, **extra: Any) -> dict[str, Any]:
    r = client.get("/api/v1/graph", params={"q": q, "since": SINCE, **extra})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_auditor_is_refused_and_viewer_reads(estate: Harness) -> None:
    assert estate.client().get("/api/v1/graph").status_code == 401
    assert estate.login("auditor").get("/api/v1/graph").status_code == 403
    assert estate.login("viewer").get("/api/v1/graph").status_code == 200


def test_the_attackers_identity_its_keys_and_the_intel_hit(estate: Harness) -> None:
    viewer, analyst = estate.login("viewer"), estate.login("analyst")
    by_ip = _graph(viewer, f"source.ip:{ATTACKER}")
    identities = {n["value"] for n in by_ip["nodes"] if n["kind"] == "identity"}
    assert identities, "the attacker's address is used by the leaked keys' owner"
    ip = next(n for n in by_ip["nodes"] if n["id"] == f"ip:{ATTACKER}")
    assert ip["intel"] == [] and ip["count"] == by_ip["events"]
    # the counts agree with the search API
    total = viewer.get("/api/v1/events", params={"q": f"source.ip:{ATTACKER}", "since": SINCE, "limit": 1}).json()
    assert by_ip["events"] == total["total"]
    failed = viewer.get(
        "/api/v1/events", params={"q": f"source.ip:{ATTACKER} AND event.outcome:failure", "since": SINCE, "limit": 1}
    ).json()
    assert ip["failures"] == failed["total"] > 0
    # access keys come from the stored documents: each drawn key leads to an identity
    keys = [e for e in by_ip["edges"] if e["kind"] == "key-identity"]
    assert by_ip["access_keys"] and keys
    assert {e["target"] for e in keys} <= {f"identity:{i}" for i in identities}
    # a one-line intel list naming the attacker: the node is a hit now (the matcher reads the store afresh)
    upload = {"file": ("graph-test.txt", f"{ATTACKER}\n".encode(), "text/plain")}
    r = analyst.post("/api/v1/intel/import", files=upload, data={"hunt_days": "0", "source": "graph-test"})
    assert r.status_code == 200, r.text
    identity = sorted(identities)[0]
    graph = _graph(viewer, f"user.name:{identity}")
    hit = next(n for n in graph["nodes"] if n["id"] == f"ip:{ATTACKER}")
    assert [i["source"] for i in hit["intel"]] == ["graph-test"] and hit["allowed"] is None
    assert any(e["source"] == f"identity:{identity}" and e["target"] == hit["id"] for e in graph["edges"])
    others = [n for n in graph["nodes"] if n["kind"] == "ip" and n["id"] != hit["id"]]
    assert all(n["intel"] == [] for n in others)


def test_cap_sets_the_truncation_flag(estate: Harness) -> None:
    viewer = estate.login("viewer")
    wide = _graph(viewer, "*", limit=3)
    assert wide["truncated"] is True
    for kind in ("identity-ip", "identity-action", "identity-account"):
        drawn = [e for e in wide["edges"] if e["kind"] == kind]
        assert len(drawn) == 3 < wide["pairs"][kind]
        assert [e["count"] for e in drawn] == sorted((e["count"] for e in drawn), reverse=True)
    ends = {e["source"] for e in wide["edges"]} | {e["target"] for e in wide["edges"]}
    assert {n["id"] for n in wide["nodes"]} == ends
    narrow = _graph(viewer, f"source.ip:{ATTACKER} AND event.outcome:success", limit=500)
    assert narrow["truncated"] is False
    assert all(narrow["pairs"][k] == len([e for e in narrow["edges"] if e["kind"] == k]) for k in narrow["pairs"])
    assert viewer.get("/api/v1/graph", params={"limit": 501}).status_code == 422


def test_bad_query_is_a_400_with_its_position(estate: Harness) -> None:
    r = estate.login("viewer").get("/api/v1/graph", params={"q": "user.name:(alice OR"})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["position"] == 19 and "bad query" in error["message"]
