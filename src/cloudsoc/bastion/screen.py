"""A pyte screen with what session audit needs and pyte 0.8 lacks.

pyte draws full-screen programs onto the main buffer (it ignores ESC[?1049h), so after `vim` exits the shell's
prompt would land in vim's leftovers; here the alternate screen is a real second buffer, as in xterm. The screen
also remembers which rows continue the row above through auto-wrap (a long command spans rows) and can write
itself out as an escape sequence (a keyframe) that rebuilds it on a fresh screen, for seeking in recordings.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pyte
from pyte import graphics, modes
from pyte.screens import Char, Cursor

# Text that only draws, moves down and returns: what `cat` of a log prints. Anything else (escapes, other C0/C1
# controls) may change modes, colours or margins, so a chunk holding it is drawn in full.
_PLAIN = re.compile(r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*")
# Switches a flood's head may hold that its tail cannot show: alternate screen, full reset, scroll margins.
_MODE_SWITCH = re.compile(r"\x1b\[\?(?:1049|1047|47)[hl]|\x1b\[\d*;\d*r")
_LONG_PLAIN = re.compile(r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]{8192,}")
_ALT_MODES = frozenset({47 << 5, 1047 << 5, 1049 << 5})
_FG_CODES = {name: code for code, name in {**graphics.FG_ANSI, **graphics.FG_AIXTERM}.items() if name != "default"}
_BG_CODES = {name: code for code, name in {**graphics.BG_ANSI, **graphics.BG_AIXTERM}.items() if name != "default"}
_FLAGS = (("bold", 1), ("italics", 3), ("underscore", 4), ("blink", 5), ("reverse", 7), ("strikethrough", 9))


def _colour(value: str, named: dict[str, int], extended: int) -> str:
    if value == "default":
        return ""
    if value in named:
        return f";{named[value]}"
    try:
        r, g, b = int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
    except ValueError:
        return ""
    return f";{extended};2;{r};{g};{b}"


class TermScreen(pyte.Screen):
    """pyte.Screen + alternate buffer, wrap tracking, scroll counting and keyframes."""

    def __init__(self, columns: int, lines: int) -> None:
        self.alt = False
        self.wrapped: set[int] = set()
        self.on_linefeed: Callable[[], None] | None = None
        self._drawing = False
        self._main: tuple[dict[int, Any], Cursor, set[int]] | None = None
        super().__init__(columns, lines)
        self.stream = pyte.Stream(self)

    def feed(self, text: str, *, skip: bool = True) -> None:
        """Draw terminal output. With `skip`, the plain-text head of a long chunk that scrolls off before the
        chunk ends is not drawn (the end state is the same): pyte draws ~0.4 MB/s, and `cat` of a big file must
        not make the session wait for it. The caller says skip=False while it must see every line feed."""
        fast = skip and self.stream._taking_plain_text is not False  # False: inside an escape sequence
        if fast and len(text) > 2 * self.lines and not self.alt and self.margins is None:
            cut = self._cut(text)
            if not cut and self._feed_runs(text):
                return
            if cut:
                # The skipped head ends with CR LF, so the tail starts at column 0; after the head's line feeds
                # the cursor is on the bottom row, and the tail's own line feeds scroll every row before it.
                self.wrapped = set()
                self.cursor.x, self.cursor.y = 0, self.lines - 1
                text = text[cut:]
        self.stream.feed(text)

    def feed_tail(self, text: str, keep: int) -> None:
        """Draw a flood as if all but its last ``keep`` characters (from a line start) had scrolled off unseen:
        exact for output that scrolls, close for any other (the head's colours may linger); a head that switches
        screens or margins is drawn in full. For output no one will read at once (binary data, ``ls -R``)."""
        start = text.find("\n", len(text) - keep) + 1 if len(text) > keep else 0
        if start <= 0 or self.alt or self.margins is not None or _MODE_SWITCH.search(text, 0, start):
            self.feed(text)
            return
        self.wrapped = set()
        self.cursor.x, self.cursor.y = 0, self.lines - 1
        self.stream = pyte.Stream(self)  # the head may end inside an escape sequence: start the parser afresh
        self.feed(text[start:])

    def _feed_runs(self, text: str) -> bool:
        """A flood with escapes in it (the command's echo before it, a prompt after it): the long plain runs,
        whole lines of them, go through the skip; the rest is drawn in full. False: no such run."""
        pos = 0
        for run in _LONG_PLAIN.finditer(text):
            start = text.find("\n", run.start(), run.end()) + 1
            end = text.rfind("\n", start, run.end()) + 1
            if start <= 0 or end - start <= 2 * self.lines:
                continue
            self.stream.feed(text[pos:start])
            self.feed(text[start:end])
            pos = end
        if pos == 0:
            return False
        self.stream.feed(text[pos:])
        return True

    def _cut(self, text: str) -> int:
        """Where to start drawing: after a CR LF followed by at least `lines` more line feeds, if all before it is
        plain text; 0 when no such place exists."""
        cut = len(text)
        for _ in range(self.lines + 1):
            cut = text.rfind("\n", 0, cut)
            if cut <= 0:
                return 0
        if text[cut - 1] != "\r":
            return 0
        head = _PLAIN.match(text, 0, cut + 1)
        return cut + 1 if head is not None and head.end() == cut + 1 else 0

    # -- alternate screen -------------------------------------------------------------------------------------
    def set_mode(self, *modes_: int, **kwargs: Any) -> None:
        if kwargs.get("private") and not self.alt and any(m << 5 in _ALT_MODES for m in modes_):
            self._main = ({y: copy.copy(row) for y, row in self.buffer.items()}, copy.copy(self.cursor), self.wrapped)
            self.alt = True
            self.buffer.clear()
            self.wrapped = set()
            self.dirty.update(range(self.lines))
        super().set_mode(*modes_, **kwargs)

    def reset_mode(self, *modes_: int, **kwargs: Any) -> None:
        if kwargs.get("private") and self.alt and any(m << 5 in _ALT_MODES for m in modes_):
            self.alt = False
            if self._main is not None:
                rows, cursor, wrapped = self._main
                self.buffer.clear()
                self.buffer.update(rows)
                self.cursor, self.wrapped = cursor, wrapped
                self._main = None
            self.dirty.update(range(self.lines))
        super().reset_mode(*modes_, **kwargs)

    def reset(self) -> None:
        super().reset()
        self.alt = False
        self._main = None
        self.wrapped = set()

    # -- wrap and scroll tracking -----------------------------------------------------------------------------
    def draw(self, data: str) -> None:
        self._drawing = True
        try:
            super().draw(data)
        finally:
            self._drawing = False

    def linefeed(self) -> None:
        # draw() calls linefeed() for an auto-wrap; only a real one ends a shell line.
        if not self._drawing and self.on_linefeed is not None:
            self.on_linefeed()
        super().linefeed()
        if self._drawing:
            self.wrapped.add(self.cursor.y)
        else:
            self.wrapped.discard(self.cursor.y)

    def index(self) -> None:
        top, bottom = self.margins or (0, self.lines - 1)
        if self.cursor.y == bottom:
            self.wrapped = {y - 1 for y in self.wrapped if top < y <= bottom} | {y for y in self.wrapped if y < top}
        super().index()

    def erase_in_line(self, how: int = 0, private: bool = False) -> None:
        # pyte 0.8 raises UnboundLocalError for a mode other than 0-2 (binary output is full of them);
        # a terminal ignores it, and a raise here would cut the session's audit short.
        if how in (0, 1, 2):
            super().erase_in_line(how, private)

    def erase_in_display(self, how: int = 0, *args: Any, **kwargs: Any) -> None:
        if how not in (0, 1, 2, 3):
            return
        super().erase_in_display(how, *args, **kwargs)
        if how in (2, 3):
            self.wrapped = set()

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        super().resize(lines, columns)
        self.wrapped = {y for y in self.wrapped if y < self.lines}

    # -- reading ----------------------------------------------------------------------------------------------
    def cells(self, y: int, start: int = 0, end: int | None = None) -> list[Char]:
        """The characters of row y between two columns, wide-character stubs left out."""
        row = self.buffer[y]
        out = []
        for x in range(start, self.columns if end is None else min(end, self.columns)):
            char = row[x]
            if char.data:
                out.append(char)
        return out

    def text(self, y: int, start: int = 0, end: int | None = None) -> str:
        return "".join(c.data for c in self.cells(y, start, end))

    def rows(self) -> list[str]:
        """The screen as text, one string per row, trailing blanks removed."""
        return [self.text(y).rstrip() for y in range(self.lines)]

    # -- keyframes --------------------------------------------------------------------------------------------
    @staticmethod
    def sgr(char: Char) -> str:
        flags = "".join(f";{code}" for name, code in _FLAGS if getattr(char, name))
        fg = _colour(char.fg, _FG_CODES, 38)
        bg = _colour(char.bg, _BG_CODES, 48)
        return f"\x1b[0{flags}{fg}{bg}m"

    def _paint(self, rows: dict[int, Any], cursor: Cursor) -> list[str]:
        out = ["\x1b[0m\x1b[H\x1b[2J"]
        default = self.default_char
        for y in sorted(rows):
            if y >= self.lines:
                continue
            row = rows[y]
            used = [x for x in row if x < self.columns and row[x] != default]
            if not used:
                continue
            out.append(f"\x1b[{y + 1};1H")
            last = ""
            for x in range(max(used) + 1):
                char = row[x]
                if not char.data:
                    continue
                style = self.sgr(char)
                if style != last:
                    out.append(style)
                    last = style
                out.append(char.data)
        out.append(self.sgr(cursor.attrs))
        out.append(f"\x1b[{cursor.y + 1};{min(cursor.x, self.columns - 1) + 1}H")
        return out

    def keyframe(self) -> str:
        """Escape sequences that rebuild this screen (text, colours, cursor, alternate screen) on a blank one."""
        out: list[str] = []
        if self.alt and self._main is not None:
            out += self._paint(self._main[0], self._main[1])
            out.append("\x1b[?1049h")
        out += self._paint(dict(self.buffer), self.cursor)
        if self.margins is not None:
            # DECSTBM homes the cursor, so it goes before the final cursor position.
            out.insert(len(out) - 1, f"\x1b[{self.margins.top + 1};{self.margins.bottom + 1}r")
        if modes.DECAWM not in self.mode:
            out.append("\x1b[?7l")
        if self.cursor.hidden:
            out.append("\x1b[?25l")
        return "".join(out)


def _ignore_private(name: str) -> None:
    base = getattr(pyte.Screen, name)

    def method(self: TermScreen, *args: Any, **kwargs: Any) -> Any:
        # pyte passes private=True ("CSI ? ...") to handlers that take no such argument and raises TypeError
        # (vim sends CSI ? 4 m); xterm ignores private variants it does not know, and so do we.
        if kwargs.pop("private", False):
            return None
        return base(self, *args, **kwargs)

    setattr(TermScreen, name, method)


for _name in set(pyte.Stream.csi.values()) - {
    "set_mode",
    "reset_mode",
    "erase_in_display",
    "erase_in_line",
    "report_device_attributes",
}:
    _ignore_private(_name)
