"""Commands read from a terminal screen, not from a byte log (the garbled records JumpServer users complain of).

Both directions of a session feed one pyte screen. When the user starts typing at a settled screen, the text left
of the cursor is the prompt. At Enter the shell echoes the line and a real line feed; just before that line feed
the screen holds the command exactly as the shell has it after completion, history recall, Ctrl-R, edits and
accepted autosuggestions, so the logical line under the cursor (its wrapped rows joined), minus the prompt, is
the command. Greyed autosuggestion text right of the cursor is not part of it. Nothing is read while a
full-screen program holds the alternate screen. Ctrl-C on a typed line gives a Command with interrupted=True.
"""

from __future__ import annotations

import codecs
import re
from urllib.parse import unquote, urlsplit

import msgspec
from pyte.screens import Char

from cloudsoc.bastion.screen import TermScreen

# A prompt that asks for a secret: what is typed after it is neither echoed nor a command (and never recorded).
SECRET_PROMPT = re.compile(r"(?i)(password|passphrase|passcode|pin|otp|verification code|token)[^:\n]{0,40}:\s*$")
_OSC7 = re.compile(r"\x1b\]7;([^\x07\x1b]*)(?:\x07|\x1b\\)")
# The directory shown in a prompt: `user@host:~/src$ `, `[root@h /etc]# `, `~/src> `, `host /var/log % `.
_PROMPT_CWD = re.compile(r"(?:^|[\s:\[(])((?:~|/)[^\s$#%>\]):]*)[\])]?\s*[$#%>❯›»]\s*$")
# Terminal answers to the program's queries (cursor position, device attributes) arrive on the input side.
_REPLY = re.compile(r"\x1b\[[\d;?>]*[Rcn]|\x1b\][^\x07]*\x07")


def _grey(char: Char) -> bool:
    """Autosuggestion colours: fish's and zsh-autosuggestions' dim greys (bright black, 256-colour and RGB greys)."""
    fg = char.fg
    if fg in ("brightblack", "black"):
        return True
    if len(fg) == 6:
        try:
            r, g, b = int(fg[0:2], 16), int(fg[2:4], 16), int(fg[4:6], 16)
        except ValueError:
            return False
        return max(r, g, b) - min(r, g, b) < 16 and 0x30 <= r <= 0xB0
    return False


class Command(msgspec.Struct):
    text: str
    time: float
    prompt: str
    cwd: str | None
    interrupted: bool


class CommandExtractor:
    """Feed it the session's bytes in order; it returns each command as the shell received it."""

    def __init__(self, width: int = 80, height: int = 24) -> None:
        self.screen = TermScreen(width, height)
        self._out = codecs.getincrementaldecoder("utf-8")("replace")
        self._in = codecs.getincrementaldecoder("utf-8")("replace")
        self.screen.on_linefeed = self._linefeed
        self.prompt: str | None = None
        self._known: list[str] = []  # prompts that framed a command, most recent first
        self._matched: str | None = None
        self._osc_cwd: str | None = None
        self._osc_tail = ""
        self._typing = False  # the user has started a line at the current prompt
        self._enter: tuple[float, bool] | None = None  # (time, interrupted) waiting for the shell's line feed
        # Enters pasted in the same input chunk after the first: the shell echoes those lines only after the
        # commands before them ran, so each is read at the first line feed of a row that starts with a prompt.
        self._queue: list[tuple[float, bool]] = []
        self._queued = False  # the Enter waiting now came from the queue
        self._now = 0.0
        self._done: list[Command] = []

    # -- feeding ----------------------------------------------------------------------------------------------
    def output(self, t: float, data: bytes) -> list[Command]:
        self._now = t
        text = self._out.decode(data)
        if "\x1b]7;" in text or self._osc_tail:
            self._feed_osc7(text)
        else:
            self.screen.feed(text, skip=self._enter is None)
        return self._take()

    def input(self, t: float, data: bytes) -> list[Command]:
        self._now = t
        text = _REPLY.sub("", self._in.decode(data))
        for i, char in enumerate(text):
            self._key(t, char, pasted=i > 0)
        return self._take()

    def resize(self, width: int, height: int) -> None:
        self.screen.resize(lines=height, columns=width)

    def close(self, t: float) -> list[Command]:
        if self._enter is not None:
            self._capture()
        return self._take()

    def pending(self) -> str | None:
        """The command line being typed now, prompt stripped; None inside a full-screen program."""
        if self.screen.alt:
            return None
        if not self._typing:
            return ""  # no key since the last command: whatever is on the row is not a command line yet
        return self._line(drop_suggestion=True)

    # -- keys -------------------------------------------------------------------------------------------------
    def _key(self, t: float, char: str, *, pasted: bool = False) -> None:
        if self.screen.alt:
            return
        if self._enter is not None or self._queue:
            if pasted:
                if char in "\r\n\x03":
                    self._queue.append((t, char == "\x03"))
                return
            # A key, later, before the shell answered the last Enter with a line feed (a line typed at a secret
            # prompt, or typed ahead): read the line as it stands now.
            if self._enter is not None:
                self._capture()
            self._queue.clear()
        if not self._typing:
            self._learn_prompt()
            self._typing = True
        if char in "\r\n":
            self._enter = (t, False)
        elif char == "\x03":
            self._enter = (t, True)
        elif char == "\x04" and not (self._line(drop_suggestion=True) or ""):
            self._typing = False  # Ctrl-D on an empty line: the shell exits, nothing ran

    def _learn_prompt(self) -> None:
        screen = self.screen
        left = screen.text(screen.cursor.y, 0, screen.cursor.x)
        if left.strip():
            self.prompt = left

    # -- reading the line -------------------------------------------------------------------------------------
    def _linefeed(self) -> None:
        if self._enter is None or self.screen.alt:
            return
        if self._queued:
            self._line(drop_suggestion=False)
            if self._matched is None:
                return  # output of the pasted command before, not the next prompt line
        self._capture()
        if self._queue:
            self._enter = self._queue.pop(0)
            self._queued = True

    def _capture(self) -> None:
        assert self._enter is not None
        t, interrupted = self._enter
        self._enter = None
        self._queued = False
        self._typing = False
        text = self._line(drop_suggestion=True) or ""
        if interrupted:
            text = text.removesuffix("^C").rstrip()
        if not text.strip() or (self.prompt is not None and SECRET_PROMPT.search(self.prompt)):
            return
        prompt = self._matched if self._matched is not None else self.prompt or ""
        if self._matched is not None:
            self._known = [self._matched, *[p for p in self._known if p != self._matched][:7]]
        self._done.append(
            Command(text=text.strip(), time=t, prompt=prompt, cwd=self._cwd(prompt), interrupted=interrupted)
        )

    def _line(self, *, drop_suggestion: bool) -> str | None:
        screen = self.screen
        y = screen.cursor.y
        first = y
        while first > 0 and (first in screen.wrapped):
            first -= 1
        last = y
        while last + 1 < screen.lines and (last + 1 in screen.wrapped):
            last += 1
        cells: list[Char] = []
        for row in range(first, last + 1):
            cells += screen.cells(row)
        # The cursor's place in `cells`, counted in characters (wide characters are one).
        cursor = sum(len(screen.cells(row)) for row in range(first, y)) + len(screen.cells(y, 0, screen.cursor.x))
        if drop_suggestion:
            tail = cells[cursor:]
            if tail and all(_grey(c) or c.data == " " for c in tail) and any(c.data != " " for c in tail):
                cells = cells[:cursor]
        text = "".join(c.data for c in cells).rstrip()
        # The prompt learned at the first key, else one that framed an earlier command: a key typed to a program
        # that is not the shell (`q` in `less -X`) teaches a wrong prompt, and the shell's comes back after it.
        for prompt in ([self.prompt] if self.prompt else []) + self._known:
            if text.startswith(prompt):
                self._matched = prompt
                return text[len(prompt) :]
            if prompt.rstrip() and text.startswith(prompt.rstrip()):
                self._matched = prompt
                return text[len(prompt.rstrip()) :].lstrip()
        self._matched = None
        return text

    # -- cwd --------------------------------------------------------------------------------------------------
    def _feed_osc7(self, text: str) -> None:
        """Feed the screen in pieces, each ending at an OSC 7: a command is read at its line feed, and the cwd it
        ran in is the one reported before that, not the one the next prompt reports in the same chunk."""
        combined = self._osc_tail + text
        shift = len(self._osc_tail)
        self._osc_tail = ""
        pos = 0
        for match in _OSC7.finditer(combined):
            end = max(match.end() - shift, 0)
            self.screen.feed(text[pos:end], skip=self._enter is None)
            pos = end
            self._osc_cwd = unquote(urlsplit(match.group(1)).path) or None
        self.screen.feed(text[pos:], skip=self._enter is None)
        start = combined.rfind("\x1b]7;")
        if start != -1 and not _OSC7.match(combined, start):
            self._osc_tail = combined[start:][:4096]

    def _cwd(self, prompt: str) -> str | None:
        if prompt:
            match = _PROMPT_CWD.search(prompt)
            if match:
                return match.group(1)
        return self._osc_cwd

    def _take(self) -> list[Command]:
        done, self._done = self._done, []
        return done
