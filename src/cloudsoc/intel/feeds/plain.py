"""Plain lists: one value a line, ``#``/``;``/``//`` comments, the type guessed per line."""

from __future__ import annotations

from typing import ClassVar

from cloudsoc.intel.feeds.base import Importer, ImportResult, text_lines
from cloudsoc.intel.indicator import Indicator, guess

COMMENT_PREFIXES = ("#", ";", "//")


class Plain(Importer):
    name: ClassVar[str] = "plain"

    def __init__(self, *, intel_types: tuple[str, ...] = (), confidence: int = 50, tags: tuple[str, ...] = ()) -> None:
        self.intel_types = intel_types
        self.confidence = confidence
        self.tags = tags

    def parse(self, data: bytes, *, name: str, source: str, result: ImportResult | None = None) -> ImportResult:
        result = ImportResult() if result is None else result
        for number, line in enumerate(text_lines(data, name), 1):
            value, _, comment = line.partition(" #")
            value = value.strip()
            if not value or value.startswith(COMMENT_PREFIXES):
                continue
            found = guess(value)
            if found is None:
                result.error(f"{name}:{number}", f"cannot tell what kind of indicator {value!r} is")
                continue
            kind, canonical = found
            result.add(
                Indicator(
                    type=kind,
                    value=canonical,
                    source=source,
                    intel_types=list(self.intel_types),
                    confidence=self.confidence,
                    tags=list(self.tags),
                    description=comment.strip() or None,
                )
            )
        return result
