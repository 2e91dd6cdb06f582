"""asciicast recordings: written as v2 in independent gzip members with a keyframe index; read as v1, v2 or v3.

Layout of a recording `<name>.cast.gz`: gzip member 0 holds the v2 header line and the first events; a new member
starts every `chunk_secs` of session time. Each finished member is flushed to disk, so a crashed bastion loses at
most the member still open, and any member can be decompressed on its own. Beside it `<name>.idx` has one JSON
line per member: `{"t": start, "offset": byte offset, "cols": w, "rows": h, "keyframe": escapes}`; the keyframe
rebuilds the screen as it was at the member start, so a replay can start there without the earlier output
(JumpServer/Teleport users' complaint: long replays fail). `gunzip` of the whole file is a plain v2 cast that
`asciinema cat` and asciinema-player accept.
"""

from __future__ import annotations

import codecs
import concurrent.futures
import json
import math
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import orjson
from isal import isal_zlib

from cloudsoc.bastion.screen import TermScreen
from cloudsoc.bastion.terminal import SECRET_PROMPT
from cloudsoc.errors import BastionError

_RESIZE = re.compile(r"^(\d+)x(\d+)$")
# Output waits this long (in characters) before the writer's own screen draws it: the screen is only read at an
# input (the echo guess) and at a chunk start (the keyframe), and one long text lets TermScreen skip what scrolls
# off, where a flood cut in 4 KiB pty reads would be drawn in full (pyte draws well under 1 MB/s).
_UNSEEN_MAX = 1 << 20
# Compression, writes and fsyncs run on one thread shared by every recording of the process, in order per
# recording: the compressor lets go of the GIL, so a `cat` in a shell is compressed on another core while the
# event loop goes on forwarding, and an fsync never stalls every session's keystrokes. Lines wait in memory up to
# this.
_PENDING_MAX = 256 << 10
_IO = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="cast-writer")
# ISA-L's deflate (isal, also ingest's gunzip), level 2: terminal text shrinks 7-8x at ~1 GB/s, and output that
# does not compress (a `cat` of base64 or random data) passes at ~400 MB/s. zlib's level 1 did 270 and 43 MB/s
# (160 coding Huffman only): a flood's compression took a core of its own beside the relay. Standard gzip members.
_LEVEL = 2
_UNSEEN_DRAWN = 64 << 10  # of which at most this tail is drawn (TermScreen.feed_tail)
_CODES = frozenset({"o", "i", "r", "m", "x"})


class CastEvent(msgspec.Struct):
    time: float
    code: str
    data: str


class CastSummary(msgspec.Struct):
    path: str
    duration: float
    events: int
    bytes: int


def index_path(path: Path) -> Path:
    """`x.cast.gz` and `x.cast` keep their index in `x.idx`."""
    name = path.name
    for suffix in (".gz", ".cast", ".json"):
        name = name.removesuffix(suffix)
    return path.with_name(name + ".idx")


class CastWriter:
    """One recording, append-only. Not thread-safe: the session's event loop is its only caller (the file
    work happens on the _IO thread, in call order)."""

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        timestamp: int,
        title: str = "",
        env: dict[str, str] | None = None,
        chunk_secs: float = 10.0,
    ) -> None:
        self.path = path
        self.chunk_secs = chunk_secs
        self._gzip = path.name.endswith(".gz")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._idx: BinaryIO = open(index_path(path), "wb")  # noqa: SIM115
        self._out = codecs.getincrementaldecoder("utf-8")("replace")
        self._in = codecs.getincrementaldecoder("utf-8")("replace")
        self._screen = TermScreen(width, height)
        self._zip: Any = None
        self._member_t = 0.0
        self._last_t = 0.0
        self._events = 0
        self._echo: bool | None = None
        self._closed = False
        self._unseen: list[str] = []
        self._unseen_len = 0
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._jobs: list[concurrent.futures.Future[None]] = []
        header: dict[str, Any] = {"version": 2, "width": width, "height": height, "timestamp": timestamp}
        if title:
            header["title"] = title
        if env:
            header["env"] = env
        self._start_member(0.0, keyframe="")
        self._write(orjson.dumps(header) + b"\n")

    # -- public -----------------------------------------------------------------------------------------------
    def set_echo(self, on: bool | None) -> None:
        """Tell the writer whether the far terminal echoes (False: mask input); None: guess from the prompt."""
        self._echo = on

    def output(self, t: float, data: bytes) -> None:
        text = self._out.decode(data)
        if text:
            self._event(t, "o", text)
            self._unseen.append(text)
            self._unseen_len += len(text)
            if self._unseen_len > _UNSEEN_MAX:
                self._draw()

    def input(self, t: float, data: bytes) -> None:
        text = self._in.decode(data)
        if not text:
            return
        if self._masked():
            text = "".join(c if c in "\r\n" else "*" for c in text)
        self._event(t, "i", text)

    def resize(self, t: float, width: int, height: int) -> None:
        self._event(t, "r", f"{width}x{height}")
        self._draw()
        self._screen.resize(lines=height, columns=width)

    def marker(self, t: float, label: str) -> None:
        self._event(t, "m", label)

    def close(self) -> CastSummary:
        if not self._closed:
            self._closed = True
            tail = self._out.decode(b"", final=True)
            if tail:
                self._event(self._last_t, "o", tail)
            self._finish_member()
            self._submit(self._file.close)
            self._submit(self._idx.close)
            for job in self._jobs:
                job.result()  # an I/O error surfaces here, to the session that ends
            self._jobs.clear()
        return CastSummary(
            path=str(self.path), duration=self._last_t, events=self._events, bytes=self.path.stat().st_size
        )

    # -- internals --------------------------------------------------------------------------------------------
    def _draw(self) -> None:
        if self._unseen:
            text = "".join(self._unseen)
            self._unseen.clear()
            self._unseen_len = 0
            self._screen.feed_tail(text, _UNSEEN_DRAWN)

    def _masked(self) -> bool:
        if self._echo is not None:
            return not self._echo
        self._draw()
        if self._screen.alt:
            return False
        screen = self._screen
        return bool(SECRET_PROMPT.search(screen.text(screen.cursor.y, 0, screen.cursor.x)))

    def _event(self, t: float, code: str, data: str) -> None:
        if self._closed:
            raise BastionError(f"recording {self.path} is closed")
        t = max(t, self._last_t)  # asciicast times never go back
        if t - self._member_t >= self.chunk_secs:
            self._finish_member()
            self._draw()
            self._start_member(t, keyframe=self._screen.keyframe())
        self._last_t = t
        self._events += 1
        self._write(orjson.dumps([round(t, 6), code, data]) + b"\n")

    def _submit(self, fn: Any, *args: Any) -> None:
        self._jobs = [job for job in self._jobs if not job.done() or job.exception() is not None]
        self._jobs.append(_IO.submit(fn, *args))

    def _start_member(self, t: float, *, keyframe: str) -> None:
        self._member_t = t
        entry = {"t": round(t, 6), "cols": self._screen.columns, "rows": self._screen.lines, "keyframe": keyframe}
        self._submit(self._open_member, entry)

    def _finish_member(self) -> None:
        self._submit_pending()
        self._submit(self._close_member)

    def _write(self, line: bytes) -> None:
        self._pending.append(line)
        self._pending_len += len(line)
        if self._pending_len > _PENDING_MAX:
            self._submit_pending()

    def _submit_pending(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._pending_len = 0
            self._submit(self._append, data)

    # -- on the _IO thread ------------------------------------------------------------------------------------
    def _open_member(self, entry: dict[str, Any]) -> None:
        entry = {"t": entry["t"], "offset": self._file.tell(), **{k: v for k, v in entry.items() if k != "t"}}
        self._idx.write(orjson.dumps(entry) + b"\n")
        self._idx.flush()
        self._zip = isal_zlib.compressobj(_LEVEL, isal_zlib.DEFLATED, 31) if self._gzip else None

    def _append(self, data: bytes) -> None:
        self._file.write(self._zip.compress(data) if self._zip is not None else data)

    def _close_member(self) -> None:
        if self._zip is not None:
            self._file.write(self._zip.flush(isal_zlib.Z_FINISH))
            self._zip = None
        self._file.flush()
        os.fsync(self._file.fileno())


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) and f >= 0 else None


class CastReader:
    """Reads our .cast.gz (multi-member, maybe cut short by a crash), plain .cast v2/v3 and v1 .json.

    Lines that are not valid events (bad JSON, wrong length, negative or non-numeric time, non-text data, a
    malformed resize) are skipped and counted in `skipped`; a file whose header is unusable raises BastionError.
    Blank lines, and `#` comments in v3, are not errors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.skipped = 0
        try:
            with open(path, "rb") as f:
                self._gz = f.read(2) == b"\x1f\x8b"
            self._size = path.stat().st_size
        except OSError as exc:
            raise BastionError(f"{path}: cannot read the recording ({exc.strerror})") from exc
        first = self._first_line()
        try:
            head = json.loads(first)
        except ValueError:
            head = None
        if isinstance(head, dict) and head.get("version") in (2, 3):
            self.header: dict[str, Any] = head
            self.version = int(head["version"])
            self._v1: list[Any] | None = None
        else:
            self._v1 = self._load_v1()
            self.version = 1
        term = self.header.get("term")
        size: tuple[Any, Any]
        if self.version == 3:
            size = (term.get("cols"), term.get("rows")) if isinstance(term, dict) else (None, None)
        else:
            size = (self.header.get("width"), self.header.get("height"))
        width, height = size
        if not (_positive_int(width) and _positive_int(height)):
            raise BastionError(f"{path}: the asciicast header has no valid terminal size")
        self.width, self.height = int(width), int(height)

    # -- header -----------------------------------------------------------------------------------------------
    def _first_line(self) -> bytes:
        for line in self._lines(0):
            if line.strip():
                return line
        return b""

    def _load_v1(self) -> list[Any]:
        try:
            doc = json.loads(b"".join(self._lines(0)))
        except ValueError as exc:
            raise BastionError(f"{self.path}: neither an asciicast v2/v3 header nor a v1 JSON document") from exc
        if not isinstance(doc, dict) or doc.get("version") != 1 or not isinstance(doc.get("stdout"), list):
            raise BastionError(
                f"{self.path}: unsupported asciicast (version {doc.get('version')!r})"
                if isinstance(doc, dict)
                else f"{self.path}: not an asciicast"
            )
        self.header = {k: v for k, v in doc.items() if k != "stdout"}
        return list(doc["stdout"])

    # -- bytes ------------------------------------------------------------------------------------------------
    def _lines(self, offset: int) -> Iterator[bytes]:
        """Decompressed lines from a byte offset, streamed (a long recording is never held whole); a member cut
        short by a crash yields what it has, its last line broken."""
        with open(self.path, "rb") as f:
            f.seek(offset)
            if not self._gz:
                for line in f:
                    yield line.rstrip(b"\r\n")
                return
            pending = b""
            inflater = zlib.decompressobj(31)
            while block := f.read(1 << 20):
                data = block
                while data:
                    try:
                        pending += inflater.decompress(data)
                    except zlib.error:
                        yield from pending.split(b"\n")
                        return
                    *done, pending = pending.split(b"\n")
                    yield from done
                    if not inflater.eof:
                        break  # the member goes on in the next block (or was cut short)
                    data = inflater.unused_data
                    inflater = zlib.decompressobj(31)
            if pending:
                yield pending

    # -- events -----------------------------------------------------------------------------------------------
    def _parse(self, line: bytes, clock: float) -> CastEvent | None:
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(item, list) or len(item) != 3:
            return None
        t, code, data = _number(item[0]), item[1], item[2]
        if t is None or not isinstance(code, str) or code not in _CODES or not isinstance(data, str):
            return None
        if code == "r":
            size = _RESIZE.match(data)
            if size is None or int(size.group(1)) == 0 or int(size.group(2)) == 0:
                return None
        return CastEvent(time=clock + t if self.version == 3 else t, code=code, data=data)

    def _events(self, offset: int, *, skip_header: bool) -> Iterator[CastEvent]:
        clock = 0.0
        header_seen = not skip_header
        for line in self._lines(offset):
            stripped = line.strip()
            if not stripped or (self.version == 3 and stripped.startswith(b"#")):
                continue
            if not header_seen:
                header_seen = True
                continue
            event = self._parse(stripped, clock)
            if event is None:
                self.skipped += 1
                continue
            clock = event.time
            yield event

    def _v1_events(self) -> Iterator[CastEvent]:
        clock = 0.0
        for item in self._v1 or []:
            delay = _number(item[0]) if isinstance(item, list) and len(item) == 2 else None
            if delay is None or not isinstance(item[1], str):
                self.skipped += 1
                continue
            clock += delay
            yield CastEvent(time=clock, code="o", data=item[1])

    def __iter__(self) -> Iterator[CastEvent]:
        self.skipped = 0
        if self._v1 is not None:
            return self._v1_events()
        return self._events(0, skip_header=True)

    def v2_lines(self) -> Iterator[bytes]:
        """The recording as plain asciicast v2 lines (what `asciinema play` reads), whatever version it was
        written in; lines the reader skips are left out."""
        keep = {k: v for k, v in self.header.items() if k in ("timestamp", "title", "env")}
        yield orjson.dumps({"version": 2, "width": self.width, "height": self.height, **keep}) + b"\n"
        for ev in self:
            yield orjson.dumps([round(ev.time, 6), ev.code, ev.data]) + b"\n"

    def index(self) -> list[dict[str, Any]]:
        """The keyframe index beside a recording we wrote ([] for anyone else's cast)."""
        idx = index_path(self.path)
        if self._v1 is not None or not idx.exists():
            return []
        entries = []
        for line in idx.read_bytes().splitlines():
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # the index line of a member being written when the bastion died
            if isinstance(entry, dict) and isinstance(entry.get("offset"), int):
                entries.append(entry)
        return entries

    def seek(self, t: float) -> Iterator[CastEvent]:
        """Events from the member that holds time t; it starts with the keyframe (an "r" if the size changed, then
        an "o" that repaints the screen), so feeding what this yields to a blank screen gives the right state."""
        entries = [e for e in self.index() if e["t"] <= t and e["offset"] < self._size]
        if len(entries) < 2 or entries[-1]["offset"] == 0:
            yield from iter(self)
            return
        self.skipped = 0
        entry = entries[-1]
        if (entry["cols"], entry["rows"]) != (self.width, self.height):
            yield CastEvent(time=float(entry["t"]), code="r", data=f"{entry['cols']}x{entry['rows']}")
        yield CastEvent(time=float(entry["t"]), code="o", data=str(entry["keyframe"]))
        yield from self._events(int(entry["offset"]), skip_header=False)
