"""The bastion pages in Chromium over a real recorded bash session: the dashboard with its charts and tables,
search by command, the player playing to the recorded screen, seeking by command and by ?t=, an XSS payload typed
as a command shown as text, who sees what, the kill button, and the Chinese page."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudsoc.bastion.asciicast import CastReader
from cloudsoc.bastion.replay import render
from tests.browser.conftest import Console, Tab, _serve
from tests.browser.test_overview import log_in
from tests.console.bastion_data import RISKY, XSS, BastionData, build
from tests.console.harness import Harness

PAYLOAD = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def bastion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Console, BastionData]]:
    base = tmp_path_factory.mktemp("bastion-ui")
    h = Harness(base / "home")
    data = build(h, base / "work")
    for console in _serve(h):
        yield console, data


def term_rows(tab: Tab) -> list[str]:
    texts: list[str] = tab.page.locator("#bs-term .bs-row").all_text_contents()  # type: ignore[attr-defined]
    return [t.rstrip() for t in texts]


def watch_dialogs(tab: Tab) -> list[str]:
    seen: list[str] = []

    def handle(dialog: object) -> None:
        seen.append(dialog.message)  # type: ignore[attr-defined]
        dialog.accept()  # type: ignore[attr-defined]

    tab.page.on("dialog", handle)  # type: ignore[attr-defined]
    return seen


def test_dashboard_tables_charts_and_search_by_command(bastion: tuple[Console, BastionData], tab: Tab) -> None:
    console, data = bastion
    page = tab.page
    dialogs = watch_dialogs(tab)
    log_in(console, tab, "auditor", "/bastion")
    page.wait_for_selector("#bastion[data-loaded='7d']")  # type: ignore[attr-defined]
    page.wait_for_selector("#tbl-sessions tr[data-session]")  # type: ignore[attr-defined]
    assert page.locator("#bastion").get_attribute("data-commands") == str(len(data.commands) + 2)  # type: ignore[attr-defined]
    for chart in ("chart-commands", "chart-users"):
        assert page.locator(f"#{chart} canvas").count() == 1  # type: ignore[attr-defined]
    risky = page.locator("#tbl-risky tr.bs-high")  # type: ignore[attr-defined]
    assert risky.count() == 1 and RISKY in risky.inner_text()
    # the payload typed as a command is text in every table, never an element
    assert page.locator("#tbl-latest code", has_text=PAYLOAD).count() == 1  # type: ignore[attr-defined]
    assert page.locator("#tbl-top code", has_text=PAYLOAD).count() == 1  # type: ignore[attr-defined]
    assert page.locator("main img").count() == 0  # type: ignore[attr-defined]
    assert page.locator("#tbl-active tr[data-session]").count() == 1  # type: ignore[attr-defined]
    assert page.locator("#tbl-active .bs-kill").count() == 0  # the auditor reads, never kills
    assert page.locator("#tbl-refusals", has_text="mallory").count() == 1  # type: ignore[attr-defined]
    # times are shown in the console's zone, named
    zone = page.locator("header .zone").inner_text()  # type: ignore[attr-defined]
    assert page.locator("#bs-window").inner_text().count(zone) == 2  # type: ignore[attr-defined]
    assert zone in page.locator("#tbl-latest td.bs-time").first.inner_text()  # type: ignore[attr-defined]
    tab.shot("bastion-en")
    page.fill("#bs-command", "onerror=alert")  # type: ignore[attr-defined]
    page.click("#bs-go")  # type: ignore[attr-defined]
    page.wait_for_selector("#bastion[data-sessions='command=onerror%3Dalert|0']")  # type: ignore[attr-defined]
    found = page.locator("#tbl-sessions tr[data-session]")  # type: ignore[attr-defined]
    assert found.count() == 1 and found.get_attribute("data-session") == data.recorded
    # a top-command link searches sessions by that line
    page.locator("#tbl-programs a", has_text="pg_dump").click()  # type: ignore[attr-defined]
    page.wait_for_selector("#bastion[data-sessions='command=pg_dump|0']")  # type: ignore[attr-defined]
    assert page.locator("#tbl-sessions tr[data-session]").get_attribute("data-session") == data.other  # type: ignore[attr-defined]
    assert dialogs == [] and tab.errors == []


def test_player_plays_to_the_recorded_screen_and_commands_seek(bastion: tuple[Console, BastionData], tab: Tab) -> None:
    console, data = bastion
    page = tab.page
    dialogs = watch_dialogs(tab)
    log_in(console, tab, "auditor", f"/bastion/sessions/{data.recorded}")
    page.wait_for_selector("#bastion-session[data-ready='true']")  # type: ignore[attr-defined]
    commands = page.locator("#tbl-commands a.bs-jump")  # type: ignore[attr-defined]
    assert commands.count() == len(data.commands)
    assert page.locator("#tbl-commands tr.bs-high", has_text=RISKY).count() == 1  # type: ignore[attr-defined]
    page.click(".bs-speed[data-speed='8']")  # type: ignore[attr-defined]
    page.click("#bs-play")  # type: ignore[attr-defined]
    page.wait_for_selector("#bastion-session[data-state='ended']", timeout=30_000)  # type: ignore[attr-defined]
    final = render(data.recording)
    assert term_rows(tab) == final
    # the payload the shell echoed is text on the screen too, and colours are classes
    assert any(PAYLOAD in row for row in term_rows(tab))
    assert page.locator("#bs-term img").count() == 0  # type: ignore[attr-defined]
    assert page.locator("#bs-term span.f-red").count() >= 1  # type: ignore[attr-defined]
    tab.shot("bastion-player-en")
    # click a command: the player jumps to that moment
    index = [c.text for c in data.commands].index(XSS)
    commands.nth(index).click()
    offset = round(data.commands[index].time, 3)
    page.wait_for_selector(f"#bastion-session[data-t='{offset:.3f}']")  # type: ignore[attr-defined]
    assert f"t={offset}" in page.url  # type: ignore[attr-defined]
    assert term_rows(tab) == render(data.recording, until=offset)
    assert any(PAYLOAD in row for row in term_rows(tab))
    assert page.locator("#bs-term img").count() == 0  # type: ignore[attr-defined]
    assert page.locator("#tbl-commands tr.bs-current").get_attribute("data-index") == str(index)  # type: ignore[attr-defined]
    # "jump to next command"
    page.click("#bs-next-cmd")  # type: ignore[attr-defined]
    after = round(data.commands[index + 1].time, 3)
    page.wait_for_selector(f"#bastion-session[data-t='{after:.3f}']")  # type: ignore[attr-defined]
    assert dialogs == [] and tab.errors == []


def test_a_link_with_t_opens_at_that_moment(bastion: tuple[Console, BastionData], tab: Tab) -> None:
    console, data = bastion
    page = tab.page
    offset = round(next(c.time for c in data.commands if c.text == RISKY), 3)
    log_in(console, tab, "admin", f"/bastion/sessions/{data.recorded}?t={offset}")
    page.wait_for_selector("#bastion-session[data-ready='true']")  # type: ignore[attr-defined]
    assert page.locator("#bastion-session").get_attribute("data-t") == f"{offset:.3f}"  # type: ignore[attr-defined]
    assert term_rows(tab) == render(data.recording, until=offset)
    assert tab.errors == []


def test_viewer_is_refused_and_admin_kills_a_live_session(bastion: tuple[Console, BastionData], tab: Tab) -> None:
    console, data = bastion
    page = tab.page
    log_in(console, tab, "viewer", "/")
    assert page.locator("nav a[href='/bastion']").count() == 0  # type: ignore[attr-defined]
    r = page.goto(f"{console.url}/bastion")  # type: ignore[attr-defined]
    assert r.status == 403
    r = page.goto(f"{console.url}/bastion/sessions/{data.recorded}")  # type: ignore[attr-defined]
    assert r.status == 403
    page.context.clear_cookies()  # type: ignore[attr-defined]
    tab.errors.clear()  # the 403 pages' own failed loads
    dialogs = watch_dialogs(tab)
    log_in(console, tab, "admin", "/bastion")
    assert page.locator("nav a[href='/bastion']").count() == 1  # type: ignore[attr-defined]
    button = page.locator(f"#tbl-active tr[data-session='{data.live}'] .bs-kill")  # type: ignore[attr-defined]
    button.wait_for()
    button.click()
    page.wait_for_function("document.querySelector('#tbl-active .bs-kill').disabled")  # type: ignore[attr-defined]
    assert len(dialogs) == 1
    page.wait_for_selector("#tbl-active .bs-kill:has-text('asked to end')")  # type: ignore[attr-defined]
    assert tab.errors == []


def test_chinese_pages(bastion: tuple[Console, BastionData], tab: Tab) -> None:
    console, data = bastion
    page = tab.page
    log_in(console, tab, "auditor", "/bastion")
    page.wait_for_selector("#bastion[data-loaded='7d']")  # type: ignore[attr-defined]
    page.click("form.lang button[value=zh]")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    page.wait_for_selector("#bastion[data-loaded='7d']")  # type: ignore[attr-defined]
    page.wait_for_selector("#tbl-sessions tr[data-session]")  # type: ignore[attr-defined]
    text = page.locator("main").inner_text()  # type: ignore[attr-defined]
    assert "高危命令" in text and "按用户统计命令" in text
    tab.shot("bastion-zh")
    page.goto(f"{console.url}/bastion/sessions/{data.recorded}")  # type: ignore[attr-defined]
    page.wait_for_selector("#bastion-session[data-ready='true']")  # type: ignore[attr-defined]
    assert "本会话的命令" in page.locator("main").inner_text()  # type: ignore[attr-defined]
    tab.shot("bastion-player-zh")
    assert tab.errors == []


def test_no_recording_still_lists_commands(bastion: tuple[Console, BastionData], tab: Tab, tmp_path: Path) -> None:
    console, data = bastion
    page = tab.page
    log_in(console, tab, "auditor", f"/bastion/sessions/{data.other}")
    page.wait_for_selector("#bastion-session[data-state='none']")  # type: ignore[attr-defined]
    assert page.locator("#tbl-commands code", has_text="pg_dump sales").count() == 1  # type: ignore[attr-defined]
    assert page.locator("#bs-error").is_visible()  # type: ignore[attr-defined]
    assert tab.errors == []


def test_idle_gaps_are_compressed_when_playing(bastion: tuple[Console, BastionData], tab: Tab) -> None:
    """The session waits about three seconds on `sleep 3`; at 1x the player shortens any pause to two seconds."""
    console, data = bastion
    page = tab.page
    log_in(console, tab, "auditor", f"/bastion/sessions/{data.recorded}")
    page.wait_for_selector("#bastion-session[data-ready='true']")  # type: ignore[attr-defined]
    events = list(CastReader(data.recording))
    length = max(e.time for e in events)
    outputs = [e.time for e in events if e.code == "o"]
    page.click("#bs-play")  # type: ignore[attr-defined]
    page.wait_for_selector("#bastion-session[data-state='ended']", timeout=30_000)  # type: ignore[attr-defined]
    took, covered = map(float, page.locator("#bastion-session").get_attribute("data-played").split("/"))  # type: ignore[attr-defined]
    assert covered == pytest.approx(length, abs=0.01)
    quiet = max(b - a for a, b in itertools.pairwise(outputs))
    assert quiet > 2.5  # the `sleep 3`
    assert length - (quiet - 2.0) - 0.05 < took < length - (quiet - 2.0) + 0.3, (took, length, quiet)
    assert term_rows(tab) == render(data.recording)
    assert tab.errors == []


def test_commands_waiting_for_approval_are_approved_and_rejected(
    bastion: tuple[Console, BastionData], tab: Tab
) -> None:
    from cloudsoc.bastion.reviews import ReviewQueue

    console, data = bastion
    page = tab.page
    queue = ReviewQueue(console.harness.home)  # as a bastion session holding the lines writes them
    ask = dict(session_id=data.live, source_ip="198.51.100.7", target="web-01", system_user="root", kind="shell",
               rule="builtin-high-risk", risk="high", timeout_secs=600)  # fmt: skip
    try:
        run = queue.request(user="alice", command="history -c", group="history-clear", reason="clears history", **ask)
        refuse = queue.request(user="alice", command=PAYLOAD, group="defense-impair", reason="a test", **ask)
        dialogs = watch_dialogs(tab)
        log_in(console, tab, "auditor", "/bastion")
        page.wait_for_selector("#bastion[data-reviews='2']")  # type: ignore[attr-defined]
        assert page.locator("#tbl-reviews .bs-approve").count() == 0  # the auditor reads, never decides
        assert page.locator("#tbl-reviews code", has_text=PAYLOAD).count() == 1  # type: ignore[attr-defined]
        assert page.locator("main img").count() == 0  # type: ignore[attr-defined]
        page.context.clear_cookies()  # type: ignore[attr-defined]
        log_in(console, tab, "admin", "/bastion")
        page.wait_for_selector("#bastion[data-reviews='2']")  # type: ignore[attr-defined]
        zone = page.locator("header .zone").inner_text()  # type: ignore[attr-defined]
        row = page.locator(f"#tbl-reviews tr[data-review='{run}']")  # type: ignore[attr-defined]
        assert zone in row.locator("td.bs-time").first.inner_text() and "history-clear" in row.inner_text()
        row.locator(".bs-approve").click()
        row.locator(".bs-decided", has_text="approved").wait_for()
        other = page.locator(f"#tbl-reviews tr[data-review='{refuse}']")  # type: ignore[attr-defined]
        other.locator(".bs-reject").click()
        other.locator(".bs-decided", has_text="rejected").wait_for()
        assert len(dialogs) == 2
        assert (queue.get(run) or {})["status"] == "approved" and (queue.get(run) or {})["decided_by"] == "admin"
        assert (queue.get(refuse) or {})["status"] == "rejected"
        page.wait_for_selector("#bastion[data-reviews='0']", timeout=10_000)  # type: ignore[attr-defined]
        assert page.locator("#tbl-reviews", has_text="no command is waiting").count() == 1  # type: ignore[attr-defined]
        tab.shot("bastion-reviews")
        assert tab.errors == []
    finally:
        queue.close()
