"""The per-worker lifecycle is built once, however many of the worker's threads ask for it at a cold start."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from functions import worker
from shared.settings import Settings


@pytest.fixture
def slow_builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Each build (logging set-up and wiring) takes 0.2 s; the list counts them."""
    builds: list[int] = []
    configured: list[int] = []

    def build(settings: Any) -> object:
        builds.append(1)
        time.sleep(0.2)
        return object()

    monkeypatch.setattr(worker, "configure_logging", lambda: configured.append(1))
    monkeypatch.setattr(worker, "build_lifecycle", build)
    monkeypatch.setattr(Settings, "from_env", classmethod(lambda cls, env=None: object()))
    worker.lifecycle.cache_clear()
    yield builds
    assert len(configured) == len(builds)  # logging is set up with each build, never more often
    worker.lifecycle.cache_clear()


def test_eight_threads_at_a_cold_start_get_one_lifecycle_built_once(slow_builds: list[int]) -> None:
    start = threading.Barrier(8)

    def invocation(_: int) -> object:
        start.wait()  # the worker's pool runs the first invocations together
        return worker.lifecycle()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(invocation, range(8)))
    assert len(slow_builds) == 1
    assert all(result is results[0] for result in results)
    assert worker.lifecycle() is results[0] and len(slow_builds) == 1


def test_a_failed_build_is_tried_again_by_the_next_invocation(monkeypatch: pytest.MonkeyPatch,
                                                              slow_builds: list[int]) -> None:
    def failing(settings: Any) -> object:
        slow_builds.append(1)
        raise RuntimeError("storage unreachable")

    with monkeypatch.context() as m:
        m.setattr(worker, "build_lifecycle", failing)
        with pytest.raises(RuntimeError):
            worker.lifecycle()
    built = worker.lifecycle()
    assert worker.lifecycle() is built and len(slow_builds) == 2
