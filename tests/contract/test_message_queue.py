"""One contract, both backends of the queue port: Azure Queue Storage (on Azurite) and the in-memory queue.

What the step machine and the devhost's queue triggers rely on: a delayed message stays invisible, a received
one comes back with its dequeue count one higher unless deleted, a stale receipt deletes nothing, and the
service's size and delay limits hold everywhere.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devhost.azurite import Azurite
from shared.queues import MAX_MESSAGE_BYTES, MessageQueue, ReceiptExpired
from shared.queues.memory import InMemoryQueue
from shared.queues.storage_queue import StorageQueue
from shared.settings import StorageSettings
from shared.storage import queue_client

SHORT = timedelta(seconds=1)
_NAMES = itertools.count()
WaitOut = Callable[[timedelta], None]


class Backend:
    """A queue, and how its test lets a visibility timeout run out: Azurite counts real whole seconds; the
    in-memory queue runs on a clock the test moves."""

    def __init__(self, kind: str, azurite: Callable[[], Azurite]) -> None:
        name = f"contract-{next(_NAMES)}-{int(time.time() * 1000) % 10**8}"
        self.now = datetime.now(UTC)
        self.client: Any = None
        if kind == "memory":
            self.queue: MessageQueue = InMemoryQueue(name, clock=lambda: self.now)
        else:
            self.client = queue_client(StorageSettings(azurite().connection_string), name, base64=True)
            self.queue = StorageQueue(self.client)

    def wait_out(self, span: timedelta) -> None:
        if self.client is None:
            self.now += span + timedelta(milliseconds=300)
        else:
            time.sleep(span.total_seconds() + 0.3)


@pytest.fixture(params=["storage", "memory"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    made = Backend(request.param, lambda: request.getfixturevalue("azurite"))
    yield made
    if made.client is not None:
        made.client.delete_queue()
        made.client.close()


@pytest.fixture
def queue(backend: Backend) -> MessageQueue:
    return backend.queue


@pytest.fixture
def wait_out(backend: Backend) -> WaitOut:
    """Let a visibility timeout run out."""
    return backend.wait_out


def test_a_message_round_trips_with_its_count(queue: MessageQueue) -> None:
    text = '{"run_id": "run-1", "step": "poll", "note": "déploiement ✓"}'
    queue.send(text)
    (got,) = queue.receive(16, SHORT)
    assert (got.text, got.dequeue_count) == (text, 1) and got.id and got.receipt


def test_a_received_message_comes_back_after_its_visibility_with_a_higher_count(
        queue: MessageQueue, wait_out: WaitOut) -> None:
    queue.send("once")
    first = queue.receive(16, SHORT)
    assert [d.dequeue_count for d in first] == [1] and queue.receive(16, SHORT) == []
    wait_out(SHORT)
    (again,) = queue.receive(16, SHORT)
    assert (again.text, again.dequeue_count) == ("once", 2)


def test_a_delayed_message_is_invisible_until_its_delay_passes(
        queue: MessageQueue, wait_out: WaitOut) -> None:
    queue.send("later", delay=SHORT)
    assert queue.receive(16, SHORT) == []
    wait_out(SHORT)
    assert [d.text for d in queue.receive(16, SHORT)] == ["later"]


def test_a_deleted_message_is_gone(queue: MessageQueue, wait_out: WaitOut) -> None:
    queue.send("done")
    (got,) = queue.receive(16, SHORT)
    queue.delete(got)
    wait_out(SHORT)
    assert queue.receive(16, SHORT) == []


def test_a_stale_receipt_deletes_nothing(queue: MessageQueue, wait_out: WaitOut) -> None:
    queue.send("taken twice")
    (first,) = queue.receive(16, SHORT)
    wait_out(SHORT)
    (second,) = queue.receive(16, SHORT)  # the first handler's receipt no longer holds
    with pytest.raises(ReceiptExpired):
        queue.delete(first)
    queue.delete(second)


def test_a_released_message_is_visible_again_and_its_old_receipt_is_spent(queue: MessageQueue) -> None:
    queue.send("retry me")
    (got,) = queue.receive(16, timedelta(minutes=5))
    queue.release(got)
    (again,) = queue.receive(16, SHORT)
    assert (again.text, again.dequeue_count) == ("retry me", 2)
    with pytest.raises(ReceiptExpired):
        queue.delete(got)
    queue.delete(again)


def test_a_hold_renewed_by_release_keeps_the_message_and_its_new_receipt_deletes_it(
        queue: MessageQueue, wait_out: WaitOut) -> None:
    queue.send("long job")
    (got,) = queue.receive(16, SHORT)
    renewed = queue.release(got, timedelta(minutes=5))
    wait_out(SHORT)
    assert queue.receive(16, SHORT) == []
    queue.delete(renewed)
    with pytest.raises(ReceiptExpired):
        queue.release(got, SHORT)


def test_receive_takes_at_most_the_count_asked(queue: MessageQueue) -> None:
    for i in range(5):
        queue.send(f"m{i}")
    assert len(queue.receive(3, SHORT)) == 3
    assert len(queue.receive(16, SHORT)) == 2


def test_the_services_limits_hold_everywhere(queue: MessageQueue) -> None:
    with pytest.raises(ValueError, match="at most"):
        queue.send("x" * (MAX_MESSAGE_BYTES + 1))
    with pytest.raises(ValueError, match="7 days"):
        queue.send("x", delay=timedelta(days=8))
    assert queue.receive(16, SHORT) == []
