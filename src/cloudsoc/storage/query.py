"""The search query language, parsed to a small AST and compiled to a DuckDB ``WHERE`` expression.

The language is what a Kibana user already types (KQL with a few Lucene query-string extras); the user
documentation with examples is ``docs/specs/query-language.md``. Grammar, lowest precedence first::

    query      := <empty> | "*" | or
    or         := and (OR and)*
    and        := not ([AND] not)*                  adjacent terms are an implicit AND
    not        := (NOT | "-" | "!") not | primary   "-"/"!" only when glued to the term
    primary    := "(" or ")" | field-expr | free-text
    field-expr := FIELD ":" value-group             event.action:ConsoleLogin, user.name:(alice OR bob*)
                | FIELD ":" range                   event.severity:[3 TO 7], @timestamp:{a TO b]
                | FIELD (":")? ("<"|"<="|">"|">=") VALUE
    range      := ("[" | "{") BOUND "TO" BOUND ("]" | "}")   "[" inclusive, "{" exclusive, "*" open
    free-text  := WORD | QUOTED                      case-insensitive substring of the whole document

Compilation (:meth:`Query.to_sql`) binds every value as a ``?`` parameter. Fields of
:data:`~cloudsoc.storage.columns.COLUMNS` compare their typed column (``event.action:X`` →
``event_action = ?``); every other field is reached inside ``doc`` by its dotted ECS path, descending through
arrays at any level, so a value inside an array (``related.ip``, ``event.category``,
``threat.enrichments.indicator.ip``) matches when any element matches. ``NOT`` treats a missing field as "does
not match", so ``NOT event.outcome:success`` also returns events without an outcome.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, TypeAlias

import orjson

from cloudsoc.errors import QueryError
from cloudsoc.storage.columns import COLUMNS, DOC, SOURCE_IP_HALVES

# ------------------------------------------------------------------------------------------------------------
# AST


class Wildcard(enum.Enum):
    """An unquoted wildcard inside a value: ``*`` (any run of characters) or ``?`` (one character)."""

    ANY = "*"
    ONE = "?"


Piece: TypeAlias = str | Wildcard

# Characters that end or change the meaning of an unquoted word somewhere in the language; the canonical form
# escapes them (or quotes the value) so that it parses back to the same query.
_SPECIAL: Final = frozenset('\\()":<>=[]{}*?')
_KEYWORDS: Final = frozenset({"and", "or", "not", "to"})


@dataclass(frozen=True)
class Value:
    """A searched value: literal text interleaved with wildcards (quoted values never contain wildcards)."""

    pieces: tuple[Piece, ...]

    @classmethod
    def literal(cls, text: str) -> Value:
        return cls((text,) if text else ())

    @classmethod
    def of(cls, pieces: list[Piece]) -> Value:
        """Normalise: merge adjacent text, drop empty text, collapse runs of ``*``."""
        out: list[Piece] = []
        for piece in pieces:
            if isinstance(piece, str):
                if not piece:
                    continue
                if out and isinstance(out[-1], str):
                    out[-1] = out[-1] + piece
                    continue
            elif piece is Wildcard.ANY and out and out[-1] is Wildcard.ANY:
                continue
            out.append(piece)
        return cls(tuple(out))

    @property
    def has_wildcards(self) -> bool:
        return any(isinstance(p, Wildcard) for p in self.pieces)

    @property
    def only_wildcards_any(self) -> bool:
        return bool(self.pieces) and all(p is Wildcard.ANY for p in self.pieces)

    @property
    def text(self) -> str:
        """The value as written, wildcards shown as ``*``/``?`` (exact text when there are none)."""
        return "".join(p.value if isinstance(p, Wildcard) else p for p in self.pieces)

    def like_pattern(self, *, json_escaped: bool = False) -> str:
        """The value as a LIKE pattern for ``ESCAPE '\\'``; literal ``%``, ``_`` and ``\\`` are escaped."""
        out: list[str] = []
        for piece in self.pieces:
            if piece is Wildcard.ANY:
                out.append("%")
            elif piece is Wildcard.ONE:
                out.append("_")
            else:
                assert isinstance(piece, str)
                text = _json_escape(piece) if json_escaped else piece
                out.append(text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))
        return "".join(out)

    def __str__(self) -> str:
        if not self.pieces:
            return '""'
        if not self.has_wildcards:
            text = self.text
            if _bare_safe(text):
                return text
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out: list[str] = []
        for piece in self.pieces:
            if isinstance(piece, Wildcard):
                out.append(piece.value)
                continue
            for ch in piece:
                first = not out
                if ch.isspace() or ch in _SPECIAL or (first and ch in "-!"):
                    out.append("\\" + ch)
                else:
                    out.append(ch)
        return "".join(out)


def _bare_safe(text: str) -> bool:
    return (
        bool(text)
        and text[0] not in "-!"
        and text.lower() not in _KEYWORDS
        and not any(ch.isspace() or ch in _SPECIAL for ch in text)
    )


def _json_escape(text: str) -> str:
    """``text`` as it appears inside a JSON string (the stored document is JSON text)."""
    return orjson.dumps(text).decode()[1:-1]


@dataclass(frozen=True)
class MatchAll:
    """``*`` or the empty query: every event."""


@dataclass(frozen=True)
class Text:
    """Free text: a case-insensitive substring of the whole document."""

    value: Value


@dataclass(frozen=True)
class Match:
    """``field:value``: exact (case-sensitive) without wildcards, case-insensitive pattern with them."""

    field: str
    value: Value


@dataclass(frozen=True)
class Exists:
    """``field:*``: the field has a non-null value."""

    field: str


@dataclass(frozen=True)
class Range:
    """A one- or two-sided range; a missing bound is ``None`` (its ``*_inclusive`` is then ``False``)."""

    field: str
    low: Value | None
    low_inclusive: bool
    high: Value | None
    high_inclusive: bool


@dataclass(frozen=True)
class Cidr:
    """``ip-field:203.0.113.0/24``: the address lies in the network."""

    field: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node: TypeAlias = MatchAll | Text | Match | Exists | Range | Cidr | And | Or | Not


# ------------------------------------------------------------------------------------------------------------
# Field kinds and value conversions shared by the parser (validation) and the compiler

TIMESTAMP_FIELD: Final = "@timestamp"
_FIELD_RE: Final = re.compile(r"[A-Za-z0-9_@\-]+(?:\.[A-Za-z0-9_@\-]+)*")
_KEYWORD_RE: Final = re.compile(r"(?i:and|or|not)(?=[\s()\"]|\Z)")
_TO_RE: Final = re.compile(r"(?i:to)(?=[\s\"]|\Z)")
_PLAIN_RE: Final = re.compile(r"[A-Za-z0-9 !#$%()*+,\-.:;=?@\[\]^_`{|}~]+")  # no " & ' / < > \ or non-ASCII
_NUMBER_RE: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NOW_RE: Final = re.compile(r"now(?:([+-])([0-9]{1,9})([smhdw]))?")
_UNIT_SECS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_MAX_OFFSET_SECS: Final = 1000 * 366 * 86400
_V4_MAPPED: Final = 0xFFFF << 32  # IPv4 a.b.c.d is ::ffff:a.b.c.d, as in the source_ip_num column
# Typed IP columns stored as two unsigned 64-bit halves of the 128-bit number: comparing the halves is plain
# integer work that Parquet statistics can prune, where a computed 128-bit value would be built for every row.
_IP_HALF_COLUMNS: Final = {"source.ip": SOURCE_IP_HALVES}
_LOW64: Final = (1 << 64) - 1
_MAX_DEPTH: Final = 64


def _is_ip_field(field: str) -> bool:
    """ECS types every ``*.ip`` field as ``ip``: such fields take CIDRs and compare addresses numerically."""
    return field == "ip" or field.endswith(".ip")


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _ip_num(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    return _V4_MAPPED + int(ip) if ip.version == 4 else int(ip)


def _parse_cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """``addr/prefix`` → network (host bits allowed); ``ValueError`` says what was expected."""
    addr_text, _, prefix = text.partition("/")
    addr = _ip(addr_text)
    if addr is None:
        raise ValueError(f"invalid CIDR {text!r}: expected an IP address before '/'")
    if not re.fullmatch(r"[0-9]{1,3}", prefix) or int(prefix) > addr.max_prefixlen:
        raise ValueError(f"invalid CIDR {text!r}: expected a prefix length 0-{addr.max_prefixlen} after '/'")
    try:
        return ipaddress.ip_network(f"{addr}/{int(prefix)}", strict=False)
    except ValueError as exc:  # e.g. a scoped IPv6 address
        raise ValueError(f"invalid CIDR {text!r}: {exc}") from None


@dataclass(frozen=True)
class _Time:
    """A timestamp bound: an absolute naive-UTC time (``is_date`` for a bare day) or an offset from now."""

    at: datetime | None
    offset: timedelta
    is_date: bool


def _parse_time(text: str) -> _Time:
    """ISO 8601 (naive means UTC) or ``now``/``now-15m``; ``ValueError`` when neither."""
    m = _NOW_RE.fullmatch(text)
    if m:
        seconds = int(m.group(2)) * _UNIT_SECS[m.group(3)] if m.group(1) else 0
        if seconds > _MAX_OFFSET_SECS:
            raise ValueError(f"date math {text!r} reaches too far: at most 1000 years from now")
        return _Time(None, timedelta(seconds=-seconds if m.group(1) == "-" else seconds), False)
    try:
        at = datetime.fromisoformat(text)
        if at.tzinfo is not None:
            at = at.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise ValueError(
            f"expected a timestamp like 2026-01-01, 2026-01-01T08:00:00Z or now-1h, got {text!r}"
        ) from None
    return _Time(at, timedelta(), bool(_DATE_RE.fullmatch(text)))


# ------------------------------------------------------------------------------------------------------------
# Parser: hand-written recursive descent over characters (the lexing of a value depends on its context)

_TERM_STOP: Final = frozenset('()":<>=[]{}')  # ends a free-text word or a field name
_VALUE_STOP: Final = frozenset('()"')  # ends a value after ':' (so IPv6 addresses need no quoting)
_BOUND_STOP: Final = frozenset('()"[]{}')  # ends a range bound


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    # -- helpers

    def error(self, message: str, position: int) -> QueryError:
        return QueryError(message, query=self.text, position=position)

    def peek(self, ahead: int = 0) -> str:
        i = self.pos + ahead
        return self.text[i] if i < len(self.text) else ""

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def keyword(self) -> str | None:
        """The keyword (as written) starting at the current position, if any."""
        m = _KEYWORD_RE.match(self.text, self.pos)
        return m.group(0) if m else None

    def nest(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error(f"query nests too deeply (at most {_MAX_DEPTH} levels)", self.pos)

    # -- boolean structure

    def parse(self) -> Node:
        for i, ch in enumerate(self.text):
            if "\ud800" <= ch <= "\udfff":  # cannot be bound as UTF-8; shown as '?' in the message
                shown = "".join("?" if "\ud800" <= c <= "\udfff" else c for c in self.text)
                raise QueryError("invalid character: a lone UTF-16 surrogate", query=shown, position=i)
        self.skip_ws()
        if self.pos == len(self.text):
            return MatchAll()
        node = self.parse_or(None)
        self.skip_ws()
        if self.pos < len(self.text):  # only ')' can stop the expression early
            raise self.error("unexpected ')' without a matching '('", self.pos)
        return node

    def parse_or(self, field: str | None) -> Node:
        items = [self.parse_and(field)]
        while True:
            self.skip_ws()
            kw = self.keyword()
            if kw is None or kw.upper() != "OR":
                break
            self.pos += len(kw)
            self.expect_operand(kw, field)
            items.append(self.parse_and(field))
        return _join(Or, items)

    def parse_and(self, field: str | None) -> Node:
        items = [self.parse_not(field)]
        while True:
            self.skip_ws()
            if self.peek() in ("", ")"):
                break
            kw = self.keyword()
            if kw is not None and kw.upper() == "OR":
                break
            if kw is not None and kw.upper() == "AND":
                self.pos += len(kw)
                self.expect_operand(kw, field)
            items.append(self.parse_not(field))  # explicit AND, or implicit AND of adjacent terms
        return _join(And, items)

    def expect_operand(self, after: str, field: str | None) -> None:
        self.skip_ws()
        kw = self.keyword()
        if self.peek() in ("", ")") or (kw is not None and kw.upper() in ("AND", "OR")):
            what = "a value" if field is not None else "a term"
            raise self.error(f"expected {what} after {after!r}", self.pos)

    def parse_not(self, field: str | None) -> Node:
        self.skip_ws()
        kw = self.keyword()
        if kw is not None and kw.upper() == "NOT":
            self.nest()
            self.pos += len(kw)
            self.expect_operand(kw, field)
            node: Node = Not(self.parse_not(field))
            self.depth -= 1
            return node
        nxt = self.peek(1)
        if self.peek() in ("-", "!") and nxt and not nxt.isspace() and nxt != ")":
            self.nest()
            self.pos += 1
            node = Not(self.parse_not(field))
            self.depth -= 1
            return node
        return self.parse_primary(field)

    def parse_primary(self, field: str | None) -> Node:
        start = self.pos
        c = self.peek()
        if c == "(":
            self.nest()
            self.pos += 1
            node = self.parse_or(field)
            self.skip_ws()
            if self.peek() != ")":
                raise self.error(f"expected ')' to close '(' opened at {start}", self.pos)
            self.pos += 1
            self.depth -= 1
            return node
        if c == ")":
            raise self.error(f"expected {'a value' if field else 'a term'} before ')'", start)
        kw = self.keyword()
        if kw is not None:
            raise self.error(f"expected {'a value' if field else 'a term'} before {kw!r}", start)
        if field is not None:
            return self.parse_value_operand(field)
        if c == '"':
            return _text_node(self.read_quoted())
        if c == ":":
            raise self.error("expected a field name before ':'", start)
        if c in ("<", ">", "="):
            raise self.error(f"expected a field name before {c!r}", start)
        if c in ("[", "{"):
            raise self.error(f"expected a field name and ':' before the range {c!r}", start)
        if c in ("]", "}"):
            raise self.error(f"unexpected {c!r} without a range to close", start)
        raw, value = self.read_bare(_TERM_STOP)
        after_word = self.pos
        self.skip_ws()
        c = self.peek()
        if c == ":":
            if raw == "*" and self.peek(1) == "*" and _ends_word(self.peek(2)):  # Lucene's *:*
                self.pos += 2
                return MatchAll()
            name = self.field_name(raw, start)
            self.pos += 1
            return self.parse_field_value(name)
        if c in ("<", ">", "=") or (c == "!" and self.peek(1) == "="):
            name = self.field_name(raw, start)
            return self.parse_comparison(name)
        self.pos = after_word
        return _text_node(value)

    # -- field expressions

    def field_name(self, raw: str, position: int) -> str:
        if raw.lower() in ("and", "or", "not"):
            raise self.error(f"expected a field name, got the operator {raw!r}", position)
        if not _FIELD_RE.fullmatch(raw):
            raise self.error(
                f"invalid field name {raw!r}: expected letters, digits, '_', '@' or '-' separated by '.'",
                position,
            )
        return raw

    def parse_field_value(self, field: str) -> Node:
        """After ``field:``: a value, a (group), a range or a Lucene ``:>`` comparison."""
        self.skip_ws()
        if self.peek() in ("", ")"):
            raise self.error("empty value after ':'", self.pos)
        kw = self.keyword()
        if kw is not None:
            message = f"empty value after ':' ({kw!r} is an operator; quote it to search for it)"
            raise self.error(message, self.pos)
        return self.parse_primary(field)

    def parse_value_operand(self, field: str) -> Node:
        start = self.pos
        c = self.peek()
        if c in ("[", "{"):
            return self.parse_range(field)
        if c in ("<", ">"):
            return self.parse_comparison(field)
        if c in ("]", "}"):
            raise self.error(f"unexpected {c!r} without a range to close", start)
        value = self.read_quoted() if c == '"' else self.read_bare(_VALUE_STOP)[1]
        return self.field_node(field, value, start)

    def parse_comparison(self, field: str) -> Node:
        op_pos = self.pos
        while self.peek() in ("<", ">", "=", "!"):
            self.pos += 1
        op = self.text[op_pos : self.pos]
        if op not in ("<", "<=", ">", ">="):
            raise self.error(f"unknown operator {op!r}: use ':' to match a value, or <, <=, >, >= to compare", op_pos)
        self.skip_ws()
        start = self.pos
        kw = self.keyword()
        if self.peek() in ("", "(", ")") or kw is not None:
            raise self.error(f"empty value after {op!r}", start)
        value = self.read_quoted() if self.peek() == '"' else self.read_bare(_VALUE_STOP)[1]
        if value.has_wildcards:
            raise self.error(f"wildcards are not allowed after {op!r}", start)
        if op.startswith(">"):
            return self.range_node(field, (value, start), op == ">=", None, False)
        return self.range_node(field, None, False, (value, start), op == "<=")

    def parse_range(self, field: str) -> Node:
        open_pos = self.pos
        low_inclusive = self.peek() == "["
        self.pos += 1
        self.skip_ws()
        low = self.read_bound()
        self.skip_ws()
        m = _TO_RE.match(self.text, self.pos)
        if m is None:
            raise self.error(f"expected 'TO' in the range opened at {open_pos}", self.pos)
        self.pos = m.end()
        self.skip_ws()
        high = self.read_bound()
        self.skip_ws()
        close = self.peek()
        if close not in ("]", "}"):
            raise self.error(f"expected ']' or '}}' to close the range opened at {open_pos}", self.pos)
        self.pos += 1
        return self.range_node(field, low, low_inclusive, high, close == "]")

    def read_bound(self) -> tuple[Value, int] | None:
        start = self.pos
        if self.peek() == '"':
            return self.read_quoted(), start
        raw, value = self.read_bound_bare()
        if raw == "*":
            return None
        if value.has_wildcards:
            raise self.error("wildcards are not allowed in a range bound (use '*' alone for no bound)", start)
        return value, start

    def read_bound_bare(self) -> tuple[str, Value]:
        start = self.pos
        raw, value = self.read_bare(_BOUND_STOP)
        if not raw:
            raise self.error("expected a range bound", start)
        return raw, value

    def range_node(
        self,
        field: str,
        low: tuple[Value, int] | None,
        low_inclusive: bool,
        high: tuple[Value, int] | None,
        high_inclusive: bool,
    ) -> Node:
        for bound in (low, high):
            if bound is not None:
                self.check_value(field, *bound)
        if low is None and high is None:
            return Exists(field)
        return Range(
            field,
            low[0] if low else None,
            low_inclusive and low is not None,
            high[0] if high else None,
            high_inclusive and high is not None,
        )

    def field_node(self, field: str, value: Value, position: int) -> Node:
        if value.only_wildcards_any:
            return Exists(field)
        self.check_value(field, value, position)
        if _is_ip_field(field) and not value.has_wildcards and "/" in value.text:
            try:
                return Cidr(field, _parse_cidr(value.text))
            except ValueError as exc:
                raise self.error(str(exc), position) from None
        return Match(field, value)

    def check_value(self, field: str, value: Value, position: int) -> None:
        if field != TIMESTAMP_FIELD:
            return
        if value.has_wildcards:
            raise self.error(f"wildcards are not allowed on {TIMESTAMP_FIELD}; use a range", position)
        try:
            _parse_time(value.text)
        except ValueError as exc:
            raise self.error(str(exc), position) from None

    # -- words

    def read_quoted(self) -> Value:
        """A quoted string: no wildcards; ``\\"`` and ``\\\\`` are escapes, other backslashes are literal."""
        open_pos = self.pos
        self.pos += 1
        chars: list[str] = []
        text = self.text
        while True:
            if self.pos >= len(text):
                raise self.error(f"expected '\"' to close the quote opened at {open_pos}", len(text))
            c = text[self.pos]
            if c == "\\" and self.pos + 1 < len(text) and text[self.pos + 1] in ('"', "\\"):
                chars.append(text[self.pos + 1])
                self.pos += 2
                continue
            self.pos += 1
            if c == '"':
                return Value.literal("".join(chars))
            chars.append(c)

    def read_bare(self, stops: frozenset[str]) -> tuple[str, Value]:
        """An unquoted word up to a space or stop character: ``\\x`` is literal, ``*`` ``?`` wildcards."""
        start = self.pos
        text = self.text
        pieces: list[Piece] = []
        while self.pos < len(text):
            c = text[self.pos]
            if c.isspace() or c in stops:
                break
            if c == "\\":
                if self.pos + 1 >= len(text):
                    raise self.error("expected a character after '\\'", self.pos)
                pieces.append(text[self.pos + 1])
                self.pos += 2
                continue
            pieces.append(Wildcard(c) if c in ("*", "?") else c)
            self.pos += 1
        return text[start : self.pos], Value.of(pieces)


def _ends_word(c: str) -> bool:
    return c == "" or c.isspace() or c in ("(", ")")


def _text_node(value: Value) -> Node:
    return MatchAll() if value.only_wildcards_any else Text(value)


def _join(kind: type[And] | type[Or], items: list[Node]) -> Node:
    if len(items) == 1:
        return items[0]
    flat: list[Node] = []
    for item in items:
        flat.extend(item.items if isinstance(item, kind) else (item,))
    return kind(tuple(flat))


# ------------------------------------------------------------------------------------------------------------
# Canonical text


def _render(node: Node) -> str:
    match node:
        case MatchAll():
            return "*"
        case Text(value):
            return str(value)
        case Match(field, value):
            return f"{field}:{value}"
        case Exists(field):
            return f"{field}:*"
        case Cidr(field, network):
            return f"{field}:{Value.literal(str(network))}"
        case Range(field, low, low_inclusive, high, high_inclusive):
            if low is not None and high is not None:
                opener = "[" if low_inclusive else "{"
                closer = "]" if high_inclusive else "}"
                return f"{field}:{opener}{low} TO {high}{closer}"
            if low is not None:
                return f"{field} {'>=' if low_inclusive else '>'} {low}"
            return f"{field} {'<=' if high_inclusive else '<'} {high}"
        case Not(item):
            inner = _render(item)
            return f"NOT ({inner})" if isinstance(item, And | Or) else f"NOT {inner}"
        case And(items):
            return " AND ".join(f"({_render(i)})" if isinstance(i, Or) else _render(i) for i in items)
        case Or(items):
            return " OR ".join(_render(i) for i in items)


def _fields(node: Node, out: set[str]) -> None:
    match node:
        case Match(field) | Exists(field) | Range(field) | Cidr(field):
            out.add(field)
        case And(items) | Or(items):
            for item in items:
                _fields(item, out)
        case Not(item):
            _fields(item, out)
        case _:
            pass


# ------------------------------------------------------------------------------------------------------------
# Compiler

_ESCAPE: Final = "ESCAPE '\\'"
_DOC_COLUMN: Final = DOC[0]

# The text {s} (a column or lambda variable) as a 128-bit number in the source_ip_num space (IPv4 mapped into
# ::ffff:0:0/96), NULL when it is not an IP address. Dotted-quad-in-IPv6 forms and zone ids are not parsed.
_OCTET: Final = "(0|[1-9][0-9]{{0,2}})"  # no leading zeros, as in Python's ipaddress
_IPV4_NUM_SQL: Final = (
    f"CAST({_V4_MAPPED} AS UHUGEINT) + list_reduce(list_transform(string_split({{s}}, '.'), "
    "lambda o: CAST(TRY_CAST(o AS UTINYINT) AS UHUGEINT)), lambda a, b: a * 256 + b)"
)
# IPv6 text t (a lambda variable) without a dotted tail: expand '::' to the missing zero groups, then fold the 8 groups.
_IPV6_NUM_SQL: Final = (
    "CASE WHEN regexp_full_match(t, '[0-9A-Fa-f:]{{2,39}}') "
    "AND t NOT LIKE '%::%::%' AND t NOT LIKE '%:::%' THEN "
    "list_transform([CASE WHEN t LIKE '%::%' THEN list_concat("
    "list_filter(string_split(split_part(t, '::', 1), ':'), lambda g: g <> ''), "
    "list_transform(range(8 - len(list_filter(string_split(t, ':'), lambda g: g <> ''))), lambda i: '0'), "
    "list_filter(string_split(split_part(t, '::', 2), ':'), lambda g: g <> '')) "
    "ELSE string_split(t, ':') END], lambda gs: CASE WHEN len(gs) = 8 THEN list_reduce("
    "list_transform(gs, lambda g: CAST(TRY_CAST('0x' || g AS USMALLINT) AS UHUGEINT)), "
    "lambda a, b: a * 65536 + b) END)[1] END"
)
# '::ffff:192.0.2.1' -> '::ffff:c000:201' (a dotted IPv4 tail becomes two hex groups).
_IPV6_UNDOT_SQL: Final = (
    "CASE WHEN {s} LIKE '%:%.%' THEN list_transform([regexp_extract({s}, "
    "'^(.*:)" + _OCTET + "\\." + _OCTET + "\\." + _OCTET + "\\." + _OCTET + "$', ['p', 'a', 'b', 'c', 'd'])], "
    "lambda r: r.p || printf('%x:%x', "
    "CAST(TRY_CAST(r.a AS UTINYINT) AS INTEGER) * 256 + CAST(TRY_CAST(r.b AS UTINYINT) AS INTEGER), "
    "CAST(TRY_CAST(r.c AS UTINYINT) AS INTEGER) * 256 + CAST(TRY_CAST(r.d AS UTINYINT) AS INTEGER)))[1] "
    "ELSE {s} END"
)
# The text {s} (a column or a lambda variable) as a 128-bit number in the source_ip_num space (IPv4 mapped into
# ::ffff:0:0/96); NULL when it is not an IP address (zone ids such as fe80::1%eth0 are not parsed).
_IP_NUM_SQL: Final = (
    "CASE WHEN regexp_full_match({s}, '(0|[1-9][0-9]{{0,2}})(\\.(0|[1-9][0-9]{{0,2}})){{3}}') THEN "
    + _IPV4_NUM_SQL
    + " "
    "ELSE list_transform([" + _IPV6_UNDOT_SQL + "], lambda t: " + _IPV6_NUM_SQL + ")[1] END"
)


def ip_number_sql(column: str) -> str:
    """SQL for the 128-bit number of the address in ``column`` (IPv4 mapped into ::ffff:0:0/96), else NULL."""
    return _IP_NUM_SQL.format(s=column)


def _json_path(segment: str) -> str:
    # Segments match _FIELD_RE (no quote, backslash or dot), so quoting them is enough; the path is bound as a
    # parameter all the same.
    return f'$."{segment}"'


class _Compiler:
    def __init__(self) -> None:
        self.params: list[object] = []

    def bind(self, value: object) -> str:
        self.params.append(value)
        return "?"

    def node(self, node: Node) -> str:
        match node:
            case MatchAll():
                return "TRUE"
            case Text(value):
                pattern = self.bind("%" + value.like_pattern(json_escaped=True) + "%")
                return f"CAST({_DOC_COLUMN} AS VARCHAR) ILIKE {pattern} {_ESCAPE}"
            case And(items):
                return "(" + " AND ".join(self.node(i) for i in items) + ")"
            case Or(items):
                return "(" + " OR ".join(self.node(i) for i in items) + ")"
            case Not(item):
                return f"({self.node(item)}) IS NOT TRUE"
            case Exists(field):
                if field in COLUMNS:
                    return f"{COLUMNS[field][0]} IS NOT NULL"
                guard = self.doc_guard(field)
                return f"({guard} AND len({self.doc_values(field, scalars=False)}) > 0)"
            case Match(field, value):
                return self.match(field, value)
            case Range(field, low, low_inclusive, high, high_inclusive):
                return self.range(field, low, low_inclusive, high, high_inclusive)
            case Cidr(field, network):
                lo = _ip_num(network.network_address)
                hi = _ip_num(network.broadcast_address)
                return self.ip_compare(field, [(">=", lo), ("<=", hi)])

    # -- doc fields

    def doc_guard(self, field: str, *needles: str) -> str:
        """A cheap necessary condition on the document text, evaluated before the walk through ``doc``.

        The field's last key must appear in the text, and so must one of ``needles`` when given. DuckDB evaluates
        an AND left to right on the rows still selected, so selective searches skip most JSON parsing.
        """
        key = self.bind('"' + field.rsplit(".", 1)[-1] + '"')
        guard = f"contains(CAST({_DOC_COLUMN} AS VARCHAR), {key})"
        if needles:
            found = " OR ".join(f"contains(CAST({_DOC_COLUMN} AS VARCHAR), {self.bind(n)})" for n in needles)
            guard += f" AND ({found})"
        return guard

    def doc_values(self, field: str, *, scalars: bool = True) -> str:
        """SQL: the list of values at ``field`` in ``doc``, through arrays at any level.

        With ``scalars`` the list holds the text of the strings, numbers and booleans; without, it holds every
        non-null JSON value (objects included: an object field "exists").
        """
        expr = f"[{_DOC_COLUMN}]"
        for segment in field.split("."):
            path = self.bind(_json_path(segment))
            expr = (
                f"flatten(list_transform({expr}, lambda v: list_transform([json_extract(v, {path})], "
                "lambda x: CASE WHEN json_type(x) = 'ARRAY' THEN json_extract(x, '$[*]') ELSE [x] END)[1]))"
            )
        if not scalars:
            return f"list_filter({expr}, lambda x: json_type(x) <> 'NULL')"
        return (
            f"list_transform(list_filter({expr}, lambda x: json_type(x) NOT IN ('ARRAY', 'OBJECT', 'NULL')), "
            "lambda x: json_extract_string(x, '$'))"
        )

    # -- leaves

    def match(self, field: str, value: Value) -> str:
        if field == TIMESTAMP_FIELD:
            if _parse_time(value.text).is_date:  # the whole day
                return f"({self.ts_compare('>=', value)} AND {self.ts_compare('<=', value)})"
            return self.ts_compare("=", value)
        ip = None if value.has_wildcards or not _is_ip_field(field) else _ip(value.text)
        if ip is not None:
            # IPv4 a.b.c.d is written either dotted (also inside ::ffff:a.b.c.d) or as hex ::ffff:xxxx:xxxx
            needles = (str(ip), "ffff:", "FFFF:") if ip.version == 4 else ()
            return self.ip_compare(field, [("=", _ip_num(ip))], needles)
        if field in COLUMNS:
            column = COLUMNS[field][0]
            if value.has_wildcards:
                return f"{column} ILIKE {self.bind(value.like_pattern())} {_ESCAPE}"
            return f"{column} = {self.bind(value.text)}"
        if value.has_wildcards:
            guard = self.doc_guard(field)
            values = self.doc_values(field)
            return f"({guard} AND {_any(values, f's ILIKE {self.bind(value.like_pattern())} {_ESCAPE}')})"
        # Text that every JSON writer copies verbatim must appear in the document; numbers may be re-formatted.
        plain = _PLAIN_RE.fullmatch(value.text) and not _NUMBER_RE.fullmatch(value.text)
        guard = self.doc_guard(field, value.text) if plain else self.doc_guard(field)
        return f"({guard} AND list_contains({self.doc_values(field)}, {self.bind(value.text)}))"

    def ip_compare(self, field: str, bounds: list[tuple[str, int]], needles: tuple[str, ...] = ()) -> str:
        """Compare the field's address as a number in the source_ip_num space with each ``(op, number)``."""
        halves = _IP_HALF_COLUMNS.get(field)
        if halves is not None:
            return "(" + " AND ".join(self.halves_compare(halves, op, n) for op, n in bounds) + ")"
        if field in COLUMNS:
            column = COLUMNS[field][0]
            number = f"({_IP_NUM_SQL.format(s=column)})"
            return "(" + " AND ".join(f"{number} {op} CAST({self.bind(n)} AS UHUGEINT)" for op, n in bounds) + ")"
        guard = self.doc_guard(field, *needles)
        values = self.doc_values(field)
        number = f"({_IP_NUM_SQL.format(s='s')})"
        condition = " AND ".join(f"{number} {op} CAST({self.bind(n)} AS UHUGEINT)" for op, n in bounds)
        return f"({guard} AND {_any(values, condition)})"

    def halves_compare(self, halves: tuple[str, str], op: str, number: int) -> str:
        """``(hi, lo) <op> number`` on the two 64-bit halves, in lexicographic order."""
        hi_col, lo_col = halves
        # Parameters bind in the order their placeholders appear in the text.
        hi = f"CAST({self.bind(number >> 64)} AS UBIGINT)"
        if op in ("=", "!="):
            equal = f"({hi_col} = {hi} AND {lo_col} = CAST({self.bind(number & _LOW64)} AS UBIGINT))"
            return equal if op == "=" else f"(NOT {equal})"
        strict = op[0]  # '<' or '>'
        hi_again = f"CAST({self.bind(number >> 64)} AS UBIGINT)"
        lo = f"CAST({self.bind(number & _LOW64)} AS UBIGINT)"
        return f"({hi_col} {strict} {hi} OR ({hi_col} = {hi_again} AND {lo_col} {op} {lo}))"

    def ts_compare(self, op: str, value: Value) -> str:
        """``ts <op> value``; a bare day rounds as in Elasticsearch (``<= 2026-01-31`` ends at 24:00)."""
        time = _parse_time(value.text)
        if time.at is None:
            micros = (time.offset // timedelta(microseconds=1)) if time.offset else 0
            return f"ts {op} make_timestamp(epoch_us(current_timestamp) + {self.bind(micros)})"
        at = time.at
        if time.is_date and op in (">", "<="):
            if at.date() == datetime.max.date():
                at = datetime.max
            else:
                at += timedelta(days=1)
                op = ">=" if op == ">" else "<"
        return f"ts {op} {self.bind(at)}"

    def range(
        self, field: str, low: Value | None, low_inclusive: bool, high: Value | None, high_inclusive: bool
    ) -> str:
        bounds = [
            (">=" if low_inclusive else ">", low),
            ("<=" if high_inclusive else "<", high),
        ]
        present = [(op, v) for op, v in bounds if v is not None]
        if field == TIMESTAMP_FIELD:
            return "(" + " AND ".join(self.ts_compare(op, v) for op, v in present) + ")"
        ips = [_ip(v.text) for _, v in present] if _is_ip_field(field) else []
        if ips and all(ip is not None for ip in ips):
            numbers = [(op, _ip_num(ip)) for (op, _), ip in zip(present, ips, strict=True) if ip is not None]
            return self.ip_compare(field, numbers)
        if field in COLUMNS:
            column = COLUMNS[field][0]
            return "(" + " AND ".join(f"{column} {op} {self.bind(v.text)}" for op, v in present) + ")"
        guard = self.doc_guard(field)
        values = self.doc_values(field)
        if all(_NUMBER_RE.fullmatch(v.text) for _, v in present):
            parts = [f"TRY_CAST(s AS DOUBLE) {op} {self.bind(float(v.text))}" for op, v in present]
        else:
            parts = [f"s {op} {self.bind(v.text)}" for op, v in present]
        return f"({guard} AND {_any(values, ' AND '.join(parts))})"


def _any(values: str, predicate: str) -> str:
    """``predicate`` (over the lambda variable ``s``) holds for one of the ``values``."""
    return f"len(list_filter({values}, lambda s: {predicate})) > 0"


# ------------------------------------------------------------------------------------------------------------
# Public API


class Query:
    """A parsed search query.

    >>> q = Query.parse("event.action:ConsoleLogin AND NOT event.outcome:success")
    >>> q.to_sql()
    ('(event_action = ? AND (event_outcome = ?) IS NOT TRUE)', ['ConsoleLogin', 'success'])
    """

    __slots__ = ("root", "text")

    def __init__(self, root: Node, text: str = "") -> None:
        self.root = root
        self.text = text

    @classmethod
    def parse(cls, text: str) -> Query:
        """Parse ``text``; raises :class:`~cloudsoc.errors.QueryError` saying what was expected and where."""
        return cls(_Parser(text).parse(), text)

    def to_sql(self) -> tuple[str, list[object]]:
        """A boolean SQL expression over the table ``events`` and the values of its ``?`` parameters."""
        compiler = _Compiler()
        return compiler.node(self.root), compiler.params

    def fields(self) -> set[str]:
        """The ECS fields the query references (free text references none)."""
        out: set[str] = set()
        _fields(self.root, out)
        return out

    def __str__(self) -> str:
        return _render(self.root)

    def __repr__(self) -> str:
        return f"Query.parse({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Query) and self.root == other.root

    def __hash__(self) -> int:
        return hash(self.root)
