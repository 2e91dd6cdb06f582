"""Detection from the command line: detect, ingest raising alerts once, triage, hunt, rules, and a daemon that
delivers signed alerts to a real local webhook server."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson

from tests.e2e.cli import SHARED_DATA, cloudsoc, cloudsoc_json, jsonl
from tests.servers.vendors import VendorServer

ACTIONTRAIL = SHARED_DATA / "cloudaudit" / "streamalert-aliyun-actiontrail" / "aliyun_actiontrail.json"
EXPECTED = {"root_account_used.aliyun", "admin_privilege_granted.aliyun", "audit_logging_tampered.aliyun"}


def test_detect_prints_explained_alerts_and_stores_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    alerts = jsonl(cloudsoc(home, "detect", "--json", str(ACTIONTRAIL)).stdout)
    assert {a["rule"]["id"] for a in alerts} == EXPECTED  # type: ignore[index]
    for a in alerts:
        assert a["rule"]["name"] and a["severity"] in {"medium", "high", "critical"}  # type: ignore[index]
        assert a["event"]["ids"] and a["matched"]  # type: ignore[index]
    admin = next(a for a in alerts if a["rule"]["id"] == "admin_privilege_granted.aliyun")  # type: ignore[index]
    assert {"field": "event.action", "value": "AttachPolicyToUser"} in admin["matched"]  # type: ignore[operator]
    assert not (home / "alerts.db").exists() and not (home / "events.duckdb").exists()
    # only the rules given
    none = cloudsoc(home, "detect", "--json", "--no-builtin", "--rules", str(tmp_path), str(ACTIONTRAIL), check=False)
    assert none.returncode == 2 and "no rules to run" in none.stderr


def test_ingest_raises_alerts_once_and_triage_works(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = cloudsoc_json(home, "ingest", str(ACTIONTRAIL))
    assert first["stored"] == 4 and first["alerts"] == 3
    # the same events again under another name: stored once, alerted once
    copy = tmp_path / "again.json"
    shutil.copy(ACTIONTRAIL, copy)
    again = cloudsoc_json(home, "ingest", str(copy))
    assert again["duplicates"] == 4 and again["alerts"] == 0
    listed = jsonl(cloudsoc(home, "alerts", "list", "--json").stdout)
    assert {a["rule"]["id"] for a in listed} == EXPECTED  # type: ignore[index]
    ids = {a["rule"]["id"]: a["id"] for a in listed}  # type: ignore[index]
    admin, trail = str(ids["admin_privilege_granted.aliyun"]), str(ids["audit_logging_tampered.aliyun"])
    cloudsoc(home, "alerts", "ack", admin[:8], "-m", "looking", "--as", "alice")
    cloudsoc(home, "alerts", "assign", admin, "bob", "--as", "alice")
    cloudsoc(home, "alerts", "comment", admin, "<script>alert(1)</script> root used from the US", "--as", "bob")
    cloudsoc(home, "alerts", "resolve", admin, "--as", "bob")
    cloudsoc(home, "alerts", "fp", trail, "-m", "test trail", "--as", "bob")
    bad = cloudsoc(home, "alerts", "ack", admin, check=False)
    assert bad.returncode == 2 and "cannot become acknowledged" in bad.stderr
    shown = orjson.loads(cloudsoc(home, "alerts", "show", admin, "--json").stdout)
    assert shown["status"] == "resolved" and shown["assignee"] == "bob"
    assert [h["action"] for h in shown["history"]] == ["raised", "status", "assign", "comment", "status"]
    assert shown["events"][0]["event"]["action"] == "AttachPolicyToUser"
    still_open = jsonl(cloudsoc(home, "alerts", "list", "--json").stdout)
    assert [a["rule"]["id"] for a in still_open] == ["root_account_used.aliyun"]  # type: ignore[index]
    text = cloudsoc(home, "alerts", "show", admin).stdout
    assert "Why it fired" in text and "What to do" in text and "<script>" in text  # printed, not interpreted
    everything = jsonl(cloudsoc(home, "alerts", "list", "--status", "all", "--json").stdout)
    assert len(everything) == 3


def test_hunt_runs_rules_over_stored_history(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cloudsoc(home, "ingest", "--json", str(ACTIONTRAIL))
    found = jsonl(cloudsoc(home, "hunt", "admin_*", "--since", "3650d", "--json").stdout)
    assert [a["rule"]["id"] for a in found] == ["admin_privilege_granted.aliyun"]  # type: ignore[index]
    unknown = cloudsoc(home, "hunt", "no_such_rule", check=False)
    assert unknown.returncode == 2 and "cloudsoc rules list" in unknown.stderr


def test_rules_commands(tmp_path: Path) -> None:
    home = tmp_path / "home"
    listed = jsonl(cloudsoc(home, "rules", "list", "--json").stdout)
    ids = {r["id"] for r in listed}
    assert len(ids) == len(listed) >= 37 and "network_exposed_to_internet.aws" in ids
    results = jsonl(cloudsoc(home, "rules", "test", "--json").stdout)
    assert results and all(r["status"] == "pass" for r in results)
    assert {r["rule"] for r in results} == ids
    cloudsoc(home, "rules", "lint")
    broken = tmp_path / "broken.yml"
    broken.write_text("title: x\ndetection: {condition: nope}\nlogsource: {product: aws}\n")
    lint = cloudsoc(home, "rules", "lint", "--no-builtin", "--rules", str(broken), check=False)
    assert lint.returncode == 1 and "broken.yml" in lint.stderr


def test_daemon_delivers_signed_alerts_to_a_webhook(tmp_path: Path, vendor: VendorServer) -> None:
    webhook = vendor
    landing = tmp_path / "landing"
    landing.mkdir()
    shutil.copy(ACTIONTRAIL, landing / "actiontrail.json")
    config = tmp_path / "cloudsoc.yaml"
    config.write_text(
        f"""
inputs:
  trail: {{type: directory, path: {landing}, stable_secs: 0}}
outputs:
  soc:
    type: webhook
    url: {webhook.webhook_url}
    secret: ${{TEST_WEBHOOK_SECRET}}
    min_severity: high
"""
    )
    import os

    env_backup = os.environ.get("TEST_WEBHOOK_SECRET")
    os.environ["TEST_WEBHOOK_SECRET"] = webhook.webhook_secret or ""
    try:
        proc = cloudsoc(tmp_path / "home", "run", "-c", str(config), "--once")
    finally:
        if env_backup is None:
            os.environ.pop("TEST_WEBHOOK_SECRET", None)
    assert webhook.rejected == []  # every signature verified by the server
    got = {r.json["rule"]["id"] for r in webhook.received}
    assert got == EXPECTED
    assert (webhook.webhook_secret or "x") not in proc.stderr + proc.stdout
    status = cloudsoc_json(tmp_path / "home", "status")
    assert status["alerts"] == {"new": 3} and status["deliveries"]["delivered"] == 3  # type: ignore[index]
    assert status["deliveries"]["pending"] == status["deliveries"]["failed"] == 0  # type: ignore[index]


def test_example_rules_in_the_repository_pass_their_own_tests(tmp_path: Path) -> None:
    """rules/examples: a Sigma correlation and an ElastAlert rule, each beside its test events."""
    examples = Path(__file__).resolve().parents[2] / "rules" / "examples"
    results = jsonl(cloudsoc(tmp_path, "rules", "test", "--no-builtin", "--rules", str(examples), "--json").stdout)
    assert len(results) == 4 and all(r["status"] == "pass" for r in results), results
    assert {r["expect"] for r in results} == {"fire", "quiet"}


SIGMA_AWS = SHARED_DATA / "cloudaudit" / "sigma-rules-aws" / "cloudtrail"
CORRELATION = """\
title: Recon burst
id: 4d1b5b6a-1c2f-4d7e-9a51-0d6c1e0b7a01
status: test
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        errorCode: AccessDenied
    condition: selection
---
title: Many denied calls by one user
id: 4d1b5b6a-1c2f-4d7e-9a51-0d6c1e0b7a02
correlation:
    type: event_count
    rules:
        - 4d1b5b6a-1c2f-4d7e-9a51-0d6c1e0b7a01
    group-by:
        - userIdentity.arn
    timespan: 10m
    condition:
        gte: 3
level: high
"""


def _comparable(stdout: str) -> list[bytes]:
    # Everything but the moment each alert was made.
    return [orjson.dumps({k: v for k, v in a.items() if k != "created"}) for a in jsonl(stdout)]  # type: ignore[union-attr]


def test_detect_in_worker_processes_prints_the_same_alerts_in_the_same_order(tmp_path: Path) -> None:
    from cloudsoc.demo.generator import DemoGenerator, DemoOptions

    home = tmp_path / "home"
    logs = tmp_path / "logs"
    summary = DemoGenerator(DemoOptions(seed=4, min_events=0)).write(logs)
    shutil.copy(ACTIONTRAIL, logs / "streamalert.json")
    # Indicators in the home's store: the workers enrich from it as this process would.
    listed = tmp_path / "attackers.txt"
    listed.write_text("\n".join(summary.attacker_ips) + "\n")
    cloudsoc_json(home, "intel", "import", "--source", "test-list", "--confidence", "90", str(listed))
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "recon.yml").write_text(CORRELATION)
    base = ["detect", "--json", "--no-progress", "--rules", str(SIGMA_AWS), "--rules", str(rules)]
    for extra in ([], ["--events"]):
        one = cloudsoc(home, *base, *extra, "--workers", "1", str(logs))
        many = cloudsoc(home, *base, *extra, "--workers", "3", str(logs))
        inline, parallel = _comparable(one.stdout), _comparable(many.stdout)
        assert len(inline) > 100 and parallel == inline
        alerts = jsonl(many.stdout)
        rule_ids = {a["rule"]["id"] for a in alerts}  # type: ignore[index]
        # the built-in pack (first-seen baselines, bursts), SigmaHQ rules, a correlation and threat intel
        assert {"access_key_new_source.aws", "access_denied_burst.aliyun", "threat_intel_source_ip"} <= rule_ids, (
            rule_ids
        )
        assert "4d1b5b6a-1c2f-4d7e-9a51-0d6c1e0b7a02" in rule_ids
        assert all(bool(a.get("events")) == bool(extra) for a in alerts)  # type: ignore[union-attr]
        assert one.stderr.splitlines()[-1].split(" in ")[0] == many.stderr.splitlines()[-1].split(" in ")[0]
