"""The alert store (SQLite, shared by the daemon and triage commands), suppressions, realert and first-seen."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloudsoc.detect.alert import Alert, Matched, Severity, Status
from cloudsoc.detect.engine import Detector, RuleIndex
from cloudsoc.detect.firstseen import FirstSeen, field_value
from cloudsoc.detect.rule import Hit, Rule
from cloudsoc.detect.suppression import Suppression, Suppressions, parse_conditions
from cloudsoc.errors import CloudsocError
from cloudsoc.storage.alerts import AlertStore


def _doc(action: str, ip: str, when: datetime, key: str = "AKIAEXAMPLE", event_id: str = "") -> dict[str, Any]:
    return {
        "@timestamp": when.isoformat(),
        "event": {"id": event_id or f"{action}-{ip}-{when.timestamp()}", "action": action, "dataset": "aws.cloudtrail"},
        "source": {"ip": ip},
        "cloudsoc": {"access_key_id": key},
    }


class _Deletes(Rule):
    kind = "test"

    def select(self, doc: Any) -> list[Hit] | None:
        return [("event.action", doc["event"]["action"])]


def _rule(**kw: Any) -> Rule:
    base: dict[str, Any] = {
        "id": "bucket_deleted",
        "title": "Bucket deleted",
        "severity": Severity.HIGH,
        "datasets": frozenset({"aws.cloudtrail"}),
        "actions": frozenset({"deletebucket"}),
    }
    base.update(kw)
    return _Deletes(**base)


T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def test_index_routes_only_matching_actions_and_ids_are_stable(tmp_path: Path) -> None:
    index = RuleIndex([_rule()])
    docs = [_doc("DeleteBucket", "203.0.113.9", T0), _doc("ListBuckets", "203.0.113.9", T0)]
    matches = index.select(docs)
    assert [m.event_id for m in matches] == [docs[0]["event"]["id"]]
    first = Detector(index).process(matches)
    again = Detector(RuleIndex([_rule()])).process(index.select(docs))
    assert [a.id for a in first] == [a.id for a in again]  # a replay yields the same alert id
    assert first[0].matched == [Matched("event.action", "DeleteBucket")]


def test_realert_silences_same_group_within_window() -> None:
    index = RuleIndex([_rule(realert_secs=600)])
    det = Detector(index)
    docs = [_doc("DeleteBucket", "203.0.113.9", T0 + timedelta(minutes=m)) for m in (0, 5, 11)]
    alerts = det.process(index.select(docs))
    assert len(alerts) == 2 and det.realerted == 1


def test_store_is_idempotent_and_triage_keeps_history(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "alerts.db")
    index = RuleIndex([_rule()])
    alerts = Detector(index).process(index.select([_doc("DeleteBucket", "203.0.113.9", T0)]))
    with store.transaction() as conn:
        assert len(store.add(conn, alerts)) == 1
    with store.transaction() as conn:
        assert store.add(conn, alerts) == []  # replayed batch: stored once
    aid = alerts[0].id
    store.set_status(aid[:8], Status.ACKNOWLEDGED, actor="alice", comment="looking")
    store.assign(aid, "bob", actor="alice")
    store.comment(aid, "owner confirmed the deletion", actor="bob")
    store.set_status(aid, Status.RESOLVED, actor="bob")
    with pytest.raises(CloudsocError, match="cannot become acknowledged"):
        store.set_status(aid, Status.ACKNOWLEDGED, actor="bob")
    got = store.get(aid)
    assert got is not None and got.status is Status.RESOLVED and got.assignee == "bob"
    actions = [(h.action, h.actor, h.new) for h in store.history(aid)]
    assert actions == [
        ("raised", "cloudsoc", "new"),
        ("status", "alice", "acknowledged"),
        ("assign", "alice", "bob"),
        ("comment", "bob", None),
        ("status", "bob", "resolved"),
    ]
    assert [a.alert.id for a in store.query(status=[Status.RESOLVED])] == [aid]
    assert store.query(status=[Status.NEW]) == []
    store.close()


def _ack_from_other_process(path: str, alert_id: str) -> None:
    store = AlertStore(Path(path))
    store.set_status(alert_id, Status.ACKNOWLEDGED, actor="other-process")
    store.close()


def test_another_process_triages_while_this_one_holds_the_store(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "alerts.db")
    index = RuleIndex([_rule()])
    alerts = Detector(index).process(index.select([_doc("DeleteBucket", "203.0.113.9", T0)]))
    with store.transaction() as conn:
        store.add(conn, alerts)
    proc = multiprocessing.get_context("spawn").Process(
        target=_ack_from_other_process, args=(str(tmp_path / "alerts.db"), alerts[0].id)
    )
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    got = store.get(alerts[0].id)
    assert got is not None and got.status is Status.ACKNOWLEDGED
    store.close()


def test_suppression_by_key_and_cidr_with_expiry() -> None:
    conditions = parse_conditions(["cloudsoc.access_key_id=AKIAEXAMPLE", "source.ip=198.51.100.0/24"])
    sup = Suppressions([Suppression(7, "bucket_*", conditions, "office NAT", None)])
    index = RuleIndex([_rule()])
    det = Detector(index, suppressor=sup)
    docs = [
        _doc("DeleteBucket", "198.51.100.20", T0),  # silenced
        _doc("DeleteBucket", "203.0.113.9", T0),  # other network
        _doc("DeleteBucket", "198.51.100.21", T0, key="AKIAOTHER"),  # other key
    ]
    alerts = det.process(index.select(docs))
    assert sorted(a.events[0]["source"]["ip"] for a in alerts) == ["198.51.100.21", "203.0.113.9"]
    assert sup.take_hits() == {7: 1}
    expired = Suppression(8, "*", conditions, "", (datetime.now(UTC) - timedelta(days=1)).isoformat())
    assert not expired.applies(alerts[0], datetime.now(UTC))
    with pytest.raises(CloudsocError, match="field=value"):
        parse_conditions(["source.ip"])


def _firstseen(learning_days: float = 1) -> FirstSeen:
    return FirstSeen(
        id="access_key_new_source.test",
        title="AccessKey used from a new source",
        severity=Severity.MEDIUM,
        key=("cloudsoc.access_key_id", field_value("cloudsoc.access_key_id")),
        value=("source.ip", field_value("source.ip")),
        learning_secs=learning_days * 86400,
    )


def test_first_seen_learns_then_fires_once_and_survives_restart() -> None:
    rule = _firstseen()
    index = RuleIndex([rule])
    det = Detector(index)
    week = [_doc("ListBuckets", "198.51.100.7", T0 + timedelta(hours=h)) for h in range(0, 48, 6)]
    learning_new = _doc("ListBuckets", "198.51.100.8", T0 + timedelta(hours=2))  # new, but still learning
    assert det.process(index.select([*week[:1], learning_new, *week[1:]])) == []
    attack = _doc("ListBuckets", "45.148.10.240", T0 + timedelta(days=3))
    alerts = det.process(index.select([attack]))
    assert [a.group_key for a in alerts] == ["AKIAEXAMPLE|45.148.10.240"]
    # Restart: a new rule restored from the snapshot knows the attacker IP now, and the office IP.
    state = rule.snapshot()
    assert state is not None
    restored = _firstseen()
    restored.restore(state)
    index2 = RuleIndex([restored])
    again = [attack, _doc("ListBuckets", "198.51.100.7", T0 + timedelta(days=4))]
    assert Detector(index2).process(index2.select(again)) == []


def test_alert_export_has_the_documented_fields() -> None:
    alert = Alert(id="x", rule_id="r", rule_name="R", rule_kind="sigma", severity=Severity.LOW, event_ids=["e1"])
    doc = alert.export()
    assert doc["rule"]["id"] == "r" and doc["rule"]["name"] == "R" and doc["event"]["ids"] == ["e1"]
    assert doc["severity"] == "low" and doc["matched"] == []
