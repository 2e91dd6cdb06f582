"""``cloudsoc ingest`` / ``search`` / ``deadletters`` end to end on real public samples and damaged files."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.cli import SHARED_DATA, cloudsoc, cloudsoc_json, jsonl

OTRF = SHARED_DATA / "cloudaudit" / "otrf-security-datasets" / "ec2_proxy_s3_exfiltration_2020-09-14011940.json"
ALIYUN = SHARED_DATA / "cloudaudit" / "streamalert-aliyun-actiontrail" / "aliyun_actiontrail.json"


def otrf_records() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in OTRF.read_bytes().splitlines() if line.strip()]


def aliyun_records() -> list[dict[str, Any]]:
    return [item["data"] for item in orjson.loads(ALIYUN.read_bytes())]


def variant(rec: dict[str, Any], n: int) -> dict[str, Any]:
    """A real record with a new event id (to build damaged files that still hold valid neighbours)."""
    return {**rec, "eventID": f"00000000-0000-4000-8000-{n:012d}"}


def build_tree(root: Path) -> dict[str, Any]:
    """Real samples in the real delivery layouts, other wrappers, and damaged files. Returns expectations."""
    otrf = otrf_records()
    ali = aliyun_records()
    ct = root / "AWSLogs" / "123456789123" / "CloudTrail" / "us-east-1" / "2020" / "09" / "14"
    ct.mkdir(parents=True)
    for i in range(0, len(otrf), 40):
        chunk = otrf[i : i + 40]
        name = f"123456789123_CloudTrail_us-east-1_20200914T{i // 40:02d}05Z_abcdEFGH{i:08d}.json.gz"
        (ct / name).write_bytes(gzip.compress(orjson.dumps({"Records": chunk})))
    at = root / "AliyunLogs" / "Actiontrail" / "cn-hangzhou" / "2018" / "07" / "19"
    at.mkdir(parents=True)
    body = orjson.dumps(ali)
    md5 = hashlib.md5(body).hexdigest()
    (at / f"Actiontrail_cn-hangzhou_20180719164723_1002_1_{len(body)}_{md5}.gz").write_bytes(gzip.compress(body))
    other = root / "other"
    other.mkdir()
    # The SLS logstore form (event as a JSON string) and EventBridge: the same events again -> duplicates.
    sls = [
        {"__topic__": "actiontrail_audit_event", "__source__": "actiontrail", "event": orjson.dumps(e).decode()}
        for e in ali
    ]
    (other / "sls-export.json").write_bytes(orjson.dumps(sls))
    bridge = [
        {"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.s3", "detail": r}
        for r in otrf[:5]
    ]
    (other / "eventbridge.jsonl").write_bytes(b"\n".join(orjson.dumps(b) for b in bridge) + b"\n")
    base = otrf[0]
    good = [variant(base, n) for n in range(1, 13)]
    # malformed JSON in the middle of a CloudTrail body: 2 good neighbours survive
    malformed = orjson.dumps({"Records": good[0:3]}).replace(good[1]["eventID"].encode() + b'"', b'x",,')
    (other / "malformed.json").write_bytes(malformed)
    # truncated gzip: the whole records before the cut survive
    padded = [{**g, "requestParameters": {"pad": "p" * 3000}} for g in good[3:9]]
    gz = gzip.compress(orjson.dumps({"Records": padded}), compresslevel=0)
    (other / "truncated.json.gz").write_bytes(gz[: int(len(gz) * 0.6)])
    # records that are not objects
    (other / "not-objects.json").write_bytes(orjson.dumps([1, "two", good[9]]))
    # invalid UTF-8 inside one record
    bad_utf8 = orjson.dumps([good[10], {**base, "eventID": "bad-utf8"}]).replace(b"bad-utf8", b"bad-\xff\xfe")
    (other / "bad-utf8.json").write_bytes(bad_utf8)
    # a 10 MB field
    (other / "huge.json").write_bytes(orjson.dumps({"Records": [{**good[11], "userAgent": "A" * 10_000_000}]}))
    return {
        "otrf": otrf,
        "ali": ali,
        "truncated_survivors": None,  # depends on where the cut fell; checked below
        "good": good,
    }


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("logs")
    home = tmp_path_factory.mktemp("home")
    exp = build_tree(root)
    summary = cloudsoc_json(home, "ingest", str(root))
    return {"root": root, "home": home, "summary": summary, **exp}


def stored_ids(home: Path) -> list[str]:
    docs = jsonl(cloudsoc(home, "search", "--json", "--limit", "100000", "*").stdout)
    return [d["event"]["id"] for d in docs]  # type: ignore[index]


def test_summary_counts(ingested: dict[str, Any]) -> None:
    s = ingested["summary"]
    assert set(s) >= {"files", "records", "stored", "duplicates", "dead_letters", "seconds"}
    assert s["files"] == 3 + 1 + 7  # 3 CloudTrail files, 1 ActionTrail file, 7 others
    assert s["duplicates"] == 4 + 5  # SLS copies of the ActionTrail events, EventBridge copies of OTRF events
    ids = stored_ids(ingested["home"])
    assert len(ids) == len(set(ids)) == s["stored"]
    expected = {r["eventID"] for r in ingested["otrf"]} | {r["eventId"] for r in ingested["ali"]}
    assert expected <= set(ids)
    good = [g["eventID"] for g in ingested["good"]]
    # survivors of the damaged files, record by record
    assert {good[0], good[2], good[9], good[10]} <= set(ids)
    assert good[1] not in ids and good[11] not in ids  # malformed one, and the 10 MB one
    truncated = [g for g in good[3:9] if g in ids]
    assert truncated == good[3 : 3 + len(truncated)] and 1 <= len(truncated) < 6
    assert s["stored"] == len(expected) + 4 + len(truncated)


def test_dead_letters_keep_reason_origin_and_raw_bytes(ingested: dict[str, Any]) -> None:
    home = ingested["home"]
    rows = jsonl(cloudsoc(home, "deadletters", "list", "--json").stdout)
    assert len(rows) == ingested["summary"]["dead_letters"]
    by_file: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_file.setdefault(Path(str(r["path"])).name, []).append(r)
    assert [r["reason"][:15] for r in by_file["malformed.json"]] == ["malformed JSON:"]
    assert by_file["malformed.json"][0]["index"] == 1 and by_file["malformed.json"][0]["offset"] > 0
    reasons = sorted(str(r["reason"]) for r in by_file["truncated.json.gz"])
    assert any("truncated gzip" in r for r in reasons) and any("truncated record" in r for r in reasons)
    assert sorted(str(r["reason"]) for r in by_file["not-objects.json"]) == [
        "record is a JSON int, not an object",
        "record is a JSON str, not an object",
    ]
    (utf,) = by_file["bad-utf8.json"]
    assert "UTF-8" in str(utf["reason"]) and utf["index"] == 1
    (huge,) = by_file["huge.json"]
    assert "max_event_bytes" in str(huge["reason"]) and int(huge["size"]) > 10_000_000
    raw = cloudsoc(home, "deadletters", "show", "--raw", str(utf["id"])).stdout
    assert "bad-\\xff\\xfe" in raw  # the raw bytes, exactly as read
    shown = cloudsoc(home, "deadletters", "show", str(by_file["malformed.json"][0]["id"])).stdout
    assert "malformed.json" in shown and ",," in shown


def test_rerun_stores_nothing_and_skips_unchanged_files(ingested: dict[str, Any]) -> None:
    again = cloudsoc_json(ingested["home"], "ingest", str(ingested["root"]))
    assert again["stored"] == 0 and again["files"] == 0 and again["skipped_files"] == 11
    assert again["dead_letters"] == 0
    # touching a file makes it be read again, and its events are recognised as duplicates
    f = next(ingested["root"].glob("AWSLogs/**/*.json.gz"))
    f.touch()
    again = cloudsoc_json(ingested["home"], "ingest", str(f))
    assert again["files"] == 1 and again["stored"] == 0 and again["duplicates"] == 40


def test_search_queries(ingested: dict[str, Any]) -> None:
    home = ingested["home"]
    docs = jsonl(cloudsoc(home, "search", "--json", "cloud.provider:aliyun").stdout)
    assert sorted(d["event"]["action"] for d in docs) == sorted(r["eventName"] for r in ingested["ali"])  # type: ignore[index]
    docs = jsonl(cloudsoc(home, "search", "--json", "event.action:ListObjects AND source.ip:1.2.3.0/24").stdout)
    assert docs and all(d["event"]["action"] == "ListObjects" for d in docs)  # type: ignore[index]
    n = sum(
        1 for r in ingested["otrf"] if r["eventName"] == "ListObjects" and r["sourceIPAddress"].startswith("1.2.3.")
    )
    assert len(docs) == n
    # --since applies to event time: these events are from 2016-2020
    assert jsonl(cloudsoc(home, "search", "--json", "--since", "30d", "*").stdout) == []
    human = cloudsoc(home, "search", "--limit", "3", "user.name:pedro")
    assert "pedro" in human.stdout and "matching events shown" in human.stderr


def test_search_bad_query_points_at_the_problem(ingested: dict[str, Any]) -> None:
    proc = cloudsoc(ingested["home"], "search", "event.action:(ConsoleLogin OR", check=False)
    assert proc.returncode == 2
    assert "position" in proc.stderr and "^" in proc.stderr


def test_replay_after_forcing_format(ingested: dict[str, Any]) -> None:
    # An ActionTrail event missing its tell-tale keys cannot be auto-detected, but parses when forced.
    home = ingested["home"]
    odd = {k: v for k, v in ingested["ali"][1].items() if k not in ("acsRegion", "eventSource", "serviceName")}
    odd["eventId"] = "replay-me-0001"
    odd["userIdentity"] = {**odd["userIdentity"], "type": "custom-federation"}
    p = ingested["root"].parent / "odd.json"
    p.write_bytes(orjson.dumps([odd]))
    s = cloudsoc_json(home, "ingest", str(p))
    assert s["dead_letters"] == 1 and s["stored"] == 0
    rows = [r for r in jsonl(cloudsoc(home, "deadletters", "list", "--json").stdout) if r["path"] == str(p)]
    out = cloudsoc_json(home, "deadletters", "replay", "--format", "actiontrail", str(rows[0]["id"]))
    assert out == {"replayed": 1, "stored": 1, "still_failing": 0}
    assert "replay-me-0001" in stored_ids(home)
