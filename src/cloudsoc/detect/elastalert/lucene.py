"""The Lucene ``query_string`` syntax that ElastAlert filters use, parsed into a small tree.

The grammar and the way ``AND``/``OR``/``NOT``/``+``/``-`` turn into required, optional and prohibited clauses
follow Lucene's classic ``QueryParser`` (``QueryParser.jj``, ``addClause``), which Elasticsearch's
``query_string`` builds on, so ``a AND b OR c`` means what it means there (``+a +b c``: ``c`` is optional).
Elasticsearch additions are understood too: ``field:>=10``, ``_exists_:field``, ``field:*``.
Boosts (``^2``) and fuzziness/proximity (``~``) are accepted and ignored: matching here is exact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Literal

Occur = Literal["must", "should", "must_not"]

# Characters that end an unescaped term (Lucene's term characters exclude them).
_SPECIAL: Final = frozenset(' \t\n\r\u3000()[]{}:"^~\\')


class LuceneError(ValueError):
    """A query_string that does not parse; ``position`` is the 0-based offset of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position}")
        self.position = position


@dataclass(frozen=True, slots=True)
class Term:
    """One leaf. ``field`` None means the default field(s). ``kind``:

    - ``term``: an exact word (``text`` unescaped);
    - ``phrase``: a quoted phrase;
    - ``wildcard``: ``pattern`` is a Python regex (``*``/``?`` expanded, the rest escaped);
    - ``regex``: ``/.../``, ``pattern`` is the expression;
    - ``range``: ``low``/``high`` (None: open), with inclusiveness;
    - ``exists``: ``_exists_:f`` or ``f:*``.
    """

    field: str | None
    kind: Literal["term", "phrase", "wildcard", "regex", "range", "exists"]
    text: str = ""
    pattern: str = ""
    low: str | None = None
    high: str | None = None
    include_low: bool = True
    include_high: bool = True


@dataclass(slots=True)
class Clause:
    occur: Occur
    node: Node


@dataclass(slots=True)
class Bool:
    """Lucene's BooleanQuery: every ``must``, no ``must_not``, and one ``should`` when there is no ``must``."""

    clauses: list[Clause] = field(default_factory=list)


Node = Term | Bool


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # AND OR NOT PLUS MINUS LPAREN RPAREN COLON TERM PHRASE REGEX RANGE CARAT TILDE EOF
    text: str
    pos: int
    # For TERM: the raw characters with escapes kept (wildcards must know which `*` were escaped).
    raw: str = ""
    # For RANGE: (low, high, include_low, include_high).
    bounds: tuple[str | None, str | None, bool, bool] | None = None


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def tokens(self) -> list[_Token]:
        out: list[_Token] = []
        text = self.text
        n = len(text)
        while True:
            while self.pos < n and text[self.pos] in " \t\n\r\u3000":
                self.pos += 1
            if self.pos >= n:
                out.append(_Token("EOF", "", self.pos))
                return out
            start = self.pos
            ch = text[start]
            two = text[start : start + 2]
            if two in ("&&", "||"):
                self.pos += 2
                out.append(_Token("AND" if two == "&&" else "OR", two, start))
            elif ch in "+-!" and not (ch == "-" and out and out[-1].kind == "COLON"):
                # A leading +, - or ! is a modifier; right after `field:` a `-` starts a negative number.
                self.pos += 1
                out.append(_Token({"+": "PLUS", "-": "MINUS", "!": "NOT"}[ch], ch, start))
            elif ch == "(":
                self.pos += 1
                out.append(_Token("LPAREN", ch, start))
            elif ch == ")":
                self.pos += 1
                out.append(_Token("RPAREN", ch, start))
            elif ch == ":":
                self.pos += 1
                out.append(_Token("COLON", ch, start))
            elif ch == "^":
                self.pos += 1
                out.append(_Token("CARAT", ch, start))
                self._skip_number()
            elif ch == "~":
                self.pos += 1
                out.append(_Token("TILDE", ch, start))
                self._skip_number()
            elif ch == '"':
                out.append(self._phrase())
            elif ch == "/":
                out.append(self._regex())
            elif ch in "[{":
                out.append(self._range())
            else:
                out.append(self._term())

    def _skip_number(self) -> None:
        while self.pos < len(self.text) and (self.text[self.pos].isdigit() or self.text[self.pos] == "."):
            self.pos += 1

    def _term(self) -> _Token:
        text = self.text
        start = self.pos
        chars: list[str] = []
        raw: list[str] = []
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\\":
                if self.pos + 1 >= len(text):
                    raise LuceneError("a backslash at the end of the query escapes nothing", self.pos)
                nxt = text[self.pos + 1]
                chars.append(nxt)
                raw.append("\\" + nxt)
                self.pos += 2
                continue
            if ch in _SPECIAL:
                break
            if text.startswith(("&&", "||"), self.pos):
                break
            chars.append(ch)
            raw.append(ch)
            self.pos += 1
        word = "".join(chars)
        if word in ("AND", "OR", "NOT") and "".join(raw) == word:
            return _Token(word, word, start)
        return _Token("TERM", word, start, raw="".join(raw))

    def _phrase(self) -> _Token:
        return self._delimited("PHRASE", keep_escapes=False, unterminated="unterminated quoted phrase")

    def _regex(self) -> _Token:
        # `\/` is an escaped slash; other escapes belong to the expression.
        return self._delimited("REGEX", keep_escapes=True, unterminated="unterminated regular expression")

    def _delimited(self, kind: str, *, keep_escapes: bool, unterminated: str) -> _Token:
        """Up to the next unescaped copy of the opening character; an escaped delimiter stands for itself, and
        other escapes are dropped unless ``keep_escapes``."""
        text = self.text
        start = self.pos
        close = text[start]
        self.pos += 1
        chars: list[str] = []
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\\" and self.pos + 1 < len(text):
                nxt = text[self.pos + 1]
                chars.append("\\" + nxt if keep_escapes and nxt != close else nxt)
                self.pos += 2
                continue
            if ch == close:
                self.pos += 1
                return _Token(kind, "".join(chars), start)
            chars.append(ch)
            self.pos += 1
        raise LuceneError(unterminated, start)

    def _range(self) -> _Token:
        text = self.text
        start = self.pos
        include_low = text[start] == "["
        self.pos += 1
        parts: list[str | None] = []
        while True:
            while self.pos < len(text) and text[self.pos] in " \t\n\r":
                self.pos += 1
            if self.pos >= len(text):
                raise LuceneError("unterminated range", start)
            ch = text[self.pos]
            if ch in "]}":
                self.pos += 1
                include_high = ch == "]"
                break
            if ch == '"':
                value: str | None = self._phrase().text
            else:
                begin = self.pos
                chars: list[str] = []
                while self.pos < len(text) and text[self.pos] not in " \t\n\r]}":
                    if text[self.pos] == "\\" and self.pos + 1 < len(text):
                        chars.append(text[self.pos + 1])
                        self.pos += 2
                        continue
                    chars.append(text[self.pos])
                    self.pos += 1
                value = "".join(chars)
                if not value:
                    raise LuceneError("empty range bound", begin)
                if value == "*":
                    value = None
            parts.append(value)
        if len(parts) != 3 or parts[1] != "TO":
            raise LuceneError("a range is written [low TO high] or {low TO high}", start)
        return _Token("RANGE", "", start, bounds=(parts[0], parts[2], include_low, include_high))


_CONJ_NONE, _CONJ_AND, _CONJ_OR = 0, 1, 2
_MOD_NONE, _MOD_NOT, _MOD_REQ = 0, 1, 2


class _Parser:
    def __init__(self, text: str, default_and: bool) -> None:
        self.tokens = _Lexer(text).tokens()
        self.i = 0
        self.default_and = default_and

    def peek(self, offset: int = 0) -> _Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return token

    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            raise LuceneError("empty query", 0)
        node = self.query(None)
        token = self.peek()
        if token.kind != "EOF":
            raise LuceneError(f"unexpected {token.text!r}", token.pos)
        return node

    def query(self, field: str | None) -> Node:
        clauses: list[Clause] = []
        self.add(clauses, _CONJ_NONE, self.modifiers(), self.clause(field))
        while self.peek().kind not in ("EOF", "RPAREN"):
            conj = self.conjunction()
            mods = self.modifiers()
            self.add(clauses, conj, mods, self.clause(field))
        if len(clauses) == 1 and clauses[0].occur in ("must", "should"):
            return clauses[0].node
        return Bool(clauses)

    def conjunction(self) -> int:
        kind = self.peek().kind
        if kind == "AND":
            self.take()
            return _CONJ_AND
        if kind == "OR":
            self.take()
            return _CONJ_OR
        return _CONJ_NONE

    def modifiers(self) -> int:
        kind = self.peek().kind
        if kind == "PLUS":
            self.take()
            return _MOD_REQ
        if kind in ("MINUS", "NOT"):
            self.take()
            return _MOD_NOT
        return _MOD_NONE

    def add(self, clauses: list[Clause], conj: int, mods: int, node: Node) -> None:
        # Lucene's QueryParserBase.addClause, verbatim in spirit.
        if clauses and conj == _CONJ_AND and clauses[-1].occur != "must_not":
            clauses[-1].occur = "must"
        if clauses and self.default_and and conj == _CONJ_OR and clauses[-1].occur != "must_not":
            clauses[-1].occur = "should"
        prohibited = mods == _MOD_NOT
        if self.default_and:
            required = not prohibited and conj != _CONJ_OR
        else:
            required = mods == _MOD_REQ or (conj == _CONJ_AND and not prohibited)
        if prohibited:
            occur: Occur = "must_not"
        elif required:
            occur = "must"
        else:
            occur = "should"
        clauses.append(Clause(occur, node))

    def clause(self, field: str | None) -> Node:
        token = self.peek()
        if token.kind == "TERM" and self.peek(1).kind == "COLON":
            self.take()
            self.take()
            field = token.text
            if field == "_exists_":
                target = self.take()
                if target.kind not in ("TERM", "PHRASE"):
                    raise LuceneError("_exists_ needs a field name", target.pos)
                return Term(target.text, "exists")
        token = self.peek()
        if token.kind == "LPAREN":
            self.take()
            node = self.query(field)
            closing = self.take()
            if closing.kind != "RPAREN":
                raise LuceneError("missing ')'", closing.pos)
            self.boost()
            return node
        return self.term(field)

    def boost(self) -> None:
        if self.peek().kind == "CARAT":
            self.take()

    def term(self, field: str | None) -> Node:
        token = self.take()
        if token.kind == "TERM":
            node = self._word(field, token)
        elif token.kind == "PHRASE":
            node = Term(field, "phrase", token.text)
        elif token.kind == "REGEX":
            node = Term(field, "regex", token.text, pattern=token.text)
        elif token.kind == "RANGE":
            assert token.bounds is not None
            low, high, include_low, include_high = token.bounds
            node = Term(field, "range", low=low, high=high, include_low=include_low, include_high=include_high)
        elif token.kind == "EOF":
            raise LuceneError("the query ends where a term was expected", token.pos)
        else:
            raise LuceneError(f"unexpected {token.text!r} where a term was expected", token.pos)
        while self.peek().kind in ("CARAT", "TILDE"):
            self.take()
        return node

    def _word(self, field: str | None, token: _Token) -> Term:
        word, raw = token.text, token.raw
        for op in (">=", "<=", ">", "<"):
            if field is not None and word.startswith(op) and len(word) > len(op):
                bound = word[len(op) :]
                if op[0] == ">":
                    return Term(field, "range", low=bound, include_low=op == ">=")
                return Term(field, "range", high=bound, include_high=op == "<=")
        if word == "*" and raw == "*":
            return Term(field, "exists") if field is not None else Term(None, "wildcard", "*", pattern=".*")
        pattern = wildcard_regex(raw)
        if pattern is not None:
            return Term(field, "wildcard", word, pattern=pattern)
        return Term(field, "term", word)


def wildcard_regex(raw: str) -> str | None:
    """The regex of a Lucene wildcard term (``raw`` keeps its backslash escapes), or None if it has none."""
    out: list[str] = []
    wild = False
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            out.append(re.escape(raw[i + 1]))
            i += 2
            continue
        if ch == "*":
            out.append(".*")
            wild = True
        elif ch == "?":
            out.append(".")
            wild = True
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out) if wild else None


def parse(text: str, *, default_operator: str = "OR") -> Node:
    """The tree of a query_string query; raises :class:`LuceneError`."""
    op = default_operator.upper()
    if op not in ("OR", "AND"):
        raise LuceneError(f"default_operator must be OR or AND, not {default_operator!r}", 0)
    return _Parser(text, op == "AND").parse()
