"""Threat intel from the command line: import real feeds, look values up, and the pipeline enriches events so the
built-in `threat_intel_source_ip` rule fires on the demo company's attackers (both are on the IPsum list)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.cli import SHARED_DATA, cloudsoc, cloudsoc_json, jsonl

INTEL = SHARED_DATA / "intel"


def test_import_lookup_stats(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ipsum = cloudsoc_json(home, "intel", "import", str(INTEL / "ipsum" / "ipsum.txt"))
    assert ipsum["indicators"] == 120_430 and ipsum["by_type"] == {"ipv4": 120_430} and ipsum["errors"] == []
    again = cloudsoc_json(home, "intel", "import", str(INTEL / "ipsum" / "ipsum.txt"))
    assert again["indicators"] == 120_430  # re-importing refreshes, stores nothing twice
    trails = cloudsoc_json(home, "intel", "import", str(INTEL / "maltrail"))
    assert trails["by_type"]["cidr"] == 1_089 and not any("LICENSE" in e for e in trails["errors"])  # type: ignore[index]
    stats = cloudsoc_json(home, "intel", "stats")
    assert stats["indicators"]["cidr"] == 1_089  # type: ignore[index]
    found = jsonl(cloudsoc(home, "intel", "lookup", "45.148.10.240", "8.8.8.8", "not-a-value", "--json").stdout)
    attacker, dns, junk = found
    assert [(m["source"], m["confidence"]) for m in attacker["matches"]] == [("ipsum.txt", 80)]  # type: ignore[index]
    assert dns["matches"] == [] and dns["allowed"]  # a public resolver, on a MISP warninglist
    assert junk["matches"] == []


def test_demo_attackers_raise_threat_intel_alerts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cloudsoc_json(home, "intel", "import", str(INTEL / "ipsum" / "ipsum.txt"))
    summary = cloudsoc_json(home, "demo", "--seed", "3")
    fired = summary["alerts"]
    assert fired.get("threat_intel_source_ip", 0) >= 2  # type: ignore[union-attr]
    alerts = jsonl(cloudsoc(home, "alerts", "list", "--rule", "threat_intel_source_ip", "--json").stdout)
    sources = {m["value"] for a in alerts for m in a["matched"] if m["field"] == "source.ip"}  # type: ignore[union-attr]
    assert {"45.148.10.240", "193.47.62.69"} <= sources
    # the stored events carry the enrichment, searchable like any field
    enriched = jsonl(cloudsoc(home, "search", "--since", "30d", "--json", "source.ip:193.47.62.69").stdout)
    assert enriched and all(
        e["threat"]["enrichments"][0]["indicator"]["provider"] == "ipsum.txt"  # type: ignore[index]
        for e in enriched
    )


def test_new_indicators_are_hunted_in_stored_history(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = cloudsoc_json(home, "demo", "--seed", "5")
    assert "threat_intel_source_ip" not in first["alerts"]  # type: ignore[operator]  # no intel yet
    imported = cloudsoc_json(home, "intel", "import", str(INTEL / "ipsum" / "ipsum.txt"))
    hunt = imported["retro_hunt"]
    assert hunt["events"] > 0 and hunt["alerts"] >= 2  # type: ignore[index]
    alerts = jsonl(cloudsoc(home, "alerts", "list", "--rule", "threat_intel_source_ip", "--json").stdout)
    assert len(alerts) == hunt["alerts"] and all(a["retro"] for a in alerts)  # type: ignore[index]
    again = cloudsoc_json(home, "intel", "import", str(INTEL / "ipsum" / "ipsum.txt"))
    assert again["retro_hunt"]["alerts"] == 0  # type: ignore[index]  # the same past hits are not raised twice
