"""Parse in worker processes: framing, parsing and encoding are pure Python and hold the GIL, so one process
cannot use a second core for them. The consumer sends chunks of whole files to a pool and gets encoded
documents and dead letters back, in submission order.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

import msgspec

from cloudsoc.config.models import DetectionConfig, Format
from cloudsoc.detect.engine import RuleIndex, latest_time
from cloudsoc.detect.rule import Match
from cloudsoc.errors import InputError
from cloudsoc.event import DeadLetter
from cloudsoc.inputs.base import FileData, read_file
from cloudsoc.pipeline.processor import Processor
from cloudsoc.storage.base import EncodedEvents
from cloudsoc.storage.encoder import DocumentBuffer, DocumentEncoder


class FileResult(msgspec.Struct):
    """What one file turned into (its events are encoded with the rest of its chunk)."""

    records: int
    matches: list[Match] = []
    # The file's latest event time (ISO string): event time advances even when nothing matches.
    latest: str = ""


class ChunkResult(msgspec.Struct):
    """What a chunk of files turned into: their events encoded into one batch (see DocumentBuffer), their dead
    letters, and each file's counts, in order."""

    encoded: EncodedEvents
    dead: list[DeadLetter]
    files: list[FileResult]


_processors: dict[Format, Processor] = {}


def processor(fmt: Format) -> Processor:
    """This process's processor for ``fmt`` (parsers are built once)."""
    found = _processors.get(fmt)
    if found is None:
        found = _processors[fmt] = Processor(fmt)
    return found


def process_files(
    files: list[FileData], encoder: DocumentEncoder, detection: DetectionConfig | None = None, intel: str | None = None
) -> ChunkResult:
    """Frame, parse, enrich (threat intel from the indicator store file ``intel``), select (detection rules) and
    encode whole files (runs in a worker process, or inline)."""
    from cloudsoc.enrichers.intel import intel_source
    from cloudsoc.pipeline.detection import index_for

    index = index_for(detection) if detection is not None else None
    enricher = intel_source(intel).get() if intel is not None else None
    out = []
    encoded = DocumentBuffer()
    dead: list[DeadLetter] = []
    for f in files:
        events, file_dead, records = processor(f.format).process(f.data, f.input, f.key)
        dead += file_dead
        docs = [e.fields for e in events]
        if enricher is not None:
            enricher.enrich(docs)
        matches = index.select(docs) if index is not None else []
        latest = latest_time(docs) if index is not None else ""
        encoder.append(encoded, events, dead)
        out.append(FileResult(records, matches, latest))
    return ChunkResult(encoded.finish(), dead, out)


def usable_cores() -> int:
    """Cores this process may run on (respects taskset/cgroups affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_workers() -> int:
    """Parser processes by default: the store needs a core of its own (DuckDB and Parquet writing run in
    threads beside the parser), so on two cores parsing inline is fastest (measured: 39k vs 34k events/s)."""
    cores = usable_cores()
    return cores - 1 if cores >= 4 else 1


class WorkerPool:
    """A pool of parser processes; with one worker everything runs inline in this process."""

    def __init__(
        self,
        workers: int,
        encoder: DocumentEncoder,
        detection: DetectionConfig | None = None,
        intel: str | None = None,
    ) -> None:
        self.workers = workers
        self.encoder = encoder
        self.detection = detection
        self.intel = intel
        self._pool: Executor | None = None
        if workers > 1:
            # spawn, not fork: the parent has DuckDB and asyncio threads running.
            self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))

    async def run(self, files: list[FileData]) -> ChunkResult:
        if self._pool is None:
            return process_files(files, self.encoder, self.detection, self.intel)
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, process_files, files, self.encoder, self.detection, self.intel
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------------- offline detection (detect)


class RuleSource(msgspec.Struct, frozen=True):
    """Where an offline run's rules come from, so that each worker process loads the same rules."""

    config: DetectionConfig
    paths: tuple[str, ...] | None
    builtin: bool


class ScannedFile(msgspec.Struct):
    """What one file gave an offline run: its counts, its latest event time and its rules' matches."""

    records: int
    events: int
    dead: int
    latest: str
    matches: list[Match]


class _ScanState:
    """A worker's rules (given by a forking parent, or loaded once from their source) and what it needs beside."""

    def __init__(self, rules: RuleSource | RuleIndex, intel: str | None, keep_docs: bool) -> None:
        from pathlib import Path

        from cloudsoc.detect.loader import load_rules
        from cloudsoc.detect.rule import Rule

        if isinstance(rules, RuleSource):
            paths = [Path(p) for p in rules.paths] if rules.paths is not None else None
            rules = load_rules(rules.config, paths, builtin=rules.builtin).index()
        self.index = rules
        self.intel = intel
        self.keep_docs = keep_docs
        # Rules with their own observe() may read the event; the others' matches travel without it (the
        # alerts of an offline run print event ids, and events only with --events).
        self.reads_doc = frozenset(r.id for r in rules.rules if type(r).observe is not Rule.observe)
        self.encoder = msgspec.msgpack.Encoder(enc_hook=str)


_scan_state: _ScanState | None = None


def start_scan_worker(rules: RuleSource | RuleIndex, intel: str | None, keep_docs: bool) -> None:
    """Pool initializer: the rules, once per worker process."""
    global _scan_state
    # Ctrl-C reaches the whole process group: the parent stops the run (and waits for the chunks in hand);
    # workers interrupted on their own would each print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _scan_state = _ScanState(rules, intel, keep_docs)


def scan_file(
    path: str, fmt: Format, enrich: Callable[[Sequence[dict[str, Any]]], object], index: RuleIndex
) -> ScannedFile:
    """Read, parse, enrich and select one file of an offline run (in this process or in a worker)."""
    try:
        data = read_file(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    events, dead, records = processor(fmt).process(data, "detect", path)
    docs = [e.fields for e in events]
    enrich(docs)
    return ScannedFile(records, len(events), len(dead), latest_time(docs), index.select(docs))


def scan_chunk(paths: list[str], fmt: Format) -> bytes:
    """:func:`scan_file` for whole files in a worker; the result is MessagePack of list[ScannedFile] (a tenth of
    pickle's cost for these nested documents)."""
    from cloudsoc.enrichers.intel import intel_source

    state = _scan_state
    assert state is not None, "start_scan_worker did not run"
    enricher = intel_source(state.intel).get() if state.intel is not None else None
    enrich = enricher.enrich if enricher is not None else _no_enrichment
    out = [scan_file(path, fmt, enrich, state.index) for path in paths]
    if not state.keep_docs:
        for found in out:
            for m in found.matches:
                if m.rule_id not in state.reads_doc:
                    m.doc = {}
    return state.encoder.encode(out)


def _no_enrichment(docs: Sequence[dict[str, Any]]) -> None:
    pass


SCANNED_DECODER: msgspec.msgpack.Decoder[list[ScannedFile]] = msgspec.msgpack.Decoder(list[ScannedFile])
