"""abuse.ch Feodo Tracker C2 blocklist CSV: a ``#`` banner, a quoted header, quoted rows, a ``# END`` footer."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from typing import ClassVar, Final

from cloudsoc.errors import ParseError
from cloudsoc.intel.feeds.base import Importer, ImportResult, text_lines
from cloudsoc.intel.indicator import BOTNET, C2, Indicator, classify_ip

HEADER: Final = ("first_seen_utc", "dst_ip", "dst_port", "c2_status", "last_online", "malware")
# abuse.ch lists a C2 for a while after it went quiet; one that is still answering is the stronger indicator.
CONFIDENCE: Final = {"online": 90, "offline": 60}


def _time(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    fmt = "%Y-%m-%d %H:%M:%S" if " " in text else "%Y-%m-%d"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


class Feodo(Importer):
    name: ClassVar[str] = "feodo"

    def parse(self, data: bytes, *, name: str, source: str, result: ImportResult | None = None) -> ImportResult:
        result = ImportResult() if result is None else result
        lines = [(n, line) for n, line in enumerate(text_lines(data, name), 1) if line.strip() and line[0] != "#"]
        rows = csv.reader(line for _, line in lines)
        for (number, _), row in zip(lines, rows, strict=True):
            if tuple(row) == HEADER:
                continue
            try:
                if len(row) != len(HEADER):
                    raise ParseError(f"expected {len(HEADER)} columns ({', '.join(HEADER)}), got {len(row)}")
                first, ip, port, status, last, malware = row
                kind, value = classify_ip(ip)
                first_seen, last_seen = _time(first), _time(last)
            except (ParseError, ValueError) as exc:
                result.error(f"{name}:{number}", str(exc))
                continue
            result.add(
                Indicator(
                    type=kind,
                    value=value,
                    source=source,
                    intel_types=[C2, BOTNET],
                    confidence=CONFIDENCE.get(status, 60),
                    tags=[f"malware:{malware.lower()}", f"port:{port}", f"c2_status:{status}"],
                    description=f"{malware} C2 on port {port}",
                    first_seen=first_seen,
                    last_seen=max(last_seen, first_seen) if last_seen and first_seen else last_seen or first_seen,
                )
            )
        return result
