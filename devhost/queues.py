"""Queue triggers, driven as the Functions host's queue listener drives them (host.json `extensions.queues`;
the WebJobs storage extension's QueueListener and QueueProcessor).

A message is received invisible for RECEIVE_VISIBILITY (10 minutes, the listener's hold), and the hold is
renewed halfway through for as long as its function runs. A message whose dequeue count already exceeds
`maxDequeueCount` is moved to `<queue>-poison` without running (its earlier deliveries died: killed at
functionTimeout, or their worker lost). When the function returns, the message is deleted; when it raises
or runs past functionTimeout, it is made visible again after `visibilityTimeout`, or, once it has been
delivered `maxDequeueCount` times, copied to `<queue>-poison` and deleted, where the poison queue's own
trigger (if any) picks it up. A poison queue has no poison queue of its own: a message failing there stays
invisible until its hold runs out, and one delivered too often is never run again.

Blob triggers (Event Grid source) run the same way, as the host runs them: the blob webhook only queues a
blob trigger message on the host's blob trigger queue (BLOB_TRIGGER_QUEUE) and answers 202; that queue's
listener runs the blob function (a blob gone meanwhile is skipped) and, after host.json's
`extensions.blobs.maxDequeueCount` (5) failures, moves the message to `webjobs-blobtrigger-poison` in the
blob's storage account, where the app's `ingest_poison` function reads it.

`QueueHost` holds these rules over the queue port, so tests drive the in-memory queue with the same ones.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions.queue import QueueMessage as WorkerQueueMessage

from devhost import triggers
from devhost.polling import Poller
from devhost.triggers import FunctionError, HostedFunction, Invoker, within
from shared.events import BLOB_TRIGGER_POISON_QUEUE, parse_blob_trigger_message
from shared.queues import Delivery, MessageQueue, QueueError, poison_queue_name
from shared.settings import parse_duration
from shared.storage import blob_service
from shared.wiring import build_queue

log = logging.getLogger("devhost.queues")

RECEIVE_VISIBILITY = timedelta(minutes=10)
# The host's is `azure-webjobs-blobtrigger-<host id>`, in AzureWebJobsStorage; here, in the blob's account.
BLOB_TRIGGER_QUEUE = "azure-webjobs-blobtrigger-devhost"


@dataclass(frozen=True)
class QueueOptions:
    """host.json's `extensions.queues`, with the host's defaults."""

    max_dequeue_count: int = 5
    visibility_timeout: timedelta = timedelta(0)  # the wait before a failed message is tried again
    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval: timedelta = timedelta(minutes=1)
    message_encoding: str = "base64"
    blob_max_dequeue_count: int = 5  # extensions.blobs.maxDequeueCount: blob trigger tries before poison

    @classmethod
    def from_host_json(cls, path: Path) -> QueueOptions:
        """The options in host.json (the defaults if the file or the section is missing)."""
        host = json.loads(path.read_text()) if path.exists() else {}
        section = host.get("extensions", {}).get("queues", {})
        batch = int(section.get("batchSize", 16))
        options = cls(
            max_dequeue_count=int(section.get("maxDequeueCount", 5)),
            visibility_timeout=parse_duration("visibilityTimeout",
                                              str(section.get("visibilityTimeout", "0"))),
            batch_size=batch,
            new_batch_threshold=int(section.get("newBatchThreshold", batch // 2)),
            max_polling_interval=parse_duration("maxPollingInterval",
                                                str(section.get("maxPollingInterval", "00:01:00"))),
            message_encoding=str(section.get("messageEncoding", "base64")).lower(),
        )
        blobs = int(host.get("extensions", {}).get("blobs", {}).get("maxDequeueCount", 5))
        options = dataclasses.replace(options, blob_max_dequeue_count=blobs)
        if options.message_encoding != "base64" or min(options.max_dequeue_count, blobs) < 1 \
                or not 1 <= batch <= 32:
            raise FunctionError(f"{path}: extensions.queues must have messageEncoding base64 (the app sends "
                                "base64), maxDequeueCount of at least 1 and batchSize from 1 to 32")
        return options


class QueueHost:
    """One queue-triggered function's listener: receive, run, then delete, retry or poison (see above).

    `poison` is None for a queue that is itself a poison queue. `hold` (default RECEIVE_VISIBILITY) is how
    long a received message stays taken before its renewal; `timeout` (functionTimeout), if given, fails
    and abandons a run still going then (the devhost's Invoker applies it to every function instead)."""

    def __init__(self, queue: MessageQueue, poison: MessageQueue | None, run: Callable[[Delivery], Any],
                 options: QueueOptions, *, hold: timedelta | None = None,
                 timeout: timedelta | None = None) -> None:
        self.queue = queue
        self.poison = poison
        self.run = run
        self.options = options
        self.hold = hold or RECEIVE_VISIBILITY
        self.timeout = timeout

    def receive(self, count: int | None = None) -> list[Delivery]:
        """The next batch of visible messages, held while their function runs."""
        return self.queue.receive(count or self.options.batch_size, self.hold)

    def deliver(self, delivery: Delivery) -> bool:
        """Run the function on one message and settle it; True if the function returned."""
        if delivery.dequeue_count > self.options.max_dequeue_count:
            self._poison(delivery, f"was delivered {delivery.dequeue_count} times (maxDequeueCount "
                                   f"{self.options.max_dequeue_count}) without finishing; not run again")
            return False
        renewal = _Renewal(self.queue, delivery, self.hold)
        try:
            within(lambda: self.run(delivery), self.timeout, self.queue.name)
        except Exception as exc:  # the function failed or timed out: retried, or poison after maxDequeueCount
            self._failed(renewal.stop(), exc)
            return False
        except BaseException:  # the worker itself going away: the message stays taken until its hold ends
            renewal.stop()
            raise
        held = renewal.stop()
        try:
            self.queue.delete(held)
        except QueueError as exc:  # its hold ran out and it was taken again: that delivery settles it
            log.warning("message %s of %s could not be deleted after its run: %s", delivery.id,
                        self.queue.name, exc)
        return True

    def _failed(self, delivery: Delivery, exc: Exception) -> None:
        if self.poison is None:  # a poison queue's failures stay invisible (no fast loop, no poison-poison)
            log.error("message %s of %s failed (%s); it stays invisible until its hold ends", delivery.id,
                      self.queue.name, exc)
            return
        if delivery.dequeue_count >= self.options.max_dequeue_count:
            self._poison(delivery, f"failed {delivery.dequeue_count} times ({exc})")
            return
        try:
            self.queue.release(delivery, self.options.visibility_timeout)
        except QueueError as settle:  # it comes back when its hold runs out
            log.warning("message %s of %s could not be settled after its failure: %s", delivery.id,
                        self.queue.name, settle)

    def _poison(self, delivery: Delivery, why: str) -> None:
        if self.poison is None:
            log.error("message %s of %s %s; a poison queue has no poison queue, so it stays", delivery.id,
                      self.queue.name, why)
            return
        log.error("message %s of %s %s: moved to %s", delivery.id, self.queue.name, why, self.poison.name)
        try:
            self.poison.send(delivery.text)
            self.queue.delete(delivery)
        except QueueError as settle:  # it comes back when its hold runs out, and is poisoned then
            log.warning("message %s of %s could not be moved to %s: %s", delivery.id, self.queue.name,
                        self.poison.name, settle)


class _Renewal:
    """Keeps a message taken while its function runs: every half hold, the hold starts again (as the
    listener's visibility timer does); `stop()` ends it and gives the delivery with its latest receipt."""

    def __init__(self, queue: MessageQueue, delivery: Delivery, hold: timedelta) -> None:
        self.queue = queue
        self.delivery = delivery
        self.hold = hold
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"devhost-renew-{queue.name}", daemon=True)
        self._thread.start()

    def stop(self) -> Delivery:
        self._stopping.set()
        self._thread.join()
        return self.delivery

    def _renew(self) -> None:
        while not self._stopping.wait(self.hold.total_seconds() / 2):
            try:
                self.delivery = self.queue.release(self.delivery, self.hold)
            except QueueError as exc:  # taken again or deleted: nothing left to hold
                log.warning("message %s of %s: its hold could not be renewed: %s", self.delivery.id,
                            self.queue.name, exc)
                return


def queue_argument(delivery: Delivery) -> func.QueueMessage:
    """The queue trigger's argument, as the worker builds it from the message and its metadata (the
    worker's QueueMessage: the abstract one has no dequeue count)."""
    return WorkerQueueMessage(  # type: ignore[no-untyped-call]
        id=delivery.id, body=delivery.text.encode(),
                              dequeue_count=delivery.dequeue_count, insertion_time=delivery.inserted_at,
                              pop_receipt=delivery.receipt)


class QueueTriggers(Poller):
    """Every queue-triggered function of an app, each on its queue, run on a shared pool of workers."""

    name = "queue triggers"

    def __init__(self, functions: list[HostedFunction], env: Mapping[str, str], invoker: Invoker,
                 options: QueueOptions, *, blob_functions: list[HostedFunction] | None = None,
                 interval: float = 1.0) -> None:
        super().__init__(min(interval, options.max_polling_interval.total_seconds()))
        self.hosts: list[QueueHost] = []
        blob_options = dataclasses.replace(options, max_dequeue_count=options.blob_max_dequeue_count)
        by_connection = {str(f.trigger["connection"]): f for f in blob_functions or []}
        for function in by_connection.values():  # one blob trigger queue per storage account, as the host
            storage = triggers.storage_for(str(function.trigger["connection"]), env, service="queue")
            self.hosts.append(QueueHost(build_queue(storage, BLOB_TRIGGER_QUEUE),
                                        build_queue(storage, BLOB_TRIGGER_POISON_QUEUE),
                                        _blob_runner(blob_functions or [], env, invoker), blob_options))
        for function in functions:
            storage = triggers.storage_for(str(function.trigger["connection"]), env, service="queue")
            name = str(function.trigger["queueName"])
            poison = None if name.endswith("-poison") else build_queue(storage, poison_queue_name(name))
            self.hosts.append(QueueHost(build_queue(storage, name), poison, _runner(function, invoker, name),
                                        options))
        self.options = options
        self._pool = ThreadPoolExecutor(max_workers=options.batch_size + options.new_batch_threshold,
                                        thread_name_prefix="devhost-queue")
        self._in_flight = 0
        self._lock = threading.Lock()

    def poll(self) -> None:
        """Receive a batch for each queue while fewer than newBatchThreshold messages are running."""
        for host in self.hosts:
            with self._lock:
                room = self.options.batch_size + self.options.new_batch_threshold - self._in_flight
            if room <= self.options.new_batch_threshold or self.stopping:
                continue
            for delivery in host.receive(min(room, self.options.batch_size)):
                with self._lock:
                    self._in_flight += 1
                self._pool.submit(self._deliver, host, delivery)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _deliver(self, host: QueueHost, delivery: Delivery) -> None:
        try:
            if self.stopping:  # received but not started: hand it back now rather than after its hold
                host.queue.release(delivery)
                return
            host.deliver(delivery)
        except QueueError as exc:
            log.warning("%s: %s", host.queue.name, exc)
        finally:
            with self._lock:
                self._in_flight -= 1


def _runner(function: HostedFunction, invoker: Invoker, queue: str) -> Callable[[Delivery], Any]:
    def run(delivery: Delivery) -> Any:
        return invoker.invoke(function, queue_argument(delivery),
                              reason=f"New queue message detected on '{queue}'.")
    return run


def blob_trigger_queue(function: HostedFunction, env: Mapping[str, str]) -> MessageQueue:
    """The blob trigger queue the blob webhook sends a blob function's messages to."""
    return build_queue(triggers.storage_for(str(function.trigger["connection"]), env, service="queue"),
                       BLOB_TRIGGER_QUEUE)


def _blob_runner(functions: list[HostedFunction], env: Mapping[str, str],
                 invoker: Invoker) -> Callable[[Delivery], Any]:
    """Runs the blob function a blob trigger message names (the host's BlobQueueTriggerExecutor): a message
    for no function, or for a blob that is gone, is done with at once."""
    by_id = {f"Host.Functions.{f.name}": f for f in functions}

    def run(delivery: Delivery) -> Any:
        message = parse_blob_trigger_message(json.loads(delivery.text))
        function = by_id.get(message.function_id)
        if function is None:
            log.warning("blob trigger message %s names no blob function (%s); dropped", delivery.id,
                        message.function_id)
            return None
        client = blob_service(triggers.storage_for(str(function.trigger["connection"]), env)) \
            .get_blob_client(message.container, message.name)
        if not client.exists():
            log.info("blob %s/%s is gone; its trigger message %s is dropped", message.container,
                     message.name, delivery.id)
            return None
        return invoker.invoke(function, triggers.blob_argument(function, client.url, env),
                              reason=f"New blob detected(EventGrid): {message.container}/{message.name}")
    return run

