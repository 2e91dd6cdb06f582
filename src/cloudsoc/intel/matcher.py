"""The in-memory indicator matcher: what the enricher asks, per event, millions of times a second.

Built once from the store's active indicators (off the hot path) and then read-only, so a rebuilt matcher can be
swapped in atomically after a feed sync. Indexes: a dict per kind keyed by the canonical value (exact IPs,
domains, URLs, hashes, e-mails, JA3/JA4) and a pytricia trie for CIDRs (IPv4 and IPv6 in one 128-bit trie).

A miss, the common case, costs one dict probe (plus one trie probe for IPs when CIDRs are loaded); canonicalising
an input is only paid when the fast probe misses and the input is not already canonical. Allow lists are consulted
only on a hit, so they cost misses nothing. Whitelist-type indicators (intel type ``whitelist``) never match: they
go into the matcher's own allow list, and :meth:`Matcher.allowed` reports them.

Several sources may list one value: a key holds one :class:`StoredIndicator` or a tuple of them, and a look-up
returns all of them, in the order the indicators were given.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import ClassVar, Final, Union

import pytricia
import tldextract

from cloudsoc.errors import ParseError
from cloudsoc.intel.allowlist import Allowlist
from cloudsoc.intel.indicator import WHITELIST, IndicatorType, guess, normalise
from cloudsoc.intel.store import StoredIndicator

_Rows = Union[StoredIndicator, tuple[StoredIndicator, ...]]  # noqa: UP007 (a runtime alias)
_HASH_KINDS: Final = {32: IndicatorType.MD5, 40: IndicatorType.SHA1, 64: IndicatorType.SHA256}
_T = IndicatorType


def _add(index: dict[str, _Rows], key: str, row: StoredIndicator) -> None:
    seen = index.get(key)
    if seen is None:
        index[key] = row
    elif isinstance(seen, tuple):
        index[key] = (*seen, row)
    else:
        index[key] = (seen, row)


def _rows(found: _Rows) -> list[StoredIndicator]:
    return list(found) if isinstance(found, tuple) else [found]


class Matcher:
    """Exact and CIDR IPs, domains with their parents, canonical URLs, hashes; plus why a value is allowed."""

    _psl: ClassVar[tldextract.TLDExtract | None] = None

    def __init__(self, allow: Allowlist | None = None) -> None:
        self._ips: dict[str, _Rows] = {}
        self._nets = pytricia.PyTricia(128)
        self._has_nets = False
        self._domains: dict[str, _Rows] = {}
        self._covers: dict[str, bool] = {}  # listed domain → whether it matches its subdomains
        self._urls: dict[str, _Rows] = {}
        self._hashes: dict[str, _Rows] = {}  # md5, sha1, sha256 (told apart by length)
        self._other: dict[IndicatorType, dict[str, _Rows]] = {_T.EMAIL: {}, _T.JA3: {}, _T.JA4: {}}
        self._count = 0
        self.allow = allow or Allowlist.empty()
        self.whitelist = Allowlist.empty()  # whitelist-type indicators
        self.whitelisted = 0

    @classmethod
    def build(cls, indicators: Iterable[StoredIndicator], allow: Allowlist | None = None) -> Matcher:
        """Index the indicators that may match (callers pass ``store.active(now)``); revoked ones are skipped."""
        m = cls(allow)
        ips, domains, urls, hashes, other = m._ips, m._domains, m._urls, m._hashes, m._other
        nets: dict[str, _Rows] = {}
        count = 0
        for row in indicators:
            ind = row.indicator
            if ind.revoked:
                continue
            if WHITELIST in ind.intel_types:
                m._whitelist(row)
                continue
            kind = ind.type
            if kind is _T.IPV4 or kind is _T.IPV6:
                _add(ips, ind.value, row)
            elif kind is _T.DOMAIN:
                _add(domains, ind.value, row)
            elif kind is _T.URL:
                _add(urls, ind.value, row)
            elif kind is _T.MD5 or kind is _T.SHA1 or kind is _T.SHA256:
                _add(hashes, ind.value, row)
            elif kind is _T.CIDR:
                _add(nets, ind.value, row)
            else:
                _add(other[kind], ind.value, row)
            count += 1
        for net, found in nets.items():
            m._nets[net] = found
        m._has_nets = bool(nets)
        m._count = count
        return m

    def _whitelist(self, row: StoredIndicator) -> None:
        ind = row.indicator
        try:
            self.whitelist.add(ind.value, f"whitelist indicator from {ind.source}")
        except ParseError:
            return  # e-mail / JA3 / JA4 whitelist entries allow nothing cloudsoc matches through an allow list
        self.whitelisted += 1

    def __len__(self) -> int:
        return self._count

    # -- look-ups ---------------------------------------------------------------------------------------------

    def ip(self, value: str) -> list[StoredIndicator]:
        """Rows for an address: exact ones, then every CIDR that contains it (most specific first)."""
        found = self._ips.get(value)
        if found is None:
            if ":" in value:
                # IPv6 has many spellings; the dict holds the compressed one.
                try:
                    found = self._ips.get(ipaddress.IPv6Address(value.strip()).compressed)
                except ValueError:
                    return []
            if found is None:
                # The common case, a miss: one trie probe and out.
                if not self._has_nets:
                    return []
                try:
                    if self._nets.get_key(value) is None:
                        return []
                except ValueError:
                    pass  # blanks around it, or not an address: _in_nets sorts it out
                out = self._in_nets(value)
                if not out:
                    return out
                return [] if self._allowed_ip(value) else out
        out = _rows(found)
        if self._has_nets:
            out.extend(self._in_nets(value))
        return [] if self._allowed_ip(value) else out

    def _in_nets(self, value: str) -> list[StoredIndicator]:
        nets = self._nets
        try:
            key = nets.get_key(value)
        except ValueError:
            try:  # surrounding blanks, or an address pytricia does not parse
                key = nets.get_key(str(ipaddress.ip_address(value.strip())))
            except ValueError:
                return []
        out: list[StoredIndicator] = []
        while key is not None:
            out.extend(_rows(nets[key]))
            key = nets.parent(key)
        return out

    def _allowed_ip(self, value: str) -> bool:
        return self.whitelist.why_ip(value) is not None or self.allow.why_ip(value) is not None

    def domain(self, value: str) -> list[StoredIndicator]:
        """Rows for a name and its parents up to its registered domain; case and a trailing dot do not matter."""
        domains = self._domains
        if not domains:
            return []
        name = value.lower().rstrip(".")
        if not name.isascii() or " " in name:
            try:
                name = normalise(_T.DOMAIN, value)
            except ParseError:
                return []
        out: list[StoredIndicator] = []
        probe = name
        while True:
            found = domains.get(probe)
            if found is not None:
                if probe is not name and not self._may_cover(probe):
                    break
                out.extend(_rows(found))
            dot = probe.find(".")
            if dot < 0:
                break
            probe = probe[dot + 1 :]
        if not out:
            return out
        if self.whitelist.why_domain(name) is not None or self.allow.why_domain(name) is not None:
            return []
        return out

    def _may_cover(self, parent: str) -> bool:
        """Whether a listed domain also matches the names under it: not when it is a public suffix (``co.uk``).

        Asked only on a parent hit, and remembered per listed domain, so a hit costs one dict probe after the first.
        """
        ok = self._covers.get(parent)
        if ok is None:
            psl = Matcher._psl
            if psl is None:
                psl = Matcher._psl = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
            ok = self._covers[parent] = bool(psl(parent).domain)
        return ok

    def url(self, value: str) -> list[StoredIndicator]:
        """Rows for the canonical form of a URL (exact; the enricher looks up its host separately)."""
        urls = self._urls
        if not urls:
            return []
        found = urls.get(value)
        if found is None:
            try:
                canonical = normalise(_T.URL, value)
            except ParseError:
                return []
            found = urls.get(canonical)
            if found is None:
                return []
        else:
            canonical = value
        if self.whitelist.why_url(canonical) is not None or self.allow.why_url(canonical) is not None:
            return []
        return _rows(found)

    def hash(self, value: str) -> list[StoredIndicator]:
        """Rows for an MD5, SHA-1 or SHA-256 (any case)."""
        found = self._hashes.get(value)
        if found is None:
            value = value.strip().lower()
            if len(value) not in _HASH_KINDS:
                return []
            found = self._hashes.get(value)
            if found is None:
                return []
        key = value.lower()
        if self.whitelist.why_hash(key) is not None or self.allow.why_hash(key) is not None:
            return []
        return _rows(found)

    def lookup(self, value: str) -> list[StoredIndicator]:
        """Rows for any value: its type is guessed (:func:`~cloudsoc.intel.indicator.guess`), then dispatched."""
        found = guess(value)
        if found is None:
            return []
        kind, canonical = found
        match kind:
            case _T.IPV4 | _T.IPV6:
                return self.ip(canonical)
            case _T.CIDR:
                return self._net(canonical)
            case _T.DOMAIN:
                return self.domain(canonical)
            case _T.URL:
                return self.url(canonical)
            case _T.MD5 | _T.SHA1 | _T.SHA256:
                return self.hash(canonical)
            case _:
                rows = self._other[kind].get(canonical)
                return [] if rows is None or self.allowed(canonical) else _rows(rows)

    def _net(self, canonical: str) -> list[StoredIndicator]:
        """A network asked as such: the indicator rows for exactly that CIDR and the CIDRs containing it."""
        if not self._has_nets or self._allowed_ip(canonical):
            return []
        try:
            key = self._nets.get_key(canonical)
        except ValueError:
            return []
        out: list[StoredIndicator] = []
        while key is not None:
            out.extend(_rows(self._nets[key]))
            key = self._nets.parent(key)
        return out

    def allowed(self, value: str) -> str | None:
        """Why ``value`` is known-benign (a whitelist indicator, a local allow entry, a warninglist), or None."""
        found = guess(value)
        if found is None:
            return None
        return self.whitelist.why_typed(*found) or self.allow.why_typed(*found)
