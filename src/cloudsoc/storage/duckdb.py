"""DuckDB, the embedded event store: one file, written only in Arrow batches.

Core ECS fields are typed columns (see :mod:`cloudsoc.storage.columns`), the full document is kept as JSON.
Events, dead letters and file checkpoints of one batch are committed in one transaction, so a crash at any
point either keeps a file's events *and* its checkpoint, or neither: a restart re-reads the file and stores
each event exactly once. Duplicates (CloudTrail delivers at least once) are dropped by (provider, event id),
looked up only in the batch's own time range so the check stays cheap as the table grows.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from cloudsoc.errors import StorageError, StoreLockedError
from cloudsoc.event import DeadLetter, Event, Origin
from cloudsoc.storage.base import Checkpoint, EncodedEvents, SearchResult, StoredDeadLetter, WriteResult
from cloudsoc.storage.columns import COLUMNS, DOC, INGESTED, SOURCE_IP_NUM
from cloudsoc.storage.query import Query


def _json_path(field: str) -> str:
    return "$." + ".".join(f'"{part}"' for part in field.split("."))


# Extract every typed column from the document in one JSON parse per event.
_PATHS = "[" + ", ".join(f"'{_json_path(field)}'" for field in COLUMNS) + "]"
_SELECTS = ", ".join(
    ("CAST(CAST(v[1] AS TIMESTAMPTZ) AS TIMESTAMP) AS ts" if col == "ts" else f"v[{i}] AS {col}")
    for i, (col, _typ) in enumerate(COLUMNS.values(), start=1)
)
# source.ip as a number: IPv4 by arithmetic in SQL, IPv6 (rare) through a Python function.
_IP_NUM = """CASE
    WHEN source_ip IS NULL THEN NULL
    WHEN contains(source_ip, ':') THEN TRY_CAST(cloudsoc_ip6_number(source_ip) AS UHUGEINT)
    ELSE TRY_CAST(281470681743360
        + (TRY_CAST(split_part(source_ip, '.', 1) AS UBIGINT) << 24)
        + (TRY_CAST(split_part(source_ip, '.', 2) AS UBIGINT) << 16)
        + (TRY_CAST(split_part(source_ip, '.', 3) AS UBIGINT) << 8)
        + TRY_CAST(split_part(source_ip, '.', 4) AS UBIGINT) AS UHUGEINT) END"""
_COLS = ", ".join(col for col, _typ in COLUMNS.values())
_EPOCH = "1970-01-01T00:00:00Z"
# One statement: extract the typed columns, drop duplicates inside the batch, then drop events already stored.
# The duplicate look-up is limited to the batch's own time range (constants, so DuckDB prunes by zone maps
# and the check stays cheap as the table grows).
_INSERT_SQL = f"""INSERT INTO events
    SELECT {_COLS}, {_IP_NUM}, doc, CAST(now() AS TIMESTAMP) FROM (
        SELECT {_SELECTS}, doc FROM (SELECT json_extract_string(doc, {_PATHS}) AS v, doc FROM incoming)
        QUALIFY row_number() OVER (PARTITION BY cloud_provider, event_id) = 1
    ) b
    WHERE NOT EXISTS (
        SELECT 1 FROM events e
        WHERE e.ts BETWEEN CAST(CAST(? AS TIMESTAMPTZ) AS TIMESTAMP) AND CAST(CAST(? AS TIMESTAMPTZ) AS TIMESTAMP)
          AND e.event_id = b.event_id AND e.cloud_provider IS NOT DISTINCT FROM b.cloud_provider)
    ORDER BY ts"""


def _ip6_number(ip: str) -> str | None:
    try:
        return str(int(ipaddress.ip_address(ip)))
    except ValueError:
        return None


class DuckdbStorage:
    """The embedded store. One writer process at a time (DuckDB's file lock); readers open it read-only."""

    name = "duckdb"

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool = False,
        max_event_bytes: int = 1_048_576,
        threads: int | None = None,
        memory_limit_mb: int | None = None,
    ) -> None:
        self.path = path
        self.read_only = read_only
        self.max_event_bytes = max_event_bytes
        self._lock = threading.Lock()
        if read_only and not path.exists():
            raise StorageError(f"no event store at {path}: ingest something first (`cloudsoc ingest PATH`)")
        path.parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {}
        if threads:
            config["threads"] = threads
        if memory_limit_mb:
            config["memory_limit"] = f"{memory_limit_mb}MB"
        try:
            self.con = duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreLockedError(
                    f"the event store {path} is in use by another cloudsoc process (a running `cloudsoc run` or "
                    "ingest); stop it first, or query it through that process"
                ) from None
            raise StorageError(f"cannot open the event store {path}: {exc}") from None
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.create_function("cloudsoc_ip6_number", _ip6_number, ["VARCHAR"], "VARCHAR", side_effects=False)
        if not read_only:
            self._create()

    # -- schema -------------------------------------------------------------------------------------------
    def _create(self) -> None:
        cols = [f"{col} {typ}" for col, typ in COLUMNS.values()]
        cols += [" ".join(SOURCE_IP_NUM), " ".join(DOC), " ".join(INGESTED)]
        self.con.execute(f"CREATE TABLE IF NOT EXISTS events ({', '.join(cols)})")
        self.con.execute("CREATE SEQUENCE IF NOT EXISTS dead_letter_ids")
        self.con.execute(
            """CREATE TABLE IF NOT EXISTS dead_letters (
                id BIGINT DEFAULT nextval('dead_letter_ids') PRIMARY KEY, received TIMESTAMP, input VARCHAR,
                path VARCHAR, idx BIGINT, "offset" BIGINT, parser VARCHAR, reason VARCHAR, raw BLOB,
                replayed BOOLEAN DEFAULT false)"""
        )
        self.con.execute(
            """CREATE TABLE IF NOT EXISTS checkpoints (
                input VARCHAR, path VARCHAR, size BIGINT, mtime_ns BIGINT, records BIGINT, status VARCHAR,
                updated TIMESTAMP, PRIMARY KEY (input, path))"""
        )

    # -- writing ------------------------------------------------------------------------------------------
    def encode(self, events: Sequence[Event], dead: list[DeadLetter]) -> EncodedEvents:
        """Serialise documents for :meth:`write`; oversized or unserialisable ones become dead letters.

        The typed columns are extracted from these bytes by DuckDB itself (vectorised, outside the GIL).
        """
        docs: list[bytes] = []
        max_bytes = self.max_event_bytes
        dumps = orjson.dumps
        lo = hi = ""
        for ev in events:
            ts = ev.fields.get("@timestamp")
            if isinstance(ts, str):
                # Parsers write one canonical ISO-8601 UTC form, so text order is time order.
                if not lo or ts < lo:
                    lo = ts
                if ts > hi:
                    hi = ts
            try:
                blob = dumps(ev.fields)
            except TypeError as exc:
                reason = f"not serialisable: {exc}"
                dead.append(DeadLetter(raw=repr(ev.fields).encode(), reason=reason, origin=ev.origin))
                continue
            if len(blob) > max_bytes:
                reason = f"event is {len(blob)} bytes, over storage.max_event_bytes ({max_bytes})"
                dead.append(DeadLetter(raw=blob, reason=reason, origin=ev.origin))
                continue
            docs.append(blob)
        return EncodedEvents(docs, lo, hi)

    def write(
        self, events: Sequence[Event], dead_letters: Sequence[DeadLetter], checkpoints: Sequence[Checkpoint]
    ) -> WriteResult:
        dead = list(dead_letters)
        encoded = self.encode(events, dead)
        return self.write_encoded(encoded, dead, checkpoints)

    def write_encoded(
        self, encoded: EncodedEvents, dead_letters: Sequence[DeadLetter], checkpoints: Sequence[Checkpoint]
    ) -> WriteResult:
        result = WriteResult()
        table = pa.table({DOC[0]: pa.array(encoded.docs, type=pa.string())}) if encoded.docs else None
        with self._lock:
            self.con.execute("BEGIN TRANSACTION")
            try:
                if table is not None:
                    result.stored = self._insert_events(table, encoded.ts_min, encoded.ts_max)
                    result.duplicates = table.num_rows - result.stored
                if dead_letters:
                    result.dead_letters = self._insert_dead(dead_letters)
                if checkpoints:
                    self._upsert_checkpoints(checkpoints)
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
        return result

    def _insert_events(self, table: pa.Table, ts_min: str, ts_max: str) -> int:
        con = self.con
        con.register("incoming", table)
        try:
            row = con.execute(_INSERT_SQL, [ts_min or _EPOCH, ts_max or _EPOCH]).fetchone()
        finally:
            con.unregister("incoming")
        return int(row[0]) if row else 0

    def _insert_dead(self, dead: Sequence[DeadLetter]) -> int:
        table = pa.table(
            {
                "input": pa.array([d.origin.input for d in dead], pa.string()),
                "path": pa.array([d.origin.path for d in dead], pa.string()),
                "idx": pa.array([d.origin.index for d in dead], pa.int64()),
                "off": pa.array([d.origin.offset for d in dead], pa.int64()),
                "parser": pa.array([d.parser for d in dead], pa.string()),
                "reason": pa.array([d.reason for d in dead], pa.string()),
                "raw": pa.array([d.raw for d in dead], pa.binary()),
            }
        )
        self.con.register("incoming_dead", table)
        try:
            # The same file read again (it changed, or a replay failed again) must not duplicate its dead letters.
            row = self.con.execute(
                """INSERT INTO dead_letters (received, input, path, idx, "offset", parser, reason, raw)
                SELECT CAST(now() AS TIMESTAMP), d.input, d.path, d.idx, d.off, d.parser, d.reason, d.raw
                FROM incoming_dead d WHERE NOT EXISTS (
                    SELECT 1 FROM dead_letters x WHERE x.replayed = false AND x.input = d.input
                    AND x.path = d.path AND x.idx = d.idx AND x."offset" = d.off AND x.raw = d.raw)"""
            ).fetchone()
        finally:
            self.con.unregister("incoming_dead")
        return int(row[0]) if row else 0

    def _upsert_checkpoints(self, checkpoints: Sequence[Checkpoint]) -> None:
        table = pa.table(
            {
                "input": pa.array([c.input for c in checkpoints], pa.string()),
                "path": pa.array([c.path for c in checkpoints], pa.string()),
                "size": pa.array([c.size for c in checkpoints], pa.int64()),
                "mtime_ns": pa.array([c.mtime_ns for c in checkpoints], pa.int64()),
                "records": pa.array([c.records for c in checkpoints], pa.int64()),
                "status": pa.array([c.status for c in checkpoints], pa.string()),
            }
        )
        self.con.register("incoming_cp", table)
        try:
            self.con.execute(
                """INSERT OR REPLACE INTO checkpoints
                SELECT input, path, size, mtime_ns, records, status, CAST(now() AS TIMESTAMP) FROM incoming_cp"""
            )
        finally:
            self.con.unregister("incoming_cp")

    # -- reading ------------------------------------------------------------------------------------------
    def checkpoints(self, input_name: str) -> dict[str, Checkpoint]:
        with self._lock:
            rows = self.con.execute(
                "SELECT input, path, size, mtime_ns, records, status FROM checkpoints WHERE input = ?",
                [input_name],
            ).fetchall()
        return {r[1]: Checkpoint(*r) for r in rows}

    def search(
        self,
        query: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> SearchResult:
        started = time.perf_counter()
        where, params = Query.parse(query).to_sql()
        clauses = [f"({where})"]
        range_params: list[Any] = []
        if since is not None:
            clauses.insert(0, "ts >= ?")
            range_params.append(_naive_utc(since))
        if until is not None:
            clauses.insert(len(range_params), "ts < ?")
            range_params.append(_naive_utc(until))
        sql_where = " AND ".join(clauses)
        all_params = range_params + list(params)
        with self._lock:
            rows = self.con.execute(
                f"SELECT CAST(doc AS VARCHAR) FROM events WHERE {sql_where} ORDER BY ts DESC LIMIT ?",
                [*all_params, limit],
            ).fetchall()
            if len(rows) < limit:
                total = len(rows)
            else:
                count = self.con.execute(f"SELECT count(*) FROM events WHERE {sql_where}", all_params).fetchone()
                total = int(count[0]) if count else 0
        return SearchResult(
            events=[orjson.loads(r[0]) for r in rows], total=total, seconds=time.perf_counter() - started
        )

    def dead_letters(self, *, limit: int = 100, include_replayed: bool = False) -> list[StoredDeadLetter]:
        where = "" if include_replayed else "WHERE replayed = false"
        with self._lock:
            rows = self.con.execute(
                f"""SELECT id, received, input, path, idx, "offset", parser, reason, raw, replayed
                FROM dead_letters {where} ORDER BY id LIMIT ?""",
                [limit],
            ).fetchall()
        return [StoredDeadLetter(*r) for r in rows]

    def dead_letter(self, dead_letter_id: int) -> StoredDeadLetter | None:
        with self._lock:
            row = self.con.execute(
                """SELECT id, received, input, path, idx, "offset", parser, reason, raw, replayed
                FROM dead_letters WHERE id = ?""",
                [dead_letter_id],
            ).fetchone()
        return StoredDeadLetter(*row) if row else None

    def mark_replayed(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        with self._lock:
            self.con.execute("UPDATE dead_letters SET replayed = true WHERE list_contains(?, id)", [list(ids)])

    def apply_retention(self, days: int) -> int:
        cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=days)
        with self._lock:
            row = self.con.execute("DELETE FROM events WHERE ts < ?", [cutoff]).fetchone()
        return int(row[0]) if row else 0

    def stats(self) -> dict[str, Any]:
        with self._lock:
            events = self.con.execute("SELECT count(*), min(ts), max(ts) FROM events").fetchone() or (
                0,
                None,
                None,
            )
            by_provider = dict(
                self.con.execute(
                    "SELECT coalesce(cloud_provider, '-'), count(*) FROM events GROUP BY 1 ORDER BY 2 DESC"
                ).fetchall()
            )
            dead = self.con.execute("SELECT count(*) FROM dead_letters WHERE replayed = false").fetchone()
            files = self.con.execute("SELECT count(*) FROM checkpoints").fetchone()
        return {
            "events": int(events[0]),
            "first": events[1],
            "last": events[2],
            "by_provider": by_provider,
            "dead_letters": int(dead[0]) if dead else 0,
            "files": int(files[0]) if files else 0,
        }

    def close(self) -> None:
        with self._lock:
            self.con.close()


def _naive_utc(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def origin_of(d: StoredDeadLetter) -> Origin:
    """The origin a stored dead letter came from (for replays)."""
    return Origin(input=d.input, path=d.path, index=d.index, offset=d.offset)
