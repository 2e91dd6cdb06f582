"""Maltrail static trail files: one trail a line, of mixed kinds, ``#`` comments; the file says what they are.

Kinds in one file: ``1.2.3.4``, ``1.2.3.4:8080``, IPv6, ``5.63.151.0/24``, ``evil.com``, ``evil.com:443``,
``http://evil.com/x``, ``evil.com/x`` (Maltrail matches that on any scheme, so it becomes ``http://…`` tagged
``maltrail:any-scheme``), ``.cc`` (every name under that suffix; tagged ``maltrail:suffix``) and ``/path``
(a request path on any host) and regular expressions (``helplog[0-9]{3,4}\\.(ml|ga)``): neither is a value cloudsoc
matches exactly, so both are counted as skipped.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import ClassVar, Final

from cloudsoc.errors import ParseError
from cloudsoc.intel.feeds.base import Importer, ImportResult, text_lines
from cloudsoc.intel.indicator import (
    C2,
    MALICIOUS_ACTIVITY,
    MALWARE,
    SCANNER,
    SUSPICIOUS,
    Indicator,
    IndicatorType,
    classify_ip,
    normalise,
)

_REGEX_CHARS: Final = frozenset("\\[](){}|*+?^$")
_HOST_PORT: Final = re.compile(r"(?P<host>[^:/\s]+):(?P<port>\d{1,5})")
# Trail folders (Maltrail's own layout) → intel types and confidence.
_FOLDERS: Final = {
    "malware": ([MALWARE], 80),
    "malicious": ([MALICIOUS_ACTIVITY], 70),
    "suspicious": ([SUSPICIOUS], 30),
}
# Files that say more than their folder: C2 frameworks, and the scanner lists at the top level.
_FILES: Final = {
    "cobaltstrike": ([MALWARE, C2], 80),
    "metasploit": ([MALICIOUS_ACTIVITY, C2], 70),
    "sliver": ([MALICIOUS_ACTIVITY, C2], 70),
    "mass_scanner": ([SCANNER], 50),
    "mass_scanner_cidr": ([SCANNER], 50),
}


class Maltrail(Importer):
    name: ClassVar[str] = "maltrail"

    def parse(self, data: bytes, *, name: str, source: str, result: ImportResult | None = None) -> ImportResult:
        path = PurePosixPath(name.replace("\\", "/"))
        intel_types, confidence = _FILES.get(path.stem) or _FOLDERS.get(path.parent.name) or ([SUSPICIOUS], 30)
        trail_tag = f"maltrail:{path.stem}"
        result = ImportResult() if result is None else result
        for number, line in enumerate(text_lines(data, name), 1):
            # Maltrail itself cuts every line at the first '#', URLs included.
            entry, _, comment = line.partition("#")
            entry = entry.strip()
            if not entry:
                continue
            try:
                found = self._entry(entry)
            except ParseError as exc:
                result.error(f"{name}:{number}", exc)
                continue
            if found is None:
                result.skipped += 1
                continue
            kind, value, tags = found
            result.add(
                Indicator(
                    type=kind,
                    value=value,
                    source=source,
                    intel_types=list(intel_types),
                    confidence=confidence,
                    tags=[trail_tag, *tags],
                    description=comment.strip() or None,
                )
            )
        return result

    @staticmethod
    def _entry(entry: str) -> tuple[IndicatorType, str, list[str]] | None:
        if "://" in entry:
            return IndicatorType.URL, normalise(IndicatorType.URL, entry), []
        if entry.startswith("/") or ("/" not in entry and not _REGEX_CHARS.isdisjoint(entry)):
            return None
        if entry.startswith("."):
            return IndicatorType.DOMAIN, normalise(IndicatorType.DOMAIN, entry[1:]), ["maltrail:suffix"]
        if "/" in entry:
            host = entry.split("/", 1)[0]
            if host.replace(".", "").isdigit() or ":" in host:
                try:
                    kind, value = classify_ip(entry)
                    return kind, value, []
                except ParseError:
                    pass
            return IndicatorType.URL, normalise(IndicatorType.URL, "http://" + entry), ["maltrail:any-scheme"]
        hp = _HOST_PORT.fullmatch(entry)
        if hp:
            host, port = hp["host"], hp["port"]
            if host.replace(".", "").isdigit():
                kind, value = classify_ip(host)
            else:
                kind, value = IndicatorType.DOMAIN, normalise(IndicatorType.DOMAIN, host)
            return kind, value, [f"port:{port}"]
        if ":" in entry or entry.replace(".", "").isdigit():
            kind, value = classify_ip(entry)
            return kind, value, []
        return IndicatorType.DOMAIN, normalise(IndicatorType.DOMAIN, entry), []
