"""Allow lists: values known to be benign, and why (local entries and the MISP warninglists).

A hit on an allowed value is not a match: the matcher drops it and :meth:`Allowlist.why` says which list allowed it.
Two sources feed an allow list:

- local entries (:meth:`Allowlist.add`): an analyst's false-positive feedback, the company's own ranges;
- the MISP warninglists that the ``pymispwarninglists`` package ships (:meth:`Allowlist.default`), read from its
  ``list.json`` files (no network) and indexed once: a pytricia trie for the ``cidr`` lists, dicts for the
  ``string`` lists, and a suffix walk for the ``hostname`` lists (which, as in MISP, also match subdomains).

Not every warninglist is a reason to suppress a threat-intel hit. MISP shows them as *warnings*; cloudsoc drops the
hit, so :data:`EXCLUDED` leaves out the lists whose values are popular *with attackers* or merely popular: the two
top-1M popularity lists (1M rows each, and a domain's rank says nothing about its owner), dynamic DNS, URL
shorteners, link-in-bio and "living off trusted sites" services, IPFS gateways, parking, sinkholes (a hit on a
sinkhole means an infected host), VPN exit ranges, rentable compute (AWS, GCP, Azure, GitHub's runners,
Akamai/Linode, OVH: C2 servers live there), "what is my IP" services (malware uses them) and the substring/regex
lists (e-mail, phone numbers). Kept: public DNS resolvers, CDN edges (Cloudflare, Fastly, StackPath), vendor SaaS
ranges (Office 365, Gmail, Apple), research scanners, RFC special ranges, top-10k domains, known-benign hashes.

A ``hostname`` entry that is itself a public suffix (``appspot.com``, ``azurewebsites.net``, per the bundled Public
Suffix List incl. its private section) only matches exactly: anyone can register a subdomain of it. The
warninglists' domain and network entries do not allow URLs on those hosts (only exact URL entries and local entries
do): a listed URL on a popular or cloud host is specific intel.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Final

import orjson
import pytricia
import tldextract

from cloudsoc.errors import ParseError
from cloudsoc.intel.indicator import IndicatorType, guess, normalise

# MISP warninglists that cloudsoc does not use to suppress matches (see the module docstring).
EXCLUDED: Final = frozenset(
    {
        "tranco",
        "google-chrome-crux-1million",
        "dynamic-dns",
        "url-shortener",
        "link-in-bio",
        "lots-project",
        "public-ipfs-gateways",
        "parking-domain",
        "parking-domain-ns",
        "sinkholes",
        "vpn-ipv4",
        "vpn-ipv6",
        "whats-my-ip",
        "findip-host",
        "automated-malware-analysis",
        "microsoft-attack-simulator",
        "disposable-email",
        "common-contact-emails",
        "phone_numbers",
        # Compute that anyone can rent by the hour, with a dedicated address: C2 servers live there. On the real
        # feeds these lists would drop 1,287 Maltrail malware/malicious IPs in AWS alone, 2 Feodo C2s in Akamai's
        # (Linode's) ranges, and ~10k IPsum IPs. ``from_warninglists(exclude=...)`` can opt them back in.
        "amazon-aws",
        "google-gcp",
        "microsoft-azure",
        "microsoft-azure-china",
        "microsoft-azure-germany",
        "microsoft-azure-us-gov",
        "github",
        "akamai",
        "ovh-cluster",
    }
)
_IP_ATTRS: Final = frozenset({"ip-src", "ip-dst", "domain|ip", "ip-src|port", "ip-dst|port"})
_DOMAIN_ATTRS: Final = frozenset({"domain", "hostname", "domain|ip", "hostname|port"})
_URL_ATTRS: Final = frozenset({"url", "uri"})
_HASH_ATTRS: Final = frozenset({"md5", "sha1", "sha256", "filename|md5", "filename|sha1", "filename|sha256"})
_HASH_TYPES: Final = frozenset({IndicatorType.MD5, IndicatorType.SHA1, IndicatorType.SHA256})


def _warninglists_dir() -> Path:
    import pymispwarninglists

    return Path(pymispwarninglists.__file__).parent / "data" / "misp-warninglists" / "lists"


class Allowlist:
    """Known-benign IPs/CIDRs, domains (exact or with subdomains), URLs and hashes, each with its reason."""

    _default: ClassVar[Allowlist | None] = None
    _default_lock: ClassVar[threading.Lock] = threading.Lock()
    _psl: ClassVar[tldextract.TLDExtract | None] = None

    def __init__(self) -> None:
        self._nets = pytricia.PyTricia(128)  # address or network → reason (v4 and v6 in one trie)
        self._domains: dict[str, str] = {}  # exact names
        self._suffixes: dict[str, str] = {}  # names whose subdomains are allowed too
        self._urls: dict[str, str] = {}  # canonical URLs
        self._hashes: dict[str, str] = {}  # md5/sha1/sha256, lower case
        self.lists: list[str] = []  # names of the warninglists loaded
        # Local entries again, on their own: only they allow a URL by its host (see why_url).
        self._local: Allowlist | None = None

    @classmethod
    def empty(cls) -> Allowlist:
        return cls()

    @classmethod
    def default(cls) -> Allowlist:
        """The shipped MISP warninglists (minus :data:`EXCLUDED`), loaded on first use and shared afterwards.

        The shared instance is read-only by convention: to add local entries, use :meth:`from_warninglists`.
        """
        if cls._default is None:
            with cls._default_lock:
                if cls._default is None:
                    cls._default = cls.from_warninglists()
        return cls._default

    @classmethod
    def from_warninglists(
        cls, directory: Path | None = None, *, exclude: Iterable[str] = EXCLUDED, addresses_only: bool = False
    ) -> Allowlist:
        """A fresh allow list from the MISP warninglists in ``directory`` (default: the package's copy);
        ``addresses_only`` loads just the network lists (what a retro-hunt of addresses asks; half the time)."""
        allow = cls()
        skip = set(exclude)
        root = directory or _warninglists_dir()
        for path in sorted(root.glob("*/list.json")):
            doc = orjson.loads(path.read_bytes())
            if path.parent.name in skip or doc.get("name") in skip:
                continue
            if addresses_only and doc.get("type") != "cidr":
                continue
            if allow._load(doc, path.parent.name):
                allow.lists.append(path.parent.name)
        return allow

    # -- adding ---------------------------------------------------------------------------------------------

    def add(self, value: str, reason: str) -> None:
        """A local entry: an IP, a CIDR, a domain (with its subdomains), a URL or a hash; ParseError otherwise."""
        self._add(value, reason)
        if self.lists:  # warninglists loaded too: keep local entries apart for URL hosts
            if self._local is None:
                self._local = Allowlist()
            self._local._add(value, reason)

    def _add(self, value: str, reason: str) -> None:
        text = value.strip()
        if "/" in text and "://" not in text:
            try:
                net = ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ParseError(f"allow entry {value!r}: not an IP network") from None
            self._nets[net.compressed] = reason
            return
        found = guess(text)
        if found is None:
            raise ParseError(f"allow entry {value!r}: not an IP, CIDR, domain, URL or hash")
        kind, canonical = found
        match kind:
            case IndicatorType.IPV4 | IndicatorType.IPV6 | IndicatorType.CIDR:
                self._nets[canonical] = reason
            case IndicatorType.DOMAIN:
                self._suffixes[canonical] = reason
            case IndicatorType.URL:
                self._urls[canonical] = reason
            case IndicatorType.MD5 | IndicatorType.SHA1 | IndicatorType.SHA256:
                self._hashes[canonical] = reason
            case _:
                raise ParseError(f"allow entry {value!r}: a {kind} cannot be allowed")

    # -- asking ---------------------------------------------------------------------------------------------

    def why(self, value: str) -> str | None:
        """The list name or reason that allows ``value``, or None (also for values that are not indicators)."""
        found = guess(value)
        if found is None:
            return None
        return self.why_typed(*found)

    def why_typed(self, kind: IndicatorType, canonical: str) -> str | None:
        """:meth:`why` for a value already typed and normalised (what the matcher holds)."""
        match kind:
            case IndicatorType.IPV4 | IndicatorType.IPV6 | IndicatorType.CIDR:
                return self.why_ip(canonical)
            case IndicatorType.DOMAIN:
                return self.why_domain(canonical)
            case IndicatorType.URL:
                return self.why_url(canonical)
            case IndicatorType.MD5 | IndicatorType.SHA1 | IndicatorType.SHA256:
                return self._hashes.get(canonical)
            case _:
                return None

    def why_hash(self, value: str) -> str | None:
        """A lower-case MD5, SHA-1 or SHA-256."""
        return self._hashes.get(value)

    def why_ip(self, value: str) -> str | None:
        """An address (or network) inside an allowed network."""
        try:
            reason: str | None = self._nets.get(value)
        except ValueError:
            return None
        return reason

    def why_domain(self, name: str) -> str | None:
        """A normalised domain: exact entries, then the name and its parents against subdomain-matching entries."""
        reason = self._domains.get(name)
        if reason is not None:
            return reason
        suffixes = self._suffixes
        if not suffixes:
            return None
        while True:
            reason = suffixes.get(name)
            if reason is not None:
                return reason
            dot = name.find(".")
            if dot < 0:
                return None
            name = name[dot + 1 :]

    def why_url(self, url: str) -> str | None:
        """A URL: exact URL entries, then its host against *local* entries only.

        MISP also matches URLs against its hostname lists, but a URL a feed lists on a popular or cloud host
        (``docs.google.com/forms/…``, ``http://52.95.110.1/load.php``) is exactly the intel worth keeping, so the
        warninglists' domain and network entries do not allow URLs; an analyst's own domain or network does.
        """
        reason = self._urls.get(url)
        if reason is not None:
            return reason
        try:
            canonical = normalise(IndicatorType.URL, url)
        except ParseError:
            return None
        reason = self._urls.get(canonical)
        if reason is not None:
            return reason
        local = self._local if self.lists else self
        if local is None:
            return None
        host = canonical.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2]
        if host.startswith("["):
            return local.why_ip(host[1 : host.index("]")])
        host = host.rsplit(":", 1)[0]
        if not host.strip("0123456789."):
            return local.why_ip(host)
        return local.why_domain(host)

    def __len__(self) -> int:
        return len(self._nets) + len(self._domains) + len(self._suffixes) + len(self._urls) + len(self._hashes)

    # -- loading warninglists --------------------------------------------------------------------------------

    def _load(self, doc: dict[str, Any], name: str) -> bool:
        kind = doc.get("type")
        attrs = set(doc.get("matching_attributes") or ())
        entries = [str(e).strip() for e in doc.get("list", ()) if str(e).strip()]
        reason = f"warninglist {name}: {doc.get('name', name)}"
        if kind == "cidr" and attrs & _IP_ATTRS:
            for entry in entries:
                try:
                    net = ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    continue
                key = net.compressed
                if not self._nets.has_key(key):  # the first list (by name) that names a network keeps it
                    self._nets[key] = reason
            return True
        if kind == "string" and attrs & _HASH_ATTRS:
            for entry in entries:
                value = entry.lower()
                if len(value) in (32, 40, 64):
                    self._hashes.setdefault(value, reason)
            return True
        if kind in ("string", "hostname") and attrs & (_DOMAIN_ATTRS | _URL_ATTRS):
            psl = self._public_suffixes()
            for entry in entries:
                if "://" in entry:
                    with contextlib.suppress(ParseError):
                        self._urls.setdefault(normalise(IndicatorType.URL, entry), reason)
                    continue
                value = entry.lower().removeprefix("*.").strip(".")
                if not value or "/" in value:
                    continue
                if kind == "hostname" and psl(value).domain:
                    self._suffixes.setdefault(value, reason)
                else:
                    self._domains.setdefault(value, reason)
            return True
        return False

    @classmethod
    def _public_suffixes(cls) -> tldextract.TLDExtract:
        if cls._psl is None:
            cls._psl = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True)
        return cls._psl
