"""The outbox (SQLite) and the dispatcher: transactions shared with the alert store, routing, retries with
back-off, giving up, delivery after a restart, wake-up latency, and no secrets in any log record."""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from pydantic import TypeAdapter

from cloudsoc.config.outputs import OutputConfig
from cloudsoc.detect.alert import Alert, Severity
from cloudsoc.outputs.base import Output
from cloudsoc.outputs.dispatcher import Dispatcher
from cloudsoc.outputs.store import Outbox
from tests.servers import alerts
from tests.servers.smtp import free_port
from tests.servers.vendors import VendorServer

ADAPTER: TypeAdapter[Any] = TypeAdapter(OutputConfig)

pytestmark = pytest.mark.skipif(not alerts.CLOUDAUDIT.is_dir(), reason="../shared/data not found")


def connect(path: Path) -> sqlite3.Connection:
    """As the alert store opens it: WAL, a busy timeout, usable from the dispatcher's thread."""
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "alerts.sqlite"
    conn = connect(path)
    conn.execute("CREATE TABLE alerts (id TEXT PRIMARY KEY, body BLOB)")
    Outbox.create(conn)
    conn.commit()
    conn.close()
    yield path


def make(configs: dict[str, dict[str, Any]], db: Path, client: httpx.AsyncClient, **options: Any) -> Dispatcher:
    typed = {name: ADAPTER.validate_python(c) for name, c in configs.items()}
    return Dispatcher(Output.build(typed, client), typed, lambda: Outbox(connect(db)), **options)


def store_alert(db: Path, dispatcher: Dispatcher, alert: Alert) -> list[str]:
    """What the alert store does: the alert and its deliveries in one transaction, then notify()."""
    conn = connect(db)
    try:
        conn.execute("INSERT OR IGNORE INTO alerts VALUES (?, ?)", (alert.id, msgspec.json.encode(alert)))
        queued = dispatcher.enqueue(Outbox(conn), alert)
        conn.commit()
    finally:
        conn.close()
    dispatcher.notify()
    return queued


async def until(condition: Callable[[], bool], timeout_secs: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_secs
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def rows(db: Path) -> list[tuple[Any, ...]]:
    conn = connect(db)
    try:
        return conn.execute("SELECT output, status, attempts, last_error FROM outbox ORDER BY id").fetchall()
    finally:
        conn.close()


# -- outbox -----------------------------------------------------------------------------------------------------------


def test_enqueue_is_part_of_the_callers_transaction(db: Path) -> None:
    conn = connect(db)
    outbox = Outbox(conn)
    conn.execute("INSERT INTO alerts VALUES ('a1', x'00')")
    assert outbox.enqueue("a1", "ding", b"{}", now=100.0)
    conn.rollback()  # the store failed: neither the alert nor its delivery exists
    assert outbox.counts() == {"pending": 0, "delivered": 0, "failed": 0}
    conn.execute("INSERT INTO alerts VALUES ('a1', x'00')")
    assert outbox.enqueue("a1", "ding", b"{}", now=100.0)
    assert not outbox.enqueue("a1", "ding", b"{}", now=101.0)  # a replay of the same alert: queued once
    other = connect(db)
    assert Outbox(other).counts()["pending"] == 0  # not visible before the caller commits
    conn.commit()
    assert Outbox(other).counts()["pending"] == 1
    # Outside a transaction a method commits its own write.
    assert Outbox(conn).enqueue("a2", "ding", b"{}", now=100.0) and Outbox(other).counts()["pending"] == 2


def test_outbox_life_cycle(db: Path) -> None:
    outbox = Outbox(connect(db))
    for i, at in enumerate((30.0, 10.0, 20.0)):
        outbox.enqueue(f"a{i}", "hook", b"{}", now=at)
    assert [item.alert_id for item in outbox.due(25.0)] == ["a1", "a2"]
    first = outbox.due(25.0)[0]
    assert [item.alert_id for item in outbox.due(25.0, exclude=[first.id])] == ["a2"]
    assert outbox.next_due() == 10.0 and outbox.next_due(exclude=[first.id]) == 20.0
    outbox.mark_failed(first.id, "HTTP 500", 50.0, now=25.0)
    assert outbox.get(first.id) == msgspec.structs.replace(
        first, attempts=1, next_attempt_at=50.0, last_attempt_at=25.0, last_error="HTTP 500"
    )
    outbox.mark_failed(first.id, "HTTP 500 again", None, now=50.0)  # given up
    outbox.mark_delivered(outbox.due(25.0)[0].id, now=26.0)
    assert outbox.counts() == {"pending": 1, "delivered": 1, "failed": 1}
    (failed,) = outbox.failed()
    assert failed.alert_id == "a1" and failed.attempts == 2 and failed.last_error == "HTTP 500 again"
    assert outbox.requeue(now=60.0) == 1 and outbox.get(first.id).attempts == 0  # type: ignore[union-attr]
    assert outbox.purge(before=25.0) == 0 and outbox.purge(before=100.0) == 1  # the delivered a2
    assert outbox.counts() == {"pending": 2, "delivered": 0, "failed": 0}


# -- routing ----------------------------------------------------------------------------------------------------------


def test_route(db: Path) -> None:
    url = "https://x.example/h"
    dispatcher = Dispatcher(
        {},
        {},
        lambda: Outbox(connect(db)),
    )
    typed = {
        "everything": ADAPTER.validate_python({"type": "webhook", "url": url}),
        "high": ADAPTER.validate_python({"type": "webhook", "url": url, "min_severity": "high"}),
        "aliyun": ADAPTER.validate_python({"type": "webhook", "url": url, "rules": ["*.aliyun"]}),
        "per_rule": ADAPTER.validate_python({"type": "webhook", "url": url, "rules": []}),
    }
    dispatcher.configs = typed
    root, aliyun, burst = alerts.root_login(), alerts.aliyun_admin_granted(), alerts.discovery_burst()
    assert dispatcher.route(root) == ["everything", "high"]
    assert dispatcher.route(aliyun) == ["everything", "high", "aliyun"]
    assert dispatcher.route(burst) == ["everything"]
    burst.outputs = ["per_rule", "gone"]  # a rule naming its own outputs (one of them not configured)
    assert dispatcher.route(burst) == ["everything", "per_rule"]
    burst.severity = Severity.INFORMATIONAL
    typed["per_rule"] = ADAPTER.validate_python({"type": "webhook", "url": url, "rules": [], "min_severity": "low"})
    assert dispatcher.route(burst) == ["everything"]  # min_severity applies to named outputs too


def test_backoff_doubles_with_bounded_jitter(db: Path) -> None:
    cfg = ADAPTER.validate_python(
        {"type": "webhook", "url": "https://x.example", "backoff_secs": 2, "max_backoff_secs": 30}
    )
    low = Dispatcher({}, {}, lambda: Outbox(connect(db)), rng=lambda: 0.0)
    high = Dispatcher({}, {}, lambda: Outbox(connect(db)), rng=lambda: 0.999999)
    assert [round(low.backoff_secs(cfg, n), 3) for n in (1, 2, 3, 4, 5, 6)] == [1.6, 3.2, 6.4, 12.8, 24.0, 24.0]
    assert [round(high.backoff_secs(cfg, n), 2) for n in (1, 2, 3)] == [2.4, 4.8, 9.6]
    assert low.backoff_secs(cfg, 1, retry_after_secs=7.0) == 7.0  # the server's Retry-After wins when longer


# -- the delivery loop ------------------------------------------------------------------------------------------------


async def test_retries_with_backoff_then_delivers(db: Path, vendor: VendorServer, client: httpx.AsyncClient) -> None:
    vendor.fail_next["webhook"] = [(500, b"boom"), (503, b"busy")]
    dispatcher = make(
        {"hook": {"type": "webhook", "url": vendor.webhook_url, "secret": vendor.webhook_secret, "backoff_secs": 0.2}},
        db,
        client,
    )
    stop = asyncio.Event()
    runner = asyncio.create_task(dispatcher.run(stop))
    alert = alerts.root_login()
    assert store_alert(db, dispatcher, alert) == ["hook"]
    await until(lambda: dispatcher.counters["sent"] == 1)
    stop.set()
    await runner
    times = [at for name, at in vendor.hits if name == "webhook"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 3 and vendor.received[0].json["id"] == alert.id
    # 0.2 s then 0.4 s, ±20% jitter.
    assert 0.16 <= gaps[0] <= 0.3 and 0.32 <= gaps[1] <= 0.55, gaps
    assert dispatcher.counters["retried"] == 2 and dispatcher.counters["failed"] == 0
    assert rows(db) == [("hook", "delivered", 3, None)]


async def test_gives_up_after_max_attempts_and_keeps_it(
    db: Path, vendor: VendorServer, client: httpx.AsyncClient
) -> None:
    vendor.fail_next["webhook"] = [(502, b"bad gateway")] * 10
    configs = {
        "hook": {"type": "webhook", "url": vendor.webhook_url, "backoff_secs": 0.01, "max_attempts": 3},
        # A rejected signature cannot get better by trying again: given up at once.
        "ding": {"type": "dingtalk", "url": vendor.dingtalk_url, "secret": "SECnot-the-right-one", "max_attempts": 5},
    }
    dispatcher = make(configs, db, client)
    stop = asyncio.Event()
    runner = asyncio.create_task(dispatcher.run(stop))
    store_alert(db, dispatcher, alerts.root_login())
    await until(lambda: dispatcher.counters["failed"] == 2)
    await until(lambda: dispatcher.counters["outbox_failed"] == 2)
    stop.set()
    await runner
    (hook, ding) = rows(db)
    assert hook[:3] == ("hook", "failed", 3) and "HTTP 502: bad gateway" in hook[3]
    assert ding[:3] == ("ding", "failed", 1) and "errcode 310000" in ding[3]
    assert dispatcher.counters["retried"] == 2 and dispatcher.counters["sent"] == 0
    assert "310000" in dispatcher.health()["last_errors"]["ding"]


async def test_undelivered_alerts_survive_a_restart(db: Path, client: httpx.AsyncClient) -> None:
    server = VendorServer(port=free_port())
    url = f"http://127.0.0.1:{server.port}/robot/send?access_token={server.dingtalk_token}"
    configs = {"ding": {"type": "dingtalk", "url": url, "secret": server.dingtalk_secret, "backoff_secs": 0.05}}
    # First life: the robot is unreachable.
    first = make(configs, db, client)
    stop = asyncio.Event()
    runner = asyncio.create_task(first.run(stop))
    burst, root = alerts.discovery_burst(), alerts.root_login()
    store_alert(db, first, burst)
    await until(lambda: first.counters["retried"] >= 1)
    stop.set()
    await runner
    assert first.counters["sent"] == 0 and rows(db)[0][1] == "pending"
    # While nothing runs, the store keeps queueing.
    store_alert(db, first, root)
    # Second life, on the same database, with the robot up.
    server.start()
    try:
        second = make(configs, db, client)
        stop = asyncio.Event()
        runner = asyncio.create_task(second.run(stop))
        await until(lambda: second.counters["sent"] == 2)
        stop.set()
        await runner
    finally:
        server.stop()
    sent = {r.json["markdown"]["title"] for r in server.received}
    assert sent == {
        "[MEDIUM] Discovery burst from one access key · ASIA5FLZVX4OI4ZDQJOL ×30",
        "[CRITICAL] Root account used",
    }
    assert [r[1] for r in rows(db)] == ["delivered", "delivered"]


async def test_notify_wakes_the_loop_at_once(db: Path, vendor: VendorServer, client: httpx.AsyncClient) -> None:
    # poll_secs is long: only notify() can explain a quick delivery.
    dispatcher = make({"hook": {"type": "webhook", "url": vendor.webhook_url, "secret": vendor.webhook_secret}},
                      db, client, poll_secs=60)  # fmt: skip
    stop = asyncio.Event()
    runner = asyncio.create_task(dispatcher.run(stop))
    await asyncio.sleep(0.05)
    latencies: list[float] = []
    base = alerts.root_login()
    for i in range(20):
        alert = msgspec.structs.replace(base, id=f"{base.id}-{i}")
        started = time.monotonic()
        # From another thread, as a storage worker would.
        await asyncio.to_thread(store_alert, db, dispatcher, alert)
        await until(lambda: len(vendor.received) > len(latencies))
        latencies.append(vendor.received[-1].at - started)
    stop.set()
    await runner
    print(f"\nstore+commit+notify → received by the webhook: median {statistics.median(latencies) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms")  # fmt: skip
    assert max(latencies) < 0.5


async def test_no_secret_reaches_the_logs(
    db: Path, vendor: VendorServer, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vendor.fail_next["wecom"] = [(200, b'{"errcode":45009,"errmsg":"api freq out of limit"}')]
    vendor.fail_next["slack"] = [(500, b"oops")]
    configs: dict[str, dict[str, Any]] = {
        "ding-bad": {"type": "dingtalk", "url": vendor.dingtalk_url, "secret": "SECwrong-secret-4242"},
        "ding": {"type": "dingtalk", "url": vendor.dingtalk_url, "secret": vendor.dingtalk_secret},
        "wecom": {"type": "wecom", "url": vendor.wecom_url, "backoff_secs": 0.01},
        "feishu": {"type": "feishu", "url": vendor.feishu_url, "secret": vendor.feishu_secret},
        "slack": {"type": "slack", "url": vendor.slack_url, "backoff_secs": 0.01},
        "hook": {"type": "webhook", "url": f"{vendor.webhook_url}?api_key=hook-key-777777",
                 "secret": "hook-secret-1234", "headers": {"Authorization": "Bearer header-token-5555"},
                 "max_attempts": 1},
    }  # fmt: skip
    dispatcher = make(configs, db, client)
    stop = asyncio.Event()
    runner = asyncio.create_task(dispatcher.run(stop))
    store_alert(db, dispatcher, alerts.aliyun_admin_granted())
    await until(lambda: dispatcher.counters["sent"] == 4 and dispatcher.counters["failed"] == 2)
    stop.set()
    await runner
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert "HTTP Request: POST http://127.0.0.1" in logged  # httpx's own request log is there, redacted
    assert "errcode 310000" in logged and "HTTP 401" in logged and "errcode 45009" in logged
    stored = "\n".join(str(r[3]) for r in rows(db))
    for secret in (
        vendor.dingtalk_token, "SECwrong-secret-4242", vendor.dingtalk_secret, vendor.wecom_key, vendor.feishu_hook,
        vendor.feishu_secret, vendor.slack_path, "hook-key-777777", "hook-secret-1234", "header-token-5555",
    ):  # fmt: skip
        assert secret and secret not in logged, secret
        assert secret not in stored, secret


async def test_a_locked_database_does_not_stop_delivery(
    db: Path, vendor: VendorServer, client: httpx.AsyncClient
) -> None:
    class LockedOnce(Outbox):
        locked = True

        def due(self, now: float, limit: int = 100, exclude: Any = ()) -> Any:
            if LockedOnce.locked:
                LockedOnce.locked = False
                raise sqlite3.OperationalError("database is locked")
            return super().due(now, limit, exclude)

    typed = {
        "hook": ADAPTER.validate_python({"type": "webhook", "url": vendor.webhook_url, "secret": vendor.webhook_secret})
    }
    dispatcher = Dispatcher(Output.build(typed, client), typed, lambda: LockedOnce(connect(db)), poll_secs=0.05)
    store_alert(db, dispatcher, alerts.root_login())
    stop = asyncio.Event()
    runner = asyncio.create_task(dispatcher.run(stop))
    await until(lambda: dispatcher.counters["sent"] == 1)
    stop.set()
    await runner
    assert not LockedOnce.locked and rows(db) == [("hook", "delivered", 1, None)]
