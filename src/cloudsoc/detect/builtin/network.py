"""Addresses, networks and ports as the rules reason about them: is a CIDR the Internet, which admin or database
ports does a port range reach, which network does a source address belong to.

CIDRs are parsed (``0.0.0.0/0``, ``::/0``, ``0.0.0.0/1``, ``0/0`` spellings all count), never string-matched;
results are cached because a trail repeats the same few ranges.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Final

# Ports of remote administration, databases, caches, search and cluster control planes: reachable from the
# whole Internet, each is a daily target of scanners and brute force.
ADMIN_PORTS: Final = {
    21: "ftp",
    22: "ssh",
    23: "telnet",
    135: "msrpc",
    139: "netbios",
    445: "smb",
    1433: "sqlserver",
    1521: "oracle",
    2375: "docker",
    2376: "docker-tls",
    2379: "etcd",
    3306: "mysql",
    3389: "rdp",
    5432: "postgresql",
    5601: "kibana",
    5900: "vnc",
    5984: "couchdb",
    5985: "winrm",
    5986: "winrm-tls",
    6379: "redis",
    6443: "kubernetes-api",
    7001: "weblogic",
    8500: "consul",
    9042: "cassandra",
    9092: "kafka",
    9200: "elasticsearch",
    9300: "elasticsearch-transport",
    10250: "kubelet",
    11211: "memcached",
    27017: "mongodb",
    27018: "mongodb",
    50070: "hdfs",
}
_SORTED_PORTS: Final = sorted(ADMIN_PORTS)
ALL_PORTS: Final = "all"
# Protocol spellings that mean every protocol (hence every port).
_ALL_PROTOCOLS: Final = frozenset({"-1", "all", "any", "*"})
_PORTLESS: Final = frozenset({"icmp", "1", "icmpv6", "58", "gre", "47"})


@lru_cache(maxsize=4096)
def internet_wide(cidr: str) -> bool:
    """Whether ``cidr`` opens to the Internet at large: ``/0``, or a public range of /8 (IPv6 /16) or wider.

    Private, loopback, link-local and reserved ranges never count, whatever their size (10.0.0.0/8 is the VPC).
    """
    text = cidr.strip()
    if not text:
        return False
    if text in ("0/0", "*"):
        return True
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    if network.prefixlen == 0:
        return True
    widest = 8 if network.version == 4 else 16
    return network.prefixlen <= widest and not network.is_private and not network.is_reserved


def exposed_ports(protocol: object, from_port: object, to_port: object) -> list[int | str] | None:
    """The admin/database ports a rule opens (``[ALL_PORTS]`` for every port), or None when it opens none.

    ``protocol``: tcp/udp/6/17 or an all-protocols spelling; ports may be ints or strings, -1 meaning all.
    """
    proto = str(protocol).strip().lower() if protocol is not None else "-1"
    if proto in _PORTLESS:
        return None
    if proto in _ALL_PROTOCOLS:
        return [ALL_PORTS]
    low, high = _port(from_port), _port(to_port)
    if low is None and high is None:
        return [ALL_PORTS]
    low = 0 if low is None or low < 0 else low
    high = 65535 if high is None or high < 0 else high
    if low <= 1 and high >= 65535:
        return [ALL_PORTS]
    found: list[int | str] = [p for p in _SORTED_PORTS if low <= p <= high]
    return found or None


def aliyun_port_range(value: object) -> tuple[object, object]:
    """ActionTrail's ``PortRange`` (``22/22``, ``-1/-1``, ``1/65535``) as (from, to)."""
    if type(value) is not str or "/" not in value:
        return None, None
    low, _, high = value.partition("/")
    return low, high


def _port(value: object) -> int | None:
    if type(value) is int:
        return value
    if type(value) is str:
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


@lru_cache(maxsize=65536)
def ip_prefix(ip: str) -> str:
    """The network a source address belongs to for first-seen purposes: its IPv4 /24 or IPv6 /48.

    Office NAT pools and home broadband move within such a block; a different block is a different place.
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    bits = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))
