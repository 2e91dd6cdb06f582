"""Whois answers cached with a TTL, and fetched off the hot path.

Registries rate-limit whois and an answer changes rarely, so every answer (also "unknown": offline, refused) is
kept in ``<home>/whois.db`` until its TTL runs out; unknown answers get a short TTL so a network that comes back
is used soon. The pipeline never queries whois itself: an enricher that meets a domain indicator asks the cache
and, on a miss, adds the domain to a wanted list; the daemon fetches wanted domains in a background chore
(:meth:`WhoisService.fetch_wanted`). The CLI (``intel lookup``) may fetch in the foreground: a person is waiting.

The cache is its own file, not a table of ``intel.db``: the enrichers rebuild their indexes when ``intel.db``
changes, and a whois answer is no reason to.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import msgspec

from cloudsoc.intel.whois import WhoisClient, WhoisRecord
from cloudsoc.storage.sqlite import SqliteStore

WHOIS_FILE: Final = "whois.db"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS whois (
    domain TEXT PRIMARY KEY, state TEXT NOT NULL, record BLOB NOT NULL, fetched TEXT NOT NULL, expires TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS wanted (domain TEXT PRIMARY KEY, asked TEXT NOT NULL);
"""
_decoder: Final = msgspec.json.Decoder(WhoisRecord)


def _ts(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class WhoisCache(SqliteStore):
    """Whois records by registered domain, each with the time it goes stale, plus the domains wanted next."""

    what = "whois cache"

    def __init__(self, path: Path) -> None:
        # Not durable: a lost answer is fetched again.
        super().__init__(path, _SCHEMA, durable=False)

    @classmethod
    def beside(cls, intel_path: Path) -> WhoisCache:
        """The cache of the home that holds this indicator store."""
        return cls(intel_path.parent / WHOIS_FILE)

    def get(self, domain: str, *, now: datetime, stale: bool = False) -> WhoisRecord | None:
        """The cached record; a stale one only when asked (better than nothing while a fetch is pending)."""
        row = self.conn.execute("SELECT record, expires FROM whois WHERE domain = ?", [domain]).fetchone()
        if row is None or (not stale and row[1] <= _ts(now)):
            return None
        return _decoder.decode(row[0])

    def put(self, record: WhoisRecord, *, ttl: timedelta) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO whois (domain, state, record, fetched, expires) VALUES (?, ?, ?, ?, ?)",
                [
                    record.domain,
                    record.state,
                    msgspec.json.encode(record),
                    _ts(record.fetched),
                    _ts(record.fetched + ttl),
                ],
            )
            conn.execute("DELETE FROM wanted WHERE domain = ?", [record.domain])

    def want(self, domains: Iterable[str], *, now: datetime) -> None:
        """Ask for a fetch (by the daemon's whois chore); asking twice is one request."""
        rows = [(d, _ts(now)) for d in domains]
        if rows:
            with self.transaction() as conn:
                conn.executemany("INSERT OR IGNORE INTO wanted (domain, asked) VALUES (?, ?)", rows)

    def wanted(self, limit: int) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT domain FROM wanted ORDER BY asked LIMIT ?", [limit])]

    def unwant(self, domain: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM wanted WHERE domain = ?", [domain])

    def counts(self) -> dict[str, int]:
        out = dict(self.conn.execute("SELECT state, count(*) FROM whois GROUP BY state").fetchall())
        out["wanted"] = self.conn.execute("SELECT count(*) FROM wanted").fetchone()[0]
        return out


class WhoisService:
    """Cache first, the whois client on a miss. ``ttl``: how long an answer is trusted; ``unknown_ttl``: how
    long to wait before asking again after no answer."""

    def __init__(
        self,
        cache: WhoisCache,
        client: WhoisClient,
        *,
        ttl: timedelta = timedelta(days=7),
        unknown_ttl: timedelta = timedelta(hours=1),
    ) -> None:
        self.cache = cache
        self.client = client
        self.ttl = ttl
        self.unknown_ttl = unknown_ttl

    def lookup(self, domain: str, *, now: datetime | None = None, fetch: bool = True) -> WhoisRecord | None:
        """The record for a registered domain: cached, else fetched (when ``fetch``), else None."""
        now = now or datetime.now(UTC)
        cached = self.cache.get(domain, now=now)
        if cached is not None or not fetch:
            return cached
        return self._fetch(domain, now)

    def _fetch(self, domain: str, now: datetime) -> WhoisRecord:
        record = self.client.lookup(domain, now=now)
        self.cache.put(record, ttl=self.unknown_ttl if record.state == "unknown" else self.ttl)
        return record

    def fetch_wanted(self, *, limit: int = 20, now: datetime | None = None) -> int:
        """Fetch up to ``limit`` wanted domains (the daemon's chore); returns how many were fetched."""
        now = now or datetime.now(UTC)
        fetched = 0
        for domain in self.cache.wanted(limit):
            if self.cache.get(domain, now=now) is not None:
                self.cache.unwant(domain)  # answered meanwhile (by `intel lookup`)
                continue
            self._fetch(domain, now)
            fetched += 1
        return fetched
