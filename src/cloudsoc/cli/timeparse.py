"""Times on the command line: relative (``30s``, ``15m``, ``24h``, ``7d``, ``2w``) or absolute ISO-8601."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from cloudsoc.errors import CloudsocError

_RELATIVE = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """``24h`` means 24 hours before ``now``; ISO times without a zone are taken as UTC."""
    m = _RELATIVE.match(text)
    if m:
        base = now or datetime.now(UTC)
        return base - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CloudsocError(
            f"cannot read time {text!r}: use a duration like 30m, 24h, 7d, "
            "or an ISO time like 2026-11-01T08:00:00+08:00"
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)
