"""The queue port: what the lifecycle, the devhost and the tests need of a message queue.

Azure Queue Storage's model, which the Functions queue trigger is built on: a sent message may stay invisible
for a delay; a received one is invisible for a visibility timeout and comes back (its dequeue count one
higher) unless it is deleted with the receipt of that delivery; releasing it makes it visible again after a
delay. Delivery is at least once; a receipt that no longer holds (the message came back and was taken again,
or was deleted) is ReceiptExpired. Both backends pass tests/contract/test_message_queue.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

# Azure Queue Storage: 64 KiB per message (after encoding; base64 makes text 4/3 larger), and a message can
# be kept invisible for at most 7 days.
MAX_MESSAGE_BYTES = 48 * 1024
MAX_DELAY = timedelta(days=7)


class QueueError(Exception):
    """The queue could not do what was asked; the message says what and why."""


class QueueUnavailable(QueueError):
    """The queue service could not be reached or failed after its retries; trying later may succeed."""


class ReceiptExpired(QueueError):
    """The delivery's receipt no longer holds: the message was deleted or has been received again."""


@dataclass(frozen=True)
class Delivery:
    """One received message: its text, how many times it has been received, and this delivery's receipt."""

    id: str
    text: str
    dequeue_count: int
    receipt: str
    inserted_at: datetime | None = None


@runtime_checkable
class MessageQueue(Protocol):
    """One queue. Every backend behaves alike (the contract suite)."""

    name: str

    def send(self, text: str, *, delay: timedelta = timedelta(0)) -> None:
        """Add a message, invisible for `delay` (at most MAX_DELAY)."""
        ...

    def receive(self, count: int, visibility: timedelta) -> list[Delivery]:
        """Up to `count` visible messages, each then invisible for `visibility` unless deleted or released."""
        ...

    def delete(self, delivery: Delivery) -> None:
        """Remove a received message; ReceiptExpired if this delivery's receipt no longer holds."""
        ...

    def release(self, delivery: Delivery, delay: timedelta = timedelta(0)) -> Delivery:
        """Make a received message visible again after `delay`; ReceiptExpired as for delete. Returns the
        delivery with its new receipt (a listener renews its hold on a message still running this way)."""
        ...


def check_message(text: str, delay: timedelta) -> None:
    """Refuse what Azure Queue Storage would refuse (the same rule for every backend)."""
    if len(text.encode()) > MAX_MESSAGE_BYTES:
        raise ValueError(f"a queue message holds at most {MAX_MESSAGE_BYTES} bytes of text; "
                         f"this one has {len(text.encode())}")
    if not timedelta(0) <= delay <= MAX_DELAY:
        raise ValueError(f"a message can be kept invisible for 0 s to 7 days, not {delay}")


def poison_queue_name(queue: str) -> str:
    """Where the Functions host moves a message that failed maxDequeueCount times: `<queue>-poison`."""
    return f"{queue}-poison"
