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
    assert hunt["events_matched"] > 0 and hunt["alerts"] >= 2  # type: ignore[index]
    alerts = jsonl(cloudsoc(home, "alerts", "list", "--rule", "threat_intel_source_ip", "--json").stdout)
    assert len(alerts) == hunt["alerts"] and all(a["retro"] for a in alerts)  # type: ignore[index]
    again = cloudsoc_json(home, "intel", "import", str(INTEL / "ipsum" / "ipsum.txt"))
    assert again["retro_hunt"]["alerts"] == 0  # type: ignore[index]  # the same past hits are not raised twice


def test_configured_feeds_sync_from_a_local_server(tmp_path: Path) -> None:
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(INTEL))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    config = tmp_path / "cloudsoc.yaml"
    config.write_text(
        f"""
feeds:
  feodo: {{type: http, url: "{base}/abusech-feodo/ipblocklist.csv"}}
  gone: {{type: http, url: "{base}/no-such-feed.txt"}}
"""
    )
    home = tmp_path / "home"
    try:
        proc = cloudsoc(home, "intel", "feeds", "sync", "--json", "-c", str(config), check=False)
        assert proc.returncode == 1  # one feed failed …
        statuses = {s["name"]: s for s in jsonl(proc.stdout)}
        assert statuses["feodo"]["outcome"] == "updated" and statuses["feodo"]["by_type"] == {"ipv4": 28}
        assert statuses["gone"]["outcome"] == "failed" and "404" in statuses["gone"]["last_error"]  # type: ignore[operator]
        listed = {
            s["name"]: s for s in jsonl(cloudsoc(home, "intel", "feeds", "list", "--json", "-c", str(config)).stdout)
        }
        assert set(listed) == {"feodo", "gone"}
        assert cloudsoc_json(home, "intel", "stats")["indicators"] == {"ipv4": 28}  # … the other still imported
    finally:
        server.shutdown()


def test_export_round_trips_through_stix_and_feeds_a_blocklist(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cloudsoc_json(home, "intel", "import", "--hunt-days", "0", str(INTEL / "abusech-feodo" / "ipblocklist.csv"))
    misp = sorted((INTEL / "misp-events").rglob("*.json"))
    cloudsoc(home, "intel", "import", "--hunt-days", "0", "--json", *map(str, misp))
    stats = cloudsoc_json(home, "intel", "stats")["active"]
    bundle = tmp_path / "export.json"
    cloudsoc(home, "intel", "export", "-f", "stix", "-o", str(bundle))
    # a fresh home imports the bundle back: the same indicators per type
    back = cloudsoc_json(tmp_path / "other", "intel", "import", "--hunt-days", "0", str(bundle))
    assert back["by_type"] == stats and back["errors"] == []
    blocklist = cloudsoc(home, "intel", "export", "-f", "list", "-t", "ipv4").stdout.splitlines()
    assert len(blocklist) == len(set(blocklist)) == stats["ipv4"]  # type: ignore[index]
    # the Feodo snapshot is old: its IPs have expired, still exported with --all
    rows = cloudsoc(home, "intel", "export", "-f", "csv", "-t", "ipv4", "-s", "ipblocklist.csv", "--all").stdout
    rows = rows.splitlines()
    assert rows[0].startswith("type,value,source") and len(rows) == 1 + 28


def test_false_positive_feedback_allows_the_value_and_lowers_confidence(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cloudsoc_json(home, "intel", "import", "--hunt-days", "0", str(INTEL / "ipsum" / "ipsum.txt"))
    marked = cloudsoc_json(home, "intel", "fp", "45.148.10.240", "-m", "our own scanner", "--as", "alice")
    assert marked["rows_changed"] == 1
    (after,) = jsonl(cloudsoc(home, "intel", "lookup", "45.148.10.240", "--json").stdout)
    assert after["matches"] == [] and "alice" in after["allowed"] and "our own scanner" in after["allowed"]  # type: ignore[operator]
    # the pipeline no longer alerts on it: the demo raises threat-intel alerts for the other attacker only
    summary = cloudsoc_json(home, "demo", "--seed", "3")
    alerts = jsonl(cloudsoc(home, "alerts", "list", "--rule", "threat_intel_source_ip", "--json").stdout)
    sources = {m["value"] for a in alerts for m in a["matched"] if m["field"] == "source.ip"}  # type: ignore[union-attr]
    assert "193.47.62.69" in sources and "45.148.10.240" not in sources and summary["alerts"]
    cloudsoc_json(home, "intel", "fp", "45.148.10.240", "--undo")
    (undone,) = jsonl(cloudsoc(home, "intel", "lookup", "45.148.10.240", "--json").stdout)
    assert undone["matches"][0]["confidence"] == 40  # type: ignore[index]  # halved from 80, matching again
