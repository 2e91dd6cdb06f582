"""The detection stage of the pipeline: select where events are parsed, aggregate and store alerts in order.

Alerts are committed to the alert store *before* the batch's events and checkpoints: after a crash in between,
the batch is read again and yields the same alert ids, which the store keeps once. Rule state (windows,
first-seen baselines) is saved with the alerts every ``state_save_secs`` and when the stage closes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from cloudsoc.config.models import DetectionConfig, Format
from cloudsoc.detect.alert import Alert
from cloudsoc.detect.engine import Detector, RuleIndex, latest_time
from cloudsoc.detect.loader import LoadedRules, load_rules
from cloudsoc.detect.rule import Match
from cloudsoc.detect.suppression import Suppression, Suppressions
from cloudsoc.errors import InputError
from cloudsoc.inputs.base import read_file
from cloudsoc.inputs.files import Files
from cloudsoc.outputs.dispatcher import Dispatcher
from cloudsoc.outputs.store import Outbox
from cloudsoc.pipeline.memory import batch_gc, collect_young
from cloudsoc.pipeline.processor import Processor
from cloudsoc.storage.alerts import AlertStore

# Rule indexes by detection config, per process: worker processes build theirs once, the main process
# registers the one its stage uses so inline parsing shares it.
_INDEXES: dict[str, RuleIndex] = {}
# Offline runs hand matches to the aggregators every this many events (the pipeline's batch size).
_SCAN_BATCH = 20_000
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
) -> ScanStats:
    """Offline detection (``cloudsoc detect``): read files like ``ingest``, run the rules, store nothing.

    Files are read in path order (delivery layouts sort by time), so windows see events in time order."""
    started = time.perf_counter()
    stats = ScanStats()
    files = Files(paths, input_name="detect", fmt=fmt)
    processor = Processor(fmt)
    with batch_gc(paced=True):
        _scan(files, processor, stage, stats, on_file)
    stats.alerts += len(stage.finish())
    stats.seconds = time.perf_counter() - started
    return stats


def _scan(
    files: Files, processor: Processor, stage: DetectionStage, stats: ScanStats, on_file: Callable[[int], None] | None
) -> None:
    # Matches are aggregated in batches of files, as in the pipeline (and in event order within a batch).
    pending: list[Match] = []
    latest = ""
    for info in files.plan({}):
        try:
            data = read_file(info.path)
        except OSError as exc:
            raise InputError(f"{info.path}: cannot read: {exc.strerror}") from None
        events, dead, records = processor.process(data, "detect", info.path)
        docs = [e.fields for e in events]
        stage.enrich(docs)
        pending += stage.select(docs)
        latest = latest_time(docs, latest)
        if stats.events // _SCAN_BATCH != (stats.events + len(events)) // _SCAN_BATCH:
            stats.matches += len(pending)
            stats.alerts += len(stage.handle(pending, latest))
            pending = []
            collect_young()
        stats.files += 1
        stats.records += records
        stats.events += len(events)
        stats.dead_letters += len(dead)
        if on_file is not None:
            on_file(info.size)
    stats.matches += len(pending)
    stats.alerts += len(stage.handle(pending, latest))
