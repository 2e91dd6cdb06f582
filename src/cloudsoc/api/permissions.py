"""Permissions and the roles that grant them: the server checks a permission, never a role name.

A router asks for what an action needs (``require(Permission.TRIAGE)``); the role → permissions table below is
the one place that says who may do it. API tokens carry a subset of their owner's permissions as scopes.
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    """One kind of action in the console or API."""

    READ = "read"  # overview, search, alerts, rules, intel, health (read-only)
    TRIAGE = "triage"  # ack/resolve/fp alerts, assign, comment, suppress
    INTEL_WRITE = "intel_write"  # import indicators, mark false positives
    RULES_WRITE = "rules_write"  # enable/disable rules, test a rule
    INGEST = "ingest"  # POST events to /api/v1/ingest (scripts, with a token)
    AUDIT = "audit"  # the audit log and bastion sessions (read-only)
    ADMIN = "admin"  # users, roles and API tokens


class Role(StrEnum):
    """A console user's role."""

    ADMIN = "admin"
    ANALYST = "analyst"
    VIEWER = "viewer"
    AUDITOR = "auditor"

    @property
    def permissions(self) -> frozenset[Permission]:
        return _GRANTS[self]

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"unknown role {value!r}: use one of {', '.join(r.value for r in cls)}") from None


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.ANALYST: frozenset(
        {Permission.READ, Permission.TRIAGE, Permission.INTEL_WRITE, Permission.RULES_WRITE, Permission.INGEST}
    ),
    Role.VIEWER: frozenset({Permission.READ}),
    # The auditor reviews people (bastion sessions, console actions), not the estate: no event search.
    Role.AUDITOR: frozenset({Permission.AUDIT}),
}
