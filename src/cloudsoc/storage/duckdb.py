"""The embedded store: DuckDB as the engine, events in Parquet segments written from Arrow, in time order.

Layout under the home directory::

    events.duckdb            state: segment manifest, file checkpoints, dead letters (one transaction per batch)
    events-segments/*.parquet  events: typed ECS columns + the full document, zstd, one batch (minutes) each
    events-segments.json     a copy of the manifest, so searches run while a daemon holds the DuckDB file

Why segments rather than a DuckDB table: appending to a table writes every document twice (WAL, then the
compressing checkpoint) under DuckDB's single-writer lock; measured here that was ~40 µs an event, more than
parsing. An Arrow batch written as one Parquet file costs ~3 µs an event, outside the GIL.

Exactly once: a batch's segment file is written and fsync'ed under a temporary name, renamed, and only then
recorded in the manifest in the same DuckDB transaction as the batch's dead letters and file checkpoints. A
crash before the commit leaves a file that no manifest names; it is deleted on the next open and its source
files are read again. Duplicates (CloudTrail delivers at least once) are dropped by (provider, event id) within
the batch and against stored segments overlapping the batch's time range.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cloudsoc.errors import StorageError, StoreLockedError
from cloudsoc.event import DeadLetter, Event, Origin
from cloudsoc.storage.base import AddressMatches, Checkpoint, EncodedEvents, SearchResult, StoredDeadLetter, WriteResult
from cloudsoc.storage.columns import COLUMNS, DOC, INGESTED, SEGMENT_SCHEMA, SOURCE_IP_HALVES, SOURCE_IP_NUM
from cloudsoc.storage.encoder import DOC_SCHEMA, KEY_COLUMN, DocumentEncoder, now_utc
from cloudsoc.storage.layout import StoreLayout
from cloudsoc.storage.query import Query, ip_number_sql

_HI, _LO = SOURCE_IP_HALVES
_LOW64 = (1 << 64) - 1
T = TypeVar("T")
_VIEW_COLUMNS = ", ".join(
    [col for col, _t in COLUMNS.values()]
    + [
        f"(CAST({_HI} AS UHUGEINT) << 64) | CAST({_LO} AS UHUGEINT) AS {SOURCE_IP_NUM[0]}",
        _HI,
        _LO,
        DOC[0],
        INGESTED[0],
    ]
)
_EMPTY_VIEW = (
    "(SELECT "
    + ", ".join(
        [f"CAST(NULL AS {typ}) AS {col}" for col, typ in COLUMNS.values()]
        + [f"CAST(NULL AS UHUGEINT) AS {SOURCE_IP_NUM[0]}", f"CAST(NULL AS UBIGINT) AS {_HI}"]
        + [f"CAST(NULL AS UBIGINT) AS {_LO}", f"CAST(NULL AS VARCHAR) AS {DOC[0]}"]
        + [f"CAST(NULL AS TIMESTAMP) AS {INGESTED[0]}"]
        + ["CAST(NULL AS VARCHAR) AS filename", "CAST(NULL AS BIGINT) AS file_row_number"]
    )
    + " WHERE false) AS events"
)


def _json_path(field: str) -> str:
    return "$." + ".".join(f'"{part}"' for part in field.split("."))


# Every typed column out of the document in one JSON parse per event.
_EXTRACT = f"json_extract_string(doc, [{', '.join(repr(_json_path(f)) for f in COLUMNS)}])"
_TYPED = ", ".join(
    ("CAST(CAST(v[1] AS TIMESTAMPTZ) AS TIMESTAMP) AS ts" if col == "ts" else f"v[{i}] AS {col}")
    for i, (col, _typ) in enumerate(COLUMNS.values(), start=1)
)
# source.ip as a number, by the same SQL the query language uses (IPv4 and IPv6; anything else is NULL).
_IP_NUM = ip_number_sql("source_ip")

# The typed columns of a segment, in schema order, from the extracted values (the document is added in Arrow).
_TYPED_COLUMNS = ", ".join(
    ["idx"]
    + [col for col, _t in COLUMNS.values()]
    + [
        f"CAST(ip_num >> 64 AS UBIGINT) AS {_HI}",
        f"CAST(ip_num & CAST(18446744073709551615 AS UHUGEINT) AS UBIGINT) AS {_LO}",
    ]
)


# Event ids are unique: a dictionary for them is built, found useless and dropped on every page (~0.3 µs an
# event); every other string column repeats values.
_DICTIONARY_COLUMNS = [
    f.name for f in SEGMENT_SCHEMA if f.name not in (DOC[0], "event_id") and pa.types.is_string(f.type)
]
_STATS_COLUMNS = [f.name for f in SEGMENT_SCHEMA if f.name != DOC[0]]
# (size, count): once `count` segments are below `size` rows, the oldest are merged. Tiny segments (a daemon's
# trickle) go fast; batch-sized ones wait for many (each merge rewrites every row once: ~2.5 µs a row).
_MERGE_TIERS = ((10_000, 16), (200_000, 64))
_ROW_GROUP_ROWS = 64 * 1024  # merged segments follow time: row-group statistics let a time range skip the rest
_MERGED_ROWS = 1_000_000


def _partitions(table: pa.Table) -> list[str]:
    """The distinct cloud/account/region triples of a table: a duplicate event always shares its triple."""
    parts = [pc.fill_null(table.column(c), "") for c in ("cloud_provider", "cloud_account_id", "cloud_region")]
    return sorted(pc.unique(pc.binary_join_element_wise(*parts, "/")).to_pylist())


def _time_range(table: pa.Table) -> tuple[datetime | None, datetime | None]:
    bounds = pc.min_max(table.column("ts"))
    return bounds["min"].as_py(), bounds["max"].as_py()


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


class DuckdbStorage:
    """The embedded store. One writer process at a time (DuckDB's file lock); readers need no lock."""

    name = "duckdb"

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool = False,
        max_event_bytes: int = 1_048_576,
        threads: int | None = None,
        memory_limit_mb: int | None = None,
        compression_level: int = 1,
    ) -> None:
        self.path = path
        self.read_only = read_only
        self.layout = StoreLayout.of(path)
        self.segments_dir = self.layout.segments
        self.manifest_path = self.layout.manifest
        self.encoder = DocumentEncoder(max_event_bytes)
        self.compression_level = compression_level
        self._lock = threading.RLock()
        self._local = threading.local()
        self._config: dict[str, Any] = {}
        # DuckDB sizes its pool by the machine's cores; under taskset/cgroups that oversubscribes the allowed ones.
        self._config["threads"] = threads or len(os.sched_getaffinity(0))
        if memory_limit_mb:
            self._config["memory_limit"] = f"{memory_limit_mb}MB"
        self._state: duckdb.DuckDBPyConnection | None = None
        if read_only:
            if not path.exists():
                raise StorageError(f"no event store at {path}: ingest something first (`cloudsoc ingest PATH`)")
            # Searches use their own in-memory engine over the segment files: no lock on the state file.
            self.con = duckdb.connect(":memory:", config=self._config)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.segments_dir.mkdir(exist_ok=True)
            self.con = self._state_connection()
            self._create()
            self._remove_orphans()
            self._write_manifest()
        self.con.execute("SET TimeZone = 'UTC'")
        # Segment files are read once per query; caching them in DuckDB's buffer pool only grows the RSS.
        self.con.execute("SET enable_external_file_cache = false")

    # -- state database -----------------------------------------------------------------------------------
    def _state_connection(self) -> duckdb.DuckDBPyConnection:
        try:
            con = duckdb.connect(str(self.path), read_only=self.read_only, config=self._config)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreLockedError(
                    f"the event store {self.path} is in use by another cloudsoc process (a running "
                    "`cloudsoc run` or ingest); stop it first, or query it through that process"
                ) from None
            raise StorageError(f"cannot open the event store {self.path}: {exc}") from None
        con.execute("SET TimeZone = 'UTC'")
        return con

    @property
    def state(self) -> duckdb.DuckDBPyConnection:
        """The state database (opened read-only on first use by readers; that needs the writer stopped)."""
        if not self.read_only:
            return self.con
        if self._state is None:
            self._state = self._state_connection()
        return self._state

    def _create(self) -> None:
        self.con.execute(
            """CREATE TABLE IF NOT EXISTS segments (
                name VARCHAR PRIMARY KEY, rows BIGINT, ts_min TIMESTAMP, ts_max TIMESTAMP, bytes BIGINT,
                created TIMESTAMP, partitions VARCHAR[])"""
        )
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

    def _remove_orphans(self) -> None:
        """Delete segment files no manifest row names (written by a batch that crashed before its commit), and
        forget manifest rows whose file is gone (an OS crash before the file reached the disk) so searches and
        merges keep working; the files those rows came from are read again (their checkpoints go too)."""
        known = {r[0] for r in self.con.execute("SELECT name FROM segments").fetchall()}
        missing = [n for n in known if not (self.segments_dir / n).exists()]
        if missing:
            self.con.execute("DELETE FROM segments WHERE list_contains(?, name)", [missing])
            self.con.execute("DELETE FROM checkpoints")  # which files fed them is not recorded: re-check all
            known -= set(missing)
        for entry in os.scandir(self.segments_dir):
            if entry.name not in known:
                os.unlink(entry.path)

    def _write_manifest(self) -> None:
        rows = self.con.execute(
            "SELECT name, rows, strftime(ts_min, '%Y-%m-%dT%H:%M:%S.%fZ'), strftime(ts_max, '%Y-%m-%dT%H:%M:%S.%fZ')"
            " FROM segments ORDER BY ts_min"
        ).fetchall()
        doc = {"segments": [{"name": n, "rows": r, "ts_min": lo, "ts_max": hi} for n, r, lo, hi in rows]}
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(doc))
        os.replace(tmp, self.manifest_path)

    # -- segment files ------------------------------------------------------------------------------------
    def _segment_files(
        self, since: datetime | None = None, until: datetime | None = None, partitions: list[str] | None = None
    ) -> list[str]:
        if not self.read_only:
            rows = self.con.execute(
                "SELECT name FROM segments WHERE (? IS NULL OR ts_max >= ?) AND (? IS NULL OR ts_min < ?)"
                " AND (? IS NULL OR list_has_any(partitions, ?)) ORDER BY ts_min",
                [since, since, until, until, partitions, partitions],
            ).fetchall()
            names = [r[0] for r in rows]
        else:
            manifest = self.layout.read_manifest()
            lo = since.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if since else ""
            hi = until.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if until else ""
            names = [s["name"] for s in manifest if (not lo or s["ts_max"] >= lo) and (not hi or s["ts_min"] < hi)]
        return [str(self.segments_dir / n) for n in names]

    def _view(self, files: list[str]) -> str:
        if not files:
            return _EMPTY_VIEW
        listed = ", ".join(_quote(f) for f in files)
        return (
            f"(SELECT {_VIEW_COLUMNS}, filename, file_row_number"
            f" FROM read_parquet([{listed}], filename = true, file_row_number = true)) AS events"
        )

    def _write_segment(self, table: pa.Table) -> tuple[str, int]:
        name = f"{uuid.uuid4().hex}.parquet"
        tmp = self.segments_dir / f".{name}.tmp"
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            compression_level=self.compression_level,
            use_dictionary=_DICTIONARY_COLUMNS,
            write_statistics=_STATS_COLUMNS,
            row_group_size=_ROW_GROUP_ROWS,
        )
        return name, self._publish(tmp, name)

    def _publish(self, tmp: Path, name: str) -> int:
        """Make a finished segment durable under its final name (not yet in the manifest); return its size."""
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        final = self.segments_dir / name
        os.replace(tmp, final)
        # The rename must be durable before the manifest row that names the file is committed.
        dir_fd = os.open(self.segments_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return final.stat().st_size

    # -- writing ------------------------------------------------------------------------------------------
    def encode(self, events: Sequence[Event], dead: list[DeadLetter]) -> EncodedEvents:
        """Encode events for :meth:`write_encoded` (pipeline workers call the same encoder)."""
        return self.encoder.encode(events, dead)

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
        # One batch may carry two versions of a file (it changed while queued): the last checkpoint wins; and
        # the same dead letter twice is one.
        checkpoints = list({(c.input, c.path): c for c in checkpoints}.values())
        dead_letters = list(
            {(d.origin.input, d.origin.path, d.origin.index, d.origin.offset, d.raw): d for d in dead_letters}.values()
        )
        with self._lock:
            segment: tuple[str, int, pa.Table] | None = None
            if encoded.rows:
                table = self._new_rows(encoded)
                result.stored = table.num_rows
                result.duplicates = encoded.rows - table.num_rows
                if table.num_rows:
                    name, size = self._write_segment(table)
                    segment = (name, size, table)
            self.con.execute("BEGIN TRANSACTION")
            try:
                if segment is not None:
                    name, size, table = segment
                    lo, hi = _time_range(table)
                    self._record_segment(name, table.num_rows, lo, hi, size, _partitions(table))
                if checkpoints:
                    # A file read again (a bucket object rewritten as it grew) supersedes what its earlier
                    # versions left: the dead letters of a path always describe its latest version.
                    self.con.execute(
                        "UPDATE dead_letters SET replayed = true WHERE replayed = false"
                        " AND list_contains(?, input || chr(31) || path)",
                        [[f"{c.input}\x1f{c.path}" for c in checkpoints]],
                    )
                if dead_letters:
                    result.dead_letters = self._insert_dead(dead_letters)
                if checkpoints:
                    self._upsert_checkpoints(checkpoints)
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                if segment is not None:
                    (self.segments_dir / segment[0]).unlink(missing_ok=True)
                raise
            if segment is not None:
                self._write_manifest()
                self._merge_small_segments()
        return result

    def _record_segment(self, name: str, rows: int, ts_min: Any, ts_max: Any, size: int, parts: list[str]) -> None:
        """Add a segment to the manifest (inside the caller's transaction)."""
        self.con.execute(
            "INSERT INTO segments VALUES (?, ?, ?, ?, ?, ?, ?)", [name, rows, ts_min, ts_max, size, now_utc(), parts]
        )

    def _new_rows(self, encoded: EncodedEvents) -> pa.Table:
        """The batch as segment rows: typed columns extracted, duplicates (inside it, and of stored events)
        dropped, ingest time set.

        The documents never pass through DuckDB's sorts and joins: DuckDB extracts the narrow typed columns
        (with each row's index), de-duplication works on those, and Arrow takes the documents once, in the
        final order."""
        incoming = pa.Table.from_batches(encoded.batches, schema=DOC_SCHEMA)
        docs = incoming.column(DOC[0])
        firsts: dict[str, int] = {}
        for i, key in enumerate(incoming.column(KEY_COLUMN).to_pylist()):
            firsts.setdefault(key, i)  # the first copy of an event inside the batch wins
        if len(firsts) < len(docs):
            docs = docs.take(pa.array(sorted(firsts.values()), pa.int64()))
        extract = pa.table({"idx": pa.array(range(len(docs)), pa.int64()), DOC[0]: docs})
        self.con.register("incoming", extract)
        try:
            typed = self.con.sql(
                f"""SELECT {_TYPED_COLUMNS} FROM (
                    SELECT *, {_IP_NUM} AS ip_num FROM (
                        SELECT idx, {_TYPED} FROM (SELECT idx, {_EXTRACT} AS v FROM incoming)))"""
            ).to_arrow_table()
        finally:
            self.con.unregister("incoming")
        # DuckDB keeps a projection in scan order (preserve_insertion_order); sorting 20k wide rows to make sure
        # cost ~0.3 µs an event, checking costs nothing.
        if typed.num_rows > 1 and not pc.all(pc.greater(typed["idx"][1:], typed["idx"][:-1])).as_py():
            typed = typed.sort_by("idx")
        if typed.num_rows:
            lo, hi = _time_range(typed)
            # A duplicate has the same time, cloud, account and region: only segments sharing both are read.
            stored = self._segment_files(lo, hi + timedelta(microseconds=1) if hi else None, _partitions(typed))
            if stored:
                self.con.register("batch", typed)
                try:
                    typed = self.con.sql(
                        f"""SELECT * FROM batch b WHERE NOT EXISTS (
                            SELECT 1 FROM read_parquet([{", ".join(_quote(f) for f in stored)}]) e
                            WHERE e.ts BETWEEN ? AND ? AND e.event_id = b.event_id
                              AND e.cloud_provider IS NOT DISTINCT FROM b.cloud_provider)
                        ORDER BY idx""",
                        params=[lo, hi],
                    ).to_arrow_table()
                finally:
                    self.con.unregister("batch")
        columns = [typed.column(f.name) for f in SEGMENT_SCHEMA if f.name not in (DOC[0], INGESTED[0])]
        # Rows keep their arrival order: a batch spans minutes, far less than a row group, so sorting it would
        # buy no pruning; the manifest's per-segment time range is what searches prune on.
        columns.append(docs if typed.num_rows == len(docs) else docs.take(typed.column("idx")))
        columns.append(pa.array([now_utc()] * typed.num_rows, pa.timestamp("us")))
        return pa.Table.from_arrays(columns, schema=SEGMENT_SCHEMA)

    def _merge_small_segments(self) -> bool:
        """Merge small segments into larger ones, tier by tier (a daemon writes one a second when data trickles
        in; a search over thousands of tiny files would spend its time opening them)."""
        for size, count in _MERGE_TIERS:
            small = self.con.execute(
                "SELECT name, rows FROM segments WHERE rows < ? ORDER BY ts_min", [size]
            ).fetchall()
            if len(small) < count:
                continue
            group: list[str] = []
            rows = 0
            for name, n in small:
                group.append(name)
                rows += n
                if rows >= _MERGED_ROWS:
                    break
            self._merge(group)
            return True
        return False

    def _merge(self, names: list[str]) -> None:
        (parts,) = self.con.execute(
            "SELECT list_distinct(flatten(list(partitions))) FROM segments WHERE list_contains(?, name)", [names]
        ).fetchall()[0]
        merged = f"{uuid.uuid4().hex}.parquet"
        tmp = self.segments_dir / f".{merged}.tmp"
        rows = 0
        ts_min: datetime | None = None
        ts_max: datetime | None = None
        with pq.ParquetWriter(
            tmp,
            SEGMENT_SCHEMA,
            compression="zstd",
            compression_level=self.compression_level,
            use_dictionary=_DICTIONARY_COLUMNS,
            write_statistics=_STATS_COLUMNS,
        ) as writer:
            for name in names:  # streamed in slices: bounded memory whatever the sizes
                source = pq.ParquetFile(self.segments_dir / name)
                for batch in source.iter_batches(batch_size=20_000):
                    writer.write_batch(batch.cast(SEGMENT_SCHEMA))
                    rows += batch.num_rows
                    ts = batch.column("ts")
                    first, last = pc.min(ts).as_py(), pc.max(ts).as_py()
                    ts_min = first if ts_min is None or first < ts_min else ts_min
                    ts_max = last if ts_max is None or last > ts_max else ts_max
        size = self._publish(tmp, merged)
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute("DELETE FROM segments WHERE list_contains(?, name)", [names])
            self._record_segment(merged, rows, ts_min, ts_max, size, parts)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            (self.segments_dir / merged).unlink(missing_ok=True)
            raise
        self._write_manifest()
        for name in names:  # a reader that listed them a moment ago retries with the new manifest
            (self.segments_dir / name).unlink(missing_ok=True)

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
                SELECT ?, d.input, d.path, d.idx, d.off, d.parser, d.reason, d.raw
                FROM incoming_dead d WHERE NOT EXISTS (
                    SELECT 1 FROM dead_letters x WHERE x.replayed = false AND x.input = d.input
                    AND x.path = d.path AND x.idx = d.idx AND x."offset" = d.off AND x.raw = d.raw)""",
                [now_utc()],
            ).fetchall()
        finally:
            self.con.unregister("incoming_dead")
        return int(row[0][0])

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
                SELECT input, path, size, mtime_ns, records, status, ? FROM incoming_cp""",
                [now_utc()],
            )
        finally:
            self.con.unregister("incoming_cp")

    # -- reading ------------------------------------------------------------------------------------------
    def checkpoints(self, input_name: str) -> dict[str, Checkpoint]:
        with self._lock:
            rows = self.state.execute(
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
        t0 = _naive_utc(since) if since is not None else None
        t1 = _naive_utc(until) if until is not None else None
        clauses = [f"({where})"]
        range_params: list[Any] = []
        if t0 is not None:
            clauses.insert(0, "ts >= ?")
            range_params.append(t0)
        if t1 is not None:
            clauses.insert(len(range_params), "ts < ?")
            range_params.append(t1)
        sql_where = " AND ".join(clauses)
        all_params = range_params + list(params)
        for attempt in range(3):
            try:
                with self._lock:
                    view = self._view(self._segment_files(t0, t1))
                    docs = self._newest_docs(view, sql_where, all_params, limit)
                    if len(docs) < limit:
                        total = len(docs)
                    else:
                        count = self.con.execute(
                            f"SELECT count(*) FROM {view} WHERE {sql_where}", all_params
                        ).fetchall()
                        total = int(count[0][0])
                break
            except duckdb.IOException:
                # A writer merged segments between our manifest read and the scan: read the manifest again.
                if attempt == 2:
                    raise
        return SearchResult(events=[orjson.loads(d) for d in docs], total=total, seconds=time.perf_counter() - started)

    def _newest_docs(self, view: str, where: str, params: list[Any], limit: int) -> list[str]:
        """The documents of the ``limit`` newest matches, in two steps: find them on the narrow columns, then
        read ``doc`` for just those rows by file and row number (DuckDB then decompresses only the pages that
        hold them) instead of the documents of every match."""
        keys = self.con.execute(
            f"SELECT filename, file_row_number FROM {view} WHERE {where} ORDER BY ts DESC LIMIT ?",
            [*params, limit],
        ).fetchall()
        return self._documents(keys)

    def _documents(self, keys: Sequence[tuple[str, int]], con: duckdb.DuckDBPyConnection | None = None) -> list[str]:
        """The documents at ``keys`` (segment file, row number), in the keys' order. Each file is asked for its
        rows by number, so DuckDB decompresses only the pages that hold them."""
        by_file: dict[str, list[int]] = {}
        for name, row in keys:
            by_file.setdefault(name, []).append(row)
        docs: dict[tuple[str, int], str] = {}
        for name, rows in by_file.items():
            found = (
                (con or self.con)
                .execute(
                    "SELECT file_row_number, doc FROM read_parquet(?, file_row_number = true)"
                    f" WHERE file_row_number IN ({', '.join(str(int(r)) for r in rows)})",
                    [name],
                )
                .fetchall()
            )
            docs.update(((name, row), doc) for row, doc in found)
        return [docs[k] for k in keys if k in docs]

    def scan(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        actions: Collection[str] | None = None,
        batch_rows: int = 10_000,
    ) -> Iterator[list[dict[str, Any]]]:
        """Stored documents in event-time order, in batches (for ``cloudsoc hunt``); ``actions`` (lower-cased
        event.action values) narrows the scan to events that rules pinned to those actions can match."""
        t0 = _naive_utc(since) if since is not None else None
        t1 = _naive_utc(until) if until is not None else None
        window, params = _window(t0, t1)
        clauses = [window]
        if actions is not None:
            clauses.append("lower(event_action) IN (SELECT unnest(?))")
            params.append(sorted(actions))
        with self._lock:
            view = self._view(self._segment_files(t0, t1))
            relation = self.con.sql(f"SELECT doc FROM {view} WHERE {' AND '.join(clauses)} ORDER BY ts", params=params)
            reader = relation.to_arrow_reader(batch_rows)
            # Documents are decoded batch by batch: a hunt over months never holds them all.
            for batch in reader:
                yield [orjson.loads(d) for d in batch.column(0).to_pylist()]

    def match_addresses(
        self,
        *,
        addresses: Collection[int],
        networks: Collection[tuple[int, int]],
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> AddressMatches:
        """Which source addresses of the window's events are one of ``addresses`` or inside one of ``networks``
        (first and last address, inclusive), all numbers in the ``source_ip_num`` space (IPv4 mapped into
        ::ffff:0:0/96), with their event counts, by canonical address text.

        Only the narrow columns are read, never a document: the window's distinct source addresses are counted in
        one aggregate (a month of cloud audit holds thousands of addresses, not millions), then matched against
        the address list (hash join) and the merged networks (range join) — no Python per event."""
        t0 = _naive_utc(since) if since is not None else None
        t1 = _naive_utc(until) if until is not None else None
        window, times = _window(t0, t1)
        merged = _merge_ranges(networks)
        nets = pa.table(
            {
                "first_hi": pa.array([a >> 64 for a, _b in merged], pa.uint64()),
                "first_lo": pa.array([a & _LOW64 for a, _b in merged], pa.uint64()),
                "last_hi": pa.array([b >> 64 for _a, b in merged], pa.uint64()),
                "last_lo": pa.array([b & _LOW64 for _a, b in merged], pa.uint64()),
            }
        )
        no_rows: list[tuple[Any, ...]] = []
        with self._lock:
            self.con.register("hunt_exact", _halves(addresses))
            self.con.register("hunt_nets", nets)
            try:
                rows = self._read_segments(
                    t0,
                    t1,
                    lambda files: self.con.execute(
                        f"""WITH seen AS (
                            SELECT {_HI} AS hi, {_LO} AS lo, count(*) AS n
                            FROM {_source(files)} WHERE {window} GROUP BY ALL),
                        numbered AS (
                            SELECT *, (CAST(hi AS UHUGEINT) << 64) | lo AS num FROM seen WHERE hi IS NOT NULL),
                        ranges AS (
                            SELECT (CAST(first_hi AS UHUGEINT) << 64) | first_lo AS first,
                                   (CAST(last_hi AS UHUGEINT) << 64) | last_lo AS last FROM hunt_nets)
                        (SELECT num, n, false AS total FROM numbered SEMI JOIN hunt_exact USING (hi, lo)
                         UNION
                         SELECT num, n, false FROM numbered SEMI JOIN ranges ON num BETWEEN first AND last)
                        UNION ALL
                        SELECT NULL, coalesce(sum(n), 0), true FROM seen""",
                        times,
                    ).fetchall(),
                    no_rows,
                )
            finally:
                self.con.unregister("hunt_exact")
                self.con.unregister("hunt_nets")
        # Addresses are grouped by number (two spellings of one IPv6 address are one address) and named in their
        # canonical form; reading the text column as well would cost a third more.
        return AddressMatches(
            scanned=sum(int(n) for _num, n, total in rows if total),
            addresses={_address_text(int(num)): int(n) for num, n, total in rows if not total},
            numbers={_address_text(int(num)): int(num) for num, _n, total in rows if not total},
        )

    def _read_segments(self, t0: datetime | None, t1: datetime | None, query: Callable[[list[str]], T], empty: T) -> T:
        """``query`` over the segment files of [t0, t1) (``empty`` when there are none), asked again with a fresh
        file list when a writer merged segments between the manifest read and the scan."""
        attempts = 3
        while True:
            files = self._segment_files(t0, t1)
            if not files:
                return empty
            try:
                return query(files)
            except duckdb.IOException:
                attempts -= 1
                if not attempts:
                    raise

    def scan_addresses(
        self,
        addresses: Collection[int],
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        batch_rows: int = 10_000,
    ) -> Iterator[list[dict[str, Any]]]:
        """The documents of the events from ``addresses`` (numbers, as for :meth:`match_addresses`), in event-time
        order, in batches. The events are found on the narrow columns first; then each segment is asked for its
        rows by number, so DuckDB decompresses only the document pages that hold them, not a month of them."""
        t0 = _naive_utc(since) if since is not None else None
        t1 = _naive_utc(until) if until is not None else None
        window, times = _window(t0, t1)
        if not addresses:
            return
        with self._lock:
            self.con.register("hunt_hit", _halves(addresses))
            try:
                # Kept as Arrow (a file name and a number a row), not tuples: a CIDR over a busy range may match
                # millions of events.
                keys = self._read_segments(
                    t0,
                    t1,
                    lambda files: self.con.sql(
                        f"""SELECT filename, file_row_number FROM {_source(files)} e
                        SEMI JOIN hunt_hit h ON e.{_HI} = h.hi AND e.{_LO} = h.lo
                        WHERE {window} ORDER BY ts, filename, file_row_number""",
                        params=times,
                    ).to_arrow_table(),
                    pa.table({"filename": pa.array([], pa.string()), "file_row_number": pa.array([], pa.int64())}),
                )
            finally:
                self.con.unregister("hunt_hit")
        for start in range(0, keys.num_rows, batch_rows):
            batch = keys.slice(start, batch_rows)
            wanted = list(zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True))
            try:
                with self._lock:
                    docs = self._documents(wanted)
            except duckdb.IOException:
                raise StorageError(
                    "the store merged or dropped segments while the hunt read them; run it again (alerts already "
                    "raised are not raised twice)"
                ) from None
            yield [orjson.loads(d) for d in docs]

    def select(
        self,
        sql: str,
        *,
        query: str = "*",
        since: datetime | None = None,
        until: datetime | None = None,
        params: Sequence[Any] = (),
    ) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` over the events of [since, until) that match ``query`` (the search language).

        ``sql`` names the events ``{events}`` and the condition ``{where}`` (the time window and the query, with
        their parameters bound first: ``params`` follow them, so ``{where}`` comes before any other ``?``). The
        console's aggregates use it: only the segments of the window are read, and only the columns named."""
        where, query_params = Query.parse(query).to_sql()
        t0 = _naive_utc(since) if since is not None else None
        t1 = _naive_utc(until) if until is not None else None
        window, times = _window(t0, t1)
        bound = [*times, *query_params, *params]
        # A read-only store answers each thread on a cursor of its own, so the console's concurrent requests
        # run side by side; a writing store keeps its one connection and lock.
        with contextlib.nullcontext() if self.read_only else self._lock:
            con = self._reader() if self.read_only else self.con
            for attempt in range(3):
                view = self._view(self._segment_files(t0, t1))
                statement = sql.replace("{events}", view).replace("{where}", f"{window} AND ({where})")
                try:
                    return con.execute(statement, bound).fetchall()
                except duckdb.IOException:
                    # A writer merged segments between our manifest read and the scan: read the manifest again.
                    if attempt == 2:
                        raise
        return []

    def _reader(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the read-only engine (same database, settings of its own)."""
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            with self._lock:
                cursor = self.con.cursor()
            cursor.execute("SET TimeZone = 'UTC'")
            self._local.cursor = cursor
        return cursor

    def version(self) -> tuple[int, int, int]:
        """Identifies the stored events as of now: changes whenever a batch, a merge or retention commits (each
        replaces the manifest file), so an answer computed at one version holds while it is unchanged."""
        try:
            st = os.stat(self.manifest_path)
        except FileNotFoundError:
            return (0, 0, 0)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def documents(self, keys: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
        """The stored documents at ``keys`` (segment file, row number, as :meth:`select` can return them)."""
        if self.read_only:  # on this thread's cursor, beside other readers (see select)
            return [orjson.loads(d) for d in self._documents(keys, self._reader())]
        with self._lock:
            return [orjson.loads(d) for d in self._documents(keys)]

    def sql_view(self) -> str:
        """A FROM clause over all stored events (for tools and benchmarks that run their own SQL)."""
        return self._view(self._segment_files())

    def dead_letters(self, *, limit: int = 100, include_replayed: bool = False) -> list[StoredDeadLetter]:
        where = "" if include_replayed else "WHERE replayed = false"
        with self._lock:
            rows = self.state.execute(
                f"""SELECT id, received, input, path, idx, "offset", parser, reason, raw, replayed
                FROM dead_letters {where} ORDER BY id LIMIT ?""",
                [limit],
            ).fetchall()
        return [StoredDeadLetter(*r) for r in rows]

    def dead_letter(self, dead_letter_id: int) -> StoredDeadLetter | None:
        with self._lock:
            row = self.state.execute(
                """SELECT id, received, input, path, idx, "offset", parser, reason, raw, replayed
                FROM dead_letters WHERE id = ?""",
                [dead_letter_id],
            ).fetchall()
        return StoredDeadLetter(*row[0]) if row else None

    def mark_replayed(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        with self._lock:
            self.con.execute("UPDATE dead_letters SET replayed = true WHERE list_contains(?, id)", [list(ids)])

    def apply_retention(self, days: int) -> int:
        """Drop events whose time is more than ``days`` ago; returns how many were dropped.

        Files are unlinked only after the new manifest is published, so a concurrent search never meets a
        manifest that names a deleted file."""
        cutoff = now_utc() - timedelta(days=days)
        dropped = 0
        obsolete: list[Path] = []
        with self._lock:
            old = self.con.execute(
                "SELECT name, rows, ts_max < ? FROM segments WHERE ts_min < ?", [cutoff, cutoff]
            ).fetchall()
            for name, rows, whole in old:
                path = self.segments_dir / name
                if whole:
                    self.con.execute("DELETE FROM segments WHERE name = ?", [name])
                    obsolete.append(path)
                    dropped += rows
                    continue
                table = pq.read_table(path, schema=SEGMENT_SCHEMA)
                kept = table.filter(pc.greater_equal(table.column("ts"), pa.scalar(cutoff, pa.timestamp("us"))))
                new_name, size = self._write_segment(kept)
                self.con.execute("BEGIN TRANSACTION")
                try:
                    self.con.execute("DELETE FROM segments WHERE name = ?", [name])
                    lo, hi = _time_range(kept)
                    self._record_segment(new_name, kept.num_rows, lo, hi, size, _partitions(kept))
                    self.con.execute("COMMIT")
                except BaseException:
                    self.con.execute("ROLLBACK")
                    (self.segments_dir / new_name).unlink(missing_ok=True)
                    raise
                obsolete.append(path)
                dropped += rows - kept.num_rows
            self._write_manifest()
            for path in obsolete:
                path.unlink(missing_ok=True)
        return dropped

    def stats(self) -> dict[str, Any]:
        with self._lock:
            view = self._view(self._segment_files())
            events = self.con.execute(f"SELECT count(*), min(ts), max(ts) FROM {view}").fetchall()[0]
            by_provider = dict(
                self.con.execute(
                    f"SELECT coalesce(cloud_provider, '-'), count(*) FROM {view} GROUP BY 1 ORDER BY 2 DESC"
                ).fetchall()
            )
            segments = len(self._segment_files())
        return {
            "events": int(events[0]),
            "first": events[1],
            "last": events[2],
            "by_provider": by_provider,
            "segments": segments,
        }

    def close(self) -> None:
        with self._lock:
            self.con.close()
            if self._state is not None:
                self._state.close()


def _halves(numbers: Collection[int]) -> pa.Table:
    """128-bit numbers as the two unsigned 64-bit halves the segments store (Arrow has no 128-bit integer)."""
    return pa.table(
        {
            "hi": pa.array([n >> 64 for n in numbers], pa.uint64()),
            "lo": pa.array([n & _LOW64 for n in numbers], pa.uint64()),
        }
    )


def _window(t0: datetime | None, t1: datetime | None) -> tuple[str, list[Any]]:
    """``ts`` in [t0, t1) as literal clauses (so that DuckDB prunes row groups on them) and their parameters."""
    clauses = ["TRUE"]
    params: list[Any] = []
    if t0 is not None:
        clauses.append("ts >= ?")
        params.append(t0)
    if t1 is not None:
        clauses.append("ts < ?")
        params.append(t1)
    return " AND ".join(clauses), params


def _address_text(number: int) -> str:
    """The canonical text of an address in the source_ip_num space (IPv4 for ::ffff:0:0/96)."""
    if number >> 32 == 0xFFFF:
        return str(ipaddress.IPv4Address(number & 0xFFFFFFFF))
    return ipaddress.IPv6Address(number).compressed


def _source(files: list[str]) -> str:
    return f"read_parquet([{', '.join(_quote(f) for f in files)}], filename = true, file_row_number = true)"


def _merge_ranges(ranges: Collection[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping and adjacent ranges merged: nested CIDRs (a /24 inside a listed /16) become one range."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def _naive_utc(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def origin_of(d: StoredDeadLetter) -> Origin:
    """The origin a stored dead letter came from (for replays)."""
    return Origin(input=d.input, path=d.path, index=d.index, offset=d.offset)
