"""A demo session's terminal, synthesised: what the bastion would have recorded, written with the real CastWriter.

The shell echoes each typed key (``i`` then ``o``), answers Enter with a line feed, the command's output and the
prompt; ``sudo`` asks for a password once (typed, not echoed: the writer masks it); ``tail -f`` runs until
Ctrl-C; vim draws on the alternate screen. A line the filter rejects is typed but never entered: the bastion
sends Ctrl-U instead of Enter, marks the recording and shows the refusal, as ``ProxySession`` does.
"""

from __future__ import annotations

import random
from pathlib import Path

from cloudsoc.bastion.asciicast import CastSummary, CastWriter
from cloudsoc.bastion.session import refusal_text
from cloudsoc.demo.bastion import DemoSession, TypedLine

WIDTH, HEIGHT = 120, 32


class SessionRecording:
    """Writes one shell session's recording; key timing comes from ``rng``."""

    def __init__(self, session: DemoSession, rng: random.Random) -> None:
        self.s = session
        self.rng = rng

    def write(self, path: Path) -> CastSummary:
        s = self.s
        cast = CastWriter(
            path,
            width=WIDTH,
            height=HEIGHT,
            timestamp=int(s.start),
            title=f"{s.user}@{s.host.name}",
            env={"TERM": "xterm-256color", "SHELL": ""},
        )
        banner = (
            "Welcome to Ubuntu 22.04.5 LTS (GNU/Linux 5.15.0-124-generic x86_64)\r\n\r\n"
            f"Last login: from 10.0.0.2 (bastion)\r\n{s.prompt}"
        )
        cast.output(0.3, banner.encode())
        for line in s.lines:
            self._line(cast, line)
        return cast.close()

    def _type(self, cast: CastWriter, text: str, end: float, *, echo: bool = True) -> None:
        """Keys of ``text`` at a typist's pace, the last one just before ``end``."""
        gaps = [self.rng.uniform(0.04, 0.12) for _ in text]
        t = end - sum(gaps)
        for char, gap in zip(text, gaps, strict=True):
            t += gap
            cast.input(t - 0.01, char.encode())
            if echo:
                cast.output(t - 0.008, char.encode())

    def _line(self, cast: CastWriter, line: TypedLine) -> None:
        s = self.s
        at = line.at
        self._type(cast, line.text, at - 0.05)
        if line.verdict.action == "reject":
            cast.input(at, b"\x15")
            cast.marker(at, f"rejected: {line.text} ({line.verdict.rule})")
            cast.output(at + 0.01, (refusal_text(line.verdict) + s.prompt).encode())
            return
        cast.input(at, b"\r")
        t = at + 0.005
        cast.output(t, b"\r\n")
        if line.sudo_password:
            cast.output(t + 0.02, f"[sudo] password for {s.system_user}: ".encode())
            secret = "".join(self.rng.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(12))
            t += self.rng.uniform(2.0, 4.0)
            self._type(cast, secret + "\r", t, echo=False)
            cast.output(t + 0.01, b"\r\n")
        t += 0.05
        if line.screen:
            self._vim(cast, line, t)
            t += line.runs
        elif line.follow:
            step = line.runs / (len(line.output) + 1)
            for i, out in enumerate(line.output):
                cast.output(t + step * i, (out + "\r\n").encode())
            t += line.runs
            cast.input(t, b"\x03")
            cast.output(t + 0.01, b"^C\r\n")
        else:
            if line.output:
                cast.output(t + line.runs, "".join(o + "\r\n" for o in line.output).encode())
            t += line.runs
        if line.text != "exit":
            cast.output(t + 0.02, s.prompt.encode())

    def _vim(self, cast: CastWriter, line: TypedLine, t: float) -> None:
        name = line.text.split()[-1]
        rows = [*line.screen, *["~"] * (HEIGHT - 1 - len(line.screen))]
        size = sum(len(row) + 1 for row in line.screen)
        draw = "\x1b[?1049h\x1b[H\x1b[2J" + "\r\n".join(rows) + f'\r\n"{name}" {len(line.screen)}L, {size}B'
        cast.output(t + 0.1, draw.encode())
        self._type(cast, line.keys, t + line.runs - 0.5, echo=False)
        # The edit the keys made (the value under the search changed), then vim's message on writing.
        edited = [(i, row) for i, row in enumerate(line.screen) if "1024" in row]
        repaint = "".join(f"\x1b[{i + 1};1H\x1b[K{row.replace('1024', '2048')}" for i, row in edited)
        message = f'\x1b[{HEIGHT};1H\x1b[K"{name}" {len(line.screen)}L, {size}B written'
        cast.output(t + line.runs - 0.45, (repaint + message).encode())
        cast.output(t + line.runs, b"\x1b[?1049l")
