"""Replaying a recording onto a terminal screen: what the console's replay shows at a moment, as text rows."""

from __future__ import annotations

from pathlib import Path

from cloudsoc.bastion.asciicast import CastReader
from cloudsoc.bastion.screen import TermScreen


def render(path: Path, until: float | None = None) -> list[str]:
    """The screen rows (trailing blanks removed) after the output up to `until` seconds (all of it if None).

    With `until`, a recording of ours starts from the index keyframe at or before that time instead of the first
    byte, so the cost is one chunk, not the whole session."""
    reader = CastReader(path)
    screen = TermScreen(reader.width, reader.height)
    events = iter(reader) if until is None else reader.seek(until)
    for event in events:
        if until is not None and event.time > until:
            break
        if event.code == "o":
            screen.feed(event.data)
        elif event.code == "r":
            cols, rows = event.data.split("x")
            screen.resize(lines=int(rows), columns=int(cols))
    return screen.rows()
