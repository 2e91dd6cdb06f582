"""Field names as Elasticsearch users write them (``source.ip``, ``user.name.keyword``), resolved in our documents.

An ElastAlert rule names fields the way Elasticsearch flattens them: a dotted path through nested objects,
through arrays of objects, or a key that itself contains dots (``{"user.name": ...}``). ``.keyword`` and
``.raw`` name the exact-value sub-field of a text field; our documents keep one value, so the suffix is dropped
when the full name finds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

# Sub-field suffixes of Elasticsearch multi-fields (the exact value of a text field).
_EXACT_SUFFIXES: Final = (".keyword", ".raw")

# All leaf values at a path; [] when the field is missing or null. Lists are flattened, as Elasticsearch indexes them.
Values = Callable[[Mapping[str, Any]], list[Any]]


def _walk(node: Any, parts: tuple[str, ...], start: int) -> Iterator[Any]:
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, parts, start)
        return
    if start == len(parts):
        if node is not None:
            yield node
        return
    if not isinstance(node, Mapping):
        return
    # The longest key first: {"a.b": 1} and {"a": {"b": 2}} are both `a.b`.
    for end in range(len(parts), start, -1):
        key = parts[start] if end == start + 1 else ".".join(parts[start:end])
        if key in node:
            yield from _walk(node[key], parts, end)


def _strip_exact(name: str) -> str | None:
    for suffix in _EXACT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def base_name(name: str) -> str:
    """The field without a ``.keyword``/``.raw`` sub-field suffix."""
    return _strip_exact(name) or name


def values_of(name: str) -> Values:
    """A compiled accessor: every non-null leaf value at ``name`` in a document."""
    parts = tuple(name.split("."))
    fallback = _strip_exact(name)
    fallback_parts = tuple(fallback.split(".")) if fallback else None

    def values(doc: Mapping[str, Any]) -> list[Any]:
        # Fast path: plain nested objects, as our parsers produce them.
        cur: Any = doc
        for part in parts:
            if isinstance(cur, dict):
                cur = cur.get(part)
                if cur is None:
                    break
            else:
                cur = None
                break
        else:
            if not isinstance(cur, (list, dict)):
                return [cur]
        found = list(_walk(doc, parts, 0))
        if not found and fallback_parts is not None:
            found = list(_walk(doc, fallback_parts, 0))
        return found

    return values


# The value at a path as ElastAlert's ``lookup_es_key`` returns it: a list stays a list, missing is None.
Value = Callable[[Mapping[str, Any]], Any]


def value_at(name: str) -> Value:
    """A compiled :func:`value_of` for one field name."""
    parts = tuple(name.split("."))
    stripped = _strip_exact(name)
    fallback = tuple(stripped.split(".")) if stripped else None

    def value(doc: Mapping[str, Any]) -> Any:
        cur: Any = doc
        for part in parts:
            if not isinstance(cur, dict):
                break
            cur = cur.get(part)
            if cur is None:
                break
        else:
            return cur
        found = _lookup(doc, parts, 0)
        if found is None and fallback is not None:
            found = _lookup(doc, fallback, 0)
        return found

    return value


def value_of(doc: Mapping[str, Any], name: str) -> Any:
    """The value at ``name`` as ElastAlert's ``lookup_es_key`` returns it: a list stays a list, missing is None."""
    return value_at(name)(doc)


def _lookup(node: Any, parts: tuple[str, ...], start: int) -> Any:
    if start == len(parts):
        return node
    if not isinstance(node, Mapping):
        return None
    for end in range(len(parts), start, -1):
        key = parts[start] if end == start + 1 else ".".join(parts[start:end])
        if key in node:
            found = _lookup(node[key], parts, end)
            if found is not None:
                return found
    return None


def leaves(doc: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted field name, non-null scalar value) in a document, arrays flattened."""
    for key, value in doc.items():
        name = f"{prefix}{key}"
        yield from _leaves_of(name, value)


def _leaves_of(name: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        yield from leaves(value, name + ".")
    elif isinstance(value, list):
        for item in value:
            yield from _leaves_of(name, item)
    elif value is not None:
        yield name, value
