"""The console's answer cache: shared answers, single flight, TTL, errors not kept."""

from __future__ import annotations

import threading
import time

import pytest

from cloudsoc.api.resultcache import ResultCache


def test_concurrent_identical_asks_are_answered_by_one_computation() -> None:
    cache = ResultCache()
    calls = []
    gate = threading.Event()

    def slow() -> list[int]:
        calls.append(1)
        gate.wait(5)
        return [42]

    answers: list[object] = []
    threads = [threading.Thread(target=lambda: answers.append(cache.get("k", slow))) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.2)  # all eight are asking now
    gate.set()
    for t in threads:
        t.join(5)
    assert answers == [[42]] * 8
    assert len(calls) == 1
    assert cache.stats()["misses"] == 1 and cache.stats()["shared"] + cache.stats()["hits"] == 7


def test_answers_expire_and_errors_are_not_kept() -> None:
    cache = ResultCache(ttl=0.2, entries=2)
    counter = iter(range(100))
    assert cache.get("a", lambda: next(counter)) == 0
    assert cache.get("a", lambda: next(counter)) == 0
    time.sleep(0.25)
    assert cache.get("a", lambda: next(counter)) == 1

    def boom() -> int:
        raise ValueError("scan failed")

    with pytest.raises(ValueError):
        cache.get("b", boom)
    assert cache.get("b", lambda: 7) == 7
    cache.get("c", lambda: 8)
    cache.get("d", lambda: 9)
    assert cache.stats()["entries"] == 2  # least recently used dropped
