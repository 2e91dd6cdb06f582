"""Framing: file bodies to records, and salvage of damaged files (nothing lost, each failure kept raw)."""

from __future__ import annotations

import gzip

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudsoc.parsers.framing import Framer

RECORDS = [{"eventName": "GetObject", "eventID": f"id-{i}", "eventVersion": "1.08"} for i in range(6)]


def test_cloudtrail_body_gzip() -> None:
    framing = Framer().frame(gzip.compress(orjson.dumps({"Records": RECORDS})))
    assert framing.complete and not framing.problems
    assert [r.value for r in framing.records] == RECORDS


def test_actiontrail_array_and_single_object() -> None:
    assert [r.value for r in Framer().frame(orjson.dumps(RECORDS)).records] == RECORDS
    assert [r.value for r in Framer().frame(orjson.dumps(RECORDS[0])).records] == [RECORDS[0]]


def test_concatenated_gzip_members() -> None:
    data = gzip.compress(orjson.dumps(RECORDS[:3])) + gzip.compress(b"")
    assert len(Framer().frame(data).records) == 3


def test_malformed_record_in_the_middle_is_isolated() -> None:
    body = orjson.dumps({"Records": RECORDS}).replace(b'"id-2"', b'"id-2",,')
    framing = Framer().frame(body)
    assert [r.index for r in framing.records] == list(range(6))
    bad = [r for r in framing.records if r.error]
    assert len(bad) == 1 and bad[0].index == 2 and b'"id-2",,' in bad[0].raw
    assert bad[0].offset == body.index(b'{"eventName"', body.index(b'"id-1"'))
    assert [r.value["eventID"] for r in framing.records if not r.error] == ["id-0", "id-1", "id-3", "id-4", "id-5"]


def test_invalid_utf8_costs_one_record() -> None:
    body = orjson.dumps(RECORDS).replace(b'"id-4"', b'"id-\xff\xfe"')
    framing = Framer().frame(body)
    bad = [r for r in framing.records if r.error]
    assert [r.index for r in bad] == [4] and b"\xff\xfe" in bad[0].raw
    assert sum(1 for r in framing.records if not r.error) == 5


def test_truncated_gzip_keeps_the_whole_records_and_the_tail() -> None:
    big = [{**r, "pad": "x" * 2000, "n": i} for i, r in enumerate(RECORDS * 20)]
    data = gzip.compress(orjson.dumps({"Records": big}), compresslevel=0)
    cut = data[: len(data) // 2]
    framing = Framer().frame(cut)
    assert not framing.complete
    assert any("truncated gzip" in p for p in framing.problems)
    good = [r for r in framing.records if not r.error]
    assert good and [r.value["n"] for r in good] == list(range(len(good)))
    assert framing.records[-1].error.startswith("truncated record")


def test_ndjson_bad_line_and_blank_lines() -> None:
    body = b"\n".join(orjson.dumps(r) for r in RECORDS[:3]) + b"\n\n{not json}\n" + orjson.dumps(RECORDS[3]) + b"\n"
    recs = Framer(ndjson=True).frame(body).records
    assert [bool(r.error) for r in recs] == [False, False, False, True, False]
    assert recs[3].raw == b"{not json}" and recs[3].offset == body.index(b"{not json}")
    # auto mode finds NDJSON too (whole-body decoding fails on the second line)
    assert len(Framer().frame(body).records) == 5


def test_wrappers_are_unwrapped() -> None:
    inner = {"eventName": "ConsoleSignin", "eventId": "e1", "acsRegion": "cn-hangzhou"}
    sls = {"__topic__": "actiontrail_audit_event", "event": orjson.dumps(inner).decode()}
    bridge = {"detail-type": "AWS API Call via CloudTrail", "detail": RECORDS[0]}
    cloudevent = {"specversion": "1.0", "type": "ActionTrail:ApiCall", "data": inner}
    recs = Framer().frame(orjson.dumps([sls, bridge, cloudevent])).records
    assert [r.value for r in recs] == [inner, RECORDS[0], inner]


def test_not_json_at_all() -> None:
    recs = Framer().frame(b"hello world").records
    assert len(recs) == 1 and recs[0].error and recs[0].raw == b"hello world"


def test_record_that_is_not_an_object_is_kept() -> None:
    recs = Framer().frame(orjson.dumps([1, "x", RECORDS[0]])).records
    assert [r.value for r in recs] == [1, "x", RECORDS[0]]
    assert recs[0].raw_bytes() == b"1"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage=st.binary(min_size=1, max_size=8), where=st.integers(min_value=0), gz=st.booleans())
def test_damage_anywhere_never_raises_and_keeps_failed_bytes(garbage: bytes, where: int, gz: bool) -> None:
    body = orjson.dumps({"Records": RECORDS})
    at = where % (len(body) + 1)
    damaged = body[:at] + garbage + body[at:]
    framing = Framer().frame(gzip.compress(damaged) if gz else damaged)  # must not raise, whatever the damage
    assert framing.records or not framing.complete  # an incomplete framing makes the whole file a dead letter
    for rec in framing.records:
        assert rec.raw if rec.error else rec.value is not None


@settings(max_examples=200, deadline=None)
@given(keep=st.floats(min_value=0.0, max_value=1.0), gz=st.booleans())
def test_truncation_keeps_an_exact_prefix_of_the_records(keep: float, gz: bool) -> None:
    body = orjson.dumps({"Records": RECORDS})
    data = gzip.compress(body, compresslevel=0) if gz else body
    cut = data[: int(len(data) * keep)]
    framing = Framer().frame(cut)
    good = [r.value for r in framing.records if not r.error]
    assert good == RECORDS[: len(good)]  # whole records before the cut, exactly, in order
    if cut and len(good) < len(RECORDS):
        # whatever was cut, the whole file is kept: as a file-level dead letter, or as one failed record
        assert not framing.complete or any(r.error and r.raw == cut for r in framing.records)
