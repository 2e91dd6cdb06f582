"""CSV with a header row and a column mapping: which columns hold indicators (and of what type), and which hold
first/last seen, confidence, tags and a description.

Without a mapping, columns named like an indicator type (``md5``, ``ip``, ``domain`` …) are taken, so a plain
``md5, sha1, sha256`` export imports as it is.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import ClassVar, Final

import msgspec

from cloudsoc.errors import ParseError
from cloudsoc.intel.feeds.base import Importer, ImportResult
from cloudsoc.intel.indicator import Indicator, IndicatorType, classify_ip, guess, normalise

AUTO: Final = "auto"
IP: Final = "ip"
# Header names that need no mapping.
NAMED_COLUMNS: Final[dict[str, str]] = {
    **{t.value: t.value for t in IndicatorType},
    "ip": IP,
    "ip_address": IP,
    "ip-src": IP,
    "ip-dst": IP,
    "hostname": IndicatorType.DOMAIN.value,
    "sha-1": IndicatorType.SHA1.value,
    "sha-256": IndicatorType.SHA256.value,
    "indicator": AUTO,
    "value": AUTO,
}


class ColumnMap(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Column names of a CSV feed. ``values`` maps a column to an indicator type, ``ip`` (v4/v6/CIDR) or ``auto``."""

    values: dict[str, str] = {}
    first_seen: str | None = None
    last_seen: str | None = None
    confidence: str | None = None
    tags: str | None = None
    description: str | None = None
    delimiter: str = ","


def _time(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class CsvMap(Importer):
    name: ClassVar[str] = "csv_map"

    def __init__(self, columns: ColumnMap | None = None, *, intel_types: tuple[str, ...] = (), confidence: int = 50):
        self.columns = columns or ColumnMap()
        self.intel_types = intel_types
        self.confidence = confidence

    def parse(self, data: bytes, *, name: str, source: str, result: ImportResult | None = None) -> ImportResult:
        result = ImportResult() if result is None else result
        text = data.decode("utf-8-sig", errors="replace")
        lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
        reader = csv.DictReader(io.StringIO("\n".join(lines)), delimiter=self.columns.delimiter, skipinitialspace=True)
        header = [h.strip() for h in reader.fieldnames or ()]
        reader.fieldnames = header
        cols = self.columns
        values = dict(cols.values) or {h: NAMED_COLUMNS[h.lower()] for h in header if h.lower() in NAMED_COLUMNS}
        missing = [
            c
            for c in [*values, cols.first_seen, cols.last_seen, cols.confidence, cols.tags, cols.description]
            if c is not None and c not in header
        ]
        if not values or missing:
            result.error(name, f"no indicator columns among {header}" if not values else f"no column {missing[0]!r}")
            return result
        for number, row in enumerate(reader, 2):
            where = f"{name}:{number}"
            try:
                first = _time(row.get(cols.first_seen) or "") if cols.first_seen else None
                last = _time(row.get(cols.last_seen) or "") if cols.last_seen else None
                conf = int(row.get(cols.confidence) or self.confidence) if cols.confidence else self.confidence
                tags = [t.strip() for t in (row.get(cols.tags) or "").split(",") if t.strip()] if cols.tags else []
            except ValueError as exc:
                result.error(where, str(exc))
                continue
            for column, kind in values.items():
                raw = (row.get(column) or "").strip()
                if not raw:
                    continue
                try:
                    typed, value = self._value(kind, raw)
                    result.add(
                        Indicator(
                            type=typed,
                            value=value,
                            source=source,
                            intel_types=list(self.intel_types),
                            confidence=conf,
                            tags=list(tags),
                            description=(row.get(cols.description) or None) if cols.description else None,
                            first_seen=first,
                            last_seen=last,
                        )
                    )
                except ParseError as exc:
                    result.error(where, exc)
        return result

    @staticmethod
    def _value(kind: str, raw: str) -> tuple[IndicatorType, str]:
        if kind == IP:
            return classify_ip(raw)
        if kind == AUTO:
            found = guess(raw)
            if found is None:
                raise ParseError(f"cannot tell what kind of indicator {raw!r} is")
            return found
        try:
            typed = IndicatorType(kind)
        except ValueError:
            raise ParseError(f"unknown indicator type {kind!r} in the column map") from None
        return typed, normalise(typed, raw)
