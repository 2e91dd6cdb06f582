"""Routes alerts to outputs and delivers the outbox: at least once, with exponential back-off and jitter.

Flow: the alert store calls :meth:`Dispatcher.enqueue` (or :meth:`route` and :meth:`Outbox.enqueue` itself)
inside the transaction that stores the alert, commits, then calls :meth:`Dispatcher.notify`. :meth:`run` wakes at
once, takes what is due and sends it, several deliveries at a time. A failure is retried after
``backoff_secs * 2**(attempt-1)`` (capped by ``max_backoff_secs``, ±20% jitter, never sooner than a server's
``Retry-After``) until ``max_attempts``; then the delivery is kept as ``failed`` with its last error. Deliveries
still pending when the process stops (or dies) are sent by the next :meth:`run` on the same database.

All outbox calls run on one worker thread (SQLite may wait on a lock; the event loop must not); the outbox comes
from ``outbox_factory``, called on that thread, and is closed when :meth:`run` ends. One dispatcher per outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import functools
import logging
import random
import sqlite3
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

import httpx
import msgspec

from cloudsoc.detect.alert import Alert
from cloudsoc.errors import ConfigError
from cloudsoc.outputs.base import DeliveryError, Output
from cloudsoc.outputs.store import Outbox, OutboxItem

logger = logging.getLogger(__name__)

T = TypeVar("T")

JITTER: Final = 0.2


class Dispatcher:
    """Which outputs an alert goes to, and the delivery loop with its counters."""

    def __init__(
        self,
        outputs: Mapping[str, Output],
        configs: Mapping[str, Any],
        outbox_factory: Callable[[], Outbox],
        *,
        concurrency: int = 16,
        batch_size: int = 200,
        poll_secs: float = 5.0,
        stop_grace_secs: float = 5.0,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        missing = sorted(set(outputs) ^ set(configs))
        if missing:
            raise ConfigError(f"outputs and their configs differ: {', '.join(missing)}")
        self.outputs = dict(outputs)
        self.configs = dict(configs)
        self.outbox_factory = outbox_factory
        self.concurrency = concurrency
        self.batch_size = batch_size
        # Fallback look at the outbox, for deliveries queued without notify() (another process, a CLI requeue).
        self.poll_secs = poll_secs
        self.stop_grace_secs = stop_grace_secs
        self.clock = clock
        self.rng = rng
        # For the health page: deliveries sent / given up / retried by this process; pending and failed in the
        # outbox as of the last pass; the last error per output.
        self.counters: dict[str, int] = {"sent": 0, "failed": 0, "retried": 0, "pending": 0, "outbox_failed": 0}
        self.last_errors: dict[str, str] = {}
        self._unknown_warned: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_config(
        cls, configs: Mapping[str, Any], outbox_factory: Callable[[], Outbox], **options: Any
    ) -> Dispatcher:
        """Outputs built from the ``outputs:`` section, sharing one HTTP client (closed by :meth:`aclose`)."""
        client = httpx.AsyncClient(headers={"User-Agent": "cloudsoc"})
        dispatcher = cls(Output.build(configs, client), configs, outbox_factory, **options)
        dispatcher._client = client
        return dispatcher

    async def aclose(self) -> None:
        """Close the outputs (and the HTTP client :meth:`from_config` made)."""
        for output in self.outputs.values():
            await output.aclose()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def route(self, alert: Alert) -> list[str]:
        """The outputs ``alert`` goes to: those whose ``min_severity`` it reaches and whose ``rules`` globs match
        its rule id or that the alert names itself (``alert.outputs``); in config order."""
        named = set(alert.outputs)
        for name in named - self.configs.keys():
            if name not in self._unknown_warned:
                self._unknown_warned.add(name)
                logger.warning("rule %r sends to output %r, which is not configured", alert.rule_id, name)
        chosen = []
        for name, config in self.configs.items():
            if alert.severity.rank < config.min_severity.rank:
                continue
            if name in named or any(fnmatch.fnmatchcase(alert.rule_id, p) for p in config.rules):
                chosen.append(name)
        return chosen

    def enqueue(self, outbox: Outbox, alert: Alert, *, now: float | None = None) -> list[str]:
        """Queue ``alert`` for every output :meth:`route` picks, in the caller's transaction (not committed here);
        returns the outputs newly queued. Call :meth:`notify` after the commit."""
        payload = msgspec.json.encode(alert)
        return [name for name in self.route(alert) if outbox.enqueue(alert.id, name, payload, now=now)]

    def notify(self) -> None:
        """Something was queued: deliver now. Safe to call from any thread, and before :meth:`run` starts."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return  # run() looks at the outbox when it starts
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to wake
                loop.call_soon_threadsafe(wake.set)

    def backoff_secs(self, config: Any, attempts: int, retry_after_secs: float | None = None) -> float:
        """Wait before attempt ``attempts + 1``, after ``attempts`` failures."""
        delay = float(min(config.backoff_secs * 2 ** (attempts - 1), config.max_backoff_secs))
        delay *= 1 + JITTER * (2 * self.rng() - 1)
        return max(delay, retry_after_secs or 0.0)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; then give deliveries under way ``stop_grace_secs`` to finish."""
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cloudsoc-outbox")

        async def db(call: Callable[..., T], *args: Any) -> T:
            return await loop.run_in_executor(executor, call, *args)

        wake = asyncio.Event()
        in_flight: dict[int, asyncio.Task[None]] = {}
        outbox: Outbox | None = None
        stopper = asyncio.create_task(stop.wait())
        stopper.add_done_callback(lambda _: wake.set())
        try:
            outbox = await db(self.outbox_factory)
            self._loop, self._wake = loop, wake
            while not stop.is_set():
                wake.clear()
                try:
                    delay = await self._pass(db, outbox, in_flight, wake)
                except sqlite3.Error as exc:
                    # A lock held past the busy timeout, a full disk: the queue is still there, try again later.
                    logger.error("outbox: %s; trying again in %g s", exc, self.poll_secs)
                    delay = self.poll_secs
                if delay > 0 and not wake.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await wake.wait()
        finally:
            stopper.cancel()
            self._loop = self._wake = None
            if in_flight:
                # Unfinished ones stay pending and are sent again after the restart (at least once).
                _, unfinished = await asyncio.wait(list(in_flight.values()), timeout=self.stop_grace_secs)
                for task in unfinished:
                    task.cancel()
                await asyncio.gather(*unfinished, return_exceptions=True)
            if outbox is not None:
                await db(outbox.close)
            executor.shutdown(wait=True)

    async def _pass(
        self,
        db: Callable[..., Any],
        outbox: Outbox,
        in_flight: dict[int, asyncio.Task[None]],
        wake: asyncio.Event,
    ) -> float:
        """Start what is due; returns how long to wait before the next look (unless woken)."""
        room = self.concurrency - len(in_flight)
        if room > 0:
            items: list[OutboxItem] = await db(outbox.due, self.clock(), min(room, self.batch_size), tuple(in_flight))
            for item in items:
                task = asyncio.create_task(self._deliver(db, outbox, item))
                in_flight[item.id] = task
                task.add_done_callback(functools.partial(self._finished, in_flight, wake, item.id))
        counts = await db(outbox.counts)
        self.counters["pending"] = counts["pending"]
        self.counters["outbox_failed"] = counts["failed"]
        delay = self.poll_secs
        if len(in_flight) < self.concurrency:
            next_at = await db(outbox.next_due, tuple(in_flight))
            if next_at is not None:
                delay = min(delay, max(next_at - self.clock(), 0.0))
        return delay

    @staticmethod
    def _finished(in_flight: dict[int, asyncio.Task[None]], wake: asyncio.Event, item_id: int, _: object) -> None:
        in_flight.pop(item_id, None)
        wake.set()

    async def _deliver(self, db: Callable[..., Any], outbox: Outbox, item: OutboxItem) -> None:
        output = self.outputs.get(item.output)
        config = self.configs.get(item.output)
        retryable, retry_after = True, None
        if output is None or config is None:
            error, retryable = f"output {item.output!r} is not configured (any more)", False
        else:
            try:
                alert = msgspec.json.decode(item.payload, type=Alert)
            except msgspec.DecodeError as exc:
                error, retryable = f"queued payload is not an alert: {exc}", False
            else:
                try:
                    await output.send(alert)
                except DeliveryError as exc:
                    error, retryable, retry_after = str(exc), exc.retryable, exc.retry_after_secs
                except Exception as exc:
                    # A bug in an output; its message might quote a token, so only the type is reported.
                    error = f"output {item.output!r}: unexpected {type(exc).__name__}"
                else:
                    try:
                        await db(outbox.mark_delivered, item.id)
                    except sqlite3.Error as exc:
                        logger.error("outbox: cannot record delivery %d (%s); it may be sent again", item.id, exc)
                    self.counters["sent"] += 1
                    return
        attempts = item.attempts + 1
        give_up = not retryable or config is None or attempts >= config.max_attempts
        next_at = None if give_up else self.clock() + self.backoff_secs(config, attempts, retry_after)
        self.last_errors[item.output] = error
        if give_up:
            self.counters["failed"] += 1
            logger.error("alert %s not delivered, given up after %d attempt(s): %s", item.alert_id, attempts, error)
        else:
            self.counters["retried"] += 1
            logger.warning("alert %s: attempt %d failed, retrying: %s", item.alert_id, attempts, error)
        try:
            await db(outbox.mark_failed, item.id, error, next_at)
        except sqlite3.Error as exc:
            logger.error("outbox: cannot record failed delivery %d (%s)", item.id, exc)

    def health(self) -> dict[str, Any]:
        """Counters and the last error of each output, for the health page."""
        return {**self.counters, "last_errors": dict(self.last_errors)}
