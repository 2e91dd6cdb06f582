"""The indicator model and the one place where raw indicator values are normalised.

Every importer and every look-up goes through :func:`normalise`, so that ``EVIL.com.`` from one feed and
``evil.com`` from another are the same row, and an event's ``destination.domain`` meets them. Normalising is pure and
raises :class:`~cloudsoc.errors.ParseError` with a message that names the type and the offending value.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from datetime import datetime
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import msgspec

from cloudsoc.errors import ParseError


class IndicatorType(StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"
    CIDR = "cidr"
    DOMAIN = "domain"
    URL = "url"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    EMAIL = "email"
    JA3 = "ja3"
    JA4 = "ja4"


class TLP(StrEnum):
    """Traffic Light Protocol 2.0 (``white`` from TLP 1.0 is read as ``clear``)."""

    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"

    @classmethod
    def parse(cls, raw: str) -> TLP | None:
        """``TLP:AMBER+STRICT``, ``tlp:white``, ``green`` → the level; anything else → None."""
        text = raw.strip().lower().removeprefix("tlp:").strip()
        if text == "white":
            return cls.CLEAR
        try:
            return cls(text)
        except ValueError:
            return None


# Intel types are an open vocabulary (feeds bring their own); these are the ones cloudsoc's importers emit, the
# brief's list plus STIX 2.1's indicator-type vocabulary where feeds speak it.
MALWARE: Final = "malware"
C2: Final = "c2"
BOTNET: Final = "botnet"
SCANNER: Final = "scanner"
PHISHING: Final = "phishing"
TOR: Final = "tor"
PROXY: Final = "proxy"
WHITELIST: Final = "whitelist"
SUSPICIOUS: Final = "suspicious"
MALICIOUS_ACTIVITY: Final = "malicious-activity"


class Indicator(msgspec.Struct, kw_only=True):
    """One indicator as one source states it. The store keeps one row per (type, value, source).

    Times are timezone-aware UTC; ``None`` for first/last seen means "the feed does not say", and the store fills in
    the import time. ``sightings`` and ``false_positives`` are the counts the source reports (MISP sightings of
    type 0 and 1); local hits and analyst feedback are added by the store.
    """

    type: IndicatorType
    value: str
    source: str
    intel_types: list[str] = []
    confidence: int = 50
    tlp: TLP | None = None
    tags: list[str] = []
    description: str | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    valid_until: datetime | None = None
    revoked: bool = False
    detect: bool = True
    sightings: int = 0
    false_positives: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.confidence <= 100:
            raise ParseError(f"{self.type} {self.value}: confidence {self.confidence} is outside 0–100")


_HEX: Final = re.compile(r"[0-9a-f]+")
_HASH_LENGTHS: Final = {IndicatorType.MD5: 32, IndicatorType.SHA1: 40, IndicatorType.SHA256: 64, IndicatorType.JA3: 32}
# JA4 (TLS client): protocol, version, SNI flag, cipher/extension counts, ALPN, then two truncated SHA-256 hashes.
_JA4: Final = re.compile(r"[tqd][0-9a-z]{2}[di][0-9]{4}[0-9a-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}")
# Letters, digits, hyphen, and underscore: real malware domains use underscores (DNS allows them; hostnames don't).
_LABEL: Final = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ftp": 21, "ws": 80, "wss": 443}


def normalise(kind: IndicatorType, raw: str) -> str:
    """The canonical form of ``raw`` as an indicator of type ``kind``; ParseError when it is not one."""
    text = raw.strip()
    if not text:
        raise ParseError(f"{kind}: empty value")
    try:
        match kind:
            case IndicatorType.IPV4:
                return _ipv4(text)
            case IndicatorType.IPV6:
                return ipaddress.IPv6Address(text).compressed
            case IndicatorType.CIDR:
                return ipaddress.ip_network(text, strict=False).compressed
            case IndicatorType.DOMAIN:
                return _domain(text)
            case IndicatorType.URL:
                return _url(text)
            case IndicatorType.EMAIL:
                return _email(text)
            case IndicatorType.JA4:
                value = text.lower()
                if not _JA4.fullmatch(value):
                    raise ValueError("not a JA4 fingerprint (like t13d1516h2_8daaf6152771_b186095e22b6)")
                return value
            case _:
                value = text.lower()
                length = _HASH_LENGTHS[kind]
                if len(value) != length or not _HEX.fullmatch(value):
                    raise ValueError(f"needs {length} hex digits")
                return value
    except ValueError as exc:
        raise ParseError(f"{kind} {raw!r}: {exc}") from None


def _canonical_ipv4(text: str) -> bool:
    """Whether ``text`` is a dotted quad written canonically. Feeds are mostly those: the C parser and a round trip
    prove it ~10x faster than ipaddress, whose stricter reading still decides everything else (leading zeros)."""
    try:
        return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, text)) == text
    except OSError:
        return False


def _ipv4(text: str) -> str:
    return text if _canonical_ipv4(text) else str(ipaddress.IPv4Address(text))


def classify_ip(raw: str) -> tuple[IndicatorType, str]:
    """An address or a network: ``1.2.3.4`` → ipv4, ``2001:db8::/32`` → cidr; a /32 or /128 is the address itself."""
    text = raw.strip()
    if _canonical_ipv4(text):
        return IndicatorType.IPV4, text
    try:
        if "/" in text:
            net = ipaddress.ip_network(text, strict=False)
            if net.num_addresses == 1:
                addr = net.network_address
                return (IndicatorType.IPV4 if addr.version == 4 else IndicatorType.IPV6), addr.compressed
            return IndicatorType.CIDR, net.compressed
        ip = ipaddress.ip_address(text)
    except ValueError as exc:
        raise ParseError(f"ip {raw!r}: {exc}") from None
    return (IndicatorType.IPV4 if ip.version == 4 else IndicatorType.IPV6), ip.compressed


def guess(raw: str) -> tuple[IndicatorType, str] | None:
    """The type and canonical value of a bare value (plain lists, CSV columns typed ``auto``); None if unclear.

    A 32-hex-digit value is taken as MD5, not JA3: lists of JA3 fingerprints must say so.
    """
    text = raw.strip()
    if not text:
        return None
    lowered = text.lower()
    if _HEX.fullmatch(lowered):
        for kind in (IndicatorType.MD5, IndicatorType.SHA1, IndicatorType.SHA256):
            if len(lowered) == _HASH_LENGTHS[kind]:
                return kind, lowered
    if _JA4.fullmatch(lowered):
        return IndicatorType.JA4, lowered
    if "://" in text:
        kind = IndicatorType.URL
    elif "@" in text and "/" not in text:
        kind = IndicatorType.EMAIL
    elif ":" in text or text[0].isdigit():
        try:
            return classify_ip(text)
        except ParseError:
            if ":" in text:
                return None
            kind = IndicatorType.DOMAIN
    else:
        kind = IndicatorType.DOMAIN
    if kind is IndicatorType.DOMAIN and ("/" in text or "." not in text.strip(".")):
        return None
    try:
        return kind, normalise(kind, text)
    except ParseError:
        return None


def _domain(text: str) -> str:
    name = text.lower().rstrip(".")
    if not name:
        raise ValueError("not a domain name")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"not a valid internationalised domain name ({exc})") from None
    if len(name) > 253:
        raise ValueError("longer than 253 characters")
    for label in name.split("."):
        if not _LABEL.fullmatch(label):
            raise ValueError(f"label {label!r} is not a DNS label")
    return name


def _url(text: str) -> str:
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if not scheme or not parts.netloc:
        raise ValueError("a URL needs a scheme and a host (like http://example.com/path)")
    host = parts.hostname
    if host is None:
        raise ValueError("a URL needs a host")
    if host.startswith("[") or ":" in host:
        host = f"[{ipaddress.IPv6Address(host.strip('[]')).compressed}]"
    else:
        try:
            host = str(ipaddress.IPv4Address(host))
        except ValueError:
            host = _domain(host)
    port = parts.port  # raises ValueError for a port that is not a number or out of range
    netloc = host if port is None or _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{netloc}"
    # The fragment never reaches a server, so it cannot distinguish two indicators.
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _email(text: str) -> str:
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in local):
        raise ValueError("not an e-mail address (like name@example.com)")
    return f"{local.lower()}@{_domain(domain)}"
