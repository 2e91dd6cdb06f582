"""What the console shows and changes: the home's event store, alert store, indicator store and rules.

One :class:`Estate` per app (``console.estate``). The event store is opened read-only once (searches read the
segment files through an in-memory engine and take no lock); a write (``POST /api/v1/ingest``) opens it for
writing for that request only, so a ``cloudsoc run`` daemon can start while the console runs, and the console
answers 503 while the daemon holds it. The SQLite stores are opened per request (they are cheap to open, and a
connection of its own per thread keeps concurrent requests apart).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from fastapi import Request

from cloudsoc.api.resultcache import ResultCache
from cloudsoc.errors import CloudsocError, ConsoleError, StoreLockedError
from cloudsoc.home import Home

if TYPE_CHECKING:
    from cloudsoc.intel.matcher import Matcher
    from cloudsoc.intel.store import IndicatorStore, StoredIndicator
    from cloudsoc.storage.alerts import AlertStore
    from cloudsoc.storage.duckdb import DuckdbStorage

STATUS_FILE: Final = "status.json"
NOW_STEP: Final = 5
# The overview marks addresses with a matcher this old at most after the indicators changed.
MATCHER_SECS: Final = 60.0
BUSY: Final = (
    "the event store is held by a running `cloudsoc run` daemon (DuckDB allows one writing process): send the "
    "records to one of the daemon's inputs instead, or stop the daemon"
)


class Estate:
    """The home directory's stores, opened for the console."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self._lock = threading.Lock()
        # One writer (or state reader) at a time in this process: DuckDB takes one writing process, and a
        # write rewrites the segment manifest.
        self._writing = threading.Lock()
        self._events: DuckdbStorage | None = None
        self._matcher: Matcher | None = None
        self._matcher_key: tuple[int, int] | None = None
        self._matcher_built = 0.0
        self.matcher_lock = threading.Lock()
        self.answers = ResultCache()

    @property
    def status_path(self) -> str:
        return str(self.home.path / STATUS_FILE)

    def events(self) -> DuckdbStorage:
        """The event store, read-only (created empty first when nothing was ingested yet)."""
        with self._lock:
            if self._events is None:
                if not self.home.store_path.exists():
                    try:
                        self.home.open_storage().close()
                    except StoreLockedError:
                        raise ConsoleError(BUSY, status=503) from None
                self._events = self.home.open_storage(read_only=True)
            return self._events

    @contextmanager
    def writer(self) -> Iterator[DuckdbStorage]:
        """The event store opened for writing for one request; 503 while a daemon holds it."""
        with self._writing:
            try:
                storage = self.home.open_storage()
            except StoreLockedError:
                raise ConsoleError(BUSY, status=503) from None
            try:
                yield storage
            finally:
                storage.close()

    @contextmanager
    def state(self) -> Iterator[DuckdbStorage]:
        """The event store with its state database (dead letters) readable: a reader of its own, closed at once
        (an open read-only connection would keep a daemon from starting)."""
        with self._writing:
            try:
                storage = self.home.open_storage(read_only=True)
            except StoreLockedError:
                raise ConsoleError(BUSY, status=503) from None
            try:
                yield storage
            except StoreLockedError:
                raise ConsoleError(BUSY, status=503) from None
            finally:
                storage.close()

    @contextmanager
    def alerts(self) -> Iterator[AlertStore]:
        store = self.home.open_alerts()
        try:
            yield store
        finally:
            store.close()

    @contextmanager
    def intel(self) -> Iterator[IndicatorStore]:
        from cloudsoc.intel.store import IndicatorStore

        store = IndicatorStore(self.home.intel_path)
        try:
            yield store
        finally:
            store.close()

    def matcher(self) -> Matcher | None:
        """A matcher over the active indicators (None without an indicator store), rebuilt when the store changed
        and at least a minute passed (building it reads every key). Use it under ``matcher_lock``."""
        from cloudsoc.enrichers.intel import allowlist
        from cloudsoc.intel.matcher import Matcher

        path = self.home.intel_path
        if not path.exists():
            return None
        stat = path.stat()
        wal = path.with_name(path.name + "-wal")
        key = (stat.st_mtime_ns, wal.stat().st_mtime_ns if wal.exists() else 0)
        now = time.monotonic()
        if self._matcher is None or (key != self._matcher_key and now - self._matcher_built >= MATCHER_SECS):
            from cloudsoc.intel.store import IndicatorStore

            store = IndicatorStore(path)
            try:
                allow = allowlist(store)
            except BaseException:
                store.close()
                raise
            if self._matcher is not None:
                self._matcher.close()
            self._matcher = Matcher.from_store(store, datetime.now(UTC), allow)
            self._matcher_key, self._matcher_built = key, now
        return self._matcher

    def ip_intel(self, addresses: Iterable[str]) -> dict[str, tuple[list[StoredIndicator], str | None]]:
        """What the intel says of each address now: the active indicators listing it and the allow list that
        calls it benign (an allow-listed address has no hits). Addresses without either are left out."""
        out: dict[str, tuple[list[StoredIndicator], str | None]] = {}
        with self.matcher_lock:
            matcher = self.matcher()
            if matcher is None:
                return out
            for value in addresses:
                hits, allowed = matcher.ip(value), matcher.allowed(value)
                if hits or allowed:
                    out[value] = (hits, allowed)
        return out

    def forget_matcher(self) -> None:
        """This process changed the indicators: the next look-up builds a fresh matcher."""
        with self.matcher_lock:
            if self._matcher is not None:
                self._matcher.close()
                self._matcher = None

    def close(self) -> None:
        with self._lock:
            if self._events is not None:
                self._events.close()
                self._events = None
        with self.matcher_lock:
            if self._matcher is not None:
                self._matcher.close()
                self._matcher = None


def window_now() -> datetime:
    """ "Now" for relative time ranges (``since=24h``), rounded up to the next :data:`NOW_STEP` seconds: people who
    open the same page within those seconds ask the same question, and one answer serves them all (the window
    reaches at most that far into the future, so nothing stored is left out)."""
    now = time.time()
    return datetime.fromtimestamp(-(-now // NOW_STEP) * NOW_STEP, UTC)


def parse_when(text: str | None, name: str, *, now: datetime | None = None) -> datetime | None:
    """A ``since``/``until`` parameter: a duration back from now (``24h``, ``7d``) or an ISO time; 400 otherwise."""
    from cloudsoc.cli.timeparse import parse_time

    if text is None or not text.strip():
        return None
    try:
        return parse_time(text, now=now or datetime.now(UTC))
    except (CloudsocError, OverflowError) as exc:  # OverflowError: `9999999d` reaches before year 1
        raise ConsoleError(f"{name}: {exc}") from None


def time_range(
    since: str | None, until: str | None, *, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """``since``/``until`` parameters as a range (either end may be open); 400 when ``until`` is not after ``since``."""
    t0, t1 = parse_when(since, "since", now=now), parse_when(until, "until", now=now)
    if t0 is not None and t1 is not None and t1 <= t0:
        raise ConsoleError("until must be after since")
    return t0, t1


def iso(value: datetime | str | None) -> str | None:
    """A time as ISO 8601 with its offset (the stores keep naive UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def get_estate(request: Request) -> Estate:
    """FastAPI dependency: the app's :class:`Estate`."""
    estate = getattr(request.app.state, "estate", None)
    if not isinstance(estate, Estate):
        raise ConsoleError("the console has no home directory", status=500)
    return estate
