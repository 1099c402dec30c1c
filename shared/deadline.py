"""The time a step may still spend on platform work, so no step outlives host.json's functionTimeout.

A step runs `within(STEP_DEADLINE)`; a platform call asks `clamp(timeout)` for its HTTP timeouts, and is
refused (`OutOfTime`) once the deadline has passed. So an invocation's platform work ends by its deadline
whatever retries, slow endpoints or polls it meets, and the step fails the way any failing step does: the
host delivers the message again, and after maxDequeueCount it is poisoned with one alert. The deadline is
per invocation (a context variable: the worker runs invocations on threads of its own).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_DEADLINE: ContextVar[float | None] = ContextVar("step_deadline", default=None)
# Below this a request is not worth starting: it would only time out.
MIN_REQUEST_S = 1.0


class OutOfTime(Exception):
    """The step's deadline passed before this platform call could start; the step is retried later.

    Not a PlatformError on purpose: running out of time says nothing about the deployment or the job, so no
    step takes it for a platform's verdict (a rollback); it fails the invocation like any bug would.
    """


@contextmanager
def within(seconds: float, clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """Run the block with a deadline `seconds` from now (an outer deadline that is sooner stays)."""
    outer = _DEADLINE.get()
    ends = clock() + seconds
    token = _DEADLINE.set(ends if outer is None else min(outer, ends))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining(clock: Callable[[], float] = time.monotonic) -> float | None:
    """Seconds left before the deadline (None when no deadline is set)."""
    ends = _DEADLINE.get()
    return None if ends is None else ends - clock()


def check(what: str, clock: Callable[[], float] = time.monotonic) -> None:
    """Refuse to start `what` once the deadline is (almost) reached."""
    left = remaining(clock)
    if left is not None and left < MIN_REQUEST_S:
        raise OutOfTime(f"{what}: the step ran out of its time (STEP_DEADLINE) before this call; the "
                        "step is run again on its next delivery")


def clamp(timeout: float, clock: Callable[[], float] = time.monotonic) -> float:
    """`timeout`, shortened so a request started now ends by the deadline."""
    left = remaining(clock)
    return timeout if left is None else max(MIN_REQUEST_S, min(timeout, left))
