"""The detection stage of the pipeline: select where events are parsed, aggregate and store alerts in order.

Alerts are committed to the alert store *before* the batch's events and checkpoints: after a crash in between,
the batch is read again and yields the same alert ids, which the store keeps once. Rule state (windows,
first-seen baselines) is saved with the alerts every ``state_save_secs`` and when the stage closes.
"""

from __future__ import annotations

import collections
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from cloudsoc.config.models import DetectionConfig, Format
from cloudsoc.detect.alert import Alert
from cloudsoc.detect.engine import Detector, RuleIndex
from cloudsoc.detect.loader import LoadedRules, load_rules
from cloudsoc.detect.rule import Match
from cloudsoc.detect.suppression import Suppression, Suppressions
from cloudsoc.inputs.files import FileInfo, Files
from cloudsoc.outputs.dispatcher import Dispatcher
from cloudsoc.outputs.store import Outbox
from cloudsoc.pipeline.memory import batch_gc, collect_young
from cloudsoc.pipeline.workers import (
    SCANNED_DECODER,
    RuleSource,
    ScannedFile,
    scan_chunk,
    scan_file,
    start_scan_worker,
)
from cloudsoc.storage.alerts import AlertStore

# Rule indexes by detection config, per process: worker processes build theirs once, the main process
# registers the one its stage uses so inline parsing shares it.
_INDEXES: dict[str, RuleIndex] = {}
# Offline runs hand matches to the aggregators every this many events (the pipeline's batch size).
_SCAN_BATCH = 20_000
# Files go to scan workers in chunks of about this many (compressed) bytes: fewer round trips for small files.
_SCAN_CHUNK_BYTES = 1 << 20
# How often the daemon re-reads suppressions that analysts add from other processes.
_REFRESH_SECS = 30.0


def config_key(config: DetectionConfig) -> str:
    return config.model_dump_json()


def index_for(config: DetectionConfig) -> RuleIndex:
    key = config_key(config)
    index = _INDEXES.get(key)
    if index is None:
        index = _INDEXES[key] = load_rules(config).index()
    return index


class DetectionStage:
    """Owns the rules, the detector and the alert store for one pipeline."""

    def __init__(
        self,
        config: DetectionConfig,
        store: AlertStore | None,
        *,
        loaded: LoadedRules | None = None,
        dispatcher: Dispatcher | None = None,
        intel_path: str | None = None,
        retro: bool = False,
        persist_state: bool = True,
        on_alerts: Callable[[list[Alert]], None] | None = None,
    ) -> None:
        self.config = config
        self.loaded = loaded if loaded is not None else load_rules(config)
        self.index = self.loaded.index()
        _INDEXES[config_key(config)] = self.index
        self.store = store
        # Delivers alerts to outputs; alerts are queued in the store's outbox in the same transaction.
        self.dispatcher = dispatcher
        # The indicator store the pipeline enriches events from (threat.enrichments), if any.
        self.intel_path = intel_path
        # Alerts of a hunt over history are marked retro (the events are old news; the knowledge is new).
        self.retro = retro
        # Rule state (windows, baselines) belongs to the pipeline; a hunt starts fresh and must not overwrite it.
        self.persist_state = persist_state
        self.on_alerts = on_alerts
        self.suppressions = Suppressions()
        self.detector = Detector(self.index, suppressor=self.suppressions)
        self.alerts = 0
        self._saved = self._refreshed = time.monotonic()
        if store is not None:
            self.refresh_suppressions()
        if store is not None and persist_state:
            for rule_id, state in store.load_state().items():
                rule = self.index.by_id.get(rule_id)
                if rule is not None:
                    rule.restore(state)

    def refresh_suppressions(self) -> None:
        """Re-read what analysts change from other processes (CLI, console): suppressions and rules switched on or
        off in the console."""
        if self.store is None:
            return
        self._refreshed = time.monotonic()
        self.suppressions.items = [
            Suppression(s.id, s.rule, s.conditions, s.reason, s.expires) for s in self.store.suppressions()
        ]
        self.apply_rule_settings(self.store.rule_settings())

    def apply_rule_settings(self, settings: dict[str, bool]) -> None:
        """Switch rules as the console set them; the index is rebuilt only when something changed."""
        changed = False
        for rule in self.loaded.rules:
            wanted = settings.get(rule.id)
            if wanted is not None and wanted != rule.enabled:
                rule.enabled = wanted
                changed = True
        if changed:
            self.index = self.loaded.index()
            _INDEXES[config_key(self.config)] = self.index
            self.detector.index = self.index

    def select(self, docs: Sequence[dict[str, Any]]) -> list[Match]:
        return self.index.select(docs)

    def enrich(self, docs: Sequence[dict[str, Any]]) -> None:
        """Threat-intel enrichment where the pipeline does not do it (offline scans and hunts)."""
        if self.intel_path is None:
            return
        from cloudsoc.enrichers.intel import intel_source

        enricher = intel_source(self.intel_path).get()
        if enricher is not None:
            enricher.enrich(docs)

    def handle(self, matches: Sequence[Match], latest: str = "") -> list[Alert]:
        """Aggregate one batch's matches (``latest``: the batch's latest event time, ISO); store new alerts (and
        their outbox entries); return them."""
        if self.store is not None and time.monotonic() - self._refreshed >= _REFRESH_SECS:
            self.refresh_suppressions()  # analysts add them from other processes (CLI, console)
        alerts = self.detector.process(matches, _parse_time(latest))
        return self._keep(alerts)

    def finish(self) -> list[Alert]:
        """End of an offline run (detect, hunt): raise what rules still hold."""
        return self._keep(self.detector.finish())

    def _keep(self, alerts: list[Alert]) -> list[Alert]:
        if self.retro:
            for alert in alerts:
                alert.retro = True
        if self.store is None:
            self.alerts += len(alerts)
            if alerts and self.on_alerts is not None:
                self.on_alerts(alerts)
            return alerts
        save_state = self.persist_state and time.monotonic() - self._saved >= self.config.state_save_secs
        hits = self.suppressions.take_hits()
        if not alerts and not save_state and not hits:
            return []
        with self.store.transaction() as conn:
            added = self.store.add(conn, alerts)
            if self.dispatcher is not None:
                outbox = Outbox(conn)
                for alert in added:
                    self.dispatcher.enqueue(outbox, alert)
            if hits:
                self.store.count_suppressed(conn, hits)
            if save_state:
                self.store.save_state(conn, self._states())
        if save_state:
            self._saved = time.monotonic()
        self.alerts += len(added)
        if added and self.dispatcher is not None:
            self.dispatcher.notify()
        if added and self.on_alerts is not None:
            self.on_alerts(added)
        return added

    def _states(self) -> dict[str, bytes]:
        states = {}
        for rule in self.index.rules:
            state = rule.snapshot()
            if state is not None:
                states[rule.id] = state
        return states

    def close(self) -> None:
        """Save rule state and close the alert store."""
        if self.store is None:
            return
        if self.persist_state:
            with self.store.transaction() as conn:
                self.store.save_state(conn, self._states())
        self.store.close()
        self.store = None


def _parse_time(iso: str) -> datetime | None:
    if not iso:
        return None
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ScanStats(msgspec.Struct):
    files: int = 0
    records: int = 0
    events: int = 0
    dead_letters: int = 0
    matches: int = 0
    alerts: int = 0
    seconds: float = 0.0


def scan_files(
    paths: Sequence[Path],
    stage: DetectionStage,
    fmt: Format = "auto",
    *,
    on_file: Callable[[int], None] | None = None,
    pool: ScanPool | None = None,
) -> ScanStats:
    """Offline detection (``cloudsoc detect``): read files like ``ingest``, run the rules, store nothing.

    Files are read in path order (delivery layouts sort by time), so windows see events in time order. With a
    ``pool``, its worker processes read, parse and select chunks of files, and this process aggregates their
    matches in file order, as it would its own: the alerts are the same, in the same order."""
    started = time.perf_counter()
    stats = ScanStats()
    plan = Files(paths, input_name="detect", fmt=fmt).plan({})
    with batch_gc(paced=True):
        scanned = pool.scan(plan, fmt) if pool is not None else _scan_inline(plan, fmt, stage)
        _aggregate(scanned, stage, stats, on_file)
    stats.alerts += len(stage.finish())
    stats.seconds = time.perf_counter() - started
    return stats


def _scan_inline(plan: list[FileInfo], fmt: Format, stage: DetectionStage) -> Iterator[tuple[int, ScannedFile]]:
    for info in plan:
        yield info.size, scan_file(info.path, fmt, stage.enrich, stage.index)


def _aggregate(
    scanned: Iterable[tuple[int, ScannedFile]],
    stage: DetectionStage,
    stats: ScanStats,
    on_file: Callable[[int], None] | None,
) -> None:
    # Matches are aggregated in batches of files, as in the pipeline (and in event order within a batch).
    pending: list[Match] = []
    latest = ""
    for size, found in scanned:
        pending += found.matches
        if found.latest > latest:
            latest = found.latest
        if stats.events // _SCAN_BATCH != (stats.events + found.events) // _SCAN_BATCH:
            stats.matches += len(pending)
            stats.alerts += len(stage.handle(pending, latest))
            pending = []
            collect_young()
        stats.files += 1
        stats.records += found.records
        stats.events += found.events
        stats.dead_letters += found.dead
        if on_file is not None:
            on_file(size)
    stats.matches += len(pending)
    stats.alerts += len(stage.handle(pending, latest))


class ScanPool:
    """Worker processes for an offline run: chunks of files out, their matches back in submission order.

    Made before anything starts a thread (a progress bar): on Linux the workers are forked, so they start with
    this process's compiled rules instead of importing and compiling them again (a second of CPU each)."""

    def __init__(self, workers: int, stage: DetectionStage, source: RuleSource, *, keep_docs: bool) -> None:
        self.workers = workers
        forked = "fork" in multiprocessing.get_all_start_methods()
        rules: RuleSource | RuleIndex = stage.index if forked else source
        self._pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("fork" if forked else "spawn"),
            initializer=start_scan_worker,
            initargs=(rules, stage.intel_path, keep_docs),
        )
        # A fork pool starts all its processes at the first task: now, while this process has one thread.
        self._pool.submit(int).result()

    def __enter__(self) -> ScanPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def scan(self, plan: list[FileInfo], fmt: Format) -> Iterator[tuple[int, ScannedFile]]:
        inflight: collections.deque[tuple[list[FileInfo], Future[bytes]]] = collections.deque()
        for chunk in _chunks(plan, _SCAN_CHUNK_BYTES):
            inflight.append((chunk, self._pool.submit(scan_chunk, [f.path for f in chunk], fmt)))
            if len(inflight) >= 2 * self.workers:  # bounded: results wait in memory until aggregated
                yield from self._take(inflight.popleft())
        while inflight:
            yield from self._take(inflight.popleft())

    @staticmethod
    def _take(item: tuple[list[FileInfo], Future[bytes]]) -> Iterator[tuple[int, ScannedFile]]:
        chunk, future = item
        for info, found in zip(chunk, SCANNED_DECODER.decode(future.result()), strict=True):
            yield info.size, found


def _chunks(plan: list[FileInfo], target: int) -> list[list[FileInfo]]:
    chunks: list[list[FileInfo]] = []
    size = target
    for info in plan:
        if size >= target:
            chunks.append([])
            size = 0
        chunks[-1].append(info)
        size += info.size
    return chunks
