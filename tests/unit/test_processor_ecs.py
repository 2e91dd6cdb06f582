"""The `ecs` format: NDJSON of ECS documents (the bastion's journal, other shippers) taken as they are."""

from __future__ import annotations

import orjson

from cloudsoc.pipeline.processor import Processor


def test_ecs_lines_are_taken_as_documents_and_bad_lines_dead_lettered() -> None:
    good = {
        "@timestamp": "2026-11-27T03:10:00+08:00",
        "event": {"id": "b-1", "action": "bastion-command"},
        "process": {"command_line": "uname -a"},
    }
    no_id = {"@timestamp": "2026-11-27T03:10:00Z", "event": {"action": "x"}}
    body = b"\n".join([orjson.dumps(good), b"{broken", orjson.dumps(no_id), b"[1, 2]"]) + b"\n"
    events, dead, seen = Processor("ecs").process(body, "bastion", "journal/1.ndjson")
    assert seen == 4
    assert [e.fields["event"]["id"] for e in events] == ["b-1"]
    # Times are normalised to UTC like the parsers write them (stored times compare as text).
    assert events[0].fields["@timestamp"] == "2026-11-26T19:10:00.000000Z"
    assert events[0].origin.index == 0
    assert sorted(d.origin.index for d in dead) == [1, 2, 3]
    assert dead[0].raw == b"{broken"
    assert any("ECS document" in d.reason for d in dead)


def test_ndjson_files_still_refuse_ecs_documents() -> None:
    doc = {"@timestamp": "2026-11-27T03:10:00Z", "event": {"id": "b-1"}}
    events, dead, _ = Processor("ndjson").process(orjson.dumps(doc) + b"\n", "files", "x.ndjson")
    assert not events and len(dead) == 1
