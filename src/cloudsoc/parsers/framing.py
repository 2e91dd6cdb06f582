"""Split the bytes of a delivered log file into records, salvaging what a damaged file still holds.

Pure: bytes in, records out. Shapes handled (gzip or not): a JSON array of events (ActionTrail delivery),
``{"Records": [...]}`` (CloudTrail delivery), one JSON object, and newline-delimited JSON. Wrappers are
unwrapped per record: the SLS logstore form (event in field ``event``, often as a JSON string), EventBridge
(``detail``) and CloudEvents/StreamAlert (``data``).

The fast path decodes the whole body with orjson. Only when that fails (truncated gzip, a malformed record,
invalid UTF-8) does a slower scanner find the record boundaries, so one bad record costs only itself.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import msgspec
import orjson
from isal import isal_zlib

_GZIP_MAGIC = b"\x1f\x8b"
# isal's stub types its error as an instance; it is the exception class.
_INFLATE_ERROR: type[Exception] = isal_zlib.error  # type: ignore[assignment]
# A JSON string (with escapes) or a bracket: enough to find element boundaries without decoding.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)
_RECORDS_KEY = re.compile(rb'"Records"\s*:\s*\[')
_EVENT_KEYS = ("eventName", "eventVersion", "eventSource")


class Record(msgspec.Struct, gc=False):
    """One record of a file: a decoded object, or an ``error`` with the raw bytes it came from."""

    index: int
    value: Any = None
    offset: int = -1
    error: str = ""
    raw: bytes = b""

    def raw_bytes(self) -> bytes:
        """The record's bytes: as read when it failed, re-encoded when it was decoded."""
        if self.raw:
            return self.raw
        try:
            return orjson.dumps(self.value)
        except TypeError:
            return repr(self.value).encode()


class Framing(msgspec.Struct, gc=False):
    """The records of one file, plus file-level problems (e.g. a truncated gzip stream)."""

    records: list[Record]
    problems: list[str]
    complete: bool


class Framer:
    """Decompresses and splits file bodies into records; pure and reusable."""

    def __init__(self, *, ndjson: bool = False) -> None:
        self.ndjson = ndjson

    def frame(self, data: bytes) -> Framing:
        problems: list[str] = []
        body, complete = decompress(data, problems)
        if self.ndjson:
            records = list(_lines(body))
        else:
            records, whole = self._split(body, problems)
            complete = complete and whole
        for rec in records:
            if not rec.error:
                _unwrap(rec)
        return Framing(records=records, problems=problems, complete=complete)

    def _split(self, body: bytes, problems: list[str]) -> tuple[list[Record], bool]:
        """The records of a JSON body, and whether the body was whole (False: it ended early)."""
        stripped = body.lstrip()
        if not stripped:
            return [], True
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return _salvage(body, str(exc), problems)
        if isinstance(doc, list):
            return [Record(i, v) for i, v in enumerate(doc)], True
        if isinstance(doc, dict):
            recs = doc.get("Records")
            if isinstance(recs, list):
                return [Record(i, v) for i, v in enumerate(recs)], True
            return [Record(0, doc)], True
        return [Record(0, doc)], True


def decompress(data: bytes, problems: list[str]) -> tuple[bytes, bool]:
    """The body of a file, gunzipped when it is gzip (every member); False when the stream is cut or corrupt (what
    is wrong goes to ``problems``)."""
    if not data.startswith(_GZIP_MAGIC):
        return data, True
    out: list[bytes] = []
    rest = data
    while rest.startswith(_GZIP_MAGIC):
        # ISA-L's inflate: a third cheaper than zlib's per file (mostly set-up: delivered files are a few KB).
        d = isal_zlib.decompressobj(wbits=31)
        try:
            out.append(d.decompress(rest))
        except _INFLATE_ERROR as exc:
            problems.append(f"corrupt gzip stream: {exc}")
            return b"".join(out), False
        if not d.eof:
            with contextlib.suppress(_INFLATE_ERROR):
                out.append(d.flush())
            problems.append("truncated gzip stream: the file ends before the gzip trailer")
            return b"".join(out), False
        rest = d.unused_data  # concatenated gzip members are legal
    return b"".join(out), True


def _lines(body: bytes) -> Iterator[Record]:
    offset = 0
    index = 0
    for line in body.split(b"\n"):
        start = offset
        offset += len(line) + 1
        if not line.strip():
            continue
        try:
            yield Record(index, orjson.loads(line), offset=start)
        except orjson.JSONDecodeError as exc:
            yield Record(index, offset=start, error=f"malformed JSON: {exc}", raw=line)
        index += 1


def _salvage(body: bytes, reason: str, problems: list[str]) -> tuple[list[Record], bool]:
    """Find top-level elements by bracket depth and decode each on its own; also say whether the body was
    whole (a body cut between two records decodes cleanly up to the cut, but the file is still damaged)."""
    first = body.lstrip()[:1]
    if first == b"{":
        m = _RECORDS_KEY.search(body)
        if m is None:
            # Not a CloudTrail body: NDJSON, or a single broken object.
            lines = list(_lines(body))
            if len(lines) > 1 or (lines and not lines[0].error):
                return lines, True
            return [Record(0, offset=0, error=f"malformed JSON: {reason}", raw=body)], True
        start = m.end()
    elif first == b"[":
        start = body.index(b"[") + 1
    else:
        return [Record(0, offset=0, error=f"not JSON: {reason}", raw=body)], True
    problems.append(f"damaged JSON body ({reason}); records were recovered one by one")
    records: list[Record] = []
    depth = 0
    elem_start = -1
    index = 0
    closed = False
    for tok in _TOKENS.finditer(body, start):
        ch = tok.group()
        if ch[:1] == b'"':
            if depth == 0 and elem_start < 0:
                elem_start = tok.start()
                records.append(_element(body, index, elem_start, tok.end()))
                index += 1
                elem_start = -1
            continue
        if ch in (b"{", b"["):
            if depth == 0:
                elem_start = tok.start()
            depth += 1
        elif ch in (b"}", b"]"):
            if depth == 0:
                # The array closed; it is the real end only if nothing but the closing brace follows.
                closed = body[tok.end() :].strip() == (b"}" if first == b"{" else b"")
                break
            depth -= 1
            if depth == 0 and elem_start >= 0:
                records.append(_element(body, index, elem_start, tok.end()))
                index += 1
                elem_start = -1
    if depth > 0 and elem_start >= 0:
        records.append(
            Record(index, offset=elem_start, error="truncated record: the file ends inside it", raw=body[elem_start:])
        )
    if not closed:
        problems.append("the records array does not end the JSON body (cut short or damaged); the whole file is kept")
    return records, closed


def _element(body: bytes, index: int, start: int, end: int) -> Record:
    raw = body[start:end]
    try:
        return Record(index, orjson.loads(raw), offset=start)
    except orjson.JSONDecodeError as exc:
        return Record(index, offset=start, error=f"malformed JSON: {exc}", raw=raw)


def _unwrap(rec: Record) -> None:
    """Replace a wrapper (SLS ``event``, EventBridge ``detail``, CloudEvents ``data``) by the event inside."""
    value = rec.value
    if not isinstance(value, dict) or "eventName" in value:
        return
    for key in ("event", "detail", "data"):
        inner = value.get(key)
        if isinstance(inner, str) and inner[:1] == "{":
            try:
                inner = orjson.loads(inner)
            except orjson.JSONDecodeError as exc:
                rec.error = f"malformed JSON in wrapper field {key!r}: {exc}"
                rec.raw = rec.raw_bytes()
                rec.value = None
                return
        if isinstance(inner, dict) and any(k in inner for k in _EVENT_KEYS):
            rec.value = inner
            return
