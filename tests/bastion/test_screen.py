"""TermScreen: the alternate buffer, keyframes and the plain-text skip give the screens a terminal would show."""

from __future__ import annotations

import random

from cloudsoc.bastion.screen import TermScreen
from tests.conftest import SHARED_DATA

CORPUS = (SHARED_DATA / "bastion" / "nl2bash" / "all.cm").read_text(errors="replace").splitlines()


def state(screen: TermScreen) -> tuple[list[str], int, int, dict[int, object]]:
    return screen.rows(), screen.cursor.x, screen.cursor.y, {y: dict(screen.buffer[y]) for y in range(screen.lines)}


def test_skipping_the_plain_head_of_a_long_chunk_changes_nothing() -> None:
    rng = random.Random(6)
    for trial in range(15):
        width, height = rng.choice([(80, 24), (40, 10), (132, 50)])
        fast, full = TermScreen(width, height), TermScreen(width, height)
        prelude = f"\x1b[3{trial % 8}mprompt$ \x1b[0m" + "x" * rng.randint(0, 200)
        lines = rng.sample(CORPUS, rng.randint(1, 300))
        chunk = "\r\n".join(lines) + rng.choice(["\r\n", "", "\r\n\x1b[1mbold tail", "\r\n你好\tend"])
        for screen, skip in ((fast, True), (full, False)):
            screen.feed(prelude)
            for i in range(0, len(chunk), 4095):  # pty-sized reads
                screen.feed(chunk[i : i + 4095], skip=skip)
            screen.feed("\r\nnext$ ")
        assert state(fast) == state(full), trial


def test_alternate_screen_restores_the_shell_screen() -> None:
    screen = TermScreen(20, 4)
    screen.feed("$ vim\r\n")
    screen.feed("\x1b[?1049h\x1b[2J\x1b[Hvim text\r\n~\r\n~")
    assert screen.alt and screen.rows()[0] == "vim text"
    screen.feed("\x1b[?1049l$ ")
    assert not screen.alt and screen.rows() == ["$ vim", "$", "", ""]


def test_keyframe_rebuilds_the_screen() -> None:
    screen = TermScreen(30, 5)
    screen.feed("\x1b[1;31mred\x1b[0m plain \x1b[48;5;200mbg\x1b[0m\r\n你好 \x1b[38;2;1;2;3mrgb\x1b[4m")
    screen.feed("\x1b[?1049h\x1b[Hfull screen\x1b[3;4H")
    again = TermScreen(30, 5)
    again.feed(screen.keyframe())
    assert state(again) == state(screen) and again.alt
    assert again.cursor.attrs == screen.cursor.attrs
    screen.feed("\x1b[?1049l")
    again.feed("\x1b[?1049l")
    assert state(again) == state(screen)
