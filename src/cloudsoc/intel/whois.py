"""Whois context for domains: who registered a name, when, through whom, and when it expires.

A domain registered last week that shows up in a CloudTrail call or a DNS log is worth a second look; an analyst
deciding whether an indicator is a false positive wants the registrant. This module has three layers:

- :func:`parse_whois` (pure): a raw whois answer → the fields python-whois names (``registrar``,
  ``creation_date``, ``name_servers``, …). python-whois knows the layout of ~180 registries; on top of it sit a few
  corrections for answers its 0.9.6 release reads wrongly (a date it cannot parse, a TLD parser that misses the
  ICANN labels its registry now uses, day-first dotted dates). They are generic where they can be, so they also
  help registries nobody has tested.
- :class:`WhoisRecord`: the product's view of one domain (single dates, registrant, name servers) and whether the
  answer is known at all: offline, whois degrades to ``unknown`` and never raises into the caller.
- :class:`WhoisClient`: one query over TCP port 43 (python-whois picks the registry's server and follows
  referrals), or to a fixed ``host:port`` (a company's whois proxy, a test server).

Caching and fetching off the hot path live in :mod:`cloudsoc.intel.whois_cache`.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Final, Literal

import msgspec
import tldextract
import whois.parser as whois_parser
from whois.whois import NICClient

from cloudsoc.errors import CloudsocError

# What python-whois names the fields the product shows.
FIELDS: Final = (
    "domain_name",
    "registrar",
    "registrar_url",
    "creation_date",
    "updated_date",
    "expiration_date",
    "status",
    "name_servers",
    "emails",
    "name",
    "org",
    "country",
)
_DATE_FIELDS: Final = ("creation_date", "updated_date", "expiration_date")

# Labels the registries of some TLDs use for the domain's own dates, where python-whois 0.9.6 reads another
# line (a contact handle's `created:` for .ar) or none (.il's `assigned:`).
_TLD_LABELS: Final[dict[str, dict[str, str]]] = {
    "ar": {"creation_date": r"registered: *(.+)"},
    "il": {"creation_date": r"assigned: *(.+)"},
    "kg": {"expiration_date": r"Record expires on:? *(.+)"},
}
# Day-first dates written with dots (26.03.2008): nobody writes month.day.year, but dateutil reads 11.02.2025 as
# November the 2nd unless told.
_DOTTED_DAY_FIRST: Final = re.compile(r"^\d{1,2}\.\d{1,2}\.\d{4}\b")
# `(GMT+0:00)` after a date (.kz) → `+00:00`.
_GMT_OFFSET: Final = re.compile(r"\s*\(GMT([+-])(\d{1,2}):(\d{2})\)\s*$")
_NOT_FOUND: Final = re.compile(
    r"^\s*(no match|not found|no entries found|no data found|domain not found|no object found|"
    r"status:\s*free|status:\s*available|the queried object does not exist)",
    re.IGNORECASE | re.MULTILINE,
)

_original_cast_date: Callable[..., Any] = whois_parser.cast_date
_parse_lock = threading.Lock()


def _tolerant_cast_date(value: str, dayfirst: bool = False, yearfirst: bool = False) -> Any:
    """python-whois's date casting, made to read what it misses and to give up quietly (None) instead of failing
    the whole answer over one odd date."""
    text = value.strip().lstrip(":").strip()
    text = _GMT_OFFSET.sub(lambda m: f" {m[1]}{int(m[2]):02d}:{m[3]}", text)
    if _DOTTED_DAY_FIRST.match(text):
        dayfirst = True
    try:
        return _original_cast_date(text, dayfirst=dayfirst, yearfirst=yearfirst)
    except (whois_parser.WhoisUnknownDateFormatError, ValueError, OverflowError):
        return None


def _entry(domain: str, raw: str) -> dict[str, Any]:
    # python-whois casts dates through a module-level function; it is swapped only while we parse (under a lock,
    # so a caller of python-whois elsewhere in the process never sees it).
    with _parse_lock:
        whois_parser.cast_date = _tolerant_cast_date
        try:
            entry = whois_parser.WhoisEntry.load(domain, raw)
            parsed = dict(entry)
            dayfirst = bool(getattr(entry, "dayfirst", False))
            if not any(parsed.get(k) for k in _DATE_FIELDS):
                # The registry's own parser found no date at all: its layout has changed, most likely to the ICANN
                # labels most registries use now.
                missing = {k: r for k, r in whois_parser.WhoisEntry._regex.items() if parsed.get(k) is None}
                generic = whois_parser.WhoisEntry(domain, raw, missing)
                if any(generic.get(k) for k in _DATE_FIELDS):  # the ICANN layout is there, not a stray label
                    parsed.update({k: v for k, v in generic.items() if v is not None})
            labels = _TLD_LABELS.get(domain.rsplit(".", 1)[-1].lower())
            if labels:
                fixed = whois_parser.WhoisEntry.__new__(whois_parser.WhoisEntry)
                fixed.dayfirst = dayfirst
                whois_parser.WhoisEntry.__init__(fixed, domain, raw, labels)
                parsed.update({k: v for k, v in fixed.items() if v is not None})
        finally:
            whois_parser.cast_date = _original_cast_date
    return parsed


def parse_whois(domain: str, raw: str) -> dict[str, Any]:
    """The fields of a raw whois answer (python-whois names and shapes: a value, a list when the answer repeats
    a field, or None). Raises :class:`WhoisError` when the answer says the domain is not registered."""
    try:
        parsed = _entry(domain, raw)
    except whois_parser.WhoisDomainNotFoundError:
        raise WhoisError(f"{domain}: the registry says it is not registered") from None
    fields = {k: parsed.get(k) for k in FIELDS}
    servers = fields["name_servers"]
    if isinstance(servers, list):
        # Some registry layouts (.nl) make python-whois pick up neighbouring labels as servers: keep host names.
        hosts = [n for n in servers if isinstance(n, str) and "." in n]
        fields["name_servers"] = hosts if len(hosts) > 1 else (hosts[0] if hosts else None)
    if not any(fields[k] for k in ("registrar", "creation_date", "name_servers")) and _NOT_FOUND.search(raw):
        raise WhoisError(f"{domain}: the registry says it is not registered")
    return fields


class WhoisError(CloudsocError):
    """A whois answer cannot be had (no answer, not registered)."""


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        text = str(item).strip()
        if text and text.lower() not in (o.lower() for o in out):
            out.append(text)
    return out


def _dates(value: Any) -> list[datetime]:
    items = value if isinstance(value, list) else [value]
    return [d if d.tzinfo else d.replace(tzinfo=UTC) for d in items if isinstance(d, datetime)]


Known = Literal["known", "not_registered", "unknown"]


class WhoisRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What whois says about a registered domain; ``state`` ``unknown`` (offline, no answer) carries the reason."""

    domain: str
    state: Known
    fetched: datetime
    registrar: str | None = None
    registrar_url: str | None = None
    registrant_name: str | None = None
    registrant_org: str | None = None
    registrant_country: str | None = None
    emails: list[str] = msgspec.field(default_factory=list)
    created: datetime | None = None
    updated: datetime | None = None
    expires: datetime | None = None
    name_servers: list[str] = msgspec.field(default_factory=list)
    status: list[str] = msgspec.field(default_factory=list)
    reason: str | None = None

    @classmethod
    def from_answer(cls, domain: str, raw: str, *, fetched: datetime) -> WhoisRecord:
        """Parse a raw answer; a refusal or an unparsable answer is a record too (never an exception)."""
        try:
            fields = parse_whois(domain, raw)
        except WhoisError as exc:
            return cls(domain=domain, state="not_registered", fetched=fetched, reason=str(exc))
        created, updated, expires = (_dates(fields[k]) for k in _DATE_FIELDS)
        return cls(
            domain=domain,
            state="known",
            fetched=fetched,
            registrar=_first(fields["registrar"]),
            registrar_url=_first(fields["registrar_url"]),
            registrant_name=_first(fields["name"]),
            registrant_org=_first(fields["org"]),
            registrant_country=_first(fields["country"]),
            emails=_strings(fields["emails"]),
            # A registry that repeats a date lists the domain's history: it was created first, updated last.
            created=min(created, default=None),
            updated=max(updated, default=None),
            expires=min(expires, default=None),
            # Some registries put all servers on one line, or one per line under one label.
            name_servers=_strings([n.lower().rstrip(".") for n in " ".join(_strings(fields["name_servers"])).split()]),
            status=_strings(fields["status"]),
        )

    @classmethod
    def unknown(cls, domain: str, reason: str, *, fetched: datetime) -> WhoisRecord:
        return cls(domain=domain, state="unknown", fetched=fetched, reason=reason)

    def age_days(self, now: datetime) -> int | None:
        """Days since registration (a newly registered domain is a classic phishing and C2 signal)."""
        return (now - self.created).days if self.created is not None else None

    def summary(self) -> dict[str, Any]:
        """The fields worth showing beside an indicator (ECS-style names, ISO times)."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return {k: v for k, v in out.items() if v not in (None, [])}


_psl: tldextract.TLDExtract | None = None


def registered_domain(name: str) -> str | None:
    """The name a registry answers for (``www.example.co.uk`` → ``example.co.uk``); None for an IP or a bare
    suffix. Offline: the public suffix list shipped with tldextract."""
    global _psl
    if _psl is None:
        _psl = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    parts = _psl(name.strip().rstrip(".").lower())
    return parts.top_domain_under_public_suffix or None


class WhoisClient:
    """One whois query. ``server`` (``host`` or ``host:port``) asks that server only; unset, python-whois
    chooses the registry's server (IANA when it does not know the TLD) and follows referrals to the registrar."""

    def __init__(self, server: str | None = None, *, timeout_secs: float = 10.0) -> None:
        self.server = server
        self.timeout_secs = timeout_secs

    def query(self, domain: str) -> str:
        """The raw answer; :class:`WhoisError` says why there is none (no network, refused, timed out)."""
        try:
            if self.server:
                host, _, port = self.server.rpartition(":") if ":" in self.server else (self.server, "", "43")
                return self._ask(host, int(port or 43), domain)
            answer: str = NICClient().whois_lookup(
                None,
                domain,
                NICClient.WHOIS_RECURSE,
                quiet=True,
                ignore_socket_errors=False,
                timeout=int(self.timeout_secs),
            )
            return answer
        except (OSError, ValueError) as exc:
            raise WhoisError(f"{domain}: no answer from the whois server ({type(exc).__name__}: {exc})") from None

    def _ask(self, host: str, port: int, domain: str) -> str:
        chunks: list[bytes] = []
        with socket.create_connection((host, port), timeout=self.timeout_secs) as conn:
            conn.sendall(domain.encode("idna") + b"\r\n")
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "replace")

    def lookup(self, domain: str, *, now: datetime | None = None) -> WhoisRecord:
        """Query and parse; never raises: no answer is an ``unknown`` record with the reason."""
        now = now or datetime.now(UTC)
        try:
            raw = self.query(domain)
        except WhoisError as exc:
            return WhoisRecord.unknown(domain, str(exc), fetched=now)
        if not raw.strip():
            return WhoisRecord.unknown(domain, f"{domain}: empty answer from the whois server", fetched=now)
        return WhoisRecord.from_answer(domain, raw, fetched=now)


def domains_of(values: Iterable[str]) -> list[str]:
    """The registered domains behind names and URLs, each once, in order."""
    out: list[str] = []
    for value in values:
        host = value.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] if "://" in value else value
        reg = registered_domain(host)
        if reg and reg not in out:
            out.append(reg)
    return out
