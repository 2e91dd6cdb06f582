"""Log-in throttling kept in memory: failures per client address, and per name for names that are no user.

Accounts that exist are locked in the account store (so every process agrees); names that do not exist are
"locked" here after the same number of failures, so a locked answer does not tell an attacker which names exist.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from datetime import datetime, timedelta
from typing import Final

# Bounds, so a flood of random names or addresses cannot grow memory without limit.
_MAX_KEYS: Final = 10_000


class LoginThrottle:
    """Sliding-window failure counts per IP and lock-outs of unknown names."""

    def __init__(self, *, ip_max_failures: int, name_max_failures: int, window: timedelta) -> None:
        self.ip_max_failures = ip_max_failures
        self.name_max_failures = name_max_failures
        self.window = window
        self._ips: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._names: OrderedDict[str, tuple[int, datetime | None]] = OrderedDict()
        self._lock = threading.Lock()

    def ip_blocked(self, ip: str, now: datetime) -> bool:
        with self._lock:
            times = self._ips.get(ip)
            if not times:
                return False
            while times and times[0] <= now - self.window:
                times.popleft()
            return len(times) >= self.ip_max_failures

    def name_locked(self, name: str, now: datetime) -> bool:
        with self._lock:
            _, until = self._names.get(name, (0, None))
            return until is not None and until > now

    def failed(self, ip: str, name: str | None, now: datetime) -> None:
        """Count a failure from ``ip``; ``name`` is given when it is not a user (existing users lock in the store)."""
        with self._lock:
            times = self._ips.pop(ip, None) or deque()
            times.append(now)
            self._ips[ip] = times
            if name is not None:
                count, until = self._names.pop(name, (0, None))
                if until is not None and until <= now:
                    count, until = 0, None
                count += 1
                if count >= self.name_max_failures:
                    until = now + self.window
                self._names[name] = (count, until)
            for table in (self._ips, self._names):
                while len(table) > _MAX_KEYS:
                    table.popitem(last=False)
