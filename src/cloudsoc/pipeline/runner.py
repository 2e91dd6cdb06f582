"""The asyncio runner: inputs put whole files on the bus; the consumer has them parsed and writes batches.

A batch always ends at a file boundary and carries the checkpoints of its files, and the store commits both
in one transaction: that is what makes a crash lose or double nothing. Parsing runs in worker processes
(``pipeline.workers``; inline with one core) and writing in a thread (DuckDB releases the GIL), so parsing,
storing and reading overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson

from cloudsoc.bus.base import Bus
from cloudsoc.bus.memory import MemoryBus
from cloudsoc.config.models import PipelineConfig
from cloudsoc.detect.rule import Match
from cloudsoc.event import DeadLetter
from cloudsoc.inputs.base import FileData, Input
from cloudsoc.pipeline.detection import DetectionStage
from cloudsoc.pipeline.memory import batch_gc
from cloudsoc.pipeline.metrics import Counters
from cloudsoc.pipeline.workers import ChunkResult, FileResult, WorkerPool, default_workers, usable_cores
from cloudsoc.storage.base import Checkpoint, EncodedEvents, Storage, WriteResult

Progress = Callable[[FileData], None]
# Files go to workers in chunks of about this many (compressed) bytes: fewer round trips for small files.
_CHUNK_BYTES = 256 * 1024


class _Pending:
    def __init__(self) -> None:
        self.encoded = EncodedEvents()
        self.dead: list[DeadLetter] = []
        self.checkpoints: list[Checkpoint] = []
        self.files: list[FileData] = []
        self.matches: list[Match] = []
        self.latest = ""


class Runner:
    """Runs inputs into storage until they finish or :meth:`stop` is called, then flushes."""

    def __init__(
        self,
        storage: Storage,
        config: PipelineConfig | None = None,
        *,
        bus: Bus | None = None,
        on_file: Progress | None = None,
        on_write: Callable[[WriteResult], None] | None = None,
        status_path: Path | None = None,
        housekeeping: Callable[[], None] | None = None,
        housekeeping_secs: float = 3600.0,
        detection: DetectionStage | None = None,
        chores: Sequence[tuple[Callable[[], None], float]] = (),
    ) -> None:
        self.storage = storage
        self.detection = detection
        self.config = config or PipelineConfig()
        self.bus: Bus = bus or MemoryBus(self.config.queue_max_batches * 16)
        self.counters = Counters()
        self.on_file = on_file
        self.on_write = on_write
        self._stop = asyncio.Event()
        self._writing: asyncio.Task[None] | None = None
        self._failed = False
        self.status_path = status_path
        self.housekeeping = housekeeping
        self.housekeeping_secs = housekeeping_secs
        # Other periodic work of a long-running daemon (feed sync): (function, every so many seconds), in threads.
        self.chores = list(chores)
        if housekeeping is not None:
            self.chores.append((housekeeping, housekeeping_secs))
        self.inputs: Sequence[Input] = ()
        self.started = time.time()
        # The write thread overlaps storing with parsing only when there is a core to run it on. On one core the
        # two threads take turns (GIL hand-offs, context switches, each evicting the other's cache): writing on
        # the event loop's own thread measured 1 s of CPU less per 280k events (~3.5 µs an event).
        self.inline_writes = usable_cores() == 1

    def stop(self) -> None:
        """Ask inputs to stop; what was already read is processed and committed."""
        self._stop.set()

    async def run(self, inputs: Sequence[Input]) -> Counters:
        with batch_gc():
            return await self._run(inputs)

    async def _run(self, inputs: Sequence[Input]) -> Counters:
        started = time.perf_counter()
        self.inputs = inputs
        producers = [asyncio.create_task(self._produce(i)) for i in inputs]
        consumer = asyncio.create_task(self._consume(len(producers)))
        ticker = asyncio.create_task(self._status_loop()) if self.status_path is not None else None
        chores = [asyncio.create_task(self._chore_loop(fn, secs)) for fn, secs in self.chores]
        dispatcher = self.detection.dispatcher if self.detection is not None else None
        # Outputs deliver until the pipeline has flushed, then get the dispatcher's grace period.
        outputs_stop = asyncio.Event()
        delivering = asyncio.create_task(dispatcher.run(outputs_stop)) if dispatcher is not None else None
        watched: set[asyncio.Task[None]] = {*producers, consumer, *chores}
        try:
            # Whatever fails first (an input, the store, a chore) stops the whole run: a daemon that keeps
            # polling while nothing can be stored would only look alive.
            pending = set(watched)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                failed = [t for t in done if not t.cancelled() and t.exception() is not None]
                if failed:
                    self._failed = True
                    self._stop.set()
                    raise failed[0].exception()  # type: ignore[misc]
                if not any(not p.done() for p in producers) and consumer.done():
                    break
        finally:
            self._stop.set()
            for task in watched:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*watched, return_exceptions=True)
            if delivering is not None and dispatcher is not None:
                await self._drain_outbox()
                outputs_stop.set()
                await asyncio.gather(delivering, return_exceptions=True)
                await dispatcher.aclose()
            self.counters.seconds = time.perf_counter() - started
            if ticker is not None:
                ticker.cancel()
                self.write_status()
        return self.counters

    async def _drain_outbox(self, timeout_secs: float = 10.0) -> None:
        """Give deliveries that are due now (the last batch's alerts) a moment to go out before outputs stop;
        whatever is left, or waits for a retry, is sent by the next run."""
        store = self.detection.store if self.detection is not None else None
        if store is None:
            return
        from cloudsoc.outputs.store import Outbox

        deadline = time.monotonic() + timeout_secs
        while time.monotonic() < deadline:
            due = Outbox(store.conn).next_due()
            if due is None or due > time.time() + 0.5:
                return
            await asyncio.sleep(0.05)

    async def _chore_loop(self, chore: Callable[[], None], every_secs: float) -> None:
        """Periodic work of long-running daemons (retention, feed sync), off the event loop."""
        while True:
            await asyncio.sleep(every_secs)
            await asyncio.to_thread(chore)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.write_status()

    async def _produce(self, source: Input) -> None:
        try:
            await source.run(self.bus, self._stop)
        finally:
            if not self._failed:  # after a failure nobody reads the bus: a full one would block forever
                await self.bus.put(None)

    async def _consume(self, producers: int) -> None:
        workers = self.config.workers or default_workers()
        stage = self.detection
        pool = WorkerPool(
            workers,
            self.storage.encoder,
            stage.config if stage is not None else None,
            stage.intel_path if stage is not None else None,
        )
        inflight: deque[tuple[list[FileData], asyncio.Task[ChunkResult]]] = deque()
        max_inflight = 2 * workers
        pending = _Pending()
        chunk: list[FileData] = []
        chunk_bytes = 0
        getter: asyncio.Task[Any] | None = None
        deadline = time.monotonic() + self.config.batch_max_secs
        ended = 0
        try:
            while ended < producers or chunk or inflight:
                if self._writing is not None and self._writing.done():
                    self._writing.result()  # a failed write stops the run now, not at the next flush
                # Back-pressure: stop taking files while the workers are saturated.
                if getter is None and ended < producers and len(inflight) < max_inflight:
                    getter = asyncio.ensure_future(self.bus.get())
                waits: set[asyncio.Future[Any]] = {getter} if getter is not None else set()
                if inflight:
                    waits.add(inflight[0][1])
                if self._writing is not None:
                    waits.add(self._writing)  # wake up if the write in flight fails
                timeout = max(0.0, deadline - time.monotonic()) if pending.files else None
                if waits:
                    done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                else:
                    done = set()
                if getter is not None and getter in done:
                    msg = getter.result()
                    getter = None
                    while True:
                        if msg is None:
                            ended += 1
                        elif isinstance(msg, FileData):
                            chunk.append(msg)
                            chunk_bytes += len(msg.data)
                        # Take what is already queued without a task and a wait per file (files are ~10 KB).
                        if chunk_bytes >= _CHUNK_BYTES or ended >= producers or not self.bus.qsize():
                            break
                        msg = self.bus.get_nowait()
                quiet = ended >= producers or self.bus.qsize() == 0
                if chunk and (chunk_bytes >= _CHUNK_BYTES or quiet) and len(inflight) < max_inflight:
                    inflight.append((chunk, asyncio.ensure_future(pool.run(chunk))))
                    chunk, chunk_bytes = [], 0
                while inflight and inflight[0][1].done():  # collect in submission order
                    files, task = inflight.popleft()
                    if not pending.files:
                        deadline = time.monotonic() + self.config.batch_max_secs
                    result = task.result()
                    pending.encoded.extend(result.encoded)
                    pending.dead.extend(result.dead)
                    for f, file_result in zip(files, result.files, strict=True):
                        self._add(f, file_result, pending)
                    if self._batch_full(pending):
                        pending = await self._flush(pending)
                if pending.files and time.monotonic() >= deadline:
                    pending = await self._flush(pending)
            await self._flush(pending)
            if self._writing is not None:
                await self._writing
        finally:
            if getter is not None:
                getter.cancel()
            for _files, task in inflight:
                task.cancel()
            pool.close()

    def _batch_full(self, pending: _Pending) -> bool:
        return pending.encoded.rows + len(pending.dead) >= self.config.batch_max_events

    def _add(self, msg: FileData, result: FileResult, pending: _Pending) -> None:
        pending.checkpoints.append(Checkpoint(msg.input, msg.key, msg.size, msg.mtime_ns, result.records))
        pending.files.append(msg)
        if result.matches:
            pending.matches.extend(result.matches)
        if result.latest > pending.latest:
            pending.latest = result.latest
        self.counters.records += result.records
        self.counters.bytes += msg.size

    async def _flush(self, pending: _Pending) -> _Pending:
        if not pending.files:
            return pending
        if self._writing is not None:
            await self._writing  # at most one write in flight: order and back-pressure
        self._writing = asyncio.create_task(self._write(pending))
        return _Pending()

    def _commit(self, batch: _Pending) -> WriteResult:
        # Alerts first (idempotent ids), then events and checkpoints: a crash in between replays the batch and
        # finds its alerts already stored.
        if self.detection is not None:
            self.counters.alerts += len(self.detection.handle(batch.matches, batch.latest))
        return self.storage.write_encoded(batch.encoded, batch.dead, batch.checkpoints)

    async def _write(self, batch: _Pending) -> None:
        result = self._commit(batch) if self.inline_writes else await asyncio.to_thread(self._commit, batch)
        c = self.counters
        c.files += len(batch.files)
        c.stored += result.stored
        c.duplicates += result.duplicates
        c.dead_letters += result.dead_letters
        c.batches += 1
        if self.on_write is not None:
            self.on_write(result)
        if self.status_path is not None:
            self.write_status()
        if self.on_file is not None:
            for f in batch.files:
                self.on_file(f)

    def status(self) -> dict[str, Any]:
        """Counters of this run and of each input (for health pages and scripts)."""
        return {
            "pid": os.getpid(),
            "started": datetime.fromtimestamp(self.started, UTC).isoformat(),
            "updated": datetime.now(UTC).isoformat(),
            "queued": self.bus.qsize(),
            "counters": msgspec.to_builtins(self.counters),
            "inputs": {i.input_name: i.status() for i in self.inputs},
        }

    def write_status(self) -> None:
        """Write ``status.json`` atomically (write a temp file, then rename over)."""
        if self.status_path is None:
            return
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(self.status(), option=orjson.OPT_INDENT_2))
        os.replace(tmp, self.status_path)


async def run_until_signal(runner: Runner, inputs: Sequence[Input]) -> Counters:
    """Run ``inputs`` until they end or SIGTERM/SIGINT arrives, then flush and return the counters."""
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, runner.stop)
    return await runner.run(inputs)
