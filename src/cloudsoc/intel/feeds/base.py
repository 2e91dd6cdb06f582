"""The base of every importer and what an import returns."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar, Protocol

from cloudsoc.errors import ParseError
from cloudsoc.intel.indicator import Indicator, IndicatorType

if TYPE_CHECKING:
    from cloudsoc.intel.store import StoredIndicator


class IndicatorSink(Protocol):
    """Where a streamed import writes (the indicator store)."""

    def upsert(self, indicators: Iterable[Indicator]) -> int: ...

    def get(self, kind: IndicatorType, value: str) -> list[StoredIndicator]: ...


class ImportResult:
    """Indicators of one import, de-duplicated by (type, value); what was skipped and what failed, with where.

    ``skipped`` counts records that are fine but carry no indicator cloudsoc matches on (a MISP ``filename`` or
    ``text`` attribute, a STIX ``MATCHES`` pattern); ``errors`` are records that should have been indicators and
    are not (``name:line: reason``). Comments and blank lines are neither.

    With a ``sink``, indicators are written to it every ``flush_at`` distinct values and only a hash of each
    written (type, value) is kept: ~70 bytes a value instead of the ~450 an indicator held whole takes. A value
    listed again after its first listing was written is merged with the stored row, read back, as it would have
    been in memory; ``close`` writes the rest.
    """

    def __init__(self, sink: IndicatorSink | None = None, *, flush_at: int = 100_000) -> None:
        self._by_key: dict[tuple[IndicatorType, str], Indicator] = {}
        self._sink = sink
        self._flush_at = flush_at
        self._written: set[int] = set()
        # This import's own sightings / false-positive counts of written values that have any (few do): a value
        # listed again adds to them, not to the stored row's, which already took the larger of old and new.
        self._tallies: dict[int, tuple[int, int]] = {}
        self._counts: Counter[str] = Counter()
        self.skipped = 0
        self.errors: list[str] = []

    @property
    def indicators(self) -> list[Indicator]:
        """The indicators not yet written (all of them without a sink)."""
        return list(self._by_key.values())

    @property
    def count(self) -> int:
        """Distinct indicators of this import."""
        return self._counts.total()

    def add(self, indicator: Indicator) -> None:
        """Add one; a value listed twice in the same import is merged (types, tags, highest confidence, counts)."""
        key = (indicator.type, indicator.value)
        seen = self._by_key.get(key)
        if seen is None:
            hashed = hash(key)
            stored = self._stored(indicator) if self._written and hashed in self._written else None
            if stored is None:
                self._counts[indicator.type._value_] += 1
                self._by_key[key] = indicator
            else:
                stored.sightings, stored.false_positives = self._tallies.get(hashed, (0, 0))
                _merge(stored, indicator)
                self._by_key[key] = stored
            if self._sink is not None and len(self._by_key) >= self._flush_at:
                self.flush()
            return
        _merge(seen, indicator)

    def _stored(self, indicator: Indicator) -> Indicator | None:
        assert self._sink is not None
        rows = self._sink.get(indicator.type, indicator.value)
        return next((r.indicator for r in rows if r.indicator.source == indicator.source), None)

    def flush(self) -> None:
        """Write what is held to the sink."""
        if self._sink is None or not self._by_key:
            return
        self._sink.upsert(self._by_key.values())
        self._written.update(map(hash, self._by_key))
        for key, ind in self._by_key.items():
            if ind.sightings or ind.false_positives:
                self._tallies[hash(key)] = (ind.sightings, ind.false_positives)
        self._by_key.clear()

    def close(self) -> None:
        """Write the rest to the sink."""
        self.flush()

    def error(self, where: str, exc: ParseError | str) -> None:
        self.errors.append(f"{where}: {exc}")

    def by_type(self) -> dict[str, int]:
        return dict(self._counts)


def _merge(seen: Indicator, indicator: Indicator) -> None:
    seen.intel_types.extend(t for t in indicator.intel_types if t not in seen.intel_types)
    seen.tags.extend(t for t in indicator.tags if t not in seen.tags)
    seen.confidence = max(seen.confidence, indicator.confidence)
    seen.detect = seen.detect or indicator.detect
    seen.sightings += indicator.sightings
    seen.false_positives += indicator.false_positives
    seen.description = seen.description or indicator.description


class Importer:
    """One feed format. ``name`` equals the module name (and the ``--format`` value)."""

    name: ClassVar[str]

    def parse(self, data: bytes, *, name: str, source: str, result: ImportResult | None = None) -> ImportResult:
        """Indicators in ``data`` (the content of the file called ``name``), attributed to ``source``, added to
        ``result`` (a new one by default)."""
        raise NotImplementedError


def text_lines(data: bytes, name: str) -> list[str]:
    """Lines of a text feed; a byte-order mark and stray non-UTF-8 bytes must not sink a whole feed."""
    return data.decode("utf-8-sig", errors="replace").splitlines()
