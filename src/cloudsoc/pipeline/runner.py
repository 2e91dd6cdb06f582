"""The asyncio runner: inputs put whole files on the bus; one consumer parses them and writes batches.

A batch always ends at a file boundary and carries the checkpoints of its files, and the store commits both
in one transaction: that is what makes a crash lose or double nothing. Writing runs in a worker thread
(DuckDB releases the GIL) while the next batch is parsed, so storage overlaps parsing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

from cloudsoc.bus.base import Bus
from cloudsoc.bus.memory import MemoryBus
from cloudsoc.config.models import Format, PipelineConfig
from cloudsoc.event import DeadLetter, Event
from cloudsoc.inputs.base import FileData, Input
from cloudsoc.pipeline.metrics import Counters
from cloudsoc.pipeline.processor import Processor
from cloudsoc.storage.base import Checkpoint, Storage, WriteResult

Progress = Callable[[FileData], None]


class _Pending:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.dead: list[DeadLetter] = []
        self.checkpoints: list[Checkpoint] = []
        self.files: list[FileData] = []


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
    ) -> None:
        self.storage = storage
        self.config = config or PipelineConfig()
        self.bus: Bus = bus or MemoryBus(self.config.queue_max_batches * 16)
        self.counters = Counters()
        self.on_file = on_file
        self.on_write = on_write
        self._processors: dict[Format, Processor] = {}
        self._stop = asyncio.Event()
        self._writing: asyncio.Task[None] | None = None

    def stop(self) -> None:
        """Ask inputs to stop; what was already read is processed and committed."""
        self._stop.set()

    async def run(self, inputs: Sequence[Input]) -> Counters:
        started = time.perf_counter()
        producers = [asyncio.create_task(self._produce(i)) for i in inputs]
        consumer = asyncio.create_task(self._consume(len(producers)))
        try:
            await asyncio.gather(*producers)
        finally:
            if any(not p.done() for p in producers):
                for p in producers:
                    p.cancel()
            await consumer
            self.counters.seconds = time.perf_counter() - started
        return self.counters

    async def _produce(self, source: Input) -> None:
        try:
            await source.run(self.bus, self._stop)
        finally:
            await self.bus.put(None)

    async def _consume(self, producers: int) -> None:
        pending = _Pending()
        deadline = time.monotonic() + self.config.batch_max_secs
        ended = 0
        while ended < producers:
            timeout = max(0.0, deadline - time.monotonic())
            try:
                msg = await asyncio.wait_for(self.bus.get(), timeout=timeout) if pending.files else await self._get()
            except TimeoutError:
                msg = ...
            if msg is None:
                ended += 1
                continue
            if isinstance(msg, FileData):
                self._process(msg, pending)
                if len(pending.files) == 1:
                    deadline = time.monotonic() + self.config.batch_max_secs
            if pending.files and (
                len(pending.events) + len(pending.dead) >= self.config.batch_max_events or time.monotonic() >= deadline
            ):
                pending = await self._flush(pending)
        await self._flush(pending)
        if self._writing is not None:
            await self._writing

    async def _get(self) -> object:
        return await self.bus.get()

    def _processor(self, fmt: Format) -> Processor:
        proc = self._processors.get(fmt)
        if proc is None:
            proc = self._processors[fmt] = Processor(fmt)
        return proc

    def _process(self, msg: FileData, pending: _Pending) -> None:
        events, dead, records = self._processor(msg.format).process(msg.data, msg.input, msg.key)
        pending.events.extend(events)
        pending.dead.extend(dead)
        pending.checkpoints.append(Checkpoint(msg.input, msg.key, msg.size, msg.mtime_ns, records))
        pending.files.append(msg)
        self.counters.records += records
        self.counters.bytes += msg.size

    async def _flush(self, pending: _Pending) -> _Pending:
        if not pending.files:
            return pending
        if self._writing is not None:
            await self._writing  # at most one write in flight: order and back-pressure
        self._writing = asyncio.create_task(self._write(pending))
        return _Pending()

    async def _write(self, batch: _Pending) -> None:
        result = await asyncio.to_thread(self.storage.write, batch.events, batch.dead, batch.checkpoints)
        c = self.counters
        c.files += len(batch.files)
        c.stored += result.stored
        c.duplicates += result.duplicates
        c.dead_letters += result.dead_letters
        c.batches += 1
        if self.on_write is not None:
            self.on_write(result)
        if self.on_file is not None:
            for f in batch.files:
                self.on_file(f)


async def run_until_signal(runner: Runner, inputs: Sequence[Input]) -> Counters:
    """Run ``inputs`` until they end or SIGTERM/SIGINT arrives, then flush and return the counters."""
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, runner.stop)
    return await runner.run(inputs)
