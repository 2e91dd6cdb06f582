"""Hosts, host groups and grants from the configuration → the targets a user may open."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from cloudsoc.config.bastion import BastionConfig
from cloudsoc.errors import BastionError


class Target(msgspec.Struct):
    """One host as one system user, as the menu lists it."""

    host: str
    address: str
    port: int
    system_user: str
    labels: dict[str, str]
    host_groups: list[str]
    port_forwarding: bool


class Inventory:
    """Grants resolved once, when the configuration is loaded; unknown hosts or host groups are errors then."""

    def __init__(self, cfg: BastionConfig) -> None:
        self.cfg = cfg
        members: dict[str, list[str]] = {}
        for name, host in cfg.hosts.items():
            for group in host.groups:
                members.setdefault(group, []).append(name)
        self.host_groups = {g: sorted(names) for g, names in members.items()}
        # Per grant, the hosts it names (checked here so a typo fails at start-up, not at someone's log-in).
        self._grant_hosts: list[list[str]] = []
        for i, grant in enumerate(cfg.grants):
            names: list[str] = []
            for item in grant.hosts:
                if item.startswith("group:"):
                    group = item.removeprefix("group:")
                    if group not in self.host_groups:
                        raise BastionError(f"bastion.grants[{i}]: no host is in the host group {group!r}")
                    names.extend(self.host_groups[group])
                elif item in cfg.hosts:
                    names.append(item)
                else:
                    raise BastionError(f"bastion.grants[{i}]: no host {item!r} under bastion.hosts")
            self._grant_hosts.append(names)

    def targets(self, user: str, groups: Iterable[str] = ()) -> list[Target]:
        """What ``user`` (in ``groups``) may open, sorted by host then system user."""
        mine = set(groups)
        found: dict[tuple[str, str], Target] = {}
        for grant, hosts in zip(self.cfg.grants, self._grant_hosts, strict=True):
            if user not in grant.users and not mine.intersection(grant.groups):
                continue
            for name in hosts:
                host = self.cfg.hosts[name]
                for system_user in grant.system_users:
                    known = found.get((name, system_user))
                    if known is not None:
                        # Two grants for the same pair: the more generous forwarding wins.
                        known.port_forwarding = known.port_forwarding or grant.port_forwarding
                        continue
                    found[(name, system_user)] = Target(
                        host=name,
                        address=host.address,
                        port=host.port,
                        system_user=system_user,
                        labels=dict(host.labels),
                        host_groups=list(host.groups),
                        port_forwarding=grant.port_forwarding,
                    )
        return [found[k] for k in sorted(found)]
