"""Stands in for the platform's Event Grid subscription: job events on a queue become Event Grid deliveries.

The local engine puts Azure ML–shaped Event Grid events (JSON) on the JOB_EVENT_QUEUE queue in Azurite. The
relay receives them, POSTs each to `/runtime/webhooks/eventgrid?functionName=<function>` and deletes the
message once the route answers 2xx. Otherwise the message stays and comes back after a short backoff; after
MAX_DEQUEUES deliveries it is poison: logged and deleted (Event Grid would dead-letter it).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueMessage

from devhost.polling import Poller
from shared.settings import StorageSettings
from shared.storage import queue_client

log = logging.getLogger("devhost.relay")

MAX_DEQUEUES = 5


def read_event(content: Any) -> dict[str, Any] | list[Any]:
    """The event (or array of events) in a message: plain JSON text, or base64-encoded JSON."""
    text = content.decode() if isinstance(content, bytes) else str(content)
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = json.loads(base64.b64decode(text, validate=True))
        except (ValueError, binascii.Error):
            raise ValueError("message is neither JSON nor base64-encoded JSON") from None
    if not isinstance(value, dict | list):
        raise ValueError("message is JSON but not an event object or array")
    return value


class JobEventRelay(Poller):
    """Relays the job-event queue to an Event Grid–triggered function through its webhook route."""

    name = "job-event relay"

    def __init__(self, storage: StorageSettings, queue: str, base_url: str, function: str, *,
                 interval: float = 1.0, delivery_timeout: float = 300.0) -> None:
        super().__init__(interval)
        self.queue: QueueClient = queue_client(storage, queue)
        self.url = f"{base_url}/runtime/webhooks/eventgrid?functionName={function}"
        self.delivery_timeout = delivery_timeout
        self._deliveries = ThreadPoolExecutor(max_workers=4, thread_name_prefix="devhost-job-event")

    def start(self) -> None:
        """Create the queue if missing, then start polling."""
        try:
            self.queue.create_queue()
            log.info("created queue %s", self.queue.queue_name)
        except ResourceExistsError:
            pass
        super().start()

    def poll(self) -> None:
        """Receive what is visible and deliver each message on a worker thread."""
        # Invisible for longer than a delivery may take, so a slow handler is not delivered twice.
        visibility = int(self.delivery_timeout) + 30
        for message in self.queue.receive_messages(max_messages=16, visibility_timeout=visibility):
            if self.stopping:
                return
            self._deliveries.submit(self._deliver, message)

    def close(self) -> None:
        self._deliveries.shutdown(wait=True)
        self.queue.close()

    def _deliver(self, message: QueueMessage) -> None:
        if self.stopping:  # received but not started: hand it back now rather than after the timeout
            self._release(message, 0)
            return
        if message.dequeue_count and message.dequeue_count > MAX_DEQUEUES:
            log.error("poison job event %s after %d deliveries, deleted: %.500s", message.id,
                      MAX_DEQUEUES, message.content)
            self._delete(message)
            return
        try:
            event = read_event(message.content)
        except ValueError as exc:
            log.error("unreadable job event %s deleted (%s): %.500s", message.id, exc, message.content)
            self._delete(message)
            return
        try:
            response = httpx.post(self.url, json=event, headers={"aeg-event-type": "Notification"},
                                  timeout=self.delivery_timeout)
            ok, why = response.is_success, f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            ok, why = False, f"{type(exc).__name__}: {exc}"
        if ok:
            self._delete(message)
            return
        delay = min(2 ** (message.dequeue_count or 1), 30)
        log.warning("job event %s not delivered (%s); delivery %d of %d, next in %ds", message.id, why,
                    message.dequeue_count or 1, MAX_DEQUEUES, delay)
        self._release(message, delay)

    def _release(self, message: QueueMessage, delay: int) -> None:
        # ResourceNotFoundError: the receipt expired, so it becomes visible again on its own.
        with contextlib.suppress(ResourceNotFoundError):
            self.queue.update_message(message.id, message.pop_receipt, visibility_timeout=delay)

    def _delete(self, message: QueueMessage) -> None:
        try:
            self.queue.delete_message(message.id, message.pop_receipt)
        except ResourceNotFoundError:  # already gone, or the receipt expired and it will return
            log.warning("job event %s could not be deleted (already gone or receipt expired)", message.id)
