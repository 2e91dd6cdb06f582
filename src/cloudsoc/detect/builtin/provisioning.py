"""On-boarding: users created in the last day, per account. A new user's first password and AccessKey, given
by whoever created the user, are provisioning — the same calls for a user who existed before are not.
"""

from __future__ import annotations

from typing import Final

DAY_SECS: Final = 86400.0


class Provisioning:
    """``(account, user) → when it was created`` for the last ``keep_secs`` of event time."""

    def __init__(self, keep_secs: float = DAY_SECS) -> None:
        self.keep_secs = keep_secs
        self._created: dict[str, float] = {}
        self._latest = 0.0

    @staticmethod
    def _key(account: str, user: str) -> str:
        return f"{account}:{user}"

    def created(self, account: str, user: str, at: float) -> None:
        self._created[self._key(account, user)] = at
        if at > self._latest:
            self._latest = at
            if len(self._created) > 1024:
                cutoff = at - self.keep_secs
                self._created = {k: t for k, t in self._created.items() if t >= cutoff}

    def recent(self, account: str, user: str, at: float) -> bool:
        """Whether ``user`` was created in the ``keep_secs`` before ``at``."""
        when = self._created.get(self._key(account, user))
        return when is not None and 0 <= at - when <= self.keep_secs

    def state(self) -> dict[str, float]:
        return dict(self._created)

    def load(self, state: dict[str, float]) -> None:
        self._created = {str(k): float(v) for k, v in state.items()}
        self._latest = max(self._created.values(), default=0.0)

    def clear(self) -> None:
        self._created.clear()
        self._latest = 0.0
