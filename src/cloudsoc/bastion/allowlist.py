"""Who may connect at all: source addresses checked before anything else, with per-user overrides."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

import pytricia

from cloudsoc.errors import BastionError


def _tree(ranges: Iterable[str], where: str) -> pytricia.PyTricia:
    # One 128-bit tree holds both families: pytricia keys IPv4 and IPv6 prefixes apart.
    tree = pytricia.PyTricia(128)
    for cidr in ranges:
        try:
            net = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            raise BastionError(f"{where}: {cidr!r} is not an address range (CIDR such as 10.8.0.0/16)") from None
        tree[str(net)] = True
    return tree


def _address(ip: str) -> str | None:
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return None
    # A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; the ranges are written as IPv4.
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


class SourcePolicy:
    """The allow-list: the global ranges, or a user's own ranges which replace them for that user."""

    def __init__(self, allow: Iterable[str], user_allow: Mapping[str, Iterable[str]] | None = None) -> None:
        self._global = _tree(allow, "bastion.allow")
        self._users = {user: _tree(r, f"bastion.user_allow.{user}") for user, r in (user_allow or {}).items()}

    def allowed(self, ip: str, user: str | None = None) -> bool:
        """Whether ``ip`` may connect (``user`` None: before the user name is known, any user's ranges count)."""
        addr = _address(ip)
        if addr is None:
            return False
        if user is not None:
            return addr in self._users.get(user, self._global)
        # Before authentication the name is unknown: the connection may go on if some user could come from here;
        # the check is made again with the name.
        return addr in self._global or any(addr in tree for tree in self._users.values())
