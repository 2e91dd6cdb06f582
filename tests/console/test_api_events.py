"""The event search API over a real store: the query language, paging, counts over time, top values, one event
with its original record, and queries that try to break out into SQL."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.console.harness import Harness

SINCE = "since=3650d"  # the OTRF sample is from 2020


def test_search_pages_newest_first_with_totals(estate: Harness) -> None:
    client = estate.login("viewer")
    first = client.get(f"/api/v1/events?{SINCE}&limit=50").json()
    assert first["total"] > 18_000 and len(first["items"]) == 50
    times = [d["@timestamp"] for d in first["items"]]
    assert times == sorted(times, reverse=True)
    # The cursor continues exactly where the page ended; offset does the same while nothing is added.
    after = client.get(f"/api/v1/events?{SINCE}&limit=50&cursor={first['next_cursor']}").json()
    by_offset = client.get(f"/api/v1/events?{SINCE}&limit=50&offset=50").json()
    ids = [d["event"]["id"] for d in after["items"]]
    assert ids == [d["event"]["id"] for d in by_offset["items"]]
    assert not set(ids) & {d["event"]["id"] for d in first["items"]}
    assert client.get("/api/v1/events?cursor=garbage!").status_code == 400


def test_query_language_and_time_window(estate: Harness) -> None:
    client = estate.login("viewer")
    q = quote("event.action:ConsoleLogin AND NOT event.outcome:success")
    r = client.get(f"/api/v1/events?q={q}&{SINCE}&limit=500").json()
    assert r["total"] == len(r["items"]) > 0
    assert all(d["event"]["action"] == "ConsoleLogin" and d["event"]["outcome"] != "success" for d in r["items"])
    # The 2020 lab breach is outside the last 30 days and inside the last ten years.
    q = quote("source.ip:1.2.3.4")  # the OTRF lab (addresses anonymised)
    assert client.get(f"/api/v1/events?q={q}&since=30d").json()["total"] == 0
    assert client.get(f"/api/v1/events?q={q}&{SINCE}").json()["total"] > 0
    assert client.get("/api/v1/events?since=tomorrow").status_code == 400


def test_bad_query_is_a_400_with_its_position(estate: Harness) -> None:
    client = estate.login("viewer")
    r = client.get("/api/v1/events", params={"q": "user.name:(alice OR"})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["status"] == 400 and error["position"] == 19 and "bad query" in error["message"]


@pytest.mark.parametrize(
    "q",
    [
        "'; DROP TABLE segments; --",
        "source.ip:1.2.3.4' OR 1=1",
        "user.name:\"x' OR '1'='1\"",
        "event.action:x) UNION SELECT doc FROM read_parquet('/etc/passwd') --",
        'aws.cloudtrail.eventName\\":x',
    ],
)
def test_injection_through_q_is_refused_or_matches_nothing(estate: Harness, q: str) -> None:
    client = estate.login("viewer")
    before = client.get(f"/api/v1/events?{SINCE}&limit=1").json()["total"]
    r = client.get("/api/v1/events", params={"q": q, "since": "3650d"})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert r.json()["total"] == 0
    else:
        assert "position" in r.json()["error"]
    assert client.get(f"/api/v1/events?{SINCE}&limit=1").json()["total"] == before


def test_histogram_and_top_values_agree_with_search(estate: Harness) -> None:
    client = estate.login("viewer")
    q = quote("cloud.provider:aliyun")
    total = client.get(f"/api/v1/events?q={q}&since=7d").json()["total"]
    hist = client.get(f"/api/v1/events/histogram?q={q}&since=7d&buckets=14").json()
    assert len(hist["buckets"]) == 14 and sum(b["count"] for b in hist["buckets"]) == hist["total"] == total
    assert hist["interval_seconds"] == pytest.approx(12 * 3600, rel=0.01)
    top = client.get(f"/api/v1/events/fields?q={q}&since=7d&field=event.action&size=5").json()
    assert top["total"] == total and len(top["values"]) == 5
    counts = [v["count"] for v in top["values"]]
    assert counts == sorted(counts, reverse=True)
    one = top["values"][0]
    narrowed = quote(f"cloud.provider:aliyun AND event.action:{one['value']}")
    assert client.get(f"/api/v1/events?q={narrowed}&since=7d").json()["total"] == one["count"]
    # A field inside the stored document, not a typed column.
    nested = client.get(f"/api/v1/events/fields?{SINCE}&field=aliyun.actiontrail.eventType").json()
    assert nested["values"] and nested["values"][0]["value"] is not None
    for bad in ("user.name') OR 1=1 --", "a..b", "$.x"):
        assert client.get("/api/v1/events/fields", params={"field": bad}).status_code == 400


def test_one_event_with_its_original_record(estate: Harness) -> None:
    client = estate.login("viewer")
    q = quote("source.ip:1.2.3.4")
    doc = client.get(f"/api/v1/events?q={q}&{SINCE}&limit=1").json()["items"][0]
    r = client.get(f"/api/v1/events/{doc['event']['id']}").json()
    assert r["event"] == doc
    assert r["original"]["eventID"] == doc["event"]["id"] and r["original"]["sourceIPAddress"] == "1.2.3.4"
    assert client.get("/api/v1/events/no-such-event").status_code == 404


def test_auditors_do_not_search_events(estate: Harness) -> None:
    r = estate.login("auditor").get("/api/v1/events")
    assert r.status_code == 403
