"""The small SQLite stores beside the event store (alerts, indicators): several processes, short transactions.

The daemon writes while people work from the CLI (and later the console); DuckDB allows one writing process per
file, SQLite in WAL mode lets each take a short write transaction in turn. One connection per store object,
shared by its threads; writes are serialised by a lock and take the write lock up front.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Self

from cloudsoc.errors import StorageError

_BUSY_MS: Final = 10_000


def connect(path: Path, *, durable: bool = True, cache_mb: int = 0) -> sqlite3.Connection:
    """A connection: autocommit (transactions are explicit), WAL, waits for other writers' locks.

    ``durable``: fsync every commit (alerts); without it a crash may lose the last commits (a re-run import)."""
    conn = sqlite3.connect(path, timeout=_BUSY_MS / 1000, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
    conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
    if cache_mb:
        conn.execute(f"PRAGMA cache_size=-{cache_mb * 1024}")
    return conn


class SqliteStore:
    """Base of the SQLite stores: opens the file, creates the schema, runs write transactions."""

    # What the store holds, for error messages ("the alert store").
    what = "store"

    def __init__(self, path: Path, schema: str, *, durable: bool = True, cache_mb: int = 0) -> None:
        self.path = path
        self._durable = durable
        self._cache_mb = cache_mb
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = connect(path, durable=durable, cache_mb=cache_mb)
            self.conn.executescript(schema)
        except sqlite3.Error as exc:
            raise StorageError(f"{path}: cannot open the {self.what}: {exc}") from None
        self._lock = threading.RLock()

    def connect(self) -> sqlite3.Connection:
        """Another connection to the same file, with the same settings (for a worker thread of its own)."""
        return connect(self.path, durable=self._durable, cache_mb=self._cache_mb)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: the write lock is taken up front, so it cannot deadlock)."""
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StorageError(f"{self.path}: the {self.what} is busy: {exc}") from None
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def dicts(self, sql: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
        """The rows of a query as dicts keyed by the selected column names."""
        cur = self.conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
