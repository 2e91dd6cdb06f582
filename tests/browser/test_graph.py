"""The investigation graph in Chromium over the demo company: the leaked key's identity drawn with the attacker's
address marked as an IPsum hit, a node's panel with its search and intel links, the graph reached from an alert
and from a search, a bad query's error, the Chinese page, and an identity that looks like markup drawn as text."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson

from cloudsoc.detect.alert import Status
from tests.browser.conftest import Console, Tab
from tests.browser.test_overview import log_in

# The demo's attack story: the leaked keys' owner, and the attacker's first address (listed by IPsum).
IDENTITY = "gao.yan"
ATTACKER = "45.148.10.240"
PAYLOAD = '<img src=x id=pwned onerror="window.__xss=1">'


def ready(tab: Tab, state: str = "ready") -> None:
    tab.page.wait_for_selector(f"#graph[data-state='{state}']")  # type: ignore[attr-defined]


def click_node(tab: Tab, node_id: str) -> None:
    """Click the node where Cytoscape drew it (the graph is a canvas, scrolled into the viewport first)."""
    # Cytoscape caches where its container is and updates that on the scroll event: let two frames pass.
    tab.page.evaluate(  # type: ignore[attr-defined]
        "() => { document.getElementById('gr-canvas').scrollIntoView(); return new Promise(done => "
        "requestAnimationFrame(() => requestAnimationFrame(done))); }"
    )
    at = tab.page.evaluate("id => window.cloudsocGraph.position(id)", node_id)  # type: ignore[attr-defined]
    assert at is not None, node_id
    tab.page.mouse.click(at["x"], at["y"])  # type: ignore[attr-defined]
    tab.page.wait_for_selector("#gr-node:not([hidden])")  # type: ignore[attr-defined]


def test_graph_of_the_leaked_key_marks_the_attacker(demo_console: Console, tab: Tab) -> None:
    page = tab.page
    log_in(demo_console, tab, "viewer", "/graph")
    page.goto(f"{demo_console.url}/graph?q=user.name:{IDENTITY}")  # type: ignore[attr-defined]
    ready(tab)
    assert page.locator("#gr-canvas canvas").count() >= 1  # type: ignore[attr-defined]
    hits = page.evaluate("window.cloudsocGraph.hits()")  # type: ignore[attr-defined]
    assert f"ip:{ATTACKER}" in hits
    assert "matching events" in page.locator("#gr-summary").inner_text()  # type: ignore[attr-defined]
    tab.shot("graph-en")
    click_node(tab, f"ip:{ATTACKER}")
    assert page.locator("#gr-node-value").inner_text() == ATTACKER  # type: ignore[attr-defined]
    intel = page.locator("#gr-intel-list").inner_text()  # type: ignore[attr-defined]
    assert "ipsum" in intel and "malicious-activity" in intel
    assert page.locator("#gr-intel").is_visible()  # type: ignore[attr-defined]
    assert IDENTITY in page.locator("#gr-neighbours").inner_text()  # type: ignore[attr-defined]
    tab.shot("graph-panel")
    # the panel's search link: a search with the attacker's events
    page.click("#gr-search")  # type: ignore[attr-defined]
    page.wait_for_selector("#search[data-state='done']")  # type: ignore[attr-defined]
    assert page.locator("#se-q").input_value() == f"source.ip:{ATTACKER}"  # type: ignore[attr-defined]
    rows = page.locator("tr.se-row").all_inner_texts()  # type: ignore[attr-defined]
    assert rows and all(ATTACKER in row for row in rows)
    # and back to the graph from the search page, of the same query
    page.click("#se-graph")  # type: ignore[attr-defined]
    ready(tab)
    assert page.locator("#se-q").input_value() == f"source.ip:{ATTACKER}"  # type: ignore[attr-defined]
    assert f"ip:{ATTACKER}" in page.evaluate("window.cloudsocGraph.hits()")  # type: ignore[attr-defined]
    assert tab.errors == []


def test_intel_lookup_and_access_key_from_the_panel(demo_console: Console, tab: Tab) -> None:
    page = tab.page
    log_in(demo_console, tab, "analyst", f"/graph?q=user.name:{IDENTITY}")
    ready(tab)
    keys = page.evaluate(  # type: ignore[attr-defined]
        "fetch('/api/v1/graph?q=user.name:" + IDENTITY + "').then(r => r.json()).then(g => "
        "g.nodes.filter(n => n.kind === 'access_key').map(n => n.id))"
    )
    assert keys, "the identity's access keys are drawn"
    click_node(tab, keys[0])
    assert page.locator("#gr-intel").is_hidden()  # type: ignore[attr-defined]
    page.click("#gr-search")  # type: ignore[attr-defined]
    page.wait_for_selector("#search[data-state='done']")  # type: ignore[attr-defined]
    rows = page.locator("tr.se-row").all_inner_texts()  # type: ignore[attr-defined]
    assert rows and all(IDENTITY in row for row in rows)
    page.go_back()  # type: ignore[attr-defined]
    ready(tab)
    click_node(tab, f"ip:{ATTACKER}")
    page.click("#gr-intel")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    assert "ipsum" in page.locator("main").inner_text()  # type: ignore[attr-defined]
    assert tab.errors == []


def test_alert_links_to_its_graph_and_searches(demo_console: Console, tab: Tab) -> None:
    page = tab.page
    with demo_console.harness.app.state.estate.alerts() as store:
        rows = store.query(status=tuple(Status), rule="access_key_created.aws", limit=50)
    alert = next(r.alert for r in rows if any(e.get("user", {}).get("name") == IDENTITY for e in r.alert.events))
    log_in(demo_console, tab, "viewer", f"/alerts/{alert.id}")
    page.goto(f"{demo_console.url}/alerts/{alert.id}")  # type: ignore[attr-defined]
    # every event links to a search for it
    link = page.locator("p.event-search a").first  # type: ignore[attr-defined]
    assert "q=event.id" in (link.get_attribute("href") or "")
    page.locator("details.event summary").first.click()  # type: ignore[attr-defined]
    link.click()
    page.wait_for_selector("#search[data-state='done']")  # type: ignore[attr-defined]
    assert page.locator("tr.se-row").count() == 1  # type: ignore[attr-defined]
    page.go_back()  # type: ignore[attr-defined]
    page.click("#alert-graph")  # type: ignore[attr-defined]
    ready(tab)
    q = page.locator("#se-q").input_value()  # type: ignore[attr-defined]
    assert f"user.name:{IDENTITY}" in q and f"source.ip:{ATTACKER}" in q
    assert page.locator("#se-since").input_value() and page.locator("#se-until").input_value()  # type: ignore[attr-defined]
    assert f"ip:{ATTACKER}" in page.evaluate("window.cloudsocGraph.hits()")  # type: ignore[attr-defined]
    assert tab.errors == []


def test_bad_query_zh_and_markup_as_text(demo_console: Console, tab: Tab) -> None:
    page = tab.page
    name = PAYLOAD + uuid.uuid4().hex[:6]
    event = {
        "@timestamp": datetime.now(UTC).isoformat(),
        "event": {"id": f"graph-xss-{uuid.uuid4()}", "action": "GetCallerIdentity", "outcome": "success"},
        "user": {"name": name},
        "source": {"ip": "198.51.100.7"},
        "cloudsoc": {"access_key_id": PAYLOAD},
    }
    admin = demo_console.harness.login("admin")
    r = admin.post("/api/v1/ingest", content=orjson.dumps([event]), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    log_in(demo_console, tab, "viewer", "/graph")
    ready(tab)
    page.fill("#se-q", "user.name:(")  # type: ignore[attr-defined]
    page.click("#se-go")  # type: ignore[attr-defined]
    ready(tab, "error")
    assert "position" in page.locator("#se-error-text").inner_text()  # type: ignore[attr-defined]
    assert page.locator("#se-error-caret").inner_text().splitlines()[1].endswith("^")  # type: ignore[attr-defined]
    assert [e for e in tab.errors if "400" not in e] == []
    tab.errors.clear()
    page.fill("#se-q", "source.ip:198.51.100.7")  # type: ignore[attr-defined]
    page.click("#se-go")  # type: ignore[attr-defined]
    ready(tab)
    click_node(tab, f"identity:{name}")
    assert page.locator("#gr-node-value").inner_text() == name  # type: ignore[attr-defined]
    assert PAYLOAD in page.locator("#gr-neighbours").inner_text()  # type: ignore[attr-defined]
    assert page.evaluate("window.__xss === undefined")  # type: ignore[attr-defined]
    assert page.locator("img[src=x]").count() == 0  # type: ignore[attr-defined]
    page.goto(f"{demo_console.url}/graph?q=user.name:{IDENTITY}")  # type: ignore[attr-defined]
    ready(tab)
    page.click("form.lang button[value=zh]")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    ready(tab)
    assert "情报命中" in page.locator(".gr-legend").inner_text()  # type: ignore[attr-defined]
    assert "个匹配事件" in page.locator("#gr-summary").inner_text()  # type: ignore[attr-defined]
    tab.shot("graph-zh")
    assert tab.errors == []
