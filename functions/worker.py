"""The one lifecycle instance per worker process, built from app settings on first use."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from shared.front import FrontDoor, front_key
from shared.lifecycle import Lifecycle
from shared.observability import configure_logging
from shared.settings import Settings
from shared.wiring import build_lifecycle

T = TypeVar("T")


class Once(Generic[T]):
    """Calls `build` once per process, however many threads ask at the same time, and hands every caller
    that one result. (`functools.cache` may call it once per racing thread: the worker runs sync functions
    on a thread pool, and a cold start's first invocations arrive together.) A build that raises is tried
    again by the next caller."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._value: T | None = None
        self.__doc__ = build.__doc__

    def __call__(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
                value = self._value
        return value

    def cache_clear(self) -> None:
        """Forget the built value (tests build a fresh one with other settings)."""
        with self._lock:
            self._value = None


def _build() -> Lifecycle:
    """Build (once) the lifecycle over the configured platform, ledger and alert sinks."""
    configure_logging()  # run/job ids on every line, secrets redacted, one pipeline to App Insights
    return build_lifecycle(Settings.from_env())


lifecycle = Once(_build)


def _build_front() -> FrontDoor:
    """The front door over the one lifecycle, with the key clients must send."""
    life = lifecycle()
    return FrontDoor(life, front_key(life.ctx.settings))


front = Once(_build_front)
