"""The base of every importer and what an import returns."""

from __future__ import annotations

from typing import ClassVar

from cloudsoc.errors import ParseError
from cloudsoc.intel.indicator import Indicator, IndicatorType


class ImportResult:
    """Indicators of one import, de-duplicated by (type, value); what was skipped and what failed, with where.

    ``skipped`` counts records that are fine but carry no indicator cloudsoc matches on (a MISP ``filename`` or
    ``text`` attribute, a STIX ``MATCHES`` pattern); ``errors`` are records that should have been indicators and
    are not (``name:line: reason``). Comments and blank lines are neither.
    """

    def __init__(self) -> None:
        self._by_key: dict[tuple[IndicatorType, str], Indicator] = {}
        self.skipped = 0
        self.errors: list[str] = []

    @property
    def indicators(self) -> list[Indicator]:
        return list(self._by_key.values())

    def add(self, indicator: Indicator) -> None:
        """Add one; a value listed twice in the same import is merged (types, tags, highest confidence, counts)."""
        key = (indicator.type, indicator.value)
        seen = self._by_key.get(key)
        if seen is None:
            self._by_key[key] = indicator
            return
        seen.intel_types.extend(t for t in indicator.intel_types if t not in seen.intel_types)
        seen.tags.extend(t for t in indicator.tags if t not in seen.tags)
        seen.confidence = max(seen.confidence, indicator.confidence)
        seen.detect = seen.detect or indicator.detect
        seen.sightings += indicator.sightings
        seen.false_positives += indicator.false_positives
        seen.description = seen.description or indicator.description

    def error(self, where: str, exc: ParseError | str) -> None:
        self.errors.append(f"{where}: {exc}")

    def by_type(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for kind, _ in self._by_key:
            counts[kind.value] = counts.get(kind.value, 0) + 1
        return counts


class Importer:
    """One feed format. ``name`` equals the module name (and the ``--format`` value)."""

    name: ClassVar[str]

    def parse(self, data: bytes, *, name: str, source: str) -> ImportResult:
        """Indicators in ``data`` (the content of the file called ``name``), attributed to ``source``."""
        raise NotImplementedError


def text_lines(data: bytes, name: str) -> list[str]:
    """Lines of a text feed; a byte-order mark and stray non-UTF-8 bytes must not sink a whole feed."""
    return data.decode("utf-8-sig", errors="replace").splitlines()
