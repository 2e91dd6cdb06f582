"""How long an indicator stays worth matching, and how its confidence decays on the way.

Addresses are re-assigned and cloud IPs churn within weeks, domains are re-registered within months, while a file
hash names the same bytes forever; so the default lifetime grows in that order. A feed's own ``valid_until`` wins
when it is earlier. Lifetimes count from ``last_seen``: an indicator a feed keeps listing keeps living.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import msgspec

from cloudsoc.intel.indicator import Indicator, IndicatorType

DEFAULT_TTL_DAYS: Final[dict[IndicatorType, int]] = {
    IndicatorType.IPV4: 30,
    IndicatorType.IPV6: 30,
    IndicatorType.CIDR: 90,
    IndicatorType.URL: 60,
    IndicatorType.DOMAIN: 120,
    IndicatorType.EMAIL: 180,
    IndicatorType.JA3: 180,
    IndicatorType.JA4: 180,
    IndicatorType.MD5: 730,
    IndicatorType.SHA1: 730,
    IndicatorType.SHA256: 730,
}


class ExpiryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Lifetime per indicator type (days from last seen) and the decay of confidence over that lifetime."""

    ttl_days: dict[IndicatorType, int] = msgspec.field(default_factory=lambda: dict(DEFAULT_TTL_DAYS))
    # Confidence falls linearly from its stated value at last_seen to this fraction of it at expiry; it does not
    # fall to zero because an indicator still listed by a feed is refreshed long before that.
    floor_fraction: float = 0.5

    def expires(self, indicator: Indicator, last_seen: datetime) -> datetime:
        """When ``indicator`` (last seen at ``last_seen``) stops matching."""
        ttl = last_seen + timedelta(days=self.ttl_days[indicator.type])
        if indicator.valid_until is not None and indicator.valid_until < ttl:
            return indicator.valid_until
        return ttl

    def confidence_at(self, confidence: int, last_seen: datetime, expires: datetime, now: datetime) -> int:
        """The decayed confidence at ``now``: 0 once expired."""
        if now >= expires:
            return 0
        span = (expires - last_seen).total_seconds()
        if span <= 0 or now <= last_seen:
            return confidence
        age = (now - last_seen).total_seconds() / span
        return round(confidence * (1 - (1 - self.floor_fraction) * age))
