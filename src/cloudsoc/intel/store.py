"""The indicator store: every indicator from every source, in ``<home>/intel.db``.

SQLite in WAL mode, like the alert store, and for the same reason: feed syncs write while the daemon and
``cloudsoc intel lookup`` read, from different processes. One row per (type, value, source), so two feeds that
list the same IP keep their own confidence, intel types and dates, and revoking one leaves the other.

Nothing is deleted: an expired or revoked indicator stays queryable (an analyst asks "was this ever bad, and who
said so?") but :meth:`IndicatorStore.active` no longer yields it, so the matcher built from it stops matching.
"""

from __future__ import annotations

import operator
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, Final

import msgspec
import orjson

from cloudsoc.intel.expiry import ExpiryPolicy
from cloudsoc.intel.indicator import TLP, WHITELIST, Indicator, IndicatorType
from cloudsoc.storage.sqlite import SqliteStore

INTEL_FILE: Final = "intel.db"
_CACHE_MB: Final = 64
# Page cache (MiB) of a store a matcher reads hits from.
READ_CACHE_MB: Final = 2
# Rows per write transaction in a bulk upsert. A chunk's rows land all over the B-tree, so each commit writes most
# of the tree's pages to the WAL and checkpoints them (with fsyncs): 20 commits of 50k rows cost 2.2 s of a 1M-row
# import, 5 of 200k 1.0 s (measured). Small enough that a second writer waits ~1-2 s (readers never wait in WAL
# mode) and the chunk's parameter tuples (~300 bytes a row) stay ~60 MB.
_CHUNK: Final = 200_000
# Distinct intel_types/tags lists whose JSON is kept per import (feeds repeat a handful of them); bounded so that a
# feed with a unique tag per row does not grow it without limit.
_JSON_CACHE: Final = 4096
# Page cache (MiB) while a bulk upsert runs, back to the store's 64 MiB afterwards: each sorted chunk still lands
# all over the B-tree, and a cache holding most of a 1M-row tree (~170 MB) saves re-reading its pages per chunk.
_IMPORT_CACHE_MB: Final = 256

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS indicators (
    type TEXT NOT NULL,
    value TEXT NOT NULL,
    source TEXT NOT NULL,
    intel_types BLOB NOT NULL,
    confidence INTEGER NOT NULL,
    tlp TEXT,
    tags BLOB NOT NULL,
    description TEXT,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    valid_until TEXT,
    expires TEXT NOT NULL,
    revoked INTEGER NOT NULL,
    detect INTEGER NOT NULL,
    sightings INTEGER NOT NULL,
    false_positives INTEGER NOT NULL,
    updated TEXT NOT NULL,
    PRIMARY KEY (type, value, source)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS allow_entries (
    value TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    created TEXT NOT NULL
);
"""
# Times are stored as fixed-width UTC text (``2026-11-26T22:55:26Z``) so that SQL min()/max() and comparisons on
# them are chronological.
_COLUMNS: Final = (
    "type, value, source, intel_types, confidence, tlp, tags, description, first_seen, last_seen, valid_until, "
    "expires, revoked, detect, sightings, false_positives, updated"
)
# Optional text columns arrive as '' and become NULL in SQL: Python's sqlite3 binds None (and bytes) through its
# adapter look-up, which costs more than the other 14 parameters of a row together (~0.3 µs each).
_UPSERT: Final = f"""
INSERT INTO indicators ({_COLUMNS}) VALUES (?,?,?,?,?,nullif(?,''),?,nullif(?,''),?,?,nullif(?,''),?,?,?,?,?,?)
ON CONFLICT (type, value, source) DO UPDATE SET
    intel_types = excluded.intel_types,
    confidence = excluded.confidence,
    tlp = excluded.tlp,
    tags = excluded.tags,
    description = coalesce(excluded.description, description),
    first_seen = min(first_seen, excluded.first_seen),
    last_seen = max(last_seen, excluded.last_seen),
    valid_until = excluded.valid_until,
    expires = CASE WHEN excluded.valid_until IS NOT NULL THEN excluded.expires ELSE max(expires, excluded.expires) END,
    revoked = excluded.revoked,
    detect = excluded.detect,
    sightings = max(sightings, excluded.sightings),
    false_positives = max(false_positives, excluded.false_positives),
    updated = excluded.updated
"""
# intel_types and tags are JSON lists, written as text (rows from older versions hold the same JSON as a blob; both
# read back the same).
_EMPTY_LIST: Final = "[]"
# How ``whitelist`` appears in a row's intel_types JSON, for a test in SQL.
_WHITELIST_JSON: Final = orjson.dumps(WHITELIST).decode()
# Every type name, for `type IN (…) AND value IN (…)`: the primary key (type, value) then finds each value.
_ALL_TYPES: Final = ", ".join(f"'{t.value}'" for t in IndicatorType)


# A row's primary key (type, value, source), in C.
_key: Final = operator.itemgetter(0, 1, 2)


def _ts(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dt(text: str | None) -> datetime | None:
    # fromisoformat reads the trailing Z as UTC, ~30x faster than strptime: a matcher hit decodes five of these.
    return None if text is None else datetime.fromisoformat(text)


class StoredIndicator(msgspec.Struct, kw_only=True):
    """An indicator as stored: first/last seen filled in, with its computed expiry."""

    indicator: Indicator
    expires: datetime
    updated: datetime

    def active(self, now: datetime) -> bool:
        """Whether it may still match: not revoked and not expired."""
        return not self.indicator.revoked and now < self.expires


class IndicatorStore(SqliteStore):
    """Indicators in ``<home>/intel.db``; safe to open from several processes at once."""

    what = "indicator store"

    def __init__(self, path: Path, policy: ExpiryPolicy | None = None, *, cache_mb: int = _CACHE_MB) -> None:
        # Not durable (synchronous=NORMAL): in WAL mode a power cut can only lose the last transactions, never
        # corrupt the file, and a lost feed import is simply re-run at the next sync; FULL halves bulk-import
        # speed. 64 MiB of page cache: a bulk upsert revisits interior pages a lot. A matcher's store (reads a
        # few rows per hit, after one full scan) passes a small ``cache_mb``, so the scan does not stay resident.
        super().__init__(path, _SCHEMA, durable=False, cache_mb=cache_mb)
        self.policy = policy or ExpiryPolicy()

    # -- writing ----------------------------------------------------------------------------------------------

    def upsert(self, indicators: Iterable[Indicator], *, now: datetime | None = None) -> int:
        """Insert or refresh indicators; returns how many rows were written.

        A row seen again keeps its first_seen (the earlier one wins), moves last_seen forward, and takes the
        source's current confidence, types, tags and revocation. ``sightings``/``false_positives`` are the counts
        the source reports, so the larger of old and new is kept (a re-import does not double them).
        A missing first/last seen means "listed now".
        """
        stamp = _ts(now or datetime.now(UTC))
        rows = self._rows(indicators, stamp)
        written = 0
        self.conn.execute(f"PRAGMA cache_size=-{_IMPORT_CACHE_MB * 1024}")
        try:
            while chunk := list(islice(rows, _CHUNK)):
                written += self._write(chunk)
                # Dropped before the next chunk is built, so that two chunks are never alive at once.
                del chunk
        finally:
            self.conn.execute(f"PRAGMA cache_size=-{self._cache_mb * 1024}")
        return written

    def _write(self, chunk: list[tuple[Any, ...]]) -> int:
        # In primary-key order, each insert lands next to the previous one in the B-tree: the pages it touches
        # stay in cache and the WAL holds each page once, instead of a random page per row.
        chunk.sort(key=_key)
        with self.transaction() as conn:
            conn.executemany(_UPSERT, chunk)
        return len(chunk)

    def _rows(self, indicators: Iterable[Indicator], stamp: str) -> Iterator[tuple[Any, ...]]:
        # Feeds give many indicators the same dates; formatting and expiry arithmetic are cached per distinct input,
        # which is most of the cost of a million-row import otherwise.
        times: dict[datetime, str] = {}
        expiries: dict[tuple[str, str, datetime | None], str] = {}
        now = _dt(stamp)
        assert now is not None
        # The JSON of the few distinct lists a feed uses is encoded once and shared (encoding per row would also
        # keep a string per row alive for the whole chunk).
        encoded: dict[tuple[str, ...], str] = {}

        def encode(items: list[str]) -> str:
            key = tuple(items)
            text = encoded.get(key)
            if text is None:
                if len(encoded) >= _JSON_CACHE:
                    encoded.clear()
                text = encoded[key] = orjson.dumps(items).decode()
            return text

        for ind in indicators:
            seen = ind.last_seen
            last = stamp if seen is None else times.get(seen) or times.setdefault(seen, _ts(seen))
            seen = ind.first_seen
            if seen is None:
                first = stamp if stamp < last else last
            elif seen == ind.last_seen:
                first = last
            else:
                first = min(times.get(seen) or times.setdefault(seen, _ts(seen)), last)
            # _value_, not .value: Enum's value property runs Python code, a third of a µs per row.
            kind: str = ind.type._value_
            key = (kind, last, ind.valid_until)
            expires = expiries.get(key)
            if expires is None:
                expires = expiries[key] = _ts(self.policy.expires(ind, _dt(last) or now))
            yield (
                kind,
                ind.value,
                ind.source,
                encode(ind.intel_types) if ind.intel_types else _EMPTY_LIST,
                ind.confidence,
                "" if ind.tlp is None else ind.tlp.value,
                encode(ind.tags) if ind.tags else _EMPTY_LIST,
                ind.description or "",
                first,
                last,
                "" if ind.valid_until is None else _ts(ind.valid_until),
                expires,
                int(ind.revoked),
                int(ind.detect),
                ind.sightings,
                ind.false_positives,
                stamp,
            )

    def revoke(self, kind: IndicatorType, value: str, *, source: str | None = None) -> int:
        """Mark an indicator revoked (in one source, or in all); returns the number of rows changed."""
        sql = "UPDATE indicators SET revoked = 1, updated = ? WHERE type = ? AND value = ?"
        params: list[Any] = [_ts(datetime.now(UTC)), kind.value, value]
        if source is not None:
            sql += " AND source = ?"
            params.append(source)
        with self.transaction() as conn:
            return conn.execute(sql, params).rowcount

    def record_sighting(self, kind: IndicatorType, value: str, *, at: datetime, count: int = 1) -> int:
        """A local sighting (a match in our own events): counts it and refreshes last_seen and expiry."""
        rows = self.get(kind, value)
        with self.transaction() as conn:
            for row in rows:
                last = max(row.indicator.last_seen or at, at)
                conn.execute(
                    "UPDATE indicators SET sightings = sightings + ?, last_seen = ?, expires = ?, updated = ? "
                    "WHERE type = ? AND value = ? AND source = ?",
                    (
                        count,
                        _ts(last),
                        _ts(max(row.expires, self.policy.expires(row.indicator, last))),
                        _ts(datetime.now(UTC)),
                        kind.value,
                        value,
                        row.indicator.source,
                    ),
                )
        return len(rows)

    # -- reading ----------------------------------------------------------------------------------------------

    def get(self, kind: IndicatorType, value: str) -> list[StoredIndicator]:
        """Every source's row for one (normalised) value, revoked and expired ones included."""
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM indicators WHERE type = ? AND value = ? ORDER BY source", (kind.value, value)
        ).fetchall()
        return [self._row(r) for r in rows]

    def query(
        self,
        *,
        types: Sequence[IndicatorType] = (),
        source: str | None = None,
        active_at: datetime | None = None,
        limit: int | None = None,
        updated_since: datetime | None = None,
        intel_type: str | None = None,
    ) -> list[StoredIndicator]:
        """Rows filtered by type and source; with ``active_at``, only those still matching at that time; with
        ``updated_since``, only those an import wrote (added or refreshed) since then; with ``intel_type``, only
        those of that intel type (``whitelist`` …)."""
        return list(
            self._select(
                types=types,
                source=source,
                active_at=active_at,
                limit=limit,
                updated_since=updated_since,
                intel_type=intel_type,
            )
        )

    def active(self, now: datetime, *, types: Sequence[IndicatorType] = ()) -> Iterator[StoredIndicator]:
        """Every indicator that may match at ``now`` (what a matcher is built from), streamed."""
        return self._select(types=types, source=None, active_at=now, limit=None)

    def keys(self, now: datetime, *, only: Collection[str] | None = None) -> Iterator[tuple[str, str, str, bool]]:
        """What a matcher indexes, streamed: (type, value, source, is a whitelist indicator) of every indicator
        that may match at ``now``. Only these columns are read, so no row is decoded into an indicator.

        ``only``: just these values, plus every CIDR and whitelist row (what a look-up of a few values needs,
        read through the primary key instead of the whole table)."""
        sql = "SELECT type, value, source, instr(intel_types, ?) > 0 AS allow FROM indicators"
        params: list[Any] = [_WHITELIST_JSON]
        if only is None:
            sql += " WHERE revoked = 0 AND expires > ?"
            params.append(_ts(now))
        else:
            wanted = sorted(set(only))
            marks = ", ".join("?" * len(wanted)) or "NULL"
            sql = (
                f"SELECT t.type, t.value, t.source, instr(t.intel_types, ?) > 0 FROM indicators t WHERE "
                f"t.revoked = 0 AND t.expires > ? AND ((t.type IN ({_ALL_TYPES}) AND t.value IN ({marks})) "
                "OR t.type = 'cidr' OR instr(t.intel_types, ?) > 0)"
            )
            params = [_WHITELIST_JSON, _ts(now), *wanted, _WHITELIST_JSON]
        cur = self.conn.execute(sql, params)
        while batch := cur.fetchmany(10_000):
            yield from batch

    def matching(self, kind: IndicatorType, value: str, now: datetime) -> list[StoredIndicator]:
        """Every source's row for one (normalised) value that may match at ``now`` (what a matcher's hit shows)."""
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM indicators WHERE type = ? AND value = ? AND revoked = 0 AND expires > ? "
            "ORDER BY source",
            (kind.value, value, _ts(now)),
        ).fetchall()
        return [self._row(r) for r in rows]

    def false_positive(self, kind: IndicatorType, value: str, *, reason: str, actor: str) -> int:
        """Analyst feedback: ``value`` hit something benign. Every source's row is counted a false positive and
        its confidence halved (it still matches, quieter), and the value gets a local allow entry, so it stops
        raising alerts; returns the rows changed. Nothing is deleted: the feedback is kept and can be undone."""
        with self.transaction() as conn:
            changed = conn.execute(
                "UPDATE indicators SET false_positives = false_positives + 1, confidence = confidence / 2, "
                "updated = ? WHERE type = ? AND value = ?",
                (_ts(datetime.now(UTC)), kind.value, value),
            ).rowcount
            conn.execute(
                "INSERT INTO allow_entries VALUES (?,?,?,?) ON CONFLICT (value) DO UPDATE SET reason=excluded.reason, "
                "actor=excluded.actor, created=excluded.created",
                (value, reason, actor, _ts(datetime.now(UTC))),
            )
        return int(changed)

    def allow_entries(self) -> dict[str, str]:
        """Local allow entries: value → why (who said so)."""
        rows = self.conn.execute("SELECT value, reason, actor FROM allow_entries ORDER BY value").fetchall()
        return {str(v): f"local allow entry by {a}: {r}" for v, r, a in rows}

    def remove_allow(self, value: str) -> bool:
        with self.transaction() as conn:
            return bool(conn.execute("DELETE FROM allow_entries WHERE value = ?", (value,)).rowcount)

    def counts(self, *, active_at: datetime | None = None) -> dict[str, int]:
        """Rows per indicator type (all rows, or only active ones)."""
        sql = "SELECT type, count(*) FROM indicators"
        params: list[Any] = []
        if active_at is not None:
            sql += " WHERE revoked = 0 AND expires > ?"
            params.append(_ts(active_at))
        return {str(t): int(n) for t, n in self.conn.execute(sql + " GROUP BY type", params).fetchall()}

    def _select(
        self,
        *,
        types: Sequence[IndicatorType],
        source: str | None,
        active_at: datetime | None,
        limit: int | None,
        updated_since: datetime | None = None,
        intel_type: str | None = None,
    ) -> Iterator[StoredIndicator]:
        where, params = self._where(types, source, active_at, updated_since, intel_type)
        sql = f"SELECT {_COLUMNS} FROM indicators WHERE {where} ORDER BY type, value, source"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        # A cursor of its own, so that a caller streaming millions of rows does not hold them all.
        cur = self.conn.execute(sql, params)
        while batch := cur.fetchmany(10_000):
            for r in batch:
                yield self._row(r)

    def count(
        self, *, types: Sequence[IndicatorType] = (), source: str | None = None, active_at: datetime | None = None
    ) -> int:
        """How many rows :meth:`query` with the same filters would list (for paging)."""
        where, params = self._where(types, source, active_at, None, None)
        return int(self.conn.execute(f"SELECT count(*) FROM indicators WHERE {where}", params).fetchone()[0])

    @staticmethod
    def _where(
        types: Sequence[IndicatorType],
        source: str | None,
        active_at: datetime | None,
        updated_since: datetime | None,
        intel_type: str | None,
    ) -> tuple[str, list[Any]]:
        where = ["1=1"]
        params: list[Any] = []
        if types:
            where.append(f"type IN ({','.join('?' * len(types))})")
            params.extend(t.value for t in types)
        if source is not None:
            where.append("source = ?")
            params.append(source)
        if active_at is not None:
            where.append("revoked = 0 AND expires > ?")
            params.append(_ts(active_at))
        if updated_since is not None:
            where.append("updated >= ?")
            params.append(_ts(updated_since))
        if intel_type is not None:
            # intel_types is a JSON list written by orjson: the quoted name is an exact element match.
            where.append("instr(CAST(intel_types AS TEXT), ?) > 0")
            params.append(orjson.dumps(intel_type).decode())
        return " AND ".join(where), params

    @staticmethod
    def _row(r: tuple[Any, ...]) -> StoredIndicator:
        return StoredIndicator(
            indicator=Indicator(
                type=IndicatorType(r[0]),
                value=r[1],
                source=r[2],
                intel_types=orjson.loads(r[3]),
                confidence=r[4],
                tlp=None if r[5] is None else TLP(r[5]),
                tags=orjson.loads(r[6]),
                description=r[7],
                first_seen=_dt(r[8]),
                last_seen=_dt(r[9]),
                valid_until=_dt(r[10]),
                revoked=bool(r[12]),
                detect=bool(r[13]),
                sightings=r[14],
                false_positives=r[15],
            ),
            expires=_dt(r[11]) or datetime.min.replace(tzinfo=UTC),
            updated=_dt(r[16]) or datetime.min.replace(tzinfo=UTC),
        )
