"""Export indicators: a STIX 2.1 bundle (for other platforms), CSV (for people), a plain list per type (for
firewalls and DNS blocklists). Pure: indicators in, bytes out."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

import stix2

from cloudsoc.intel.indicator import IndicatorType
from cloudsoc.intel.store import StoredIndicator

# STIX 2.1 patterns per indicator type (values are normalised, so quoting is the only escaping needed).
_PATTERNS: Final = {
    IndicatorType.IPV4: "[ipv4-addr:value = '{}']",
    IndicatorType.IPV6: "[ipv6-addr:value = '{}']",
    IndicatorType.DOMAIN: "[domain-name:value = '{}']",
    IndicatorType.URL: "[url:value = '{}']",
    IndicatorType.EMAIL: "[email-addr:value = '{}']",
    IndicatorType.MD5: "[file:hashes.MD5 = '{}']",
    IndicatorType.SHA1: "[file:hashes.'SHA-1' = '{}']",
    IndicatorType.SHA256: "[file:hashes.'SHA-256' = '{}']",
}
CSV_COLUMNS: Final = (
    "type",
    "value",
    "source",
    "intel_types",
    "confidence",
    "tlp",
    "tags",
    "first_seen",
    "last_seen",
    "expires",
    "revoked",
    "description",
)


def _pattern(found: StoredIndicator) -> str | None:
    ind = found.indicator
    if ind.type is IndicatorType.CIDR:
        kind = "ipv6-addr" if ":" in ind.value else "ipv4-addr"
        return f"[{kind}:value = '{ind.value}']"
    template = _PATTERNS.get(ind.type)
    return template.format(ind.value.replace("\\", "\\\\").replace("'", "\\'")) if template else None


def to_stix(indicators: Iterable[StoredIndicator]) -> tuple[bytes, int]:
    """A STIX 2.1 bundle of indicator objects (pattern, validity, confidence, labels); returns it and how many
    indicators have no STIX pattern (JA3/JA4) and were left out."""
    objects = []
    left_out = 0
    now = datetime.now(UTC)
    for found in indicators:
        pattern = _pattern(found)
        if pattern is None:
            left_out += 1
            continue
        ind = found.indicator
        first = ind.first_seen or now
        objects.append(
            stix2.v21.Indicator(
                name=ind.value,
                description=ind.description,
                pattern=pattern,
                pattern_type="stix",
                valid_from=first,
                valid_until=found.expires if found.expires > first else None,
                confidence=ind.confidence,
                indicator_types=ind.intel_types or None,
                labels=[f"source:{ind.source}", *ind.tags],
                revoked=ind.revoked,
                allow_custom=True,
            )
        )
    bundle = stix2.v21.Bundle(objects=objects, allow_custom=True) if objects else stix2.v21.Bundle(allow_custom=True)
    return bundle.serialize(pretty=False).encode(), left_out


def to_csv(indicators: Iterable[StoredIndicator]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for found in indicators:
        ind = found.indicator
        writer.writerow(
            [
                ind.type.value,
                ind.value,
                ind.source,
                ";".join(ind.intel_types),
                ind.confidence,
                ind.tlp.value if ind.tlp else "",
                ";".join(ind.tags),
                ind.first_seen.isoformat() if ind.first_seen else "",
                ind.last_seen.isoformat() if ind.last_seen else "",
                found.expires.isoformat(),
                "true" if ind.revoked else "false",
                ind.description or "",
            ]
        )
    return out.getvalue().encode()


def to_list(indicators: Iterable[StoredIndicator]) -> bytes:
    """One value a line, each once (several sources may list it), in order."""
    seen: dict[str, None] = {}
    for found in indicators:
        seen.setdefault(found.indicator.value, None)
    return "".join(f"{v}\n" for v in seen).encode()
