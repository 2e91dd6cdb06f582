"""A Sigma rule's condition as one generated Python function ``doc -> bool``: the filter that runs on every event.

The closures of :mod:`cloudsoc.detect.sigma` are the reference: they walk any document and record why a rule
fired. Calling a tree of them costs a Python call per node, and most events a rule sees do not match it, so the
engine first asks a filter written as straight-line code: each field the rule reads is looked up once (shared
path prefixes once per rule), plain ASCII strings are compared inline (an equality is refused on its length before
anything is lower-cased), and and/or/not are Python's own short-circuit operators. Every case the inline code does
not settle (a list, a number, a non-ASCII string, a regex, a field reference …) calls the leaf's closure, so the
filter decides exactly as the closures do; the closures run again only on a match, to explain it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

# A compiled node of the reference tree (see cloudsoc.detect.sigma.Predicate).
Predicate = Callable[[Mapping[str, Any], list[Any]], bool]
Filter = Callable[[Mapping[str, Any]], bool]

# The inline shapes of a leaf (the same numbers as cloudsoc.detect.sigma's fast shapes).
SLOW, EQUALS, PREFIX, SUFFIX, CONTAINS = range(5)

_MISSING: Final = object()  # a field the document does not have
_WALK: Final = object()  # a path that runs into a list or a scalar: the leaf's closure walks it


class FilterWriter:
    """Collects the expressions of one rule's nodes and writes them out as one function."""

    def __init__(self) -> None:
        self._names: dict[str, object] = {"_M": _MISSING, "_W": _WALK}
        self._fields: dict[tuple[str, ...], str] = {}  # path (and each prefix) -> local variable
        self._fetch: list[str] = []
        self._temps = 0
        self._calls: set[str] = set()

    def const(self, value: object) -> str:
        name = f"c{len(self._names)}"
        self._names[name] = value
        return name

    def _var(self, path: str) -> str:
        keys = tuple(path.split("."))
        for depth in range(1, len(keys) + 1):
            prefix = keys[:depth]
            if prefix in self._fields:
                continue
            var = self._fields[prefix] = f"v{len(self._fields)}"
            key = repr(prefix[-1])
            if depth == 1:
                self._fetch.append(f"{var} = doc.get({key}, _M)")
            else:
                up = self._fields[prefix[:-1]]
                self._fetch.append(
                    f"{var} = {up}.get({key}, _M) if type({up}) is dict else ({up} if {up} is _M else _W)"
                )
        return self._fields[keys]

    def call(self, test: Predicate) -> str:
        """A node the inline code does not handle: its closure decides (what it would explain is dropped)."""
        call = f"{self.const(test)}(doc, [])"
        self._calls.add(call)
        return call

    def leaf(self, path: str, shape: int, texts: tuple[str, ...], if_absent: bool, test: Predicate) -> str:
        """A test of one field: ``texts`` (lower-cased ASCII) in ``shape``; ``test`` is the leaf's closure."""
        fallback = self.call(test)
        if shape == SLOW or not texts:
            return fallback
        v = self._var(path)
        absent = f"({if_absent!r} if {v} is _M else {fallback})"
        self._temps += 1
        t = f"t{self._temps}"
        if shape == EQUALS:
            lengths = self.const(frozenset(len(s) for s in texts))
            members = self.const(frozenset(texts))
            text = f"(len({v}) in {lengths} and ({v}.lower() in {members} if {v}.isascii() else {fallback}))"
        elif shape in (PREFIX, SUFFIX):
            # Only the end that is compared needs to be ASCII and lower-cased: a case-insensitive match pairs
            # characters one to one, so the rest of the string cannot change the answer.
            width = max(len(s) for s in texts)
            part = f"{v}[:{width}]" if shape == PREFIX else f"{v}[-{width}:]"
            method = "startswith" if shape == PREFIX else "endswith"
            text = f"({t}.lower().{method}({self.const(texts)}) if ({t} := {part}).isascii() else {fallback})"
        else:
            tests = [f"{self.const(texts[0])} in ({t} := {v}.lower())"]
            tests += [f"{self.const(s)} in {t}" for s in texts[1:]]
            text = f"(({' or '.join(tests)}) if {v}.isascii() else {fallback})"
        return f"({text} if type({v}) is str else {absent})"

    # Parts have no side effects, so their order changes only the cost: closure calls (a regex, a walk) last.
    def _cheap_first(self, parts: list[str]) -> list[str]:
        return sorted(parts, key=lambda part: part in self._calls)

    def all_of(self, parts: list[str]) -> str:
        return f"({' and '.join(self._cheap_first(parts))})" if parts else "True"

    def any_of(self, parts: list[str]) -> str:
        return f"({' or '.join(self._cheap_first(parts))})" if parts else "False"

    def none_of(self, parts: list[str]) -> str:
        return f"(not {self.any_of(parts)})"

    def build(self, expression: str, name: str, reference: Predicate) -> Filter:
        """The function; ``reference`` (the whole rule's closure) decides for documents that are not dicts."""
        lines = [f"if type(doc) is not dict: return {self.call(reference)}", *self._fetch, f"return {expression}"]
        source = "def sigma_filter(doc):\n" + "".join(f"    {line}\n" for line in lines)
        namespace = dict(self._names)
        exec(compile(source, f"<sigma filter {name}>", "exec"), namespace)  # our own generated code
        function: Filter = namespace["sigma_filter"]  # type: ignore[assignment]
        function.__doc__ = source  # for debugging: the generated code
        return function
