"""The in-memory indicator matcher: what the enricher asks, per event, millions of times a second.

Built once (off the hot path) and then read-only, so a rebuilt matcher can be swapped in atomically after a feed
sync. Indexes: a :class:`~cloudsoc.intel.keyset.KeySet` per kind of the canonical values (exact IPs, domains, URLs,
hashes), a dict for the rare kinds (e-mails, JA3/JA4) and a pytricia trie for CIDRs (IPv4 and IPv6 in one 128-bit
trie).

The indexes hold only the values' fingerprints (~12–16 B each), not the indicators: a million indicators with their
context would take ~370 MB, their values in dicts ~110 MB, their fingerprints ~15 MB; 10M fit in ~150 MB, so a
rebuild that holds the old matcher beside the new one stays small too. The context of a hit is fetched afterwards
— from ``intel.db`` for a matcher built by :meth:`Matcher.from_store` (as Zeek's Intel framework and Suricata's
datasets keep only keys in memory), through a small LRU because hits are rare but repeat (one scanner, many
events). :meth:`Matcher.build` keeps the given rows in memory instead (tests, small sets). Either way a hit's rows
are read by the value itself, which is what settles a fingerprint that two values share.

A miss, the common case, costs one bitmap probe (plus one trie probe for IPs when CIDRs are loaded); canonicalising
an input is only paid when the fast probe misses and the input is not already canonical. Allow lists are consulted
only on a hit, so they cost misses nothing. Whitelist-type indicators (intel type ``whitelist``) never match: they
go into the matcher's own allow list, and :meth:`Matcher.allowed` reports them.

Several sources may list one value: a look-up returns every source's row (by source for a store-backed matcher, in
the order given for :meth:`Matcher.build`).
"""

from __future__ import annotations

import functools
import ipaddress
import weakref
from array import array
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import ClassVar, Final

import pytricia
import tldextract

from cloudsoc.errors import ParseError
from cloudsoc.intel.allowlist import Allowlist
from cloudsoc.intel.indicator import WHITELIST, IndicatorType, guess, normalise
from cloudsoc.intel.keyset import KeySet
from cloudsoc.intel.store import IndicatorStore, StoredIndicator

# The context of a hit: (type name, canonical value) → every active, non-whitelist row for it. The type's name (its
# enum value, one shared string per type) is what the indexes hold for each value.
Fetch = Callable[[str, str], Sequence[StoredIndicator]]
# One indicator as the index needs it: type, canonical value, source, whether it is a whitelist indicator.
Key = tuple[str, str, str, bool]

_HASH_KINDS: Final = {32: IndicatorType.MD5, 40: IndicatorType.SHA1, 64: IndicatorType.SHA256}
_T = IndicatorType
_TYPES: Final = {t.value: t for t in IndicatorType}
_CIDR: Final = _T.CIDR.value
_DOMAIN: Final = _T.DOMAIN.value
_URL: Final = _T.URL.value
_IPV4: Final = _T.IPV4.value
_IPV6: Final = _T.IPV6.value
_EMPTY: Final = KeySet(array("q"))
# Distinct hit values whose rows a store-backed matcher keeps (a few MB at most).
_CACHE: Final = 4096


class Matcher:
    """Exact and CIDR IPs, domains with their parents, canonical URLs, hashes; plus why a value is allowed."""

    _psl: ClassVar[tldextract.TLDExtract | None] = None

    def __init__(self, fetch: Fetch, allow: Allowlist | None = None) -> None:
        self._fetch = fetch
        self._ips = _EMPTY  # ipv4 and ipv6 (told apart by a colon)
        self._nets = pytricia.PyTricia(128)  # network → its canonical spelling (what the rows are stored under)
        self._has_nets = False
        self._domains = _EMPTY
        self._covers: dict[str, bool] = {}  # listed domain → whether it matches its subdomains
        self._urls = _EMPTY
        self._hashes = _EMPTY  # md5, sha1, sha256 (told apart by length)
        self._other: dict[IndicatorType, dict[str, str]] = {_T.EMAIL: {}, _T.JA3: {}, _T.JA4: {}}
        self._count = 0
        self._closer: Callable[[], object] | None = None  # closes the store of a from_store matcher
        # Exact address hits → their rows, the allow lists already asked: hits repeat (one scanner, many events),
        # and a cached hit then costs what a miss does instead of ~1–4 µs (allow lists, CIDR walk, row cache).
        self._ip_hits: dict[str, tuple[StoredIndicator, ...]] = {}
        self._allow = allow or Allowlist.empty()
        self.whitelist = Allowlist.empty()  # whitelist-type indicators
        self.whitelisted = 0

    @property
    def allow(self) -> Allowlist:
        """The allow lists asked on a hit (warninglists, local entries); setting them forgets cached hits."""
        return self._allow

    @allow.setter
    def allow(self, allow: Allowlist) -> None:
        self._allow = allow
        self._ip_hits.clear()

    @classmethod
    def build(cls, indicators: Iterable[StoredIndicator], allow: Allowlist | None = None) -> Matcher:
        """A matcher that keeps the given rows in memory (callers pass ``store.active(now)`` or their own rows);
        revoked ones are skipped. For a large store, :meth:`from_store` holds a fraction of the memory."""
        rows: dict[tuple[str, str], list[StoredIndicator]] = {}
        empty: tuple[StoredIndicator, ...] = ()

        def keys() -> Iterable[Key]:
            for row in indicators:
                ind = row.indicator
                if ind.revoked:
                    continue
                whitelist = WHITELIST in ind.intel_types
                if not whitelist:
                    rows.setdefault((ind.type.value, ind.value), []).append(row)
                yield ind.type, ind.value, ind.source, whitelist

        m = cls(lambda kind, value: rows.get((kind, value), empty), allow)
        m._index(keys())
        return m

    @classmethod
    def from_store(
        cls, store: IndicatorStore, now: datetime, allow: Allowlist | None = None, *, only: Iterable[str] | None = None
    ) -> Matcher:
        """A matcher over the indicators of ``store`` active at ``now`` that reads a hit's context from the store.

        The matcher owns ``store`` from then on (it reads from it on hits) and closes it when it is closed or
        garbage. A value's rows are read at its first hit and then cached: rows revoked between the build and that
        first hit do not match; new values wait for the next build.

        ``only``: a matcher for looking up just these values (``intel lookup``, the console): it indexes their
        canonical forms and parent domains, every CIDR and the whitelist, read through the primary key, instead of
        every indicator (26 s at 10M)."""

        @functools.lru_cache(maxsize=_CACHE)
        def fetch(kind: str, value: str) -> tuple[StoredIndicator, ...]:
            rows = store.matching(_TYPES[kind], value, now)
            return tuple(r for r in rows if WHITELIST not in r.indicator.intel_types)

        m = cls(fetch, allow)
        m._closer = weakref.finalize(m, store.close)
        try:
            m._index(store.keys(now, only=None if only is None else cls._candidates(only)))
        except BaseException:
            m.close()
            raise
        return m

    @staticmethod
    def _candidates(values: Iterable[str]) -> set[str]:
        """The indexed forms :meth:`lookup` may probe for ``values``: canonical values and a name's parents."""
        out: set[str] = set()
        for value in values:
            found = guess(value)
            if found is None:
                continue
            kind, canonical = found
            out.add(canonical)
            if kind is _T.DOMAIN:
                parts = canonical.split(".")
                out.update(".".join(parts[i:]) for i in range(1, len(parts)))
        return out

    def close(self) -> None:
        """Release the store a :meth:`from_store` matcher reads from (look-ups must not follow)."""
        if self._closer is not None:
            self._closer()

    def _index(self, keys: Iterable[Key]) -> None:
        types = _TYPES
        # Fingerprints are gathered in flat arrays (8 B a value) as the keys stream by: no string is kept.
        ips, domains, urls, hashes = array("q"), array("q"), array("q"), array("q")
        other, nets = self._other, self._nets
        count = 0
        for name, value, source, whitelist in keys:
            kind = types[name]
            if whitelist:
                self._whitelist(value, source)
                continue
            if kind is _T.IPV4 or kind is _T.IPV6:
                ips.append(hash(value))
            elif kind is _T.DOMAIN:
                domains.append(hash(value))
            elif kind is _T.URL:
                urls.append(hash(value))
            elif kind is _T.MD5 or kind is _T.SHA1 or kind is _T.SHA256:
                hashes.append(hash(value))
            elif kind is _T.CIDR:
                nets[value] = value
            else:
                other[kind][value] = kind.value  # one shared string per type, whatever object the caller's name was
            count += 1
        self._ips, self._domains, self._urls, self._hashes = KeySet(ips), KeySet(domains), KeySet(urls), KeySet(hashes)
        self._has_nets = len(nets) > 0
        self._count = count

    def _whitelist(self, value: str, source: str) -> None:
        try:
            self.whitelist.add(value, f"whitelist indicator from {source}")
        except ParseError:
            return  # e-mail / JA3 / JA4 whitelist entries allow nothing cloudsoc matches through an allow list
        self.whitelisted += 1

    def __len__(self) -> int:
        return self._count

    # -- look-ups ---------------------------------------------------------------------------------------------

    def ip(self, value: str) -> list[StoredIndicator]:
        """Rows for an address: exact ones, then every CIDR that contains it (most specific first)."""
        hit = self._ip_hits.get(value)
        if hit is not None:
            return list(hit)
        key = value
        if key not in self._ips:
            found = False
            if ":" in value:
                # IPv6 has many spellings; the index holds the compressed one.
                try:
                    key = ipaddress.IPv6Address(value.strip()).compressed
                except ValueError:
                    return []
                found = key in self._ips
            if not found:
                # The common case, a miss: one trie probe and out.
                if not self._has_nets:
                    return []
                try:
                    if self._nets.get_key(value) is None:
                        return []
                except ValueError:
                    pass  # blanks around it, or not an address: _in_nets sorts it out
                return [] if self._allowed_ip(value) else self._in_nets(value)
        if self._allowed_ip(value):
            out: list[StoredIndicator] = []
        else:
            out = list(self._fetch(_IPV6 if ":" in key else _IPV4, key))
            if self._has_nets:
                out.extend(self._in_nets(value))
        if len(self._ip_hits) >= _CACHE:
            self._ip_hits.clear()
        self._ip_hits[value] = tuple(out)
        return out

    def _in_nets(self, value: str) -> list[StoredIndicator]:
        nets = self._nets
        try:
            key = nets.get_key(value)
        except ValueError:
            try:  # surrounding blanks, or an address pytricia does not parse
                key = nets.get_key(str(ipaddress.ip_address(value.strip())))
            except ValueError:
                return []
        return self._walk(key)

    def _walk(self, key: str | None) -> list[StoredIndicator]:
        """The rows of the network ``key`` and of every network containing it, most specific first."""
        nets, fetch = self._nets, self._fetch
        out: list[StoredIndicator] = []
        while key is not None:
            out.extend(fetch(_CIDR, nets[key]))
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
        listed: list[str] = []
        probe = name
        while True:
            if probe in domains:
                if probe is not name and not self._may_cover(probe):
                    break
                listed.append(probe)
            dot = probe.find(".")
            if dot < 0:
                break
            probe = probe[dot + 1 :]
        if not listed:
            return []
        if self.whitelist.why_domain(name) is not None or self.allow.why_domain(name) is not None:
            return []
        out: list[StoredIndicator] = []
        for probe in listed:
            out.extend(self._fetch(_DOMAIN, probe))
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
        canonical = value
        if value not in urls:
            try:
                canonical = normalise(_T.URL, value)
            except ParseError:
                return []
            if canonical not in urls:
                return []
        if self.whitelist.why_url(canonical) is not None or self.allow.why_url(canonical) is not None:
            return []
        return list(self._fetch(_URL, canonical))

    def hash(self, value: str) -> list[StoredIndicator]:
        """Rows for an MD5, SHA-1 or SHA-256 (any case)."""
        if value not in self._hashes:
            value = value.strip().lower()
            if len(value) not in _HASH_KINDS or value not in self._hashes:
                return []
        # A hit on the first probe means the value was already canonical (the index holds lower case).
        kind = _HASH_KINDS.get(len(value))
        if kind is None or self.whitelist.why_hash(value) is not None or self.allow.why_hash(value) is not None:
            return []
        return list(self._fetch(kind.value, value))

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
                listed = self._other[kind].get(canonical)
                if listed is None or self.allowed(canonical):
                    return []
                return list(self._fetch(listed, canonical))

    def _net(self, canonical: str) -> list[StoredIndicator]:
        """A network asked as such: the indicator rows for exactly that CIDR and the CIDRs containing it."""
        if not self._has_nets or self._allowed_ip(canonical):
            return []
        try:
            key = self._nets.get_key(canonical)
        except ValueError:
            return []
        return self._walk(key)

    def allowed(self, value: str) -> str | None:
        """Why ``value`` is known-benign (a whitelist indicator, a local allow entry, a warninglist), or None."""
        found = guess(value)
        if found is None:
            return None
        return self.whitelist.why_typed(*found) or self.allow.why_typed(*found)
