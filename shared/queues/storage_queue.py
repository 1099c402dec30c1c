"""The queue port on Azure Queue Storage (Azurite locally).

Message text travels base64-encoded, the Functions queue trigger's default `messageEncoding` (host.json).
Transient failures are retried by the SDK's retry policy (shared.storage); what still fails is translated
here into the port's errors, so no `azure.core` exception reaches the lifecycle.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from datetime import timedelta

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient

from shared.queues.port import Delivery, QueueError, QueueUnavailable, ReceiptExpired, check_message

NEVER_EXPIRES = -1  # a step waits as long as it must; the default time-to-live would drop it after 7 days


class StorageQueue:
    """One queue of a storage account; created on first use."""

    def __init__(self, client: QueueClient) -> None:
        self.client = client
        self.name = str(client.queue_name)
        self._created = False

    def send(self, text: str, *, delay: timedelta = timedelta(0)) -> None:
        """Add a message, invisible for `delay` (rounded up to whole seconds, the service's unit)."""
        check_message(text, delay)
        self._ensure_queue()
        try:
            self.client.send_message(text, visibility_timeout=_seconds(delay), time_to_live=NEVER_EXPIRES)
        except AzureError as exc:
            raise _translated(exc, f"send a message to queue {self.name}") from exc

    def receive(self, count: int, visibility: timedelta) -> list[Delivery]:
        """Up to `count` visible messages (the service hands out at most 32 at a time)."""
        self._ensure_queue()
        try:
            messages = list(self.client.receive_messages(
                messages_per_page=min(count, 32), max_messages=count,
                visibility_timeout=max(1, _seconds(visibility))))
        except AzureError as exc:
            raise _translated(exc, f"receive from queue {self.name}") from exc
        return [Delivery(str(m.id), str(m.content), int(m.dequeue_count or 1), str(m.pop_receipt),
                         m.inserted_on) for m in messages]

    def delete(self, delivery: Delivery) -> None:
        """Remove the message, if this delivery's receipt still holds."""
        try:
            self.client.delete_message(delivery.id, delivery.receipt)
        except AzureError as exc:
            raise _translated(exc, f"delete message {delivery.id} of queue {self.name}") from exc

    def release(self, delivery: Delivery, delay: timedelta = timedelta(0)) -> Delivery:
        """Visible again after `delay`; the delivery with its new receipt."""
        check_message("", delay)
        try:
            updated = self.client.update_message(delivery.id, delivery.receipt,
                                                 visibility_timeout=_seconds(delay))
        except AzureError as exc:
            raise _translated(exc, f"release message {delivery.id} of queue {self.name}") from exc
        return dataclasses.replace(delivery, receipt=str(updated.pop_receipt))

    def _ensure_queue(self) -> None:
        if self._created:
            return
        try:
            with contextlib.suppress(ResourceExistsError):
                self.client.create_queue()
        except AzureError as exc:
            raise _translated(exc, f"create queue {self.name}") from exc
        self._created = True


def _seconds(delay: timedelta) -> int:
    return math.ceil(delay.total_seconds())


def _translated(exc: AzureError, doing: str) -> QueueError:
    """A queue failure as the port's own error, keeping the service's reason and no request details."""
    status = getattr(exc, "status_code", None)
    code = getattr(exc, "error_code", None)
    # A receipt that no longer holds: the message is gone (404) or was received again (400
    # PopReceiptMismatch).
    if isinstance(exc, ResourceNotFoundError) or code in ("MessageNotFound", "PopReceiptMismatch"):
        return ReceiptExpired(f"could not {doing}: the message was deleted or has been received again")
    reason = str(getattr(exc, "reason", "") or type(exc).__name__)
    if not isinstance(exc, HttpResponseError) or status is None or status == 429 or status >= 500:
        return QueueUnavailable(f"queue storage: could not {doing} ({reason}); the storage account is "
                                "unreachable or busy, try again later")
    return QueueError(f"queue storage refused to {doing}: {code or status} {reason}")
