"""The queue port in process memory, on an injectable clock: the same contract as Azure Queue Storage.

Each receive hands out a fresh receipt, so a stale one fails as the service's would. `next_visible_at` and
`texts` are for tests (a clock to move to, what is waiting), not part of the port.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.queues.port import Delivery, ReceiptExpired, check_message


@dataclass
class _Message:
    id: str
    text: str
    inserted_at: datetime
    visible_at: datetime
    order: int
    dequeue_count: int = 0
    receipt: str = ""


class InMemoryQueue:
    """Messages in a dict, under one lock."""

    def __init__(self, name: str, clock: Callable[[], datetime] | None = None) -> None:
        self.name = name
        self._clock = clock or (lambda: datetime.now(UTC))
        self._messages: dict[str, _Message] = {}
        self._lock = threading.Lock()
        self._order = itertools.count()

    def send(self, text: str, *, delay: timedelta = timedelta(0)) -> None:
        """Add a message, invisible for `delay`."""
        check_message(text, delay)
        now = self._clock()
        message = _Message(str(uuid.uuid4()), text, now, now + delay, next(self._order))
        with self._lock:
            self._messages[message.id] = message

    def receive(self, count: int, visibility: timedelta) -> list[Delivery]:
        """Up to `count` visible messages, oldest first."""
        now = self._clock()
        with self._lock:
            visible = sorted((m for m in self._messages.values() if m.visible_at <= now),
                             key=lambda m: (m.visible_at, m.order))[:count]
            for message in visible:
                message.dequeue_count += 1
                message.receipt = str(uuid.uuid4())
                message.visible_at = now + visibility
            return [Delivery(m.id, m.text, m.dequeue_count, m.receipt, m.inserted_at) for m in visible]

    def delete(self, delivery: Delivery) -> None:
        """Remove it, if this delivery's receipt still holds."""
        with self._lock:
            self._held(delivery)
            del self._messages[delivery.id]

    def release(self, delivery: Delivery, delay: timedelta = timedelta(0)) -> Delivery:
        """Visible again after `delay`; the delivery with its new receipt."""
        check_message("", delay)
        with self._lock:
            message = self._held(delivery)
            message.visible_at = self._clock() + delay
            message.receipt = str(uuid.uuid4())
            return Delivery(message.id, message.text, message.dequeue_count, message.receipt,
                            message.inserted_at)

    def next_visible_at(self) -> datetime | None:
        """When the next message becomes visible (now or later); None if the queue is empty."""
        with self._lock:
            return min((m.visible_at for m in self._messages.values()), default=None)

    def texts(self) -> list[str]:
        """Every message's text, visible or not, oldest first."""
        with self._lock:
            return [m.text for m in sorted(self._messages.values(), key=lambda m: m.order)]

    def _held(self, delivery: Delivery) -> _Message:
        message = self._messages.get(delivery.id)
        if message is None or message.receipt != delivery.receipt:
            raise ReceiptExpired(f"message {delivery.id} of queue {self.name} was deleted or received again")
        return message
