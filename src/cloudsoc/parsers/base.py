"""The one small base class of parsers."""

from __future__ import annotations

from typing import Any, ClassVar


class Parser:
    """Turns one decoded record into one ECS document.

    Subclasses are pure: no I/O, no clock, no randomness. A record that cannot be parsed raises
    :class:`cloudsoc.errors.ParseError`; the pipeline dead-letters it with its raw bytes and goes on.
    ``name`` equals the module name and the config ``format:`` value.
    """

    name: ClassVar[str]

    def matches(self, record: dict[str, Any]) -> bool:
        """Whether ``record`` looks like this parser's format (used by ``--format auto``)."""
        raise NotImplementedError

    def parse(self, record: dict[str, Any]) -> dict[str, Any]:
        """Return the ECS document for ``record`` (which may be embedded in it, not copied)."""
        raise NotImplementedError
