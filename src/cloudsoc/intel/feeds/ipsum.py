"""IPsum (github.com/stamparm/ipsum): ``ip<TAB>count``, where count is on how many blocklists the IP appears."""

from __future__ import annotations

from typing import ClassVar, Final

from cloudsoc.errors import ParseError
from cloudsoc.intel.feeds.base import Importer, ImportResult, text_lines
from cloudsoc.intel.indicator import MALICIOUS_ACTIVITY, Indicator, classify_ip

# IPsum's own advice is that 3+ lists is a safe blocking level; 10 points per list puts that at confidence 30 and
# an IP on 10 or more lists at 100.
POINTS_PER_LIST: Final = 10


class Ipsum(Importer):
    name: ClassVar[str] = "ipsum"

    def parse(self, data: bytes, *, name: str, source: str, result: ImportResult | None = None) -> ImportResult:
        result = ImportResult() if result is None else result
        for number, line in enumerate(text_lines(data, name), 1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split()
            try:
                if len(fields) != 2 or not fields[1].isdigit():
                    raise ParseError(f"expected 'ip<TAB>count', got {line!r}")
                kind, value = classify_ip(fields[0])
            except ParseError as exc:
                result.error(f"{name}:{number}", exc)
                continue
            score = int(fields[1])
            result.add(
                Indicator(
                    type=kind,
                    value=value,
                    source=source,
                    intel_types=[MALICIOUS_ACTIVITY],
                    confidence=min(100, score * POINTS_PER_LIST),
                    tags=[f"ipsum:lists={score}"],
                )
            )
        return result
