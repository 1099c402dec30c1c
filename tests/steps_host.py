"""Run a lifecycle's step queue on Azurite as the Functions host would, until nothing is left to do.

The integration tests' counterpart of MemoryWorld.drain: the real StorageQueue (delays and visibility are
Azurite's, in real time, so these tests set short poll intervals), the devhost's QueueHost rules (retries,
poison after maxDequeueCount), and the poison queue's function.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from devhost.queues import QueueHost, QueueOptions
from shared.lifecycle import Lifecycle, Outcome, StepMessage
from shared.queues import Delivery, poison_queue_name
from shared.queues.storage_queue import StorageQueue
from shared.wiring import build_queue


@dataclass(frozen=True)
class Ran:
    """One invocation: the message, its delivery count, what it did, how long it took (wall time)."""

    message: StepMessage
    dequeue_count: int
    outcome: Outcome
    seconds: float


def run_steps(life: Lifecycle, *, until: Callable[[], bool] | None = None,
              timeout: float = 90.0) -> list[Ran]:
    """Deliver step (and poison) messages until both queues are empty or `until()` holds; what ran."""
    settings = life.ctx.settings
    ran: list[Ran] = []

    def timed(handle: Callable[[StepMessage, int], Outcome]) -> Callable[[Delivery], None]:
        def run(delivery: Delivery) -> None:
            message, started = StepMessage.decode(delivery.text), time.perf_counter()
            outcome = handle(message, delivery.dequeue_count)
            ran.append(Ran(message, delivery.dequeue_count, outcome, time.perf_counter() - started))
        return run

    steps = build_queue(settings.storage, settings.step_queue)
    poison = build_queue(settings.storage, poison_queue_name(settings.step_queue))
    options = QueueOptions(visibility_timeout=timedelta(0))
    step_host = QueueHost(steps, poison, timed(life.on_step), options)
    poison_host = QueueHost(poison, None, timed(lambda m, _: life.on_poison(m)), options)
    deadline = time.monotonic() + timeout
    while not (until is not None and until()):
        batch = [(step_host, d) for d in step_host.receive(16)] + [(poison_host, d) for d in
                                                                   poison_host.receive(16)]
        for host, delivery in batch:
            host.deliver(delivery)
        if batch:
            continue
        if until is None and _waiting(steps) == 0 and _waiting(poison) == 0:
            break
        assert time.monotonic() < deadline, "the step queue did not settle in time"
        time.sleep(0.2)
    return ran


def _waiting(queue: object) -> int:
    """Messages in the queue, visible or not (Azure's approximate count, exact on Azurite)."""
    assert isinstance(queue, StorageQueue)
    return int(queue.client.get_queue_properties().approximate_message_count or 0)
